"""Which recipe a checkpoint was trained with, and the rule for continuing it.

A stage may resume a checkpoint only when the checkpoint was written under the same *training recipe*:
everything that changes what is trained (model, tokenizer, optimizer, schedule, steps, batch,
parallelism, data, seed, init_from), not what only records or places it (names, description, logging
interval, checkpoint interval and retention, cluster / Slurm settings). A stage that continues its own
run's previous stage (pretrain-stage2 from stage 1) must agree with it on the *run recipe*: the training
recipe less the stage's own name, mixture and starting point.

Otherwise the stage refuses, naming what changed, unless the user chose: `--fresh` (set the old stage
directory aside and start over), a new run directory (`run_name=...`), or `--continue` (continue the
checkpoint with the new recipe; the manifest records it as a continuation of the old hash).
"""
from __future__ import annotations

from rundir import recipe_json, sha256_json

NOT_TRAINING = ("name", "run_name", "description", "log_interval", "cluster", "hf_yarn_factor")
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
