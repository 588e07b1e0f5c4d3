"""Everything a nanotron stage checks before it starts: run in the launching process, before torchrun.

- what nanotron 0.4 and this model cannot do (refused, never ignored): see `check_supported`;
- its inputs: the tokenizer (and its vocabulary against the model), every mixture source's tokenized
  folder (.ds files, their index and metadata), the checkpoint it starts from and its COMPLETE marker;
- where it starts (`plan_start`): its own latest intact checkpoint (a resume), the previous stage's (the
  same run) or its weights (a new run); damaged checkpoints are passed over with a warning, and a
  checkpoint trained under another recipe is continued only when the user says so (rundir.resume).

Bad input raises RecipeError: one line `file: field: message`, exit code 2, nothing written.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from recipes.loader import RecipeError, display
from recipes.schema import NanotronStage
from rundir import set_aside, stage_dir
from rundir.checkpoints import latest_intact, marked_checkpoints
from rundir.checkpoints import set_aside as set_aside_checkpoint
from rundir.resume import check_checkpoint

VERIFIED_ENV = "SMOLLM3_CHECKPOINTS_VERIFIED"  # set by the launcher once it has checked the checksums


@dataclass
class Start:
    """Where a stage starts: `resume` (weights, optimizer, schedule, step) or `init_weights` (weights only)."""

    resume: Optional[Path] = None
    init_weights: Optional[Path] = None
    inputs: list = field(default_factory=list)
    continued_from: Optional[dict] = None  # with --continue: the hash and changes of the recipe it continues
    damaged: list = field(default_factory=list)  # [(checkpoint, why)] newer than `resume`, passed over


SHAPE_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "vocab_size", "tie_word_embeddings")


def stage_inputs(r: NanotronStage) -> list[Path]:
    """What this stage consumes: the recipe's data, and the stage (or the local HF model) it starts from."""
    if r.init is not None:
        return [stage_dir(r.name, "data")] + ([Path(r.init.from_)] if Path(r.init.from_).exists() else [])
    return [stage_dir(r.name, "data")] + ([stage_dir(r.run, r.init_from)] if r.init_from else [])


def init_checkpoint(r: NanotronStage) -> Path:
    """Where `init.from` is converted to a nanotron checkpoint (pretrain.convert --to-nanotron)."""
    return stage_dir(r.run, r.stage) / "init_nanotron"


