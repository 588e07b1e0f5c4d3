"""Drills on the scheduler: the whole tiny pipeline as a Slurm job graph on the local two-node cluster
(pipeline/local_slurm.sh, fixture `slurm`), interrupted three times, each time followed by the user's command again,
`make all RECIPE=recipes/tiny LAUNCHER=slurm OVERRIDES=...`:

1. `scancel` of pretrain-stage1 (nanotron, dp=2 across n1 and n2) after its step-20 checkpoint;
2. a lost node during longctx-64k (tp=2 across the two nodes), after its step-10 checkpoint: n2's slurmd, its job
   step and the processes on it killed (`local_slurm.sh node-down n2`), then the node back (`node-up n2`);
3. `scancel` of SFT (TRL) after its first checkpoint.

The data stage runs through datatrove's own SlurmPipelineExecutor (`data:executor.kind=slurm`: datatrove's jobs,
then the stage's job that verifies them). The run must end with every final metric equal to the local
uninterrupted run's (tests/golden/smoke_metrics.json, the smoke drill's reference: the same dp layout gives the
same losses), and every nanotron stage's per-step losses equal to those of the local smoke run."""
import json
import os
import subprocess
import time

import pytest
from conftest import REPO

from pipeline.jobs import job_state
from tests import smoke_drill

OVERRIDES = "cluster.gpus_per_node=1 cluster.partition=local data:executor.kind=slurm"
NANOTRON = ("pretrain-stage1", "pretrain-stage2", "pretrain-stage3", "longctx-32k", "longctx-64k")
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL")
LOCAL_SLURM = str(REPO / "pipeline" / "local_slurm.sh")


def make_all(runs) -> str:
    """The README's command, as written; its output."""
    out = subprocess.run(["make", "all", "RECIPE=recipes/tiny", "LAUNCHER=slurm", f"OVERRIDES={OVERRIDES}"], cwd=REPO,
                         env=dict(os.environ, SMOLLM3_RUNS=str(runs)), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def job_of(run, stage) -> str:
    return json.loads((run / "slurm_jobs.json").read_text())[stage]


def steps(run, stage) -> list[dict]:
    path = run / stage / "losses.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []


def wait_for(what: str, ready, run, timeout=1200, every=1.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ready():
            return
        time.sleep(every)
    status = subprocess.run(["squeue"], capture_output=True, text=True).stdout
    jobs = (run / "slurm_jobs.json").read_text() if (run / "slurm_jobs.json").is_file() else ""
    raise AssertionError(f"not within {timeout}s: {what}\n{status}\n{jobs}")


def trl_checkpoint(run, stage) -> bool:
    return any((c / "COMPLETE").is_file() for c in (run / stage / "checkpoints").glob("checkpoint-*"))


def held(run, stage) -> bool:
    return job_state(job_of(run, stage)) == ("PENDING", "DependencyNeverSatisfied")


@pytest.mark.slow
def test_the_pipeline_survives_scancel_and_a_lost_node_with_the_golden_metrics(slurm, smoke, tmp_path):
    runs = tmp_path / "runs"
    run = runs / "tiny"
    t0 = time.time()
    first = make_all(runs)
    assert first.count("[slurm] ") == 14 and "13 job(s) submitted" in first, first
    assert f"[slurm] data: job {job_of(run, 'data')} after datatrove's " in first, first

    # 1. a nanotron stage cancelled mid-way: its dependents held; the command again resubmits from stage 1
    wait_for("pretrain-stage1 past its step-20 checkpoint", lambda: len(steps(run, "pretrain-stage1")) >= 26, run)
    cancelled = job_of(run, "pretrain-stage1")
    subprocess.run(["scancel", cancelled], check=True)
    wait_for("pretrain-stage2 held", lambda: held(run, "pretrain-stage2"), run, timeout=120)
    assert job_state(cancelled)[0] == "CANCELLED"
    again = make_all(runs)
    assert "[slurm] data: complete, not submitted" in again, again
    assert "pretrain-stage2: cancelled job" in again and "12 job(s) submitted" in again, again
    assert job_of(run, "pretrain-stage1") != cancelled

    # 2. a node lost during the two-node long-context stage
    wait_for("longctx-64k past its step-10 checkpoint", lambda: len(steps(run, "longctx-64k")) >= 13, run)
    lost = job_of(run, "longctx-64k")
    try:
        subprocess.run([LOCAL_SLURM, "node-down", "n2"], check=True, capture_output=True, timeout=60)
        # Slurm requeues a batch job whose node failed, or it fails: either way it stops running
        wait_for("the job of longctx-64k stopped", lambda: job_state(lost)[0] != "RUNNING", run, timeout=300)
    finally:
        subprocess.run([LOCAL_SLURM, "node-up", "n2"], check=True, capture_output=True, timeout=300)
    after_loss = job_state(lost)
    again = make_all(runs)
    if after_loss[0] in ENDED:  # failed: resubmitted with what depends on it
        assert "longctx-64k: job " in again and job_of(run, "longctx-64k") != lost, (after_loss, again)
    else:  # requeued by Slurm: kept, and it resumes when it starts again
        assert f"longctx-64k: job {lost} is pending: kept" in again, (after_loss, again)

    # 3. a TRL stage cancelled mid-way, after its first checkpoint
    wait_for("sft past its first checkpoint", lambda: trl_checkpoint(run, "sft") and len(steps(run, "sft")) >= 45,
             run, timeout=1500, every=2)
    cancelled = job_of(run, "sft")
    subprocess.run(["scancel", cancelled], check=True)
    wait_for("prefs held", lambda: held(run, "prefs"), run, timeout=120)
    again = make_all(runs)
    assert "sft: job " in again and job_of(run, "sft") != cancelled, again

    wait_for("the eval stage completed", lambda: job_state(job_of(run, "eval"))[0] in ENDED, run, timeout=1800,
             every=5)
    assert job_state(job_of(run, "eval"))[0] == "COMPLETED", \
        (run / "eval" / f"slurm-{job_of(run, 'eval')}.out").read_text()
    minutes = (time.time() - t0) / 60
    status = subprocess.run(["make", "status", "RECIPE=recipes/tiny", f"OVERRIDES={OVERRIDES}"], cwd=REPO,
                            env=dict(os.environ, SMOLLM3_RUNS=str(runs)), capture_output=True, text=True).stdout
    assert status.count(" completed") == 13, status

    diffs = smoke_drill.differences(smoke_drill.final_metrics(run), smoke["golden"]["metrics"])
    assert not diffs, f"{len(diffs)} final metrics differ from the golden run's:\n" + "\n".join(diffs[:40])
    for stage in NANOTRON:  # every step once, each loss equal to the local run's
        got, local = steps(run, stage), steps(smoke["runs"] / "tiny", stage)
        assert [s["step"] for s in got] == [s["step"] for s in local], stage
        worst = max(abs(a["loss"] - b["loss"]) for a, b in zip(got, local))
        assert worst <= 1e-4, (stage, worst)
    print(f"[drill] the whole tiny pipeline on Slurm with three interruptions in {minutes:.1f} min; "
          f"longctx-64k after the lost node: {after_loss}")
