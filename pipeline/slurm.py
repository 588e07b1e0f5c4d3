"""Stages as Slurm jobs: one sbatch script per stage, submitted alone (`python -m pipeline launch ... --launcher
slurm`) or as the whole pipeline, one job per stage that is not complete, each after the jobs of its inputs
(`python -m pipeline all RECIPE --launcher slurm`, pipeline/jobs.py).

A stage's job, by kind:
- nanotron (pretraining, long context): the launcher's checks once (`python -m pipeline prepare`), then one
  torchrun per node through srun with a c10d rendezvous on the first node, as the authors' launch.slurm did;
- TRL in several processes: one `accelerate launch` per node through srun (`python -m pipeline
  accelerate-node`, which reads the node's rank from Slurm: no command line is built inside a shell string);
- every other stage (data, synth, prefs, merge, eval, a one-process TRL stage): `python -m pipeline run`.
  A data stage with `executor.kind: slurm` is datatrove's own: the submitting process runs it, so that
  datatrove's SlurmPipelineExecutor submits each source's steps as Slurm jobs, and the stage's job, after them,
  only verifies and records their outputs (`datatrove_jobs`).
The recipe path and every override reach the job as separate, shell-quoted arguments, so values with spaces,
braces, quotes or `=` arrive unchanged. A CPU cluster (`cluster.gpu: cpu`) asks for no GPUs.

Usage: python -m pipeline launch recipes/tiny/pretrain-stage1.yaml cluster.gpus_per_node=1 --launcher slurm
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.kinds import NANOTRON_KINDS, TRL_KINDS
from pipeline.launch import accelerate_args, stage_args, write_config
from pretrain.data.stage import VERIFY_ONLY_ENV
from pretrain.train_checks import VERIFIED_ENV, check_supported
from pretrain.train_checks import prepare as prepare_stage
from recipes.derive import derived
from recipes.loader import RecipeError, display
from rundir import REPO, read_manifest, runs_root, set_aside, stage_dir

PY = shlex.quote(str(Path(sys.executable)))


def quoted(args) -> str:
    return " ".join(shlex.quote(str(a)) for a in args)


def layout(r, recipe_path) -> tuple[int, int]:
    """(nodes, processes per node) of the stage's job."""
    if r.kind in NANOTRON_KINDS:
        d = derived(r)
        per_node = min(r.cluster.gpus_per_node, d.gpus)
        if d.gpus % per_node:
            raise RecipeError(display(recipe_path), "parallelism", f"dp x tp x pp x cp ({d.gpus}) must be a multiple "
                              f"of cluster.gpus_per_node ({r.cluster.gpus_per_node}) to fill whole nodes")
        return d.gpus // per_node, per_node
    if r.kind in TRL_KINDS:
        d = derived(r)
        return d.nodes, d.gpus // d.nodes
    return 1, 1


def sbatch_header(r, nodes: int, per_node: int) -> list[str]:
    """The #SBATCH lines of a stage's job: one task per node, the recipe's cluster section, logs in the stage
    directory (slurm-<job id>.out)."""
    c, cpu = r.cluster, r.cluster.gpu == "cpu"
    lines = ["#!/bin/bash",
             "# shellcheck disable=SC2016  # the stage's arguments are single-quoted on purpose: passed as written",
             f"#SBATCH --job-name={r.run}-{r.stage}",
             f"#SBATCH --nodes={nodes}",
             "#SBATCH --ntasks-per-node=1",
             f"#SBATCH --cpus-per-task={c.cpus_per_task}",
             f"#SBATCH --time={c.time_limit}",
             f"#SBATCH --output={stage_dir(r.run, r.stage).resolve()}/slurm-%j.out"]
    if not cpu:  # a CPU partition would refuse a job asking for GPUs
        lines += [f"#SBATCH --gpus-per-node={per_node}", "#SBATCH --exclusive"]
    for flag, value in (("partition", c.partition), ("account", c.account), ("qos", c.qos),
                        ("constraint", c.constraint)):
        if value:
            lines.append(f"#SBATCH --{flag}={value}")
    lines += [f"#SBATCH {line}" for line in c.sbatch_extra]
    return lines


def stage_script(r, recipe_path, overrides=(), resume: str = "refuse") -> str:
    """The sbatch script of one stage (see the module doc)."""
    nodes, per_node = layout(r, recipe_path)
    flag = ["--continue"] if resume == "continue" else []
    lines = sbatch_header(r, nodes, per_node) + [
        "",
        f"# {r.stage} of {r.name}: {nodes} node(s) x {per_node} process(es)",
        "set -euo pipefail",
        f"cd {shlex.quote(str(REPO))}",
        f"export SMOLLM3_RUNS={shlex.quote(str(runs_root().resolve()))}",
        f"export OMP_NUM_THREADS={r.cluster.cpus_per_task if r.cluster.gpu == 'cpu' else 1}",
        'MASTER_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        "# the first node's address as Slurm knows it (NodeAddr: a node name need not resolve)",
        'MASTER_ADDR=$(scontrol show node "$MASTER_NODE" | sed -n \'s/.*NodeAddr=\\([^ ]*\\).*/\\1/p\')',
        "MASTER_PORT=${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 10000))}",
        "export MASTER_ADDR MASTER_PORT"]
    if r.kind in NANOTRON_KINDS:
        lines += ["export CUDA_DEVICE_MAX_CONNECTIONS=1",
                  "# the launcher's checks (inputs, checkpoints, resume rule) once, before any rank starts",
                  f"{PY} -m pipeline prepare {quoted([recipe_path, *overrides, *flag])}",
                  f"export {VERIFIED_ENV}=1",
                  f"srun --kill-on-bad-exit=1 {PY} -m torch.distributed.run \\",
                  f'  --nnodes "$SLURM_NNODES" --nproc_per_node {per_node} \\',
                  '  --rdzv_id "$SLURM_JOB_ID" --rdzv_backend c10d --rdzv_endpoint "$MASTER_ADDR:$MASTER_PORT" \\',
                  "  --max_restarts 0 \\",
                  f"  {quoted(stage_args(recipe_path, overrides, resume))}"]
    elif r.kind in TRL_KINDS and nodes * per_node > 1:
        config = stage_dir(r.run, r.stage).resolve() / "accelerate.yaml"
        lines += [f"# {'CPU processes over gloo' if r.cluster.gpu == 'cpu' else 'DeepSpeed ZeRO-3'}, "
                  "accelerate launch once per node",
                  f"srun --kill-on-bad-exit=1 {PY} -m pipeline accelerate-node {quoted([config, recipe_path])} \\",
                  f"  {quoted([*overrides, *flag])}"]
    else:
        if datatrove_submits(r):
            lines.append(f"export {VERIFY_ONLY_ENV}=1  # after datatrove's jobs: verify and record, submit nothing")
        lines.append(f"{PY} -m pipeline run {quoted([recipe_path, *overrides, *flag])}")
    return "\n".join(lines) + "\n"


