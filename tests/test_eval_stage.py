"""The pipeline's eval stage scores every completed HF checkpoint and writes the comparison table."""
import json

import pytest
from conftest import REPO, run_cli

from recipes.loader import load_stage
from rundir import StageRun


@pytest.mark.slow
def test_eval_stage_scores_each_checkpoint(tmp_path, monkeypatch):
    from tests.eval_fixtures import make_tiny_model

    runs = tmp_path / "runs"
    monkeypatch.setenv("SMOLLM3_RUNS", str(runs))
    # a completed pretraining stage that left an HF folder, and a failed one that must be ignored
    stage = load_stage(REPO / "recipes/tiny/pretrain-stage1.yaml")
    with StageRun(stage) as run:
        make_tiny_model(run.dir / "hf")
    failed = load_stage(REPO / "recipes/tiny/pretrain-stage2.yaml")
    with pytest.raises(RuntimeError):
        with StageRun(failed) as run:
            make_tiny_model(run.dir / "hf")
            raise RuntimeError("killed")

    out = run_cli("pipeline", "run", REPO / "recipes/tiny/eval.yaml", "max_samples=4", cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    eval_dir = runs / "tiny" / "eval"
    manifest = json.loads((eval_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert [i["stage"] for i in manifest["inputs"]] == ["pretrain-stage1"]
    scores = manifest["metrics"]["pretrain-stage1"]
    mc = next(v for k, v in scores.items() if "mc_cloze" in k)
    # the headline accuracy is the mean over exactly the 4 items scored (max_samples=4), per lighteval's details
    import pyarrow.parquet as pq

    [details] = (eval_dir / "pretrain-stage1" / "details").rglob("details_mc_cloze*.parquet")
    per_item = [row["metric"]["acc"] for row in pq.read_table(details).to_pylist()]
    assert len(per_item) == 4 and mc["acc"] == pytest.approx(sum(per_item) / 4)
    assert list((eval_dir / "pretrain-stage1" / "results").rglob("results_*.json"))
    table = (eval_dir / "compare.md").read_text()
    assert "pretrain-stage1" in table and "|" in table
