"""Shared test helpers: the repository root, a CLI runner, a scratch copy of the recipes."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def run_cli(*args, cwd=REPO, timeout=120):
    """Run `python -m <args>` with the repository on PYTHONPATH; returns the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def recipes_copy(tmp_path):
    """A writable copy of recipes/ in an empty working directory (so runs/ would appear there)."""
    shutil.copytree(REPO / "recipes", tmp_path / "recipes", ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return tmp_path


@pytest.fixture(scope="session")
def data_runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    from tests.nanotron_stages import stage

    stage(runs, "data")
    return runs


@pytest.fixture(scope="session")
def chain(data_runs):
    """The three pretraining stages and both long-context stages of the short tiny run, one after the other
    (shared by every test module that needs a completed run)."""
    from tests.nanotron_stages import LC, RUN, stage

    for s in ("pretrain-stage1", "pretrain-stage2", "pretrain-stage3"):
        stage(data_runs, s, *RUN)
    stage(data_runs, "longctx-32k", *LC)
    stage(data_runs, "longctx-64k", *LC)
    return data_runs / "tiny"


@pytest.fixture(scope="session")
def midtrain_runs(chain, tmp_path_factory):
    """A runs/ folder with the data, longctx-64k and a short mid-training (tests.nanotron_stages.MID_FAST)."""
    from tests.nanotron_stages import MID_FAST, stage

    runs = tmp_path_factory.mktemp("mid") / "runs"
    for name in ("data", "longctx-64k"):
        shutil.copytree(chain / name, runs / "tiny" / name)
    stage(runs, "midtrain", *MID_FAST)
    return runs


@pytest.fixture(scope="session")
def sft_runs(midtrain_runs, chain, tmp_path_factory):
    """A runs/ folder with the data, pretrain-stage1, the short mid-training, synth (30 prompts, short answers)
    and the tiny recipe's SFT, shared by the SFT, APO and merge tests."""
    from tests.nanotron_stages import SFT, SYNTH, stage

    runs = tmp_path_factory.mktemp("sft") / "runs"
    for name in ("data", "midtrain"):
        shutil.copytree(midtrain_runs / "tiny" / name, runs / "tiny" / name)
    shutil.copytree(chain / "pretrain-stage1", runs / "tiny" / "pretrain-stage1")
    stage(runs, "synth", *SYNTH)
    stage(runs, "sft", *SFT)
    return runs


@pytest.fixture(scope="session")
def apo_runs(sft_runs, tmp_path_factory):
    """sft_runs plus `make prefs` (30 generated pairs, tests.nanotron_stages.PREFS) and the tiny recipe's APO."""
    from tests.nanotron_stages import PREFS, stage

    runs = tmp_path_factory.mktemp("apo") / "runs"
    for name in ("data", "pretrain-stage1", "midtrain", "synth", "sft"):
        shutil.copytree(sft_runs / "tiny" / name, runs / "tiny" / name)
    stage(runs, "prefs", *PREFS)
    stage(runs, "apo")
    return runs
