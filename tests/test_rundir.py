"""Stage run directories: manifest contents, skip when up to date, failure status."""
import json

import pytest
from conftest import REPO

from recipes.loader import load_stage
from rundir import StageRun, read_manifest


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SMOLLM3_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_manifest_records_recipe_git_inputs_and_status(runs):
    data = load_stage(REPO / "recipes/tiny/data.yaml")
    with StageRun(data) as run:
        (run.dir / "out.txt").write_text("x")
        run.outputs.append("out.txt")
        run.metrics["documents"] = 3
    stage1 = load_stage(REPO / "recipes/tiny/pretrain-stage1.yaml")
    with StageRun(stage1, inputs=[runs / "tiny" / "data"]) as run:
        pass
    m = read_manifest(runs / "tiny" / "pretrain-stage1")
    assert m["status"] == "completed" and m["stage"] == "pretrain-stage1" and m["kind"] == "pretrain"
    assert m["recipe"]["optimizer"]["lr"] == stage1.optimizer.lr
    assert len(m["recipe_sha256"]) == 64 and m["started_at"] and m["ended_at"]
    assert m["git"]["commit"] is None or len(m["git"]["commit"]) == 40
    assert m["inputs"][0]["stage"] == "data" and len(m["inputs"][0]["manifest_sha256"]) == 64
    d = json.loads((runs / "tiny" / "data" / "manifest.json").read_text())
    assert d["outputs"] == ["out.txt"] and d["metrics"] == {"documents": 3}


def test_completed_stage_is_skipped_until_recipe_or_inputs_change(runs):
    r = load_stage(REPO / "recipes/tiny/data.yaml")
    with StageRun(r) as run:
        assert not run.skip
    with StageRun(r) as run:
        assert run.skip
    changed = load_stage(REPO / "recipes/tiny/data.yaml", ["filters.min_chars=10"])
    with StageRun(changed) as run:
        assert not run.skip


def test_failed_stage_is_recorded_and_rerun(runs):
    r = load_stage(REPO / "recipes/tiny/data.yaml")
    with pytest.raises(RuntimeError):
        with StageRun(r):
            raise RuntimeError("disk full")
    m = read_manifest(runs / "tiny" / "data")
    assert m["status"] == "failed" and "disk full" in m["error"]
    with StageRun(r) as run:
        assert not run.skip
