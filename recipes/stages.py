"""Which module runs each kind of stage, and the pipeline runner behind `make <stage>` and `make smoke`.

A stage module exposes `run(recipe)`; it receives a validated recipe, so bad input has already been
rejected (exit 2) before anything is written under runs/.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time
from pathlib import Path

from recipes.loader import load_recipe, load_stage

# kind -> (module with run(recipe), where it is being built)
STAGE_MODULES = {
    "data": ("pretrain.data_stage", "issue #3 (datatrove mixtures)"),
    "pretrain": ("pretrain.train_stage", "issue #5 (pretraining stages)"),
    "longctx": ("midtrain.longctx_stage", "issue #5 (nanotron stages)"),
    "midtrain": ("midtrain.reasoning_stage", "the reasoning mid-training issue"),
    "sft": ("posttrain.sft_stage", "the SFT issue"),
    "apo": ("posttrain.apo_stage", "the APO issue"),
    "merge": ("merge.merge_stage", "the merge issue"),
    "eval": ("eval.stage", "issue #6 (evaluation)"),
}


def stage_module(kind: str):
    """The imported stage module, or None while that stage is not implemented yet."""
    name = STAGE_MODULES[kind][0]
    try:
        if importlib.util.find_spec(name) is None:
            return None
    except ModuleNotFoundError:
        return None
    module = importlib.import_module(name)
    return module if hasattr(module, "run") else None


NANOTRON_KINDS = ("pretrain", "longctx")


def run_stage(path, overrides=()) -> int:
    """Validate then run one stage; nanotron stages are started under torchrun (pretrain.launch) unless
    this process already is a torchrun rank."""
    recipe = load_stage(path, overrides)
    module = stage_module(recipe.kind)
    if module is None:
        print(f"{path}: stage {recipe.stage} ({recipe.kind}) is not implemented yet: "
              f"{STAGE_MODULES[recipe.kind][1]}", file=sys.stderr)
        return 3
    t0 = time.time()
    if recipe.kind in NANOTRON_KINDS and "LOCAL_RANK" not in os.environ:
        if module.up_to_date(recipe):
            print(f"[{recipe.stage}] up to date: skipped", flush=True)
            return 0
        from pretrain.launch import launch
        rc = launch(path, overrides)
    else:
        module.run(recipe)
        rc = 0
    if "LOCAL_RANK" not in os.environ and rc == 0:
        print(f"[{recipe.stage}] done in {time.time() - t0:.1f}s", flush=True)
    return rc


def run_pipeline(recipe_dir, overrides=()) -> int:
    """Every stage in pipeline order. Stages not implemented yet are skipped with a note (the later ones that
    need them are unimplemented too; eval scores whatever checkpoints exist), then listed at the end."""
    recipe_dir = Path(recipe_dir)
    recipes = load_recipe(recipe_dir, overrides)  # validate everything before running anything
    names, missing = list(recipes), []
    for i, (name, recipe) in enumerate(recipes.items()):
        print(f"=== [{i + 1}/{len(names)}] {name} ===", flush=True)
        if stage_module(recipe.kind) is None:
            print(f"[{name}] not implemented yet ({STAGE_MODULES[recipe.kind][1]}): skipped", flush=True)
            missing.append(name)
            continue
        rc = run_stage(recipe_dir / f"{name}.yaml", overrides)
        if rc:
            print(f"pipeline stopped: {name} failed (exit {rc})", file=sys.stderr)
            return rc
    if missing:
        print(f"pipeline done, except the stages not implemented yet: {', '.join(missing)}")
    else:
        print(f"pipeline complete: {', '.join(names)}")
    return 0
