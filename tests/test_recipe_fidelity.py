"""The smollm3-3b recipe reproduces the published numbers, computed through the schema and the planner.

Expected values are the published ones (the authors' nanotron configs in huggingface/smollm
text/pretraining/smollm3/, the alignment-handbook recipes/smollm3/, the blog and the model card), not values
read back from this repository's code.
"""
import json

import pytest
import torch
import transformers
from conftest import REPO, run_cli

from recipes.derive import mixture_shares, param_count
from recipes.loader import load_mixture, load_recipe

R3B = REPO / "recipes" / "smollm3-3b"
TOKENS_PER_STEP = 2_359_296  # 192 dp x 3 micro batch x 4096 (stage1_8T.yaml); 72 x 32k; 36 x 64k


@pytest.fixture(scope="module")
def plan():
    out = run_cli("recipes", "plan", R3B, "--json")
    assert out.returncode == 0, out.stderr
    return {row["stage"]: row for row in json.loads(out.stdout)}


@pytest.fixture(scope="module")
def stages():
    return load_recipe(R3B)


def test_plan_json_has_the_contract_keys(plan):
    keys = {"stage", "seq_len", "micro_batch_size", "grad_accum", "dp", "tp", "pp", "cp", "gpus",
            "global_batch_tokens", "steps", "tokens", "params", "rope_theta", "lr", "gpu_hours", "memory_gb_per_gpu"}
    for row in plan.values():
        assert keys <= set(row), keys - set(row)
    assert list(plan) == ["data", "pretrain-stage1", "pretrain-stage2", "pretrain-stage3", "longctx-32k",
                          "longctx-64k", "midtrain", "synth", "sft", "prefs", "apo", "merge", "eval"]


def test_plan_table_prints_every_stage():
    out = run_cli("recipes", "plan", R3B)
    assert out.returncode == 0, out.stderr
    for needle in ("pretrain-stage1", "3,450,000", "2,359,296", "192/2/1/1", "12/2/1/4", "GPU-hours at MFU"):
        assert needle in out.stdout


@pytest.mark.parametrize("stage", ["pretrain-stage1", "pretrain-stage2", "pretrain-stage3", "longctx-32k",
                                   "longctx-64k"])
def test_tokens_per_step(plan, stage):
    assert plan[stage]["global_batch_tokens"] == TOKENS_PER_STEP
    row = plan[stage]
    assert row["dp"] * row["micro_batch_size"] * row["grad_accum"] * row["seq_len"] == TOKENS_PER_STEP


def test_parallelism_and_batch(plan):
    s1 = plan["pretrain-stage1"]
    assert (s1["dp"], s1["tp"], s1["pp"], s1["cp"], s1["gpus"], s1["nodes"]) == (192, 2, 1, 1, 384, 48)
    assert (s1["micro_batch_size"], s1["grad_accum"], s1["seq_len"]) == (3, 1, 4096)
    lc1, lc2 = plan["longctx-32k"], plan["longctx-64k"]
    assert (lc1["dp"], lc1["tp"], lc1["cp"], lc1["gpus"], lc1["grad_accum"], lc1["seq_len"]) == (12, 2, 4, 96, 6, 32768)
    assert (lc2["grad_accum"], lc2["seq_len"]) == (3, 65536)


def test_parameter_count(plan):
    assert abs(plan["pretrain-stage1"]["params"] - 3.075e9) / 3.075e9 < 1e-3
    # bf16 safetensors of the release: 6,150,235,008 bytes (model_files.json) = 2 bytes per parameter
    assert abs(plan["pretrain-stage1"]["params"] * 2 - 6_150_235_008) / 6_150_235_008 < 1e-4


def test_make_plan_shows_the_checkpoint_disk_footprint(plan):
    """smollm3-3b keeps the last 5 checkpoints per nanotron stage: `make plan` says how many each stage writes
    (every 2,000 steps, the authors' checkpoint_interval) and the disk they take: 6.15 GB of bf16 weights (the
    release) + 12 bytes per parameter of fp32 master weights and Adam moments each."""
    each = (6_150_235_008 + 12 * 3.075e9) / 1e9  # ~43 GB
    s1 = plan["pretrain-stage1"]["checkpoints"]
    assert s1["checkpoints_written"] == 3_450_000 // 2000 and s1["checkpoints_kept"] == 5 and s1["keep_last"] == 5
    assert abs(s1["checkpoint_gb"] - each) / each < 1e-3 and abs(s1["checkpoint_disk_gb"] - 5 * each) / each < 5e-3
    out = run_cli("recipes", "plan", R3B)
    assert "pretrain-stage1  1,725 written x 43.1 GB, keep_last 5: 5 on disk = 0.22 TB" in out.stdout, out.stdout
    assert "all stages       1.08 TB" in out.stdout  # 5 nanotron stages x 5 kept x 43.1 GB


