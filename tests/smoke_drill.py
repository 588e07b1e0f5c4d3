"""The end-to-end drill of `make smoke` (the session fixture `smoke` in tests/conftest.py): the whole tiny
pipeline, killed with SIGKILL (its whole process tree) at a random point, run again to the end, then the
report card. Its final metrics must equal those of an uninterrupted run, recorded in
tests/golden/smoke_metrics.json by

    make golden-smoke      (an uninterrupted `python -m pipeline all recipes/tiny` in a scratch directory)

Like the golden losses, the record is machine-bound: it is refreshed when a change is meant to move the
tiny run, and its tolerances leave room for another CPU's kernels, not for a different run.
"""
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO

from tests.nanotron_stages import descendants

GOLDEN = REPO / "tests" / "golden" / "smoke_metrics.json"
ABS_TOL = 2e-3  # losses and log-probabilities (the resumed TRL stages match their uninterrupted losses to 1e-4)
# Every stage's metrics are compared, except keys that describe the machine or this call rather than the result:
# timings, how many answers a resumed generation reused, and the Trainer's `train_loss` (transformers averages
# the losses of the last call only over every step, so a resumed stage reports a smaller one).
# plus "processes": how many processes ran a stage is its layout (a Slurm run may use another), not a result
MACHINE_WORDS = {"seconds", "second", "runtime", "wall", "time", "eta", "flos", "throughput", "generated", "reused",
                 "processes"}
CALL_KEYS = {"train_loss"}
RUN = ["pipeline", "all", "recipes/tiny"]


def env(runs: Path) -> dict:
    return dict(os.environ, SMOLLM3_RUNS=str(runs), PYTHONPATH=str(REPO))


def kill_tree(pid: int) -> None:
    """SIGKILL pid and everything below it (torchrun's workers run in sessions of their own); repeated until
    nothing is left, so a process forked during the sweep is killed too."""
    for _ in range(5):
        alive = [p for p in descendants(pid) if os.path.exists(f"/proc/{p}")]
        if not alive:
            return
        for p in alive:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    elif not MACHINE_WORDS & set(re.split(r"[._|/-]", prefix)) and prefix.rsplit(".", 1)[-1] not in CALL_KEYS:
        out[prefix] = value


def final_metrics(run_dir: Path) -> dict:
    """{stage.metric.path: number} from every stage manifest of a run directory (the eval stage's holds every
    score)."""
    out = {}
    for manifest in sorted(run_dir.glob("*/manifest.json")):
        m = json.loads(manifest.read_text())
        if m.get("status") == "completed":
            _flatten(manifest.parent.name, m.get("metrics", {}), out)
    return out


def differences(got: dict, golden: dict) -> list[str]:
    """What differs: missing or extra metrics, counts not equal, values beyond ABS_TOL."""
    out = [f"missing: {k}" for k in golden if k not in got] + [f"extra: {k}" for k in got if k not in golden]
    for k in sorted(set(got) & set(golden)):
        a, b = got[k], golden[k]
        if (isinstance(b, int) and a != b) or abs(a - b) > ABS_TOL:
            out.append(f"{k}: {a} (golden {b})")
    return out


def run_killed(runs: Path, log: Path, seed: int, total_seconds) -> dict:
    """Start the pipeline, SIGKILL it at a random time within the first 90% of an uninterrupted run's wall time
    (picked by `seed`; a negative seed: not killed), run it again to the end; returns what happened."""
    at = random.Random(seed).uniform(3.0, 0.9 * total_seconds) if seed >= 0 else None
    t0 = time.time()
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", *RUN], cwd=REPO, env=env(runs), stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=at if at is not None else 1200)
            killed = False
        except subprocess.TimeoutExpired:
            kill_tree(proc.pid)
            proc.wait()
            killed = True
    first, first_seconds = log.read_text(), time.time() - t0
    started = [line.split("] ", 1)[1].strip(" =") for line in first.splitlines() if line.startswith("=== [")]
    second = subprocess.run([sys.executable, "-m", *RUN], cwd=REPO, env=env(runs), capture_output=True, text=True,
                            timeout=1200)
    report = subprocess.run([sys.executable, "-m", "pipeline", "report", "recipes/tiny"], cwd=REPO, env=env(runs),
                            capture_output=True, text=True, timeout=300)
    return {"seed": seed, "at": at and round(at, 1), "killed": killed, "killed_in": started[-1] if started else None,
            "first_seconds": first_seconds,
            "first": first, "second": second, "report": report}
