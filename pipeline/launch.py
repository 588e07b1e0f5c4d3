"""The launchers: nanotron stages under torchrun, TRL stages under accelerate, locally or through Slurm.

Nanotron stages (pretraining, long context): locally, `torchrun --standalone --nproc_per_node <dp x tp x pp>`
runs `python -m pipeline run <recipe>` in every rank (CPU with gloo for the tiny recipe, GPUs with NCCL
otherwise). With `--launcher slurm` an sbatch script for the recipe's nodes x GPUs is written next to the
stage's outputs and submitted (`--dry-run`: written only); each node runs torchrun with a c10d rendezvous on
the first node, as the authors' `launch.slurm` did (48 nodes x 8 H100, CUDA_DEVICE_MAX_CONNECTIONS=1).

Usage:
  python -m pipeline launch recipes/tiny/pretrain-stage1.yaml [key=value ...]
  python -m pipeline launch recipes/smollm3-3b/pretrain-stage1.yaml --launcher slurm --dry-run

TRL stages (mid-training, SFT, APO): accelerate, DeepSpeed ZeRO-3 on GPUs, as the authors did
(huggingface/alignment-handbook `recipes/accelerate_configs/zero3.yaml` @ 925acdf: bf16, `zero3_init_flag: true`,
8 processes per node), locally or through an sbatch script for the recipe's `resources.nodes`.

- one process (the tiny recipe on a CPU): the stage runs in this process, no accelerate;
- several GPUs on one machine: `accelerate launch --config_file runs/<run>/<stage>/accelerate.yaml -m
  pipeline run <recipe>`;
- `--launcher slurm`: the same config and an sbatch script that starts `accelerate launch` once per node
  (`--machine_rank $SLURM_PROCID`, the first node as main process); `--dry-run` writes and prints both.

Usage (TRL): python -m pipeline launch recipes/smollm3-3b/midtrain.yaml --launcher slurm --dry-run
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.kinds import TRL_KINDS, stage_module
from pretrain.train_checks import VERIFIED_ENV, check_supported
from pretrain.train_checks import prepare as prepare_stage
from recipes.derive import derived
from recipes.loader import RecipeError, display
from recipes.schema import NanotronStage
from rundir import REPO, set_aside, stage_dir


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


def sbatch_header(r, nodes: int, gpus_per_node: int) -> list[str]:
    """The #SBATCH lines of a stage's job (one task per node; logs in the stage directory)."""
    c = r.cluster
    lines = ["#!/bin/bash",
             f"#SBATCH --job-name={r.name}-{r.stage}",
             f"#SBATCH --nodes={nodes}",
             "#SBATCH --ntasks-per-node=1",
             f"#SBATCH --gpus-per-node={gpus_per_node}",
             f"#SBATCH --cpus-per-task={c.cpus_per_task}",
             f"#SBATCH --time={c.time_limit}",
             "#SBATCH --exclusive",
             f"#SBATCH --output={stage_dir(r.run, r.stage).resolve()}/slurm-%j.out"]
    if c.partition:
        lines.append(f"#SBATCH --partition={c.partition}")
    if c.qos:
        lines.append(f"#SBATCH --qos={c.qos}")
    return lines


def sbatch_script(r: NanotronStage, recipe_path, overrides, resume: str = "refuse") -> str:
    d = derived(r)
    gpn = min(r.cluster.gpus_per_node, d.gpus)
    if d.gpus % gpn:
        raise RecipeError(display(recipe_path), "parallelism", f"dp x tp x pp x cp ({d.gpus}) must be a "
                          f"multiple of cluster.gpus_per_node ({r.cluster.gpus_per_node}) to fill whole nodes")
    lines = sbatch_header(r, d.nodes, gpn)
    py = shlex.quote(str(Path(sys.executable)))
    run = " ".join(shlex.quote(a) for a in stage_args(recipe_path, overrides, resume))
    prep = " ".join(shlex.quote(a) for a in [str(recipe_path), *overrides, *(["--continue"] if resume == "continue"
                                                                             else [])])
    lines += ["",
              f"# {r.stage} of {r.name}: dp {r.parallelism.dp} x tp {r.parallelism.tp} x pp {r.parallelism.pp} "
              f"x cp {r.parallelism.cp} = {d.gpus} GPUs on {d.nodes} nodes",
              "set -euo pipefail",
              f"cd {shlex.quote(str(REPO))}",
              "export CUDA_DEVICE_MAX_CONNECTIONS=1",
              'export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
              "export MASTER_PORT=${MASTER_PORT:-29500}",
              "export OMP_NUM_THREADS=1",
              "# the launcher's checks (inputs, checkpoints, resume rule) once, before any rank starts",
              f"{py} -m pipeline prepare {prep}",
              f"export {VERIFIED_ENV}=1",
              f"srun --kill-on-bad-exit=1 {py} -m torch.distributed.run \\",
              f'  --nnodes "$SLURM_NNODES" --nproc_per_node {gpn} \\',
              '  --rdzv_id "$SLURM_JOB_ID" --rdzv_backend c10d --rdzv_endpoint "$MASTER_ADDR:$MASTER_PORT" \\',
              "  --max_restarts 0 \\",
              f"  {run}", ""]
    return "\n".join(lines)


