"""The launchers on this machine: nanotron stages under torchrun, TRL stages under accelerate (Slurm jobs:
pipeline/slurm.py, which builds on the pieces here).

Nanotron stages (pretraining, long context): `torchrun --standalone --nproc_per_node <dp x tp x pp>` runs
`python -m pipeline run <recipe>` in every rank (CPU with gloo for the tiny recipe, GPUs with NCCL otherwise),
after the launcher's checks (pretrain.train_checks.prepare) in this process.

TRL stages (mid-training, SFT, APO): accelerate, DeepSpeed ZeRO-3 on GPUs, as the authors did
(huggingface/alignment-handbook `recipes/accelerate_configs/zero3.yaml` @ 925acdf: bf16, `zero3_init_flag: true`,
8 processes per node):
- one process (the tiny recipe on a CPU): the stage runs in this process, no accelerate;
- several processes: `accelerate launch --config_file runs/<run>/<stage>/accelerate.yaml -m pipeline run
  <recipe>` (on a CPU cluster, plain data parallelism over gloo: see accelerate_config).

Usage:
  python -m pipeline launch recipes/tiny/pretrain-stage1.yaml [key=value ...]
  python -m pipeline launch recipes/tiny/midtrain.yaml resources.gpus_per_node=2
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.kinds import TRL_KINDS, stage_module
from pretrain.train_checks import VERIFIED_ENV
from pretrain.train_checks import prepare as prepare_stage
from recipes.derive import derived
from recipes.loader import RecipeError, display
from recipes.schema import NanotronStage
from rundir import set_aside, stage_dir


def stage_args(recipe_path, overrides, resume: str = "refuse") -> list[str]:
    """What every rank runs. --fresh is applied by the launcher (pipeline.launch.prepare) before the ranks
    start, so only --continue travels to them."""
    return ["-m", "pipeline", "run", str(recipe_path), *overrides, *(["--continue"] if resume == "continue" else [])]


def torchrun_command(r: NanotronStage, recipe_path, overrides, resume: str = "refuse") -> list[str]:
    torchrun = Path(sys.executable).with_name("torchrun")
    return [str(torchrun), "--standalone", "--nnodes", "1", "--nproc_per_node", str(derived(r).gpus),
            *stage_args(recipe_path, overrides, resume)]


def prepare(r, recipe_path, resume: str = "refuse") -> int:
    """The launching process's part: every input checked and the resume rule applied, before any rank starts
    (pretrain.train_checks.prepare). Exit 0: go; bad input raises RecipeError (one line, exit 2)."""
    prepare_stage(_nanotron_stage(r, recipe_path), resume)
    return 0


def _nanotron_stage(r, recipe_path) -> NanotronStage:
    if not isinstance(r, NanotronStage):
        raise RecipeError(display(recipe_path), "kind", f"must be pretrain or longctx to launch (got {r.kind!r})")
    return r


def launch(r, recipe_path, overrides=(), dry_run: bool = False, resume: str = "refuse") -> int:
    """Start a stage the runner resolved (`r`, from `recipe_path` + `overrides`, which its processes resolve
    again) on this machine. A nanotron stage: under torchrun, after every check of pretrain.train_checks in this
    process. A TRL stage: launch_trl. (Slurm: pipeline/slurm.py.)"""
    if r.kind in TRL_KINDS:
        return launch_trl(r, recipe_path, overrides, dry_run=dry_run, resume=resume)
    r = _nanotron_stage(r, recipe_path)
    cmd = torchrun_command(r, recipe_path, overrides, resume)
    if not dry_run:
        prepare_stage(r, resume)
    print(" ".join(shlex.quote(c) for c in cmd), flush=True)
    if dry_run:
        return 0
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), **{VERIFIED_ENV: "1"})
    return subprocess.call(cmd, env=env)


# ------------------------------------------------------------------ TRL stages: accelerate + DeepSpeed ZeRO-3
def accelerate_config(r) -> dict:
    """The accelerate config of the stage: DeepSpeed ZeRO-3 with the recipe's precision and process counts; on
    a CPU cluster (`cluster.gpu: cpu`), plain data parallelism over gloo: accelerate's own MULTI_CPU type starts
    its processes through mpirun, so the config names its torchrun launcher (MULTI_GPU) and the stage's
    TrainingArguments(use_cpu=True) make each process a MULTI_CPU / gloo rank."""
    d = derived(r)
    if r.cluster.gpu == "cpu":
        return {"compute_environment": "LOCAL_MACHINE", "debug": False, "distributed_type": "MULTI_GPU",
                "downcast_bf16": "no", "machine_rank": 0, "main_training_function": "main",
                "mixed_precision": "no", "num_machines": d.nodes, "num_processes": d.gpus,
                "rdzv_backend": "static", "same_network": True, "use_cpu": False}
    return {
        "compute_environment": "LOCAL_MACHINE",
        "debug": False,
        "deepspeed_config": {"deepspeed_multinode_launcher": "standard", "offload_optimizer_device": "none",
                             "offload_param_device": "none", "zero3_init_flag": True,
                             "zero3_save_16bit_model": True, "zero_stage": 3},
        "distributed_type": "DEEPSPEED",
        "downcast_bf16": "no",
        "machine_rank": 0,
        "main_training_function": "main",
        "mixed_precision": "bf16" if r.bf16 else "no",
        "num_machines": d.nodes,
        "num_processes": d.gpus,
        "rdzv_backend": "static",
        "same_network": True,
        "use_cpu": False,
    }


def write_config(r) -> Path:
    path = stage_dir(r.run, r.stage) / "accelerate.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(accelerate_config(r), sort_keys=False))
    return path


def accelerate_args(config: Path, recipe_path, overrides, resume: str) -> list[str]:
    """`accelerate launch` arguments after the program; --fresh is applied before the job starts."""
    flag = ["--continue"] if resume == "continue" else []
    return ["--config_file", str(config), "-m", "pipeline", "run", str(recipe_path), *overrides, *flag]


def launch_trl(r, recipe_path, overrides, *, dry_run: bool, resume: str) -> int:
    """Start a TRL stage on this machine: one process runs in place; several run under `accelerate launch`."""
    d = derived(r)
    if d.gpus == 1:
        if dry_run:
            print(f"{r.stage}: one process, run in place: python -m pipeline run {recipe_path}")
            return 0
        stage_module(r.kind).run(r, resume)
        return 0
    if resume == "fresh" and not dry_run:
        set_aside(stage_dir(r.run, r.stage))
        resume = "refuse"
    config = write_config(r).resolve()
    what = "CPU processes, gloo" if r.cluster.gpu == "cpu" else "GPUs, DeepSpeed ZeRO-3"
    print(f"wrote {config} ({d.nodes} nodes x {d.gpus // d.nodes} {what})")
    cmd = [str(Path(sys.executable)), "-m", "accelerate.commands.launch",
           *accelerate_args(config, recipe_path, overrides, resume)]
    print(" ".join(shlex.quote(c) for c in cmd), flush=True)
    return 0 if dry_run else subprocess.call(cmd, env=dict(os.environ))
