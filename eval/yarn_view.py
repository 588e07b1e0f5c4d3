"""A YaRN view of a Hugging Face model folder: the same weights (symlinked), a config whose RoPE is stretched
by YaRN beyond the length the model was trained at, as the SmolLM3 model card runs 128k (factor 2 over the
trained 65,536). The eval stage scores its `yarn_lengths` passkey prompts on such a view.

transformers reads YaRN from the config alone, so no weight is copied or changed; the RoPE settings come from
`pretrain.smollm3_config.yarn_rope`, the same mapping `pretrain.convert --yarn-factor` writes.

Usage: from eval.yarn_view import yarn_view; yarn_view("runs/tiny/longctx-64k/hf", 2.0, "out/model")
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from pretrain.smollm3_config import yarn_rope


def trained_length(model_dir) -> int:
    """The length a model folder was trained at (before any YaRN stretch)."""
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    return int(rope.get("original_max_position_embeddings") or cfg["max_position_embeddings"])


def yarn_view(model_dir, factor: float, out_dir) -> Path:
    """Write `out_dir`: every file of `model_dir` symlinked, config.json rewritten with YaRN `factor`.
    A model already YaRN-scaled is refused (ValueError): stretch the trained model instead."""
    model_dir, out_dir = Path(model_dir).resolve(), Path(out_dir)
    cfg = json.loads((model_dir / "config.json").read_text())
    rope = cfg.get("rope_parameters") or {}
    if rope.get("rope_type", "default") != "default" or cfg.get("rope_scaling"):
        raise ValueError(f"{model_dir} already scales its RoPE ({rope or cfg.get('rope_scaling')})")
    theta = rope.get("rope_theta", cfg.get("rope_theta"))
    cfg["rope_parameters"], cfg["max_position_embeddings"] = yarn_rope(theta, factor, cfg["max_position_embeddings"])
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in model_dir.iterdir():
        if f.name != "config.json":
            os.symlink(f, tmp / f.name)
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir
