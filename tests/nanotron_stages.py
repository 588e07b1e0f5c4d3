"""Helpers for the tests that run the tiny nanotron stages (CPU, gloo, 2 processes): a short run, a stage
runner, per-step losses. The completed run itself is the session fixture `chain` (tests/conftest.py)."""
import json
import os
import subprocess
import sys

from conftest import REPO

# A short version of the tiny run: stages 1 / 2 / 3 = steps 1-10 / 11-13 / 14-16, checkpoints every 4 steps.
RUN = ["steps.train_steps=16", "steps.stage_starts.pretrain-stage1=1", "steps.stage_starts.pretrain-stage2=11",
       "steps.stage_starts.pretrain-stage3=14", "checkpoints.interval=4", "lr_schedule.warmup_steps=3"]
LC = ["steps.train_steps=4", "lr_schedule.warmup_steps=1", "lr_schedule.decay_start=1", "lr_schedule.decay_steps=3",
      "checkpoints.interval=2"]
MID_FAST = ["max_steps=8", "save_steps=0.25"]  # a short mid-training: 8 steps, a checkpoint every 2


def records(path):
    """The records of a jsonl file."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def stage(runs, name, *overrides, check=True):
    env = dict(os.environ, SMOLLM3_RUNS=str(runs))
    out = subprocess.run([sys.executable, "-m", "pipeline", "run", f"recipes/tiny/{name}.yaml", *overrides],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out


def descendants(pid):
    """pid and every process below it (torchrun's workers run in sessions of their own)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def losses(stage_dir):
    """{step: record} of the stage's one loss log (losses.jsonl, written by the logging rank alone)."""
    assert not list(stage_dir.glob("losses.rank*.jsonl")), "one loss log per stage, not one per rank"
    by_step = {}
    f = stage_dir / "losses.jsonl"
    for line in f.read_text().splitlines() if f.is_file() else []:
        e = json.loads(line)
        by_step[e["step"]] = e
    return by_step
