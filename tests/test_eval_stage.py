"""The pipeline's eval stage scores every completed HF checkpoint and writes the comparison table."""
import json

import pytest
from conftest import REPO, run_cli

from eval.offline_data import TINY_RULER
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
    # lighteval's standard error beside each score: the sample standard deviation of the items over sqrt(n)
    mean = sum(per_item) / 4
    assert list(mc) == ["acc", "acc_stderr", "acc_norm_token", "acc_norm_token_stderr", "acc_norm", "acc_norm_stderr"]
    assert mc["acc_stderr"] == pytest.approx((sum((x - mean) ** 2 for x in per_item) / 3 / 4) ** 0.5)
    assert list((eval_dir / "pretrain-stage1" / "results").rglob("results_*.json"))
    table = (eval_dir / "compare.md").read_text()
    assert "pretrain-stage1" in table and "|" in table
    # yarn_lengths [2048]: the 2048-token model reaches 4096 with YaRN x2, so it is scored on a YaRN view
    yarn = manifest["metrics"]["pretrain-stage1-yarn"]
    assert {k for k in yarn if "_average" not in k} == {f"ruler_2048:{k}|0" for k in TINY_RULER}, yarn
    assert not any("ruler_2048" in k for k in scores) and "ruler_1024:niah_single_1|0" in scores
    view = json.loads((eval_dir / "pretrain-stage1-yarn" / "model" / "config.json").read_text())
    assert view["rope_parameters"]["rope_type"] == "yarn" and view["max_position_embeddings"] == 4096


def _hf(folder, max_positions, rope=None):
    folder.mkdir(parents=True)
    cfg = {"max_position_embeddings": max_positions, "rope_parameters": rope or {"rope_type": "default",
                                                                                 "rope_theta": 5e6}}
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_the_published_128k_ruler_runs_on_a_yarn_view_of_the_64k_checkpoints(tmp_path):
    """smollm3-3b eval: RULER at 32k and 64k as trained, 128k through YaRN x2 (model card), only where YaRN
    reaches it; the published base suite has no RULER task, so it gets a RULER job of its own. Long context is
    a base-model figure (base_en.yaml alone has RULER rows) and a checkpoint is asked only lengths it was
    trained at: the 4k stage-1 checkpoint gets no 32k / 64k job (the passkey / RULER length guard)."""
    from eval.stage import jobs

    r = load_stage(REPO / "recipes/smollm3-3b/eval.yaml")
    found = [("pretrain-stage1", _hf(tmp_path / "s1", 4096)), ("longctx-64k", _hf(tmp_path / "lc", 65536)),
             ("sft", _hf(tmp_path / "sft", 65536))]
    todo, notes = jobs(r, found, tmp_path / "eval")
    got = {(j.label, j.suite, j.context_lengths, j.yarn_from is not None, j.generation) for j in todo}
    assert got == {
        ("pretrain-stage1", "smollm3-base", (), False, ()),
        ("longctx-64k", "smollm3-base", (32768, 65536), False, ()),
        ("longctx-64k-ruler", "ruler", (32768, 65536), False, ()),
        ("longctx-64k-yarn", "ruler", (131072,), True, ()),
        ("sft-think", "smollm3-instruct", (), False, ()),
        ("sft-no_think", "smollm3-instruct", (), False, ())}
    assert notes == ["pretrain-stage1: trained at 4096 tokens, YaRN x2 reaches 8192: long context 32768, 65536, "
                     "131072 not scored"]
    # the recipe's sampling fields take effect on the instruct jobs only (None: the suite's own)
    r = load_stage(REPO / "recipes/smollm3-3b/eval.yaml", ["temperature=0.7", "max_new_tokens=2048"])
    by_label = {j.label: j.generation for j in jobs(r, found, tmp_path / "eval")[0]}
    assert by_label["sft-think"] == by_label["sft-no_think"] == (("temperature", 0.7), ("max_new_tokens", 2048))
    assert by_label["pretrain-stage1"] == by_label["longctx-64k-yarn"] == ()
    with pytest.raises(Exception, match="yarn_lengths: must be lengths of context_lengths"):
        load_stage(REPO / "recipes/smollm3-3b/eval.yaml", ["yarn_lengths=[100]"])
    with pytest.raises(Exception, match="yarn_factor and yarn_lengths go together"):
        load_stage(REPO / "recipes/smollm3-3b/eval.yaml", ["yarn_factor=null"])


@pytest.mark.slow
def test_a_yarn_view_shares_the_weights_and_stretches_rope(tmp_path):
    """The view loads in transformers with YaRN RoPE (original length kept, twice the positions, attention
    scaling 0.1 ln 2 + 1) and the same weight tensors; its logits differ (RoPE really changed)."""
    import math

    import torch
    from transformers import AutoModelForCausalLM

    from smollm3.hf_config import trained_length, yarn_view
    from tests.eval_fixtures import make_tiny_model

    base = make_tiny_model(tmp_path / "base")
    view = yarn_view(base, 2.0, tmp_path / "view")
    assert (view / "model.safetensors").is_symlink() and trained_length(view) == trained_length(base) == 2048
    a, b = AutoModelForCausalLM.from_pretrained(base), AutoModelForCausalLM.from_pretrained(view)
    rotary = b.model.rotary_emb
    assert rotary.rope_type == "yarn" and rotary.max_seq_len_cached == 4096
    assert rotary.attention_scaling == pytest.approx(0.1 * math.log(2.0) + 1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    ids = torch.arange(1, 40)[None]
    assert not torch.allclose(a(ids).logits, b(ids).logits, atol=1e-4)  # RoPE really changed
    with pytest.raises(ValueError, match="already scales its RoPE"):
        yarn_view(view, 2.0, tmp_path / "twice")
