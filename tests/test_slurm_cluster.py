"""Stages as jobs on a real Slurm: the local two-node cluster (pipeline/local_slurm.sh, fixture `slurm`).

- an override with spaces, braces, quotes, `=`, `$` and backticks reaches the stage in its job unchanged (read
  back from the resolved recipe the job's manifest recorded);
- the pipeline as a job graph on a completed tiny run whose last two stages are missing: only merge and eval
  are submitted, eval after merge; merge fails (the APO checkpoints it soups set aside): one line in its
  slurm-<job>.out,
  eval stays pending with Slurm's reason, `python -m pipeline status` shows both; the input restored, the same
  command cancels the stale eval job (saying so), submits merge and eval again, and both complete;
- a TRL stage across the two nodes (accelerate launched once per node): one process per node, one manifest, one
  log line per step, the held-out figures of the one-process run within the tolerances of
  tests/test_trl_processes.py (the same two-rank layout, over the network instead of one machine).
(The whole pipeline as a job graph, with the drills: tests/test_slurm_drills.py.)
"""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import REPO

TRICKY = "description=a b {c: 'd'} \"e\" f=g $HOME `x` \\ ;"


def cli(*args, runs, timeout=300):
    env = dict(os.environ, SMOLLM3_RUNS=str(runs))
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def state(job) -> tuple[str, str]:
    from pipeline.jobs import job_state

    return job_state(job)


def wait(job, until=("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"), timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = state(job)
        if s[0] in until:
            return s
        time.sleep(2)
    raise AssertionError(f"job {job} still {state(job)} after {timeout}s")


@pytest.mark.slow
def test_an_override_reaches_the_stage_in_its_job_unchanged(slurm, tmp_path):
    runs = tmp_path / "runs"
    out = cli("launch", "recipes/tiny/data.yaml", TRICKY, "--launcher", "slurm", runs=runs)
    assert out.returncode == 0, out.stderr
    job = out.stdout.split("submitted job ")[1].split()[0]
    assert wait(job)[0] == "COMPLETED", (runs / "tiny/data" / f"slurm-{job}.out").read_text()[-2000:]
    m = json.loads((runs / "tiny/data/manifest.json").read_text())
    assert m["status"] == "completed" and m["recipe"]["description"] == TRICKY.split("=", 1)[1]


@pytest.mark.slow
def test_the_job_graph_submits_what_is_missing_and_a_failure_holds_its_dependents(slurm, smoke, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(smoke["runs"] / "tiny", runs / "tiny", symlinks=True,
                    ignore=lambda d, names: [n for n in names if n in ("merge", "eval", "slurm_jobs.json")]
                    if d.endswith("tiny") else [])
    soup, away = runs / "tiny/apo/checkpoints", runs / "tiny/apo/checkpoints.away"
    soup.rename(away)  # what merge soups: gone, so merge fails
    out = cli("all", "recipes/tiny", "--launcher", "slurm", runs=runs)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert sum("complete, not submitted" in ln for ln in lines) == 11, out.stdout
    ids = json.loads((runs / "tiny/slurm_jobs.json").read_text())
    assert sorted(ids) == ["eval", "merge"]
    assert f"[slurm] eval: job {ids['eval']} after " in out.stdout and f"merge ({ids['merge']})" in out.stdout
    assert wait(ids["merge"])[0] == "FAILED"
    log = (runs / "tiny/merge" / f"slurm-{ids['merge']}.out").read_text().strip().splitlines()
    assert len(log) == 1 and "apo" in log[0] and "Traceback" not in log[0], log
    deadline = time.time() + 60
    while state(ids["eval"]) != ("PENDING", "DependencyNeverSatisfied") and time.time() < deadline:
        time.sleep(1)
    assert state(ids["eval"]) == ("PENDING", "DependencyNeverSatisfied")
    shown = cli("status", "recipes/tiny", runs=runs).stdout
    assert f"merge            {ids['merge']:>8}  FAILED" in shown
    assert "PENDING (DependencyNeverSatisfied)" in shown and "completed" in shown

    away.rename(soup)
    again = cli("all", "recipes/tiny", "--launcher", "slurm", runs=runs)
    assert again.returncode == 0, again.stderr
    assert f"eval: cancelled job {ids['eval']} (DependencyNeverSatisfied" in again.stdout
    new = json.loads((runs / "tiny/slurm_jobs.json").read_text())
    assert new["merge"] != ids["merge"] and new["eval"] != ids["eval"]
    assert wait(new["merge"])[0] == "COMPLETED", (runs / "tiny/merge" / f"slurm-{new['merge']}.out").read_text()[-3000:]
    assert wait(new["eval"], timeout=900)[0] == "COMPLETED", \
        (runs / "tiny/eval" / f"slurm-{new['eval']}.out").read_text()[-3000:]
    for stage in ("merge", "eval"):
        assert json.loads((runs / "tiny" / stage / "manifest.json").read_text())["status"] == "completed"
    final = cli("status", "recipes/tiny", runs=runs).stdout
    assert final.count("completed") == 13 and f"eval             {new['eval']:>8}  COMPLETED" in final


@pytest.mark.slow
def test_a_trl_stage_runs_across_the_two_nodes(slurm, midtrain_runs, tmp_path):
    from tests.nanotron_stages import MID_FAST

    runs = tmp_path / "runs"
    for name in ("data", "longctx-64k"):
        shutil.copytree(midtrain_runs / "tiny" / name, runs / "tiny" / name, symlinks=True)
    out = cli("launch", "recipes/tiny/midtrain.yaml", *MID_FAST, "resources.nodes=2", "resources.gpus_per_node=1",
              "--launcher", "slurm", runs=runs)
    assert out.returncode == 0, out.stderr
    assert "(2 node(s) x 1 CPU process(es))" in out.stdout, out.stdout
    job = out.stdout.split("submitted job ")[1].split()[0]
    sdir = runs / "tiny" / "midtrain"
    assert wait(job)[0] == "COMPLETED", (sdir / f"slurm-{job}.out").read_text()[-3000:]
    shown = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True).stdout
    assert "NumNodes=2 " in shown and "NodeList=n[1-2]" in shown, shown
    m = json.loads((sdir / "manifest.json").read_text())
    assert m["status"] == "completed" and m["metrics"]["processes"] == 2
    steps = [json.loads(line)["step"] for line in (sdir / "losses.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))
    one, two = json.loads((midtrain_runs / "tiny/midtrain/manifest.json").read_text())["metrics"], m["metrics"]
    assert abs(two["heldout_loss_before"] - one["heldout_loss_before"]) < 0.05, (one, two)
    assert abs(two["heldout_loss_after"] - one["heldout_loss_after"]) < 0.1, (one, two)
    assert two["heldout_loss_after"] < two["heldout_loss_before"] - 0.2
