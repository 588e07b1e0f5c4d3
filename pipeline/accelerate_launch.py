"""Launch a TRL stage (mid-training, SFT, APO) with accelerate: DeepSpeed ZeRO-3 on GPUs, as the authors did
(huggingface/alignment-handbook `recipes/accelerate_configs/zero3.yaml` @ 925acdf: bf16, `zero3_init_flag: true`,
8 processes per node), locally or through an sbatch script for the recipe's `resources.nodes`.

- one process (the tiny recipe on a CPU): the stage runs in this process, no accelerate;
- several GPUs on one machine: `accelerate launch --config_file runs/<run>/<stage>/accelerate.yaml -m
  pipeline run <recipe>`;
- `--launcher slurm`: the same config and an sbatch script that starts `accelerate launch` once per node
  (`--machine_rank $SLURM_PROCID`, the first node as main process); `--dry-run` writes and prints both.

Usage: python -m pipeline launch recipes/smollm3-3b/midtrain.yaml --launcher slurm --dry-run
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.launch import sbatch_header
from recipes.derive import derived
from rundir import REPO, set_aside, stage_dir


def accelerate_config(r) -> dict:
    """The accelerate config of the stage: DeepSpeed ZeRO-3 with the recipe's precision and process counts."""
    d = derived(r)
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


def sbatch_script(r, config: Path, recipe_path, overrides, resume: str) -> str:
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
        from pipeline.stages import stage_module

        stage_module(r.kind).run(r, resume)
        return 0
    if resume == "fresh" and not dry_run:
        set_aside(stage_dir(r.run, r.stage))
        resume = "refuse"
    config = write_config(r).resolve()
    print(f"wrote {config} (DeepSpeed ZeRO-3, {d.nodes} nodes x {d.gpus // d.nodes} GPUs)")
    if launcher == "slurm":
        path = stage_dir(r.run, r.stage) / "launch.sbatch"
        path.write_text(sbatch_script(r, config, recipe_path, overrides, resume))
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
