"""`python -m eval trajectory`: your stage checkpoints beside released ones, matched by tokens seen (offline).

Two tiny random-init models stand in for your stages, two others for released revisions: once as a
--released-dir folder, once as a Hugging Face Hub cache in its real layout read with HF_HUB_OFFLINE=1.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import hub_cache

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from eval.trajectory import (  # noqa: E402
    TrajectoryError,
    match,
    released_from_dir,
    revision_tokens,
    user_checkpoints,
)

GBS = 2_359_296  # the model card's tokens per step


def _stage(run_dir: Path, stage: str, first: int, last: int, gbt: int, model=None, status="completed"):
    d = run_dir / stage
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps({"stage": stage, "status": status, "recipe": {
        "batch": {"global_batch_tokens": gbt}}, "metrics": {"first_step": first, "last_step": last}}))
    if model is not None:
        shutil.copytree(model, d / "hf")
    else:
        (d / "hf").mkdir()
        (d / "hf" / "config.json").write_text("{}")


def test_revision_tokens_by_hand():
    assert revision_tokens("stage1-step-40000") == 94_371_840_000  # 40,000 x 2,359,296: "94.4B" in the card
    assert revision_tokens("stage2-step-3480000") == 8_210_350_080_000
    assert revision_tokens("main") is None and revision_tokens("stage1-step-x") is None


def test_user_tokens_and_matching_by_hand(tmp_path):
    run = tmp_path / "run"
    _stage(run, "pretrain-stage1", 1, 10, 4096)  # 10 x 4,096 = 40,960
    _stage(run, "pretrain-stage2", 11, 15, 4096)  # + 5 x 4,096 = 61,440
    _stage(run, "pretrain-stage3", 16, 20, 4096, status="failed")  # not completed: neither counted nor listed
    _stage(run, "longctx-32k", 16, 17, 8192)  # + 2 x 8,192 = 77,824
    user = user_checkpoints(run)
    assert [(u["label"], u["tokens"]) for u in user] == [("pretrain-stage1", 40_960), ("pretrain-stage2", 61_440),
                                                         ("longctx-32k", 77_824)]
    released = [{"label": "a", "tokens": 40_000}, {"label": "b", "tokens": 65_000}, {"label": "c", "tokens": 100_000}]
    assert [(u["label"], r["label"]) for u, r in match(user, released)] == \
        [("pretrain-stage1", "a"), ("pretrain-stage2", "b"), ("longctx-32k", "b")]
    tie = [{"label": "x", "tokens": 50_000}]
    assert match(tie, [{"label": "late", "tokens": 60_000}, {"label": "early", "tokens": 40_000}])[0][1]["label"] \
        == "early"


def test_released_mapping_errors(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    mapping = tmp_path / "map.yaml"
    mapping.write_text("lc-step-4000: {path: m, tokens: 123}\n")
    assert released_from_dir(mapping) == [{"label": "lc-step-4000", "path": str(tmp_path / "m"), "tokens": 123}]
    mapping.write_text("lc-step-4000: m\n")
    with pytest.raises(TrajectoryError, match="give tokens"):
        released_from_dir(mapping)
    with pytest.raises(TrajectoryError, match="not found"):
        released_from_dir(tmp_path / "nope")


def _cli(*args, env=None):
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "eval", "trajectory", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def _results(folder: Path) -> dict:
    [f] = (folder / "results").glob("results_*.json")
    return json.loads(f.read_text())["results"]


@pytest.mark.slow
def test_trajectory_end_to_end(tmp_path):
    from tests.eval_fixtures import make_tiny_model

    models = [make_tiny_model(tmp_path / "models" / f"m{i}", seed=i) for i in range(4)]
    run = tmp_path / "runs" / "tiny"
    _stage(run, "pretrain-stage1", 1, 1, GBS, models[0])  # 1 step: the tokens of stage1-step-1
    _stage(run, "pretrain-stage2", 2, 3, GBS, models[1])  # 3 steps: nearer step 4 than step 1
    released = tmp_path / "released"
    for rev, m in (("stage1-step-1", models[2]), ("stage2-step-4", models[3])):
        shutil.copytree(m, released / rev)
    out = tmp_path / "traj"
    proc = _cli(run, "--suite", "mc", "--max-samples", "8", "--released-dir", released, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "trajectory.json").read_text())
    pairs = [(r["stage"], r["tokens"], r["revision"], r["released_tokens"]) for r in data["rows"]]
    assert pairs == [("pretrain-stage1", GBS, "stage1-step-1", GBS), ("pretrain-stage2", 3 * GBS, "stage2-step-4",
                                                                      4 * GBS)]
    for r in data["rows"]:  # the values are lighteval's own, from each checkpoint's results file
        mine, theirs = _results(out / "yours" / r["stage"]), _results(out / "released" / r["revision"])
        assert (r["task"], r["metric"]) == ("mc_cloze|0", "acc")
        assert r["yours"] == mine["mc_cloze|0"]["acc"] and r["released"] == theirs["mc_cloze|0"]["acc"]
        assert r["yours_stderr"] == mine["mc_cloze|0"]["acc_stderr"]
        assert r["delta"] == pytest.approx(r["yours"] - r["released"])
        assert r["verdict"] in ("ahead", "behind", "level")
    md = (out / "trajectory.md").read_text()
    assert "| pretrain-stage2 | 7,077,888 | stage2-step-4 | 9,437,184 | mc_cloze\\|0 | acc |" in md
    assert (out / "trajectory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The same revisions in a Hub cache (models--owner--name/refs/<revision> -> snapshots/<commit>/), offline.
    cache = tmp_path / "hub"
    for i, rev in enumerate(("stage1-step-1", "stage2-step-4")):
        hub_cache(cache, "HuggingFaceTB/SmolLM3-3B-checkpoints", released / rev, f"{i + 1:040x}", refs=(rev,))
    proc = _cli(run, "--suite", "mc", "--max-samples", "8", "--out", out, env={"HF_HUB_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    hub = json.loads((out / "trajectory.json").read_text())
    assert [r["revision"] for r in hub["rows"]] == ["stage1-step-1", "stage2-step-4"]
    assert [Path(r["path"]).parent.name for r in hub["released"]] == ["snapshots", "snapshots"]
    assert hub["rows"] == data["rows"]  # results reused from the first call, matched the same way
