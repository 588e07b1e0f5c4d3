"""The tiny data stage, built once per test session in a temporary runs/ (SMOLLM3_RUNS), plus helpers.

Usage in a test module:  from tests.data_fixtures import tiny_data, cli  # noqa: F401 (fixture)
`tiny_data` is read-only for tests: copy what you want to damage (`copy_data`).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCES = ["prose", "code", "math", "reasoning"]
BUILTIN_OF = {"prose": "pydoc_topics", "code": "stdlib_code", "math": "math_word_problems",
              "reasoning": "reasoning_traces"}
_CACHE: dict = {}


def cli(*args, runs=None, cwd=REPO, timeout=300, extra_env=None):
    """`python -m <args>` in a subprocess with the repository importable and runs/ redirected."""
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    env.pop("SMOLLM3_RUNS", None)
    if runs is not None:
        env["SMOLLM3_RUNS"] = str(runs)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def build(root: Path) -> dict:
    runs = root / "runs"
    t0 = time.time()
    proc = cli("pipeline", "run", "recipes/tiny/data.yaml", runs=runs)
    seconds = time.time() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"runs": runs, "data": runs / "tiny" / "data", "stdout": proc.stdout, "stderr": proc.stderr,
            "seconds": seconds}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    if "tiny" not in _CACHE:
        _CACHE["tiny"] = build(tmp_path_factory.mktemp("tiny-data"))
    return _CACHE["tiny"]


def copy_data(tiny: dict, dst: Path) -> Path:
    """A writable copy of the built runs/ (tokenized folders, tokenizer, manifest)."""
    shutil.copytree(tiny["runs"], dst / "runs", symlinks=True)
    return dst / "runs"


# --------------------------------------------------------------- independent readers (not pretrain.*)
def read_folder(folder: Path):
    """All tokens and document ends of a tokenized folder, read with numpy from datatrove's file formats."""
    toks, ends, offset = [], [], 0
    for ds in sorted(folder.glob("*.ds")):
        size = int(open(f"{ds}.metadata").read().splitlines()[0].rsplit("|", 1)[1])
        t = np.fromfile(ds, dtype=np.uint16 if size == 2 else np.uint32).astype(np.int64)
        e = np.fromfile(f"{ds}.index", dtype=np.uint64).astype(np.int64)
        toks.append(t)
        ends.append(e + offset)
        offset += len(t)
    return np.concatenate(toks), np.concatenate(ends)


def corpus_texts(data: Path, builtin: str) -> list[str]:
    out = []
    for f in sorted((data / "_corpora" / builtin).glob("*.jsonl")):
        out += [json.loads(line)["text"] for line in f.open()]
    return out