def datatrove_submits(r) -> bool:
    return r.kind == "data" and r.executor.kind == "slurm"


def datatrove_jobs(r) -> list[str]:
    """Run a data stage with `executor.kind: slurm` here: datatrove's SlurmPipelineExecutor submits every
    source's steps (finished ones are not relaunched; jobs still queued from an earlier call are not doubled).
    The ids of the jobs its manifest records, for the stage's own job to wait for; none for other stages."""
    if not datatrove_submits(r):
        return []
    from pipeline.kinds import stage_module

    stage_module(r.kind).run(r)
    m = read_manifest(stage_dir(r.run, r.stage)) or {}
    if m.get("status") != "submitted":
        return []
    return [str(j) for j in m.get("metrics", {}).get("slurm_jobs", []) if j not in (None, -1, "-1")]


def accelerate_node_command(config, recipe_path, overrides, resume: str, env=os.environ) -> list[str]:
    """One node's `accelerate launch` in a TRL stage's job: machine rank, node count and the main node's
    address come from Slurm (SLURM_NODEID, SLURM_NNODES; MASTER_ADDR / MASTER_PORT set by the job script)."""
    import yaml

    c = yaml.safe_load(Path(config).read_text())
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", env["SLURM_NNODES"],
            "--num_processes", str(c["num_processes"]), "--machine_rank", env["SLURM_NODEID"],
            "--main_process_ip", env["MASTER_ADDR"], "--main_process_port", env["MASTER_PORT"],
            *accelerate_args(Path(config), recipe_path, overrides, resume)]


def accelerate_node(config, recipe_path, overrides, resume: str) -> int:
    return subprocess.call(accelerate_node_command(config, recipe_path, overrides, resume))


def sbatch(script: Path, after: list = ()) -> str:
    """Submit `script` (after the jobs `after` succeed); its job id."""
    if shutil.which("sbatch") is None:
        raise RecipeError(display(script), "", "sbatch not found on this machine (use --dry-run to only write the "
                                               "script, or start the local cluster: pipeline/local_slurm.sh start)")
    cmd = ["sbatch", "--parsable", *([f"--dependency=afterok:{':'.join(map(str, after))}"] if after else []),
           str(script)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RecipeError(display(script), "", f"sbatch refused it: {out.stderr.strip().splitlines()[-1:]}")
    return out.stdout.strip().split(";")[0]


def write_script(r, recipe_path, overrides=(), resume: str = "refuse", check: bool = True) -> Path:
    """Write the stage's accelerate config (multi-process TRL stages) and sbatch script; the script's path.
    `check`: refuse first what nanotron 0.4 cannot run (a dry run only shows the script)."""
    if check and r.kind in NANOTRON_KINDS:  # what the nodes have (CUDA, flash-attn): the job checks (prepare)
        check_supported(r, on_this_machine=False)
    script = stage_script(r, recipe_path, overrides, resume)
    sdir = stage_dir(r.run, r.stage)
    sdir.mkdir(parents=True, exist_ok=True)
    if r.kind in TRL_KINDS and "accelerate-node" in script:
        write_config(r)
    path = sdir / "launch.sbatch"
    path.write_text(script)
    return path


def submit_stage(r, recipe_path, overrides=(), dry_run: bool = False, resume: str = "refuse") -> int:
    """`python -m pipeline launch ... --launcher slurm`: write the stage's script (and print it with --dry-run),
    else submit it."""
    if resume == "fresh" and not dry_run:  # set the old directory aside now: the job logs into the new one
        if r.kind in NANOTRON_KINDS:
            prepare_stage(r, "fresh")
        else:
            set_aside(stage_dir(r.run, r.stage))
        resume = "refuse"
    nodes, per_node = layout(r, recipe_path)
    path = write_script(r, recipe_path, overrides, resume, check=not dry_run)
    print(f"wrote {path} ({nodes} node(s) x {per_node} {'CPU process(es)' if r.cluster.gpu == 'cpu' else 'GPU(s)'})")
    if dry_run:
        config = path.with_name("accelerate.yaml")
        print((config.read_text() + "\n" if r.kind in TRL_KINDS and config.is_file() else "") + path.read_text(),
              end="")
        return 0
    print(f"submitted job {sbatch(path, datatrove_jobs(r))}")
    return 0
