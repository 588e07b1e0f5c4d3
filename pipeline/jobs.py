"""The pipeline as a Slurm job graph, and its status.

`python -m pipeline all RECIPE --launcher slurm` (`make all RECIPE=... LAUNCHER=slurm`) submits one job per stage
that is not complete, in pipeline order, each with `--dependency=afterok:` on the jobs of the stages it reads
(its upstream stages, from the recipe's fields that name a stage: `init_from`, `teacher_from`, `stage:<name>`
datasets, ...; a nanotron stage also reads the data stage). A stage is complete when its manifest says
completed under the same recipe; a stage downstream of a submitted one is submitted too (its job skips itself
when it turns out up to date). A stage whose job is still pending or running is not submitted again: the new
jobs wait for it. When a job fails, Slurm keeps its dependents pending (reason DependencyNeverSatisfied); the
next `make all LAUNCHER=slurm` cancels those stale jobs, and the pending jobs downstream of a stage it submits
again, saying so, and submits what did not complete (the training stages resume their checkpoints). The job
ids go to runs/<run>/slurm_jobs.json. A data stage with `executor.kind: slurm` submits datatrove's own jobs from
here first; its job runs after them (pipeline/slurm.py).

`python -m pipeline status RECIPE` (`make status`): each stage's job, its Slurm state and reason, and its
manifest status.

Usage:
  python -m pipeline all recipes/tiny cluster.gpus_per_node=1 --launcher slurm
  python -m pipeline status recipes/tiny
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pipeline.kinds import NANOTRON_KINDS
from pipeline.slurm import datatrove_jobs, sbatch, write_script
from recipes.loader import load_recipe
from rundir import read_manifest, recipe_json, recipe_sha256, runs_root, stage_dir, write_json_atomic

ACTIVE = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED")
NOT_STAGE_REFERENCES = {"decay_start"}  # fields whose value may name a stage without reading its output


def upstream(name: str, recipes: dict) -> list[str]:
    """The earlier stages `name` reads: every string in its recipe equal to an earlier stage's name or to
    `stage:<name>` (fields of NOT_STAGE_REFERENCES aside); the data stage for a nanotron stage; every earlier
    stage for the eval stage."""
    earlier = list(recipes)[:list(recipes).index(name)]
    found = set()

    def walk(value, key=None):
        if key in NOT_STAGE_REFERENCES:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str):
            ref = value.removeprefix("stage:")
            if ref in earlier:
                found.add(ref)

    r = recipes[name]
    if r.kind == "eval":  # it scores the model of every stage before it that has one
        return earlier
    walk({k: v for k, v in recipe_json(r).items() if k not in ("stage", "name", "run_name")})
    if r.kind in NANOTRON_KINDS and "data" in earlier:
        found.add("data")
    return [s for s in earlier if s in found]


def complete(r) -> bool:
    m = read_manifest(stage_dir(r.run, r.stage))
    return bool(m and m.get("status") == "completed" and m.get("recipe_sha256") == recipe_sha256(r))


def job_state(job_id) -> tuple[str, str]:
    """(state, reason) of a job from `scontrol show job` ("UNKNOWN" once Slurm has forgotten it)."""
    out = subprocess.run(["scontrol", "show", "job", "-o", str(job_id)], capture_output=True, text=True)
    fields = dict(f.split("=", 1) for f in out.stdout.split() if "=" in f)
    return fields.get("JobState", "UNKNOWN"), fields.get("Reason", "")


def jobs_file(run: str) -> Path:
    return runs_root() / run / "slurm_jobs.json"


def known_jobs(run: str) -> dict:
    """{stage: job id} of the run's latest submissions (runs/<run>/slurm_jobs.json)."""
    path = jobs_file(run)
    return json.loads(path.read_text()) if path.is_file() else {}


def submit_pipeline(directory, overrides=()) -> int:
    """Submit the recipe's incomplete stages as dependent jobs (see the module doc)."""
    directory = Path(directory)
    recipes = load_recipe(directory, overrides)  # everything validated before anything is submitted
    run = next(iter(recipes.values())).run
    path, known = jobs_file(run), known_jobs(run)
    ids, submitted = {}, set()
    for name, r in recipes.items():
        deps = upstream(name, recipes)
        old = known.get(name)
        state, reason = job_state(old) if old else ("", "")
        resubmitted = [d for d in deps if d in submitted]
        if state in ACTIVE and reason != "DependencyNeverSatisfied" and not resubmitted:
            ids[name] = old
            print(f"[slurm] {name}: job {old} is {state.lower()}: kept", flush=True)
            continue
        if state in ACTIVE:  # it waits for a job that failed, or for one replaced just now: it never starts
            subprocess.run(["scancel", str(old)], check=False)
            why = (f"{reason}: an input's job failed" if reason == "DependencyNeverSatisfied"
                   else f"it waited for the job of {', '.join(resubmitted)}, submitted again")
            print(f"[slurm] {name}: cancelled job {old} ({why})", flush=True)
        if complete(r) and not resubmitted:
            print(f"[slurm] {name}: complete, not submitted", flush=True)
            continue
        script = write_script(r, directory / f"{name}.yaml", overrides)
        waits, datatrove = [d for d in deps if d in ids], datatrove_jobs(r)
        ids[name] = sbatch(script, [ids[d] for d in waits] + datatrove)
        submitted.add(name)
        known[name] = ids[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, known)
        after = [f"{d} ({ids[d]})" for d in waits] + ([f"datatrove's {len(datatrove)} jobs"] if datatrove else [])
        print(f"[slurm] {name}: job {ids[name]}" + (f" after {', '.join(after)}" if after else ""), flush=True)
    print(f"[slurm] {len(submitted)} job(s) submitted; follow them with: python -m pipeline status {directory}")
    return 0


def status(directory, overrides=()) -> int:
    """Print each stage's job, Slurm state (and reason) and manifest status."""
    recipes = load_recipe(directory, overrides)
    known = known_jobs(next(iter(recipes.values())).run)
    print(f"{'stage':<16} {'job':>8}  {'slurm state':<28} manifest")
    for name, r in recipes.items():
        job = known.get(name)
        state, reason = job_state(job) if job else ("-", "")
        m = read_manifest(stage_dir(r.run, r.stage)) or {}
        shown = f"{state} ({reason})" if reason and reason != "None" else state
        error = f": {m['error']}" if m.get("error") else ""
        print(f"{name:<16} {job or '-':>8}  {shown:<28} {m.get('status', '-')}{error}")
    return 0
