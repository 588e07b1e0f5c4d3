"""Run directories and their manifests: every stage directory explains itself.

`runs/<recipe name>/<stage>/manifest.json` holds the stage name, the resolved recipe and its sha256 (less the
cluster section: recipe_sha256), the
git commit (and whether the tree was dirty), the inputs it consumed (paths and the sha256 of their
manifests), its outputs, start and end time, status (running / completed / failed) and headline metrics.
A stage whose manifest says "completed" with the same recipe hash and inputs is skipped on the next call.
In a job of several processes only the main one (is_main_process) writes the manifest.
`wall_seconds` and `peak_rss_mib` (the peak resident memory of the process that ran the stage, from the
kernel's high-water mark, reset when the stage starts) are recorded when it ends.

Usage (inside a stage entrypoint):
    with StageRun(recipe, inputs=[prev_stage_dir]) as run:
        if run.skip: return
        ...write under run.dir...; run.metrics["loss"] = 2.1; run.outputs.append("hf")
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Optional

from recipes.loader import RecipeError, display

REPO = Path(__file__).resolve().parent.parent


def is_main_process() -> bool:
    """The process of a job that writes manifests, HF folders and logs: global rank 0 under torchrun, accelerate
    and srun (RANK), or a process started alone. The others write nothing of their own."""
    return int(os.environ.get("RANK", "0")) == 0


def runs_root() -> Path:
    return Path(os.environ.get("SMOLLM3_RUNS", "runs"))


def stage_dir(recipe_name: str, stage: str) -> Path:
    return runs_root() / recipe_name / stage


def git_info() -> dict:
    def git(*args):
        try:
            out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
            return out.stdout.strip() if out.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain",
                                                                          "--untracked-files=no"))}


def recipe_json(recipe) -> dict:
    return recipe.model_dump(mode="json")


def sha256_json(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def recipe_sha256(recipe) -> str:
    """The identity a completed stage is skipped by: the resolved recipe less its `cluster` section (where and
    how a stage is scheduled, locally or on Slurm, does not change what it computes)."""
    return sha256_json({k: v for k, v in recipe_json(recipe).items() if k != "cluster"})


def set_aside(sdir: Path) -> Optional[Path]:
    """--fresh: rename a stage directory to `<stage>.replaced-<time>` (nothing deleted); None if it is absent."""
    sdir = Path(sdir)
    if not sdir.exists():
        return None
    target = sdir.with_name(f"{sdir.name}.replaced-{time.strftime('%Y%m%dT%H%M%S')}")
    sdir.rename(target)
    print(f"[{sdir.name}] --fresh: the previous run directory is kept as {display(target)}", flush=True)
    return target


def read_manifest(path: Path) -> Optional[dict]:
    f = Path(path) / "manifest.json"
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError):
        return None


def completed_stage(run: str, stage: str, where: str, field: str, hint: str = "") -> Path:
    """The run directory of `stage`, whose manifest must say completed; else one RecipeError naming the recipe
    file and field that asked for it (`hint`: another way out, appended to the message)."""
    sdir = stage_dir(run, stage)
    m = read_manifest(sdir)
    if not m or m.get("status") != "completed":
        raise RecipeError(where, field, f"{stage} has not completed: run it first (make {stage}){hint}")
    return sdir


def is_hf_folder(folder: Path) -> bool:
    """A complete Hugging Face model folder: config.json and safetensors weights."""
    folder = Path(folder)
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def write_text_atomic(path, text: str) -> None:
    """`text` written beside `path`, then renamed over it: a reader sees the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json_atomic(path: Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def trim_step_log(path: Path, last_step: int) -> None:
    """Keep the records of a per-step jsonl log (`{"step": ...}`) up to `last_step`, the step a resumed run
    starts after: the later steps are trained, and logged, again. A line cut by a kill is dropped too."""
    path = Path(path)
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                keep.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text("".join(keep))
    os.replace(tmp, path)


def input_record(p) -> dict:
    p = Path(p)
    m = read_manifest(p) if p.is_dir() else None
    return {"path": str(p), "manifest_sha256": sha256_json(m) if m else None,
            "stage": m.get("stage") if m else None}


def reset_peak_rss() -> bool:
    """Reset this process' resident-memory high-water mark (Linux: /proc/self/clear_refs, value 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> Optional[float]:
    """This process' peak resident memory in MiB since the last reset_peak_rss (VmHWM), else since it started."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    except (ImportError, OSError):
        return None


class StageRun:
    """Context manager around one stage execution; see the module docstring."""

    def __init__(self, recipe, inputs: list = (), directory: Optional[Path] = None):
        self.recipe = recipe
        self.dir = Path(directory) if directory else stage_dir(recipe.run, recipe.stage)
        self.inputs = [input_record(p) for p in inputs]
        self.recipe_sha = recipe_sha256(recipe)
        self.outputs: list[str] = []
        self.metrics: dict = {}
        self.skip = False
        self.writes = False
        self.manifest: dict = {}

    def up_to_date(self) -> bool:
        old = read_manifest(self.dir)
        return bool(old and old.get("status") == "completed" and old.get("recipe_sha256") == self.recipe_sha
                    and [i["manifest_sha256"] for i in old.get("inputs", [])]
                    == [i["manifest_sha256"] for i in self.inputs])

    def __enter__(self) -> "StageRun":
        if self.up_to_date():
            self.skip = True
            if is_main_process():
                print(f"[{self.recipe.stage}] up to date ({self.dir}/manifest.json): skipped", flush=True)
            return self
        self.writes = is_main_process()  # in a multi-process job only the main process records the stage
        if not self.writes:
            return self
        self.dir.mkdir(parents=True, exist_ok=True)
        self.manifest = {"stage": self.recipe.stage, "kind": self.recipe.kind, "recipe_name": self.recipe.name,
                         "recipe_sha256": self.recipe_sha, "recipe": recipe_json(self.recipe), "git": git_info(),
                         "inputs": self.inputs, "outputs": [], "metrics": {}, "status": "running",
                         "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "ended_at": None}
        write_json_atomic(self.dir / "manifest.json", self.manifest)
        self._t0, self._peak_reset = time.time(), reset_peak_rss()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.skip or not self.writes:
            return False
        self.manifest.update(outputs=self.outputs, metrics=self.metrics,
                             status="completed" if exc_type is None else "failed",
                             error=None if exc_type is None else f"{exc_type.__name__}: {exc}",
                             ended_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                             wall_seconds=round(time.time() - self._t0, 1), peak_rss_mib=peak_rss_mib(),
                             peak_rss_scope="the stage" if self._peak_reset else "the process since it started")
        write_json_atomic(self.dir / "manifest.json", self.manifest)
        return False
