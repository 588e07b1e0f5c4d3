"""What a merge reads, found and checked before anything is written: the soup's checkpoints (the kept, intact
checkpoints of the `soup_from` stage, or those of `soup_steps`) and the blend's other models (the `hf/` folder
of a completed stage, or a local HF folder). Every input must be a complete HF folder; all must share the
architecture, every shape, the vocabulary and the RoPE settings (theta, max positions, scaling), and these
must be the recipe's `model.rope_theta` / `model.max_position_embeddings`. Otherwise one RecipeError (exit 2).

mergekit itself checks none of this for an architecture it infers (SmolLM3 has no definition in 0.1.5): it
would average tensors of models trained at other RoPE settings, or fail halfway with a shape error.

Usage: soup, others = find_inputs(recipe); check_compatible(recipe, {label: folder, ...})
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from recipes.derive import PIPELINE
from recipes.loader import RecipeError, display
from rundir import completed_stage, is_hf_folder
from rundir.checkpoints import intact_checkpoints

SHAPE_KEYS = ("architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
              "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size", "tie_word_embeddings",
              "no_rope_layer_interval", "no_rope_layers")


def _completed_stage(r, stage: str, field: str) -> Path:
    return completed_stage(r.run, stage, r.file_of(field), field)


def _step(path: Path) -> int:
    return int(re.sub(r"\D", "", path.name) or -1)


def find_inputs(r) -> tuple[list[Path], dict]:
    """(the soup's checkpoint folders, oldest first; {blend model name: folder} for the models other than the
    soup)."""
    sdir = _completed_stage(r, r.soup_from, "soup_from")
    kept, damaged = intact_checkpoints(sdir / "checkpoints")
    for p, why in damaged:
        print(f"[merge] warning: {display(p)} is damaged ({why}): left out of the soup", flush=True)
    if r.soup_steps:
        by_step = {_step(p): p for p in kept}
        missing = [s for s in r.soup_steps if s not in by_step]
        if missing:
            have = ", ".join(map(str, sorted(by_step))) or "none"
            raise RecipeError(r.file_of("soup_steps"), "soup_steps", f"no intact checkpoint of {r.soup_from} at step "
                              f"{', '.join(map(str, missing))} (kept: {have})")
        kept = [by_step[s] for s in r.soup_steps]
    if not kept:
        raise RecipeError(r.file_of("soup_from"), "soup_from", f"{display(sdir / 'checkpoints')} holds no intact "
                          "checkpoint to average: keep some (save_steps, save_total_limit of the stage)")
    others, fields = {}, {p.name: "soup_from" for p in kept}
    for i, b in enumerate(r.blend):
        if b.model == "soup":
            continue
        stage = b.model in PIPELINE or not Path(b.model).exists()  # a pipeline stage, else a local HF folder
        others[b.model] = _completed_stage(r, b.model, f"blend.{i}.model") / "hf" if stage else Path(b.model)
        fields[b.model] = f"blend.{i}.model"
    for label, folder in [(p.name, p) for p in kept] + list(others.items()):
        if not is_hf_folder(folder):
            raise RecipeError(r.file_of(fields[label]), fields[label], f"{display(folder)} is not a complete "
                              "Hugging Face model folder (config.json and safetensors weights)")
    return kept, others


def _rope(cfg: dict) -> dict:
    params = dict(cfg.get("rope_parameters") or {})
    params.setdefault("rope_theta", cfg.get("rope_theta"))
    params.update(cfg.get("rope_scaling") or {})
    params.setdefault("rope_type", "default")
    return {"max_position_embeddings": cfg.get("max_position_embeddings"), **params}


def _vocab(folder: Path) -> str:
    tok = folder / "tokenizer.json"
    if not tok.is_file():
        return "no tokenizer.json"
    data = json.loads(tok.read_text())
    vocab = {"model": data.get("model", {}).get("vocab"), "added": sorted(
        (t["id"], t["content"]) for t in data.get("added_tokens", []))}
    return hashlib.sha256(json.dumps(vocab, sort_keys=True).encode()).hexdigest()[:16]


def check_compatible(r, folders: dict) -> None:
    """One error naming the first input that differs from the first one (or from the recipe's RoPE settings)."""
    described = {label: (json.loads((f / "config.json").read_text()), f) for label, f in folders.items()}
    (first, (ref, ref_folder)), *rest = described.items()
    want = {"rope_theta": r.model.rope_theta, "max_position_embeddings": r.model.max_position_embeddings}
    for label, (cfg, folder) in described.items():
        rope = _rope(cfg)
        for key, value in want.items():
            if rope.get(key) != value:
                raise RecipeError(r.file_of(f"model.{key}"), f"model.{key}", f"{display(folder)} has {key} "
                                  f"{rope.get(key)}, the recipe {value}: merge models of the recipe's RoPE settings")
    for label, (cfg, folder) in rest:
        diffs = [f"{k} {cfg.get(k)} vs {ref.get(k)}" for k in SHAPE_KEYS if cfg.get(k) != ref.get(k)]
        diffs += [f"rope {_rope(cfg)} vs {_rope(ref)}"] if _rope(cfg) != _rope(ref) else []
        diffs += ["vocabulary (tokenizer.json)"] if _vocab(folder) != _vocab(ref_folder) else []
        if diffs:
            raise RecipeError(r.file_of("blend"), "blend", f"{display(folder)} cannot be merged with "
                              f"{display(ref_folder)}: {'; '.join(diffs)}")
