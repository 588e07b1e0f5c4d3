"""Stage kind -> the module that runs it, and which kinds a launcher starts (nanotron under torchrun, TRL under
accelerate) or resume checkpoints. The bottom of pipeline/: it imports no other pipeline module."""
from __future__ import annotations

import importlib
from types import ModuleType

NANOTRON_KINDS = ("pretrain", "longctx")
TRL_KINDS = ("midtrain", "sft", "apo")
RESUMING_KINDS = NANOTRON_KINDS + TRL_KINDS  # stages that continue checkpoints: run(recipe, resume)


# Stage kind -> the module that runs it (imported when its stage runs: they pull in nanotron, datatrove, TRL, ...).
STAGE_MODULES = {"data": "pretrain.data.stage", "pretrain": "pretrain.train_stage", "longctx": "midtrain.longctx_stage",
                 "midtrain": "midtrain.stage", "synth": "posttrain.synth", "sft": "posttrain.sft_stage",
                 "prefs": "posttrain.prefs", "apo": "posttrain.apo_stage", "merge": "merge.stage",
                 "eval": "eval.stage"}


def stage_module(kind: str) -> ModuleType:
    """The module that runs a stage of this kind (every kind of recipes.loader.KINDS has one)."""
    return importlib.import_module(STAGE_MODULES[kind])