def check_supported(r: NanotronStage, on_this_machine: bool = True) -> None:
    """Recipe values this repository's nanotron 0.4 path cannot apply, refused before anything is written.
    `on_this_machine=False` (a Slurm submission from a login node): what the machine has (CUDA, flash-attn) is
    left to the job's own checks on its nodes."""
    import torch

    from pretrain.smollm3_nanotron import NO_WEIGHT_DECAY_PATTERNS

    def refuse(key, message):
        raise RecipeError(r.file_of(key), key, message)

    cuda = torch.cuda.is_available()
    if list(r.optimizer.weight_decay_exclude) != list(NO_WEIGHT_DECAY_PATTERNS):
        refuse("optimizer.weight_decay_exclude", f"only {list(NO_WEIGHT_DECAY_PATTERNS)} (the embedding) is "
               f"supported by pretrain/smollm3_nanotron.py (got {r.optimizer.weight_decay_exclude})")
    if r.parallelism.cp > 1:
        refuse("parallelism.cp", "nanotron 0.4 has no context parallelism: set parallelism.cp=1 (and raise dp), "
               f"or export the stage for the authors' nanotron (got {r.parallelism.cp})")
    if r.model.attn_implementation == "llama3_ring_attention":
        refuse("model.attn_implementation", "nanotron 0.4 has no ring attention: set flash_attention_2 (CUDA) or "
               "sdpa, or export the stage for the authors' nanotron (got llama3_ring_attention)")
    if on_this_machine and r.model.attn_implementation == "flash_attention_2" and not flash_attention_available(cuda):
        refuse("model.attn_implementation", "flash_attention_2 needs a CUDA GPU and the flash-attn package "
               "(requirements-gpu.txt): set sdpa on this machine (got flash_attention_2)")
    if r.model.attn_implementation == "flash_attention_2" and r.model.dtype != "bfloat16":
        refuse("model.attn_implementation", f"flash_attention_2 runs in bfloat16 only: set model.dtype=bfloat16 "
               f"or model.attn_implementation=sdpa (got dtype {r.model.dtype})")
    if on_this_machine and r.parallelism.tp_linear_async_communication and not cuda:
        refuse("parallelism.tp_linear_async_communication", "overlaps tensor-parallel communication on CUDA "
               "streams only: set false on a machine without CUDA (got true)")
    if r.lr_schedule.decay_style not in ("linear", "cosine"):
        refuse("lr_schedule.decay_style", "nanotron 0.4 decays linear or cosine only: choose one, or export the "
               f"stage for the authors' nanotron (got {r.lr_schedule.decay_style!r})")
    if "tensorboard" in r.report_to and importlib.util.find_spec("tensorboard") is None:
        refuse("report_to", "tensorboard is not installed (pip install tensorboard): install it or remove it "
               f"from report_to (got {r.report_to})")
    first_of_run = next(iter(r.steps.stage_starts)) == r.stage
    if r.init is not None and not first_of_run:
        refuse("init", f"{r.stage} continues its run from {list(r.steps.stage_starts)[0]}'s checkpoints; a model "
               "to start from (init.from) applies to a stage that starts a run")
    ck = r.checkpoints
    same_run = r.init is None and (r.init_from is None or r.init_from in r.steps.stage_starts)
    if ck.load_optimizer != ck.load_lr_scheduler:
        key = ("checkpoints.load_lr_scheduler" if r.file_of("checkpoints.load_lr_scheduler") == r.file_of()
               else "checkpoints.load_optimizer")  # the one the stage file or the command line set
        refuse(key, "nanotron 0.4 restores the optimizer and the LR schedule together: "
               f"give both the same value (got {ck.load_optimizer} / {ck.load_lr_scheduler})")
    if ck.load_optimizer != same_run:
        what = ("continues its run: the optimizer and schedule are restored" if same_run else
                f"starts a new run from the weights of {r.init.from_ if r.init else r.init_from}: optimizer and "
                "schedule start fresh")
        refuse("checkpoints.load_optimizer", f"this stage {what} here, so set checkpoints.load_optimizer and "
               f"checkpoints.load_lr_scheduler to {str(same_run).lower()} (got {str(ck.load_optimizer).lower()})")


def flash_attention_available(cuda: bool) -> bool:
    """CUDA and the real flash-attn package (not nanotron_compat's import stub)."""
    if not cuda:
        return False
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return not getattr(sys.modules["flash_attn"], "__nanotron_compat_stub__", False)


def token_ids(r: NanotronStage) -> tuple[dict, Optional[str]]:
    """bos / eos / pad ids (the recipe's, else the tokenizer's) and a local tokenizer path (a Hub tokenizer's:
    its folder in the Hub cache), which the stage's hf/ folder ships."""
    from pretrain.data.tokenizer import hub_folder, tokenizer_dir

    tok = r.tokenizer
    ids = {"bos": tok.bos_token_id, "eos": tok.eos_token_id, "pad": tok.pad_token_id}
    local = hub_folder(r) if tok.kind == "hub" else tokenizer_dir(r)
    if not (local / "tokenizer.json").is_file() and not local.is_file():
        raise RecipeError(display(local), "tokenizer.name_or_path", "no tokenizer here: run `make data` first")
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(str(local))
    if len(t) != r.model.vocab_size:
        raise RecipeError(display(local), "model.vocab_size",
                          f"tokenizer has {len(t)} tokens but the model {r.model.vocab_size}")
    for key, value in (("bos", t.bos_token_id), ("eos", t.eos_token_id), ("pad", t.pad_token_id)):
        ids[key] = ids[key] if ids[key] is not None else value
    return ids, str(local)


def _usable(ckpt_dir: Path, what: str) -> tuple[Optional[Path], list]:
    """The newest intact checkpoint and the damaged ones newer than it (verified newest first, up to the first
    intact one); stops when only damaged ones remain."""
    if os.environ.get(VERIFIED_ENV):  # the launcher has checked it (and set damaged ones aside)
        marked = marked_checkpoints(ckpt_dir)
        latest, newer = (marked[-1] if marked else None), []
    else:
        latest, newer = latest_intact(ckpt_dir)
    if newer and latest is None:
        p, why = newer[-1]
        raise RecipeError(display(p), "", f"damaged checkpoint of {what} ({why}) and no earlier intact one to "
                                          "fall back to: start over with --fresh (make ... RESUME=fresh)")
    return latest, newer


