"""Convert SmolLM3 checkpoints between nanotron (any tp / pp) and Hugging Face transformers.

Usage:
    python -m pretrain.convert CKPT OUT_DIR [--tokenizer DIR_OR_TOKENIZER_JSON] [--overwrite]
    python -m pretrain.convert HF_DIR OUT_DIR --to-nanotron [--overwrite]

nanotron -> HF: CKPT is a nanotron checkpoint folder (``model/`` shards plus ``model_config.json`` or
``config.yaml``); tensor-parallel shards are merged from their own slice metadata, pipeline stages are
collected from their files. OUT_DIR becomes a ``SmolLM3ForCausalLM`` folder (config, safetensors,
generation config, tokenizer when one is given or named by the checkpoint's config.yaml).
HF -> nanotron: OUT_DIR becomes a tp=1 / pp=1 nanotron checkpoint; start training from it with
``model.init_method.path: OUT_DIR`` (nanotron re-shards it to any tp / pp when loading).

Bad input exits with code 2 and one line on stderr. Output is written to a temporary folder next to
OUT_DIR and renamed into place, so a failed run leaves nothing that looks finished.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from pathlib import Path
from typing import Dict, Optional

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from smollm3.hf_config import SmolLM3Config, write_hf_config
from smollm3.hf_folder import hf_folder_writer

SHARD_FILE = re.compile(r"^model_(?P<suffix>.+?)(?:_pp-rank-\d+-of-\d+_tp-rank-\d+-of-\d+)?\.safetensors$")
EMBED = "model.token_position_embeddings.pp_block.token_embedding.weight"
LM_HEAD = "model.lm_head.pp_block.weight"
FINAL_NORM = "model.final_layer_norm.pp_block.weight"
LAYER = "model.decoder.{}.pp_block."


class ConvertError(Exception):
    """Bad input: reported as one line on stderr, exit code 2."""


def _nanotron_importable() -> None:
    """nanotron 0.4 imports only after pretrain.nanotron_compat (the nanotron.logging <-> nanotron.config cycle):
    call this before the first ``from nanotron ...`` of a function (an import sorter moves a compat import placed
    among them below the nanotron ones, which broke ``python -m pretrain.convert`` in a fresh process)."""
    from pretrain import nanotron_compat  # noqa: F401


# ---- nanotron checkpoint -> tensors ------------------------------------------------------------
def read_nanotron_config(ckpt: Path) -> SmolLM3Config:
    import yaml

    try:
        if (ckpt / "model_config.json").is_file():
            data = json.loads((ckpt / "model_config.json").read_text())
        elif (ckpt / "config.yaml").is_file():
            data = ((yaml.safe_load((ckpt / "config.yaml").read_text()) or {}).get("model") or {}).get("model_config")
        else:
            raise ConvertError(f"{ckpt}: not a nanotron checkpoint (no model_config.json or config.yaml)")
    except (ValueError, yaml.YAMLError, AttributeError) as e:
        raise ConvertError(f"{ckpt}: unreadable model config ({e})") from None
    if not isinstance(data, dict):
        raise ConvertError(f"{ckpt}: no model config (model_config.json / config.yaml model.model_config)")
    try:
        return SmolLM3Config.from_dict(data)
    except (TypeError, ValueError) as e:
        raise ConvertError(f"{ckpt}: not a SmolLM3 model config ({e})") from None


def read_nanotron_tensors(ckpt: Path) -> Dict[str, torch.Tensor]:
    """Every parameter, unsharded: tp shards merged through their slice metadata, pp stages collected."""
    _nanotron_importable()
    import dacite
    from nanotron.serialize.metadata import TensorMetadata

    root = ckpt / "model"
    files = sorted(root.rglob("*.safetensors")) if root.is_dir() else []
    if not files:
        raise ConvertError(f"{ckpt}: not a nanotron checkpoint (no model/*.safetensors)")
    tensors, covered = {}, {}
    for path in files:
        match = SHARD_FILE.match(path.name)
        if match is None:
            raise ConvertError(f"{path}: unexpected file in a nanotron checkpoint")
        name = ".".join((*path.parent.relative_to(root).parts, match["suffix"]))
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                data, meta = f.get_tensor("data"), f.metadata() or {}
        except (SafetensorError, OSError) as e:
            raise ConvertError(f"{path}: unreadable shard ({e})") from None
        if "local_global_slices_pairs" not in meta:
            tensors[name] = data
            covered[name] = data.numel()
            continue
        # numpy >= 2 writes shapes as 'np.int64(128)' (nanotron's chunked sharding); read both forms
        meta = {**meta, "unsharded_shape": re.sub(r"np\.\w+\((-?\d+)\)", r"\1", meta["unsharded_shape"])}
        try:
            info = TensorMetadata.from_str_dict(meta)
        except (KeyError, ValueError, TypeError, dacite.DaciteError) as e:
            raise ConvertError(f"{path}: bad shard metadata ({e})") from None
        full = tensors.setdefault(name, torch.empty(tuple(info.unsharded_shape), dtype=data.dtype))
        for pair in info.local_global_slices_pairs:
            full[pair.global_slices] = data[pair.local_slices]
            covered[name] = covered.get(name, 0) + full[pair.global_slices].numel()
    for name, tensor in tensors.items():
        if covered[name] < tensor.numel():
            raise ConvertError(f"{ckpt}: incomplete checkpoint, shards of {name} cover "
                               f"{covered[name]}/{tensor.numel()}")
    return tensors


def nanotron_to_hf(cfg: SmolLM3Config, nt: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    d, q, kv = cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
    expected = set(expected_nanotron_names(cfg))
    if set(nt) != expected:
        missing, extra = sorted(expected - set(nt)), sorted(set(nt) - expected)
        raise ConvertError(f"checkpoint does not match its SmolLM3 config: missing {missing[:3]}, unexpected "
                           f"{extra[:3]}")
    hf = {"model.embed_tokens.weight": nt[EMBED], "model.norm.weight": nt[FINAL_NORM]}
    for i in range(cfg.num_hidden_layers):
        src, dst = LAYER.format(i), f"model.layers.{i}."
        # clone: the HF safetensors writer refuses tensors that share storage
        wq, wk, wv = (t.clone() for t in torch.split(nt[src + "attn.qkv_proj.weight"], [q * d, kv * d, kv * d]))
        gate, up = (t.clone() for t in torch.split(nt[src + "mlp.gate_up_proj.weight"], cfg.intermediate_size))
        hf.update({
            dst + "input_layernorm.weight": nt[src + "input_layernorm.weight"],
            dst + "self_attn.q_proj.weight": wq, dst + "self_attn.k_proj.weight": wk,
            dst + "self_attn.v_proj.weight": wv,
            dst + "self_attn.o_proj.weight": nt[src + "attn.o_proj.weight"],
            dst + "post_attention_layernorm.weight": nt[src + "post_attention_layernorm.weight"],
            dst + "mlp.gate_proj.weight": gate, dst + "mlp.up_proj.weight": up,
            dst + "mlp.down_proj.weight": nt[src + "mlp.down_proj.weight"],
        })  # fmt: skip
    if not cfg.tie_word_embeddings:
        hf["lm_head.weight"] = nt[LM_HEAD]
    return {k: v.contiguous() for k, v in hf.items()}


def hf_to_nanotron(cfg: SmolLM3Config, hf: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    hf = dict(hf)
    if cfg.tie_word_embeddings:
        hf.pop("lm_head.weight", None)
    try:
        nt = {EMBED: hf.pop("model.embed_tokens.weight"), FINAL_NORM: hf.pop("model.norm.weight")}
        if not cfg.tie_word_embeddings:
            nt[LM_HEAD] = hf.pop("lm_head.weight")
        for i in range(cfg.num_hidden_layers):
            src, dst = f"model.layers.{i}.", LAYER.format(i)
            qkv = [hf.pop(src + f"self_attn.{p}_proj.weight") for p in "qkv"]
            gate_up = [hf.pop(src + f"mlp.{p}_proj.weight") for p in ("gate", "up")]
            nt.update({
                dst + "input_layernorm.weight": hf.pop(src + "input_layernorm.weight"),
                dst + "attn.qkv_proj.weight": torch.cat(qkv, dim=0),
                dst + "attn.o_proj.weight": hf.pop(src + "self_attn.o_proj.weight"),
                dst + "post_attention_layernorm.weight": hf.pop(src + "post_attention_layernorm.weight"),
                dst + "mlp.gate_up_proj.weight": torch.cat(gate_up, dim=0),
                dst + "mlp.down_proj.weight": hf.pop(src + "mlp.down_proj.weight"),
            })  # fmt: skip
    except KeyError as e:
        raise ConvertError(f"Hugging Face weights lack {e.args[0]}") from None
    if hf:
        raise ConvertError(f"Hugging Face weights have tensors this model does not: {sorted(hf)[:3]}")
    return nt


def expected_nanotron_names(cfg: SmolLM3Config):
    names = [EMBED, FINAL_NORM] + ([] if cfg.tie_word_embeddings else [LM_HEAD])
    for i in range(cfg.num_hidden_layers):
        names += [LAYER.format(i) + p for p in (
            "input_layernorm.weight", "attn.qkv_proj.weight", "attn.o_proj.weight",
            "post_attention_layernorm.weight", "mlp.gate_up_proj.weight", "mlp.down_proj.weight")]  # fmt: skip
    return names


# ---- writers ------------------------------------------------------------------------------------
def _tp1_split(cfg: SmolLM3Config, name: str):
    """(split_dim, contiguous chunks) of a tensor-parallel parameter, None for replicated ones."""
    if name.endswith("layernorm.weight") or name == FINAL_NORM:
        return None
    if name.endswith("qkv_proj.weight"):
        kv = cfg.num_key_value_heads * cfg.head_dim
        return 0, (cfg.num_attention_heads * cfg.head_dim, kv, kv)
    if name.endswith("gate_up_proj.weight"):
        return 0, (cfg.intermediate_size, cfg.intermediate_size)
    if name.endswith(("o_proj.weight", "down_proj.weight")):
        return 1, None
    return 0, None  # embedding, lm_head


def write_nanotron_checkpoint(cfg: SmolLM3Config, nt: Dict[str, torch.Tensor], out: Path) -> None:
    """The layout nanotron's save_weights writes at tp=1 / pp=1 (one safetensors file per parameter)."""
    _nanotron_importable()
    from nanotron.constants import CHECKPOINT_VERSION
    from nanotron.parallel.parameters import SlicesPair
    from nanotron.serialize.metadata import TensorMetadata

    for name, tensor in nt.items():
        *parts, suffix = name.split(".")
        split = _tp1_split(cfg, name)
        metadata = {}
        if split is not None:
            dim, chunks = split
            bounds = [0, *itertools.accumulate(chunks or (tensor.shape[dim],))]
            pairs = tuple(
                SlicesPair(local_slices=s, global_slices=s)
                for s in (tuple(slice(a, b) if k == dim else slice(None) for k in range(tensor.dim()))
                          for a, b in zip(bounds[:-1], bounds[1:]))
            )  # fmt: skip
            metadata = TensorMetadata(CHECKPOINT_VERSION, pairs, tuple(tensor.shape)).to_str_dict()
            suffix = f"{suffix}_pp-rank-0-of-1_tp-rank-0-of-1"
        path = out.joinpath("model", *parts, f"model_{suffix}.safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"data": tensor.contiguous()}, str(path), metadata=metadata)
    (out / "model_config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    meta = {"version": str(CHECKPOINT_VERSION), "tp": 1, "dp": 1,
            "metas": {"last_train_step": 0, "consumed_train_samples": 0, "converted_from": "huggingface"}}  # fmt: skip
    (out / "checkpoint_metadata.json").write_text(json.dumps(meta, indent=2) + "\n")


def write_hf_folder(cfg: SmolLM3Config, hf: Dict[str, torch.Tensor], out: Path, tokenizer: Optional[Path],
                    yarn_factor: Optional[float] = None) -> None:
    from huggingface_hub import save_torch_state_dict
    from transformers import GenerationConfig
    from transformers import SmolLM3Config as HFSmolLM3Config

    hf_config = HFSmolLM3Config(**cfg.to_hf_dict(yarn_factor))
    hf_config.dtype = str(next(iter(hf.values())).dtype).removeprefix("torch.")
    hf_config.save_pretrained(out)
    write_hf_config(out)  # transformers 4.x's rope_theta / rope_scaling beside rope_parameters
    save_torch_state_dict(hf, out, max_shard_size="5GB", metadata={"format": "pt"})
    GenerationConfig(
        bos_token_id=cfg.bos_token_id, eos_token_id=cfg.eos_token_id, pad_token_id=cfg.pad_token_id
    ).save_pretrained(out)
    if tokenizer is not None:
        try:
            save_tokenizer(tokenizer, cfg, out)
        except (OSError, ValueError, TypeError) as e:
            raise ConvertError(f"{tokenizer}: cannot load a tokenizer from it ({e})") from None


def save_tokenizer(source: Path, cfg: SmolLM3Config, out: Path) -> None:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if source.is_file():  # a bare tokenizer.json (what datatrove takes)
        tok = PreTrainedTokenizerFast(tokenizer_file=str(source))
        specials = {"bos_token": cfg.bos_token_id, "eos_token": cfg.eos_token_id, "pad_token": cfg.pad_token_id}
        tok.add_special_tokens(
            {k: tok.convert_ids_to_tokens(v) for k, v in specials.items() if v is not None and v < len(tok)}
        )
    else:
        tok = AutoTokenizer.from_pretrained(str(source))
    tok.save_pretrained(out)


# ---- HF folder -> tensors -----------------------------------------------------------------------
def read_hf_folder(src: Path):
    if not (src / "config.json").is_file():
        raise ConvertError(f"{src}: not a Hugging Face model folder (no config.json)")
    from transformers import AutoConfig

    try:
        hf_config = AutoConfig.from_pretrained(str(src))
    except (OSError, ValueError, KeyError) as e:
        raise ConvertError(f"{src / 'config.json'}: unreadable config ({e})") from None
    if hf_config.model_type != "smollm3":
        raise ConvertError(f"{src}: model_type {hf_config.model_type!r}, expected 'smollm3'")
    try:
        cfg = SmolLM3Config.from_hf(hf_config)
    except (TypeError, ValueError) as e:
        raise ConvertError(f"{src}: unsupported SmolLM3 config ({e})") from None
    files = sorted(src.glob("*.safetensors"))
    if not files:
        raise ConvertError(f"{src}: no *.safetensors weights")
    tensors = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                tensors.update({k: f.get_tensor(k) for k in f.keys()})
        except (SafetensorError, OSError) as e:
            raise ConvertError(f"{path}: unreadable weights ({e})") from None
    return cfg, tensors


# ---- CLI ----------------------------------------------------------------------------------------
def find_tokenizer(ckpt: Path) -> Optional[Path]:
    """The tokenizer named by the checkpoint's config.yaml, when it is a local path."""
    try:
        import yaml

        name = (yaml.safe_load((ckpt / "config.yaml").read_text()).get("tokenizer") or {}).get("tokenizer_name_or_path")
    except (OSError, AttributeError, ValueError):
        return None
    return Path(name) if name and Path(name).exists() else None


def convert(src: Path, out: Path, to_nanotron: bool = False, tokenizer: Optional[Path] = None,
            overwrite: bool = False, yarn_factor: Optional[float] = None) -> Path:  # fmt: skip
    if yarn_factor is not None and (to_nanotron or not yarn_factor > 1):
        raise ConvertError(f"--yarn-factor {yarn_factor}: must be > 1, and only for a conversion to Hugging Face")
    if not src.is_dir():
        raise ConvertError(f"{src}: no such directory")
    if out.exists() and not overwrite:
        raise ConvertError(f"{out}: already exists (pass --overwrite to replace it)")
    if tokenizer is not None and not tokenizer.exists():
        raise ConvertError(f"{tokenizer}: no such tokenizer")
    if to_nanotron:
        cfg, hf = read_hf_folder(src)
        nt = hf_to_nanotron(cfg, hf)
    else:
        cfg = read_nanotron_config(src)
        nt = read_nanotron_tensors(src)
        hf = nanotron_to_hf(cfg, nt)
        tokenizer = tokenizer or find_tokenizer(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    with hf_folder_writer(out) as tmp:
        if to_nanotron:
            write_nanotron_checkpoint(cfg, nt, tmp)
        else:
            write_hf_folder(cfg, hf, tmp, tokenizer, yarn_factor)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pretrain.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="nanotron checkpoint folder (or HF folder with --to-nanotron)")
    parser.add_argument("out", type=Path, help="output folder (must not exist unless --overwrite)")
    parser.add_argument("--to-nanotron", action="store_true", help="convert a Hugging Face SmolLM3 folder to nanotron")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer folder or tokenizer.json to ship with the HF folder")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.add_argument("--yarn-factor", type=float, default=None,
                        help="write YaRN rope scaling (factor over the trained length) into the HF config")
    args = parser.parse_args(argv)
    try:
        out = convert(args.src, args.out, args.to_nanotron, args.tokenizer, args.overwrite, args.yarn_factor)
    except ConvertError as e:
        print("convert: error: " + " ".join(str(e).split()), file=sys.stderr)  # always one line
        return 2
    print(f"convert: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
