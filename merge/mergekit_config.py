"""The merge recipe -> mergekit 0.1.5 configurations (the one mapping to mergekit's YAML format).

- the soup: `merge_method: linear` over the selected APO checkpoints, weight 1.0 each, `normalize` from the
  recipe (`soup_normalize`; normalized, a uniform linear merge is the checkpoints' mean);
- the blend: `merge_method: linear` over the soup and the recipe's other models with their weights
  (published: 0.9 soup, 0.1 mid-training checkpoint), `normalize: true` (mergekit's default for linear: the
  weights are divided by their sum, which is 1 for the published ones).
Both in the recipe's dtype. The paths are absolute, so a saved YAML reruns as it is: `mergekit-yaml soup.yaml OUT`.

Usage: soup_config(recipe, [checkpoint, ...]) -> dict; blend_config(recipe, {name: folder}) -> dict
"""
from __future__ import annotations

from pathlib import Path


def _models(weighted) -> list[dict]:
    return [{"model": str(Path(folder).resolve()), "parameters": {"weight": float(weight)}}
            for folder, weight in weighted]


def soup_config(r, checkpoints: list[Path]) -> dict:
    return {"merge_method": r.soup_method, "models": _models((c, 1.0) for c in checkpoints),
            "parameters": {"normalize": r.soup_normalize}, "dtype": r.dtype}


def blend_config(r, folders: dict) -> dict:
    """`folders`: {blend model name ('soup' or a stage): its HF folder}."""
    return {"merge_method": r.blend_method, "models": _models((folders[b.model], b.weight) for b in r.blend),
            "parameters": {"normalize": True}, "dtype": r.dtype}