def plan_start(r: NanotronStage, mode: str = "refuse") -> Start:
    """Where this stage starts (see the module doc). Reads only; raises RecipeError."""
    own_dir = stage_dir(r.run, r.stage) / "checkpoints"
    latest, damaged = _usable(own_dir, r.stage)
    inputs = stage_inputs(r)
    if latest is not None:
        return Start(resume=latest, inputs=inputs, damaged=damaged,
                     continued_from=check_checkpoint(r, latest, own_dir.parent, mode, inputs))
    if r.init is not None:
        return Start(init_weights=init_checkpoint(r), inputs=inputs)
    if r.init_from is None:
        return Start(inputs=inputs)
    prev = stage_dir(r.run, r.init_from)
    if not marked_checkpoints(prev / "checkpoints"):
        raise RecipeError(display(prev), "init_from", f"no complete checkpoint of {r.init_from}: run it first "
                                                      f"(make {r.init_from})")
    prev_latest, prev_damaged = _usable(prev / "checkpoints", r.init_from)
    if r.init_from in r.steps.stage_starts:  # the same run: continue it
        return Start(resume=prev_latest, inputs=inputs, damaged=prev_damaged,
                     continued_from=check_checkpoint(r, prev_latest, prev, mode, inputs, own=False))
    return Start(init_weights=prev_latest, inputs=inputs, damaged=prev_damaged)


def check_init(r: NanotronStage) -> Path:
    """The HF folder of `init.from` (a Hub id is downloaded: cluster runs), checked against the recipe's model."""
    import json

    from smollm3.hf_config import SmolLM3Config

    folder = Path(r.init.from_)
    if not folder.exists():
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(r.init.from_, revision=r.init.revision))
    if not (folder / "config.json").is_file():
        raise RecipeError(display(folder), "init.from", "not a Hugging Face model folder (no config.json)")
    try:
        theirs = SmolLM3Config.from_hf(json.loads((folder / "config.json").read_text()))
    except (ValueError, TypeError) as e:
        raise RecipeError(display(folder), "init.from", f"not a SmolLM3 model this repository can convert ({e})")
    ours = SmolLM3Config.from_recipe(r.model)
    diff = [f"{k} {getattr(theirs, k)} vs {getattr(ours, k)}" for k in SHAPE_FIELDS
            if getattr(theirs, k) != getattr(ours, k)]
    if diff:
        raise RecipeError(r.file_of("init"), "init.from", f"the model in {display(folder)} does not have the recipe's "
                          f"shape ({'; '.join(diff)})")
    return folder


def check_inputs(r: NanotronStage) -> tuple[dict, Optional[str]]:
    """What the stage reads, checked: returns (token ids, local tokenizer path)."""
    from pretrain.data.mixture import MixtureSampler

    check_supported(r)
    ids, tokenizer_path = token_ids(r)
    MixtureSampler.from_stage(r, eos_id=ids["eos"])  # opens and validates every source folder
    return ids, tokenizer_path


def preflight(r: NanotronStage, mode: str = "refuse") -> tuple[Start, dict, Optional[str]]:
    """Every check of the module doc, reading only; returns (start, token ids, local tokenizer path)."""
    ids, tokenizer_path = check_inputs(r)
    return plan_start(r, mode), ids, tokenizer_path


def prepare(r: NanotronStage, mode: str = "refuse") -> Start:
    """The launcher's preflight, and what the user chose: with --fresh the stage directory is set aside
    (renamed, nothing deleted) before the stage starts over; damaged checkpoints newer than the one resumed
    are renamed `<step>.damaged`, with a warning."""
    check_inputs(r)  # bad input is refused before anything is moved
    source = check_init(r) if r.init is not None else None
    if mode == "fresh":
        set_aside(stage_dir(r.run, r.stage))
    start = plan_start(r, "continue" if mode == "continue" else "refuse")
    if source is not None and start.resume is None and not (init_checkpoint(r) / "model_config.json").is_file():
        from pretrain.convert import convert

        print(f"[{r.stage}] converting {source} to a nanotron checkpoint ({display(init_checkpoint(r))})", flush=True)
        convert(source, init_checkpoint(r), to_nanotron=True, overwrite=True)
    for p, why in start.damaged:
        kept = set_aside_checkpoint(p, why)
        print(f"[{r.stage}] warning: checkpoint {display(p)} is damaged ({why}): set aside as {kept.name}; "
              f"resuming from {display(start.resume or start.init_weights)}", flush=True)
    start.damaged = []
    return start
