"""The runner behind `make <stage>` and `make all` / `make smoke`.

A stage module exposes `run(recipe)` (and, for the nanotron stages, `up_to_date(recipe)`); it receives a
validated recipe, so bad input has already been refused (exit 2) before anything is written under runs/.
The stage modules are imported when their stage runs (they pull in nanotron, datatrove or lighteval).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from pipeline.kinds import NANOTRON_KINDS, RESUMING_KINDS, TRL_KINDS, stage_module
from pipeline.launch import launch
from recipes.derive import derived
from recipes.loader import RecipeError, display, load_recipe, load_stage


def in_torchrun_rank() -> bool:
    return "LOCAL_RANK" in os.environ


def run_stage(path, overrides=(), resume: str = "refuse", recipe=None) -> int:
    """Validate then run one stage (`recipe`: the stage already resolved from `path` + `overrides`, else it is
    resolved here, once, and handed to the launcher). Nanotron stages are started under torchrun
    (pipeline.launch) unless this process already is a torchrun rank; `resume` is refuse (the default: continue
    only checkpoints of the same training recipe), fresh or continue (see rundir.resume)."""
    recipe = recipe if recipe is not None else load_stage(path, overrides)
    module = stage_module(recipe.kind)
    if resume != "refuse" and recipe.kind not in RESUMING_KINDS:
        raise RecipeError(display(path), "", f"--{resume} applies to stages that resume checkpoints "
                                             f"({', '.join(RESUMING_KINDS)}), not to a {recipe.kind} stage")
    t0 = time.time()
    if recipe.kind in TRL_KINDS and not in_torchrun_rank() and derived(recipe).gpus > 1:
        rc = launch(recipe, path, overrides, resume=resume)
    elif recipe.kind in NANOTRON_KINDS and not in_torchrun_rank():
        if resume != "fresh" and module.up_to_date(recipe):
            print(f"[{recipe.stage}] up to date: skipped", flush=True)
            return 0
        rc = launch(recipe, path, overrides, resume=resume)
    elif recipe.kind in RESUMING_KINDS:
        module.run(recipe, resume)
        rc = 0
    else:
        module.run(recipe)
        rc = 0
    if not in_torchrun_rank() and rc == 0:
        print(f"[{recipe.stage}] done in {time.time() - t0:.1f}s", flush=True)
    return rc


def run_pipeline(directory, overrides=()) -> int:
    """Every stage in pipeline order, each skipped when its manifest says it completed with the same recipe
    and inputs; the first failure stops the pipeline."""
    directory = Path(directory)
    recipes = load_recipe(directory, overrides)  # validate everything before running anything
    names = list(recipes)
    t0 = time.time()
    for i, name in enumerate(names):
        print(f"=== [{i + 1}/{len(names)}] {name} ===", flush=True)
        rc = run_stage(directory / f"{name}.yaml", overrides, recipe=recipes[name])
        if rc:
            print(f"pipeline stopped: {name} failed (exit {rc})", file=sys.stderr)
            return rc
        elapsed = time.time() - t0
        print(f"[pipeline] {i + 1}/{len(names)} stages done, {elapsed / 60:.1f} min elapsed"
              + (f"; next: {names[i + 1]}" if i + 1 < len(names) else ""), flush=True)
    print(f"pipeline complete: {', '.join(names)} in {(time.time() - t0) / 60:.1f} min")
    return 0