def test_parameter_count_matches_transformers(stages):
    """The planner's formula agrees with transformers' own SmolLM3ForCausalLM, built on the meta device."""
    m = stages["pretrain-stage1"].model
    cfg = transformers.SmolLM3Config(
        vocab_size=m.vocab_size, hidden_size=m.hidden_size, intermediate_size=m.intermediate_size,
        num_hidden_layers=m.num_hidden_layers, num_attention_heads=m.num_attention_heads,
        num_key_value_heads=m.num_key_value_heads, tie_word_embeddings=m.tie_word_embeddings,
        no_rope_layer_interval=m.no_rope_layer_interval)
    with torch.device("meta"):
        hf = transformers.SmolLM3ForCausalLM(cfg)
    assert sum(p.numel() for p in hf.parameters()) == param_count(m)


def test_stage_steps_and_wsd(plan, stages):
    assert [plan[f"pretrain-stage{i}"]["steps"] for i in (1, 2, 3)] == [3_450_000, 748_000, 522_000]
    assert [plan[f"pretrain-stage{i}"]["first_step"] for i in (1, 2, 3)] == [1, 3_450_001, 4_198_001]
    s3 = stages["pretrain-stage3"]
    assert s3.steps.train_steps == 4_720_000
    assert (s3.lr_schedule.warmup_steps, s3.lr_schedule.warmup_style) == (2000, "linear")
    assert (plan["pretrain-stage3"]["decay_start_step"], plan["pretrain-stage3"]["decay_steps"]) == (4_198_001, 522_000)
    assert (s3.lr_schedule.decay_style, s3.lr_schedule.min_lr, s3.optimizer.lr) == ("linear", 0.0, 2e-4)
    # the same WSD for the three stages of the run
    assert len({(plan[f"pretrain-stage{i}"]["decay_start_step"], plan[f"pretrain-stage{i}"]["decay_steps"])
                for i in (1, 2, 3)}) == 1
    # published tokens per stage: ~8.14T, ~1.765T, ~1.232T (11.14T in all)
    assert sum(plan[f"pretrain-stage{i}"]["tokens"] for i in (1, 2, 3)) == 4_720_000 * TOKENS_PER_STEP


def test_optimizer(stages):
    o = stages["pretrain-stage1"].optimizer
    assert (o.beta1, o.beta2, o.eps, o.weight_decay, o.clip_grad) == (0.9, 0.95, 1e-8, 0.1, 1.0)
    assert o.weight_decay_exclude == [".*token_embedding.*"]


def test_rope_theta_and_long_context(plan, stages):
    assert [plan[s]["rope_theta"] for s in ("pretrain-stage1", "pretrain-stage2", "pretrain-stage3")] == [50_000.0] * 3
    assert plan["longctx-32k"]["rope_theta"] == 2_000_000.0  # the config; the blog's 1.5M is one key away
    assert plan["longctx-64k"]["rope_theta"] == 5_000_000.0
    assert (plan["longctx-32k"]["steps"], plan["longctx-64k"]["steps"]) == (20_000, 22_000)
    lc1, lc2 = stages["longctx-32k"], stages["longctx-64k"]
    assert (lc1.model.max_position_embeddings, lc2.model.max_position_embeddings) == (32768, 65536)
    assert (lc1.optimizer.lr, lc1.lr_schedule.warmup_steps, lc1.lr_schedule.decay_style) == (2e-5, 1000, "cosine")
    assert (plan["longctx-32k"]["decay_start_step"], plan["longctx-32k"]["decay_steps"]) == (1000, 19_000)
    assert plan["longctx-64k"]["decay_steps"] == 21_000
    assert (lc2.checkpoints.load_optimizer, lc2.parallelism.recompute_layer) == (False, True)
    blog = load_recipe(R3B, ["model.rope_theta=1500000.0"])
    assert blog["longctx-32k"].model.rope_theta == 1_500_000.0


def test_architecture(stages):
    m = stages["pretrain-stage1"].model
    assert (m.hidden_size, m.intermediate_size, m.num_hidden_layers, m.num_attention_heads, m.num_key_value_heads,
            m.vocab_size, m.no_rope_layer_interval, m.tie_word_embeddings, m.rms_norm_eps, m.init_std) == \
        (2048, 11008, 36, 16, 4, 128256, 4, True, 1e-6, 0.02)


