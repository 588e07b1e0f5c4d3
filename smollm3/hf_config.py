"""SmolLM3 model configuration for nanotron 0.4, with the mapping to/from transformers' SmolLM3Config, and the
one home of the HF config's RoPE and length settings: `rope_of` reads them (4.x and 5.x layouts),
`write_hf_config` writes config.json, `yarn_rope` maps a YaRN factor, `trained_length` and `yarn_view` (a YaRN
view of a model folder, below) build on them.

Usage (inside a nanotron YAML, section ``model.model_config``): the fields below, HF-style names.
``is_smollm3_config`` (and ``no_rope_layer_interval``, ``rope_theta``, ``use_doc_masking``) are keys
nanotron's ``LlamaConfig`` lacks, so the config loader keeps the section for this class.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from rundir import write_text_atomic
from smollm3.hf_folder import hf_folder_writer


def yarn_rope(rope_theta: float, factor: float, trained_length: int) -> tuple[dict, int]:
    """(transformers' ``rope_parameters``, ``max_position_embeddings``) of a model stretched by YaRN ``factor``
    beyond the length it was trained at (HF model card: 128k = factor 2 over 65,536)."""
    rope = {"rope_type": "yarn", "factor": float(factor), "rope_theta": float(rope_theta),
            "original_max_position_embeddings": int(trained_length)}
    return rope, int(trained_length * factor)


def rope_of(config: Dict[str, Any]) -> Dict[str, Any]:
    """transformers 5's ``rope_parameters`` of a config.json dict, also from a transformers 4.x file that has only the
    top-level ``rope_theta`` / ``rope_scaling`` (``type`` read as ``rope_type``, as 4.x's configs do)."""
    theta = float(config.get("rope_theta") or 10000.0)
    if config.get("rope_parameters"):
        return {"rope_theta": theta, **config["rope_parameters"]}
    scaling = dict(config.get("rope_scaling") or {})
    kind = scaling.pop("rope_type", scaling.pop("type", "default"))
    return {"rope_type": kind, "rope_theta": theta, **scaling}


def legacy_rope(rope_parameters: Dict[str, Any]) -> Dict[str, Any]:
    """The same RoPE as transformers 4.x reads it (LlamaConfig / SmolLM3Config attributes taken from config.json):
    top-level ``rope_theta``, and ``rope_scaling`` None for plain RoPE, else the scaling keys without the theta
    (``{"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 65536}``)."""
    scaling = {k: v for k, v in rope_parameters.items() if k != "rope_theta"}
    plain = scaling.get("rope_type", "default") == "default" and set(scaling) <= {"rope_type"}
    return {"rope_theta": float(rope_parameters["rope_theta"]), "rope_scaling": None if plain else scaling}


def write_hf_config(folder, updates: Optional[Dict[str, Any]] = None, source=None) -> Path:
    """The one writer of this project's Hugging Face ``config.json`` contents: ``source`` (default: the folder's own
    config.json, as transformers' ``save_pretrained`` wrote it) with ``updates`` applied, then the RoPE also written
    the transformers 4.x way (``legacy_rope``: a 4.x reader such as vLLM on a cluster would otherwise see SmolLM3's
    default theta and no YaRN). transformers 5 reads ``rope_scaling`` before ``rope_parameters``
    (``convert_rope_params_to_dict``), so both always hold the same values. Written to a temporary file, then
    renamed."""
    path = Path(folder) / "config.json"
    config = json.loads(Path(source or path).read_text())
    config.update(updates or {})
    config["rope_parameters"] = rope_of(config)
    config.update(legacy_rope(config["rope_parameters"]))
    write_text_atomic(path, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return path


@dataclass
class SmolLM3Config:
    """Architecture of SmolLM3 (defaults: the 3B model of the published recipe, stage 1)."""

    bos_token_id: Optional[int] = 128000
    eos_token_id: Optional[int] = 128001
    pad_token_id: Optional[int] = None
    hidden_act: str = "silu"
    hidden_size: int = 2048
    intermediate_size: int = 11008
    num_hidden_layers: int = 36
    num_attention_heads: int = 16
    num_key_value_heads: int = 4
    vocab_size: int = 128256
    max_position_embeddings: int = 4096
    rope_theta: float = 50000.0
    # RoPE is skipped in layer i (0-based) iff (i + 1) % no_rope_layer_interval == 0; 0/None: RoPE everywhere.
    no_rope_layer_interval: Optional[int] = 4
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = True
    initializer_range: float = 0.02
    # Intra-document attention: position ids restart at 0 at every document start inside a packed row.
    use_doc_masking: bool = True
    # Runtime choices of the training model (not part of the architecture; not written to HF configs):
    # flash-attn varlen kernels ("flash_attention_2", CUDA + bf16) or one masked SDPA call ("sdpa"), and
    # activation recompute per decoder layer (torch.utils.checkpoint).
    attn_implementation: str = "sdpa"
    recompute_layer: bool = False
    is_smollm3_config: bool = True  # marker, like nanotron's `is_llama_config`

    def __post_init__(self):
        self.rope_theta = float(self.rope_theta)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} not divisible by {self.num_attention_heads} heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads {self.num_attention_heads} not divisible by "
                f"num_key_value_heads {self.num_key_value_heads}"
            )
        if self.hidden_act != "silu":
            raise ValueError(f"SmolLM3 uses a SiLU-gated MLP, got hidden_act={self.hidden_act!r}")
        if (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError("head dimension must be even for RoPE")
        if self.attn_implementation not in ("sdpa", "flash_attention_2"):
            raise ValueError(f"attn_implementation must be sdpa or flash_attention_2, got {self.attn_implementation!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def uses_rope(self, layer_idx: int) -> bool:
        interval = self.no_rope_layer_interval
        return not interval or (layer_idx + 1) % interval != 0

    @property
    def no_rope_layers(self) -> List[int]:
        """HF convention: 1 = RoPE, 0 = NoPE, one entry per layer."""
        return [int(self.uses_rope(i)) for i in range(self.num_hidden_layers)]

    # ---- the recipe's model -> this config (the one mapping; transformers' config follows from it) ----------
    @classmethod
    def from_recipe(cls, model, token_ids: Optional[Dict[str, Optional[int]]] = None,
                    recompute_layer: bool = False) -> "SmolLM3Config":
        """From a recipe's `model` section (recipes.schema.ModelConfig), the tokenizer's bos / eos / pad ids
        and the recipe's `parallelism.recompute_layer`."""
        ids = token_ids or {}
        return cls(
            bos_token_id=ids.get("bos"), eos_token_id=ids.get("eos"), pad_token_id=ids.get("pad"),
            hidden_act=model.hidden_act, hidden_size=model.hidden_size, intermediate_size=model.intermediate_size,
            num_hidden_layers=model.num_hidden_layers, num_attention_heads=model.num_attention_heads,
            num_key_value_heads=model.num_key_value_heads, vocab_size=model.vocab_size,
            max_position_embeddings=model.max_position_embeddings, rope_theta=model.rope_theta,
            no_rope_layer_interval=model.no_rope_layer_interval, rms_norm_eps=model.rms_norm_eps,
            tie_word_embeddings=model.tie_word_embeddings, initializer_range=model.init_std,
            use_doc_masking=model.use_doc_masking, attn_implementation=model.attn_implementation,
            recompute_layer=recompute_layer)

    # ---- transformers mapping -------------------------------------------------------------------
    def to_hf_dict(self, yarn_factor: Optional[float] = None) -> Dict[str, Any]:
        """Keyword arguments for ``transformers.SmolLM3Config``. With ``yarn_factor``, the RoPE of an inference
        model stretched by YaRN beyond the trained length (the model card runs 128k with factor 2 over the
        trained 65,536): ``max_position_embeddings`` becomes factor x the trained length."""
        rope = {"rope_type": "default", "rope_theta": self.rope_theta}
        max_positions = self.max_position_embeddings
        if yarn_factor:
            rope, max_positions = yarn_rope(self.rope_theta, yarn_factor, self.max_position_embeddings)
        return dict(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            hidden_act=self.hidden_act,
            max_position_embeddings=max_positions,
            initializer_range=self.initializer_range,
            rms_norm_eps=self.rms_norm_eps,
            use_cache=True,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            rope_parameters=rope,
            use_sliding_window=False,
            no_rope_layers=self.no_rope_layers,
            no_rope_layer_interval=self.no_rope_layer_interval or self.num_hidden_layers + 1,
            attention_bias=False,
            mlp_bias=False,
            attention_dropout=0.0,
            tie_word_embeddings=self.tie_word_embeddings,
            architectures=["SmolLM3ForCausalLM"],
        )

    @classmethod
    def from_hf(cls, hf_config: Any, **overrides) -> "SmolLM3Config":
        """From a ``transformers.SmolLM3Config`` (or its dict); refuses layouts this model cannot express."""
        get = hf_config.get if isinstance(hf_config, dict) else (lambda k, d=None: getattr(hf_config, k, d))
        rope = rope_of(hf_config if isinstance(hf_config, dict) else
                       {k: get(k) for k in ("rope_parameters", "rope_theta", "rope_scaling") if get(k) is not None})
        theta = rope["rope_theta"]
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"only default RoPE is supported, got rope_type={rope.get('rope_type')!r}")
        if get("attention_bias") or get("mlp_bias"):
            raise ValueError("attention/MLP biases are not part of SmolLM3 and not supported")
        if get("use_sliding_window"):
            raise ValueError("sliding-window attention is not supported")
        head_dim = get("head_dim")
        if head_dim not in (None, get("hidden_size") // get("num_attention_heads")):
            raise ValueError(f"head_dim {head_dim} != hidden_size / num_attention_heads")
        config = cls(
            bos_token_id=get("bos_token_id"),
            eos_token_id=_first(get("eos_token_id")),
            pad_token_id=get("pad_token_id"),
            hidden_act=get("hidden_act", "silu"),
            hidden_size=get("hidden_size"),
            intermediate_size=get("intermediate_size"),
            num_hidden_layers=get("num_hidden_layers"),
            num_attention_heads=get("num_attention_heads"),
            num_key_value_heads=get("num_key_value_heads") or get("num_attention_heads"),
            vocab_size=get("vocab_size"),
            max_position_embeddings=get("max_position_embeddings"),
            rope_theta=theta,
            no_rope_layer_interval=get("no_rope_layer_interval"),
            rms_norm_eps=get("rms_norm_eps", 1e-6),
            tie_word_embeddings=bool(get("tie_word_embeddings", True)),
            initializer_range=get("initializer_range", 0.02),
            **overrides,
        )
        hf_layers = get("no_rope_layers")
        if hf_layers is not None and list(hf_layers) != config.no_rope_layers:
            raise ValueError(
                f"no_rope_layers {list(hf_layers)} is not the interval-{config.no_rope_layer_interval} pattern"
            )
        return config

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "SmolLM3Config":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown SmolLM3Config keys: {sorted(unknown)}")
        return cls(**data)


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) else value


# ------------------------------------------------------------------ trained length and YaRN views
# A YaRN view of a Hugging Face model folder: the same weights (symlinked), a config whose RoPE YaRN stretches
# beyond the length the model was trained at, as the SmolLM3 model card runs 128k (factor 2 over the trained
# 65,536). transformers reads YaRN from the config alone, so no weight is copied; the eval stage scores its
# `yarn_lengths` on such a view. Usage: from smollm3.hf_config import yarn_view; yarn_view(hf_dir, 2.0, out_dir)
def trained_length(model_dir) -> int:
    """The length a model folder was trained at (before any YaRN stretch)."""
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    rope = rope_of(cfg)
    return int(rope.get("original_max_position_embeddings") or cfg["max_position_embeddings"])


def yarn_view(model_dir, factor: float, out_dir) -> Path:
    """Write `out_dir`: every file of `model_dir` symlinked, config.json rewritten with YaRN `factor`.
    A model already YaRN-scaled is refused (ValueError): stretch the trained model instead."""
    model_dir, out_dir = Path(model_dir).resolve(), Path(out_dir)
    cfg = json.loads((model_dir / "config.json").read_text())
    rope = rope_of(cfg)
    if rope["rope_type"] != "default" or cfg.get("rope_scaling"):
        raise ValueError(f"{model_dir} already scales its RoPE ({cfg.get('rope_scaling') or rope})")
    stretched, positions = yarn_rope(rope["rope_theta"], factor, cfg["max_position_embeddings"])
    with hf_folder_writer(out_dir) as tmp:
        for f in model_dir.iterdir():
            if f.name != "config.json":
                os.symlink(f, tmp / f.name)
        write_hf_config(tmp, {"rope_parameters": stretched, "max_position_embeddings": positions},
                        source=model_dir / "config.json")
    return out_dir