def launch(r, recipe_path, overrides=(), launcher: str = "local", dry_run: bool = False,
           resume: str = "refuse") -> int:
    """Start a stage the runner resolved (`r`, from `recipe_path` + `overrides`, which its processes resolve
    again). A nanotron stage: locally under torchrun, after every check of pretrain.train_checks in this
    process; with Slurm, an sbatch script whose first step runs those checks (the inputs may come from jobs
    still queued when it is submitted). A TRL stage: launch_trl."""
    if r.kind in TRL_KINDS:
        return launch_trl(r, recipe_path, overrides, launcher=launcher, dry_run=dry_run, resume=resume)
    r = _nanotron_stage(r, recipe_path)
    if launcher == "slurm":
        if not dry_run:
            check_supported(r)
            if resume == "fresh":  # set the old directory aside now: the job writes its logs into the new one
                prepare_stage(r, "fresh")
        script = sbatch_script(r, recipe_path, overrides, "refuse" if resume == "fresh" else resume)
        path = stage_dir(r.run, r.stage) / "launch.sbatch"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(script)
        print(f"wrote {path} ({derived(r).nodes} nodes x {min(r.cluster.gpus_per_node, derived(r).gpus)} GPUs)")
        if dry_run:
            return 0
        if shutil.which("sbatch") is None:
            print(f"{path}: sbatch not found on this machine (use --dry-run to only write the script)", file=sys.stderr)
            return 2
        return subprocess.call(["sbatch", str(path)])
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


def trl_sbatch_script(r, config: Path, recipe_path, overrides, resume: str) -> str:
    d = derived(r)
    gpn = d.gpus // d.nodes
    py = shlex.quote(str(Path(sys.executable)))
    args = " ".join(shlex.quote(a) for a in accelerate_args(config, recipe_path, overrides, resume))
    return "\n".join(sbatch_header(r, d.nodes, gpn) + [
        "",
        f"# {r.stage} of {r.name}: {d.nodes} nodes x {gpn} GPUs, DeepSpeed ZeRO-3 (accelerate)",
        "set -euo pipefail",
        f"cd {shlex.quote(str(REPO))}",
        'export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        "export MASTER_PORT=${MASTER_PORT:-29500}",
        f"srun --kill-on-bad-exit=1 bash -c '{py} -m accelerate.commands.launch \\",
        f"  --num_machines {d.nodes} --num_processes {d.gpus} --machine_rank $SLURM_PROCID \\",
        "  --main_process_ip $MASTER_ADDR --main_process_port $MASTER_PORT \\",
        f"  {args}'", ""])


def launch_trl(r, recipe_path, overrides, *, launcher: str, dry_run: bool, resume: str) -> int:
    """Start a TRL stage (see the module doc)."""
    d = derived(r)
    if launcher == "local" and d.gpus == 1:
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
    if launcher == "slurm":
        path = stage_dir(r.run, r.stage) / "launch.sbatch"
        path.write_text(trl_sbatch_script(r, config, recipe_path, overrides, resume))
        print(f"wrote {path}")
        if dry_run:
            print(config.read_text() + "\n" + path.read_text(), end="")
            return 0
        if shutil.which("sbatch") is None:
            print(f"{path}: sbatch not found on this machine (use --dry-run to only write the script)", file=sys.stderr)
            return 2
        return subprocess.call(["sbatch", str(path)])
    cmd = [str(Path(sys.executable)), "-m", "accelerate.commands.launch",
           *accelerate_args(config, recipe_path, overrides, resume)]
    print(" ".join(shlex.quote(c) for c in cmd), flush=True)
    return 0 if dry_run else subprocess.call(cmd, env=dict(os.environ))