# Category shares in percent, from the reference's section 4 table (web here = EN web + multilingual).
PUBLISHED_SHARES = {
    "stage1": {"web": 72.4 + 12.0, "code": 12.9, "math": 2.7},
    "stage2": {"web": 64.7 + 11.7, "code": 14.5, "math": 9.1},
    "stage3": {"web": 50.3 + 13.1, "code": 23.3, "math": 13.1, "reasoning": 0.1},
    "longctx1": {"web": 40.0 + 11.8, "code": 22.8, "math": 15.3, "reasoning": 10.1},
    "longctx2": {"web": 40.4 + 11.0, "code": 22.0, "math": 13.5, "reasoning": 13.1},
}
SOURCE_COUNTS = {"stage1": 41, "stage2": 46, "stage3": 56, "longctx1": 56, "longctx2": 57}


@pytest.mark.parametrize("name", list(PUBLISHED_SHARES))
def test_mixture_shares(name):
    mixture = load_mixture(R3B, name)
    assert len(mixture.sources) == SOURCE_COUNTS[name]
    shares = mixture_shares(mixture, merge_multilingual=True)
    for cat, expected in PUBLISHED_SHARES[name].items():
        assert abs(shares.get(cat, 0.0) - expected) < 0.5, (cat, shares)
    assert abs(sum(shares.values()) - 100) < 1e-9


def test_mixture_sources_name_hub_datasets():
    s1 = {s.name: s for s in load_mixture(R3B, "stage1").sources}
    assert s1["fineweb-edu"].dataset == "HuggingFaceFW/fineweb-edu"
    assert s1["dclm"].dataset == "mlfoundations/dclm-baseline-1.0"
    assert (s1["fw2-deu"].dataset, s1["fw2-deu"].subset) == ("epfml/FineWeb2-HQ", "deu_Latn")
    assert (s1["finemath"].dataset, s1["finemath"].subset) == ("HuggingFaceTB/finemath", "finemath-3plus")
    assert s1["stack-v2-Python"].dataset == "bigcode/the-stack-v2"
    assert s1["fineweb-edu"].weight == 0.333 and s1["dclm"].weight == 0.37
    s3 = {s.name: s for s in load_mixture(R3B, "stage3").sources}
    assert s3["stack-edu-real-shuffled-Python"].dataset == "HuggingFaceTB/stack-edu"
    assert s3["stack-edu-real-shuffled-Python"].weight == 0.07


def test_sft_apo_midtrain_hyperparameters(plan, stages):
    mid, sft, apo = stages["midtrain"], stages["sft"], stages["apo"]
    assert (mid.lr, mid.num_train_epochs, mid.max_length, mid.chat_template, mid.packing) == (2e-5, 5, 32768,
                                                                                              "chatml", True)
    assert [d.split for d in mid.datasets] == ["Llama_Nemotron_Post_Training_Dataset_reasoning_r1",
                                               "OpenThoughts3_1.2M"]
    assert (sft.lr, sft.num_train_epochs, sft.max_length, sft.assistant_only_loss) == (2e-5, 5, 65536, True)
    assert (sft.lr_scheduler_type, sft.min_lr_rate, sft.warmup_ratio, sft.max_grad_norm) == ("cosine_with_min_lr",
                                                                                             0.1, 0.03, 0.2)
    assert len(sft.datasets) == 25
    assert sum(d.mode == "think" for d in sft.datasets) == 10
    assert {d.split: d.weight for d in sft.datasets}["OpenThoughts3_1.2M_think"] == 0.02
    assert (plan["sft"]["global_batch_seqs"], plan["sft"]["grad_accum"], plan["sft"]["gpus"]) == (128, 2, 64)
    assert (apo.loss_type, apo.beta, apo.lr, apo.num_train_epochs, apo.max_length) == ("apo_zero", 0.05, 1e-6, 1, 24576)
    # published padding_free true: TRL 1.16's DPOTrainer ignores it, so the recipe sets false and says so;
    # published save_total_limit 1 would delete the checkpoints the merge averages, so all are kept
    assert (apo.warmup_ratio, apo.padding_free, apo.save_steps, apo.save_total_limit) == (0.1, False, 0.5, None)
    assert [d.weight for d in apo.datasets] == [0.5, 0.25]
    assert (plan["apo"]["global_batch_seqs"], plan["apo"]["grad_accum"], plan["apo"]["gpus"]) == (32, 2, 16)


def test_merge_weights(stages):
    m = stages["merge"]
    assert [(b.model, b.weight) for b in m.blend] == [("soup", 0.9), ("midtrain", 0.1)]
    assert (m.soup_from, m.soup_method, m.soup_normalize) == ("apo", "linear", True)
