"""A YaRN view of a Hugging Face model folder: the same weights (symlinked), a config whose RoPE is stretched
by YaRN beyond the length the model was trained at, as the SmolLM3 model card runs 128k (factor 2 over the
trained 65,536). The eval stage scores its `yarn_lengths` passkey prompts on such a view.

transformers reads YaRN from the config alone, so no weight is copied or changed; the RoPE settings come from
`pretrain.smollm3_config.yarn_rope`, the same mapping `pretrain.convert --yarn-factor` writes, and config.json is
written by `pretrain.smollm3_config.write_hf_config` (also transformers 4.x's `rope_theta` / `rope_scaling`).

Usage: from eval.yarn_view import yarn_view; yarn_view("runs/tiny/longctx-64k/hf", 2.0, "out/model")
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from pretrain.smollm3_config import rope_of, write_hf_config, yarn_rope


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
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in model_dir.iterdir():
        if f.name != "config.json":
            os.symlink(f, tmp / f.name)
    write_hf_config(tmp, {"rope_parameters": stretched, "max_position_embeddings": positions},
                    source=model_dir / "config.json")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir
