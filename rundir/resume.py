"""Which recipe a checkpoint was trained with, and the rule for continuing it.

A stage may resume a checkpoint only when the checkpoint was written under the same *training recipe*:
everything that changes what is trained (model, tokenizer, optimizer, schedule, steps, batch,
parallelism, data, seed, init_from), not what only records or places it (names, description, logging
interval, checkpoint interval and retention, cluster / Slurm settings). A stage that continues its own
run's previous stage (pretrain-stage2 from stage 1) must agree with it on the *run recipe*: the training
recipe less the stage's own name, mixture and starting point.

Otherwise the stage refuses, naming what changed, unless the user chose: `--fresh` (set the old stage
directory aside and start over), a new run directory (`run_name=...`), or `--continue` (continue the
checkpoint with the new recipe; the manifest records it as a continuation of the old hash). The stage's
own checkpoints must also come from the same *inputs* (the manifests of the data and of the stage or model
it started from): a rebuilt input is refused the same way. `check_checkpoint` is that rule, for nanotron
and TRL stages alike.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from recipes.loader import RecipeError, display
from rundir import input_record, read_manifest, recipe_json, sha256_json
from rundir.checkpoints import read_marker

NOT_TRAINING = ("name", "run_name", "description", "log_interval", "cluster", "hf_yarn_factor", "report_to",
                "export")  # export: what `make export-nanotron` writes, never read by a run here
NOT_TRAINING_NESTED = {"checkpoints": ("interval", "keep_last")}
STAGE_OWN = ("stage", "data", "init_from")  # what may differ between the stages of one run
RESUME_MODES = ("refuse", "fresh", "continue")
# the end of every refusal: what the user can choose instead
CHOICES = ("start over with --fresh (make ... RESUME=fresh), use a new run directory (run_name=<name>), or "
           "continue that checkpoint under this recipe with --continue (RESUME=continue)")


def training_view(recipe: dict) -> dict:
    """The training-relevant part of a resolved recipe (as JSON, e.g. a manifest's `recipe`)."""
    view = {k: v for k, v in recipe.items() if k not in NOT_TRAINING}
    for key, dropped in NOT_TRAINING_NESTED.items():
        if isinstance(view.get(key), dict):
            view[key] = {k: v for k, v in view[key].items() if k not in dropped}
    return view


def run_view(recipe: dict) -> dict:
    return {k: v for k, v in training_view(recipe).items() if k not in STAGE_OWN}


def training_sha256(recipe) -> str:
    return sha256_json(training_view(recipe_json(recipe)))


def run_sha256(recipe) -> str:
    return sha256_json(run_view(recipe_json(recipe)))


def changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    """`key: old -> new` for every leaf that differs between two recipe views."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<unset>"), new.get(key, "<unset>")
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += changes(a, b, name + ".")
        elif a != b:
            out.append(f"{name}: {_short(a)} -> {_short(b)}")
    return out


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def input_manifests(inputs) -> dict:
    """What a checkpoint was trained from: {input directory name: sha256 of its manifest}; stored in its
    COMPLETE marker as `inputs`."""
    return {Path(p).name: input_record(p)["manifest_sha256"] for p in inputs}


def check_checkpoint(r, ckpt: Path, stage_path: Path, mode: str, inputs, own: bool = True) -> Optional[dict]:
    """May `ckpt` be continued by recipe `r`? None when it was trained under the same training recipe (for
    the stage's own checkpoints, `own`, also from the same `inputs`); with mode "continue", what it
    continues (recorded in the manifest as `continued_from`); else RecipeError naming what changed.
    `stage_path` is the directory whose manifest holds the recipe that wrote `ckpt`. Reads only."""
    marker = read_marker(ckpt) or {}
    key, digest, view = (("training_sha256", training_sha256, training_view) if own else
                         ("run_sha256", run_sha256, run_view))
    old_sha = marker.get(key)
    where = display(stage_path)
    if old_sha == digest(r):
        old_inputs, now = marker.get("inputs", {}), input_manifests(inputs)
        rebuilt = [name for name in now if old_inputs.get(name) != now[name]]
        if not own or not rebuilt:
            return None
        if mode == "continue":
            return {"inputs": old_inputs, "checkpoint": str(ckpt), "changes": [f"{n} rebuilt" for n in rebuilt]}
        raise RecipeError(r.file_of(), "", f"{where} holds checkpoint {ckpt.name} trained from inputs that have "
                          f"changed since ({' and '.join(rebuilt)} rebuilt): {CHOICES}")
    old = (read_manifest(stage_path) or {}).get("recipe")
    known = old is not None and sha256_json(view(old)) == old_sha
    diff = changes(view(old), view(recipe_json(r))) if known else ["the recipe that wrote it is not recorded"]
    if mode == "continue":
        return {key: old_sha, "checkpoint": str(ckpt), "changes": diff}
    kind = "a different training recipe" if own else f"{Path(stage_path).name}, under a different run recipe"
    raise RecipeError(r.file_of(), "", f"{where} holds checkpoint {ckpt.name} of {kind} ({'; '.join(diff[:4])}"
                      f"{'; ...' if len(diff) > 4 else ''}): {CHOICES}")
