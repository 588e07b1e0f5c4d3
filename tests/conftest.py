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


def run_cli(*args, cwd=REPO, timeout=120, env=None):
    """Run `python -m <args>` with the repository on PYTHONPATH (and `env` added); returns the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
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
def smoke(tmp_path_factory):
    """`make smoke` killed at a random point and run again to the end, plus the report card (the drill in
    tests/smoke_drill.py). SMOLLM3_DRILL_SEED picks the kill point (random otherwise, and named in the test's
    messages); SMOLLM3_REFRESH_GOLDEN=1 runs it uninterrupted and records tests/golden/smoke_metrics.json.
    The completed run is also what the SFT, APO and merge tests read."""
    import json
    import random

    from tests import smoke_drill

    runs = tmp_path_factory.mktemp("smoke") / "runs"
    refresh = bool(os.environ.get("SMOLLM3_REFRESH_GOLDEN"))
    # refreshing: not killed (seed -1), and the uninterrupted run's metrics become the record
    seed = -1 if refresh else int(os.environ.get("SMOLLM3_DRILL_SEED") or random.SystemRandom().randrange(1_000_000))
    wall = None if refresh else json.loads(smoke_drill.GOLDEN.read_text())["wall_seconds"]
    drill = smoke_drill.run_killed(runs, runs.parent / "killed.log", seed, wall)
    if refresh:
        smoke_drill.GOLDEN.write_text(json.dumps({"wall_seconds": round(drill["first_seconds"]), "abs_tol":
                                                  smoke_drill.ABS_TOL, "metrics": smoke_drill.final_metrics(
                                                      runs / "tiny")}, indent=1, sort_keys=True) + "\n")
    golden = json.loads(smoke_drill.GOLDEN.read_text())
    return {**drill, "runs": runs, "golden": golden}


@pytest.fixture(scope="session")
def sft_runs(smoke):
    """The completed smoke run (data through merge and eval), read by the SFT tests."""
    return smoke["runs"]


@pytest.fixture(scope="session")
def apo_runs(smoke):
    """The completed smoke run, read by the APO and merge tests."""
    return smoke["runs"]


@pytest.fixture(scope="session")
def slurm():
    """The local two-node Slurm cluster (pipeline/local_slurm.sh): the one .ci/run started, else started here and
    stopped when the session ends. Its SLURM_CONF is set for the tests' processes."""
    script = str(REPO / "pipeline" / "local_slurm.sh")
    conf = os.environ.get("SLURM_CONF") or "/tmp/smollm3-slurm/slurm.conf"
    os.environ["SLURM_CONF"] = conf
    running = Path(conf).is_file() and subprocess.run([script, "check"], capture_output=True,
                                                      timeout=120).returncode == 0
    if not running:
        started = subprocess.run([script, "start"], capture_output=True, text=True, timeout=600)
        assert started.returncode == 0, started.stdout + started.stderr
    yield conf
    if not running:
        subprocess.run([script, "stop"], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The eval fixture datasets (tests/fixtures/eval_datasets/) in Hub layout; a `datasets` cache of the test
    module's own in a temp dir."""
    import datasets

    sys.path.insert(0, str(REPO / "tests" / "fixtures" / "eval_datasets"))
    from hub_layout import write_hub_layout

    saved = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = str(tmp_path_factory.mktemp("hf_datasets_cache"))
    yield write_hub_layout(tmp_path_factory.mktemp("hub"))
    datasets.config.HF_DATASETS_CACHE = saved


@pytest.fixture(autouse=True)
def _grad_mode_restored():
    """lighteval 0.13 turns autograd off for the whole process when its transformers model module is imported
    (lighteval/models/transformers/transformers_model.py: a module-level torch.set_grad_enabled(False)); a test
    that evaluates in-process must not leave later in-process training tests without gradients."""
    yield
    torch = sys.modules.get("torch")
    if torch is not None and not torch.is_grad_enabled():
        torch.set_grad_enabled(True)


def hub_cache(cache: Path, repo_id: str, source: Path, commit: str, refs=("main",)) -> Path:
    """`source`'s files as revision `commit` of model repo `repo_id` in a Hugging Face Hub cache at `cache`
    (models--owner--name/snapshots/<commit>/, refs/<ref> -> commit), for HF_HUB_OFFLINE=1 runs with
    HF_HUB_CACHE=cache. Returns the snapshot folder."""
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    for ref in refs:
        (repo_dir / "refs" / ref).write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    shutil.copytree(source, snapshot, dirs_exist_ok=True)
    return snapshot
