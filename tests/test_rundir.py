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


def test_a_marked_checkpoint_detects_every_kind_of_damage(tmp_path):
    from rundir.checkpoints import damage, intact_checkpoints, mark_complete, prune

    ckpt = tmp_path / "checkpoints"
    for step in (4, 8, 12):
        (ckpt / str(step) / "model").mkdir(parents=True)
        (ckpt / str(step) / "model" / "w.safetensors").write_bytes(bytes(range(256)) * 4)
        (ckpt / str(step) / "config.yaml").write_text("step: %d\n" % step)
        mark_complete(ckpt / str(step), step=step, training_sha256="abc")
    (ckpt / "16").mkdir()  # interrupted while being written: no marker
    assert [damage(ckpt / s) for s in ("4", "8", "12")] == [None, None, None]
    w = ckpt / "12" / "model" / "w.safetensors"
    w.write_bytes(w.read_bytes()[:-1] + b"\x01")
    assert "does not match its checksum" in damage(ckpt / "12")
    (ckpt / "8" / "config.yaml").unlink()
    assert damage(ckpt / "8") == "config.yaml is missing"
    (ckpt / "4" / "extra.bin").write_bytes(b"x")
    assert damage(ckpt / "4") == "extra.bin was not part of the checkpoint"
    (ckpt / "4" / "extra.bin").unlink()
    intact, damaged = intact_checkpoints(ckpt)
    assert [p.name for p in intact] == ["4"] and [p.name for p, _ in damaged] == ["8", "12"]
    assert [p.name for p in prune(ckpt, keep_last=1)] == ["4", "8"]
    assert sorted(p.name for p in ckpt.iterdir()) == ["12", "16"]


def test_training_view_ignores_what_only_records_a_run():
    from rundir import recipe_json
    from rundir.resume import changes, run_view, training_view

    a = recipe_json(load_stage(REPO / "recipes/tiny/pretrain-stage2.yaml"))
    b = recipe_json(load_stage(REPO / "recipes/tiny/pretrain-stage2.yaml",
                               ["description=other", "log_interval=5", "checkpoints.interval=3", "run_name=x",
                                "cluster.partition=gpu"]))
    assert training_view(a) == training_view(b)
    c = recipe_json(load_stage(REPO / "recipes/tiny/pretrain-stage2.yaml", ["optimizer.lr=1e-3", "seed=7"]))
    assert changes(training_view(a), training_view(c)) == ["optimizer.lr: 0.003 -> 0.001", "seed: 6 -> 7"]
    s1 = recipe_json(load_stage(REPO / "recipes/tiny/pretrain-stage1.yaml"))
    assert run_view(s1) == run_view(a) and training_view(s1) != training_view(a)  # one run, two stages


def test_a_resumed_run_keeps_its_step_log_up_to_the_checkpoint(tmp_path):
    from rundir import trim_step_log

    log = tmp_path / "losses.jsonl"
    log.write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 6)) + '{"step": 6, "lo')
    trim_step_log(log, 3)  # resumed after step 3: steps 4-6 are trained again; the line cut by the kill goes too
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3]
    trim_step_log(tmp_path / "absent.jsonl", 3)
    assert not (tmp_path / "absent.jsonl").exists()
