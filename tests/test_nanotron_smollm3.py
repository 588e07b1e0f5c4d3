"""SmolLM3 on nanotron 0.4 against transformers' SmolLM3ForCausalLM (the independent oracle), across
parallel layouts, and through the checkpoint converter. fp32, CPU, tiny model.

One module fixture trains the tp=1 reference in this process, converts its initial checkpoint to HF and
back, and runs every 2-process layout (tp=2 both modes, dp=2, pp=2) in a single torchrun world that
starts from the converted checkpoint.
"""

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nanotron_harness as H
import pytest
import torch
from safetensors import safe_open

from pretrain import convert
from pretrain.smollm3_nanotron import EMBEDDING_NAME, build_optimizer, build_smollm3
from smollm3.hf_config import SmolLM3Config

STEPS = 10  # reference, dp=2 and tp=2 (all-reduce); the other layouts run 2 steps
LR = 1e-2
LAYOUTS = {
    "tp2_all_reduce": dict(tp=2, tp_mode="ALL_REDUCE", steps=STEPS),
    "tp2_reduce_scatter": dict(tp=2, tp_mode="REDUCE_SCATTER", steps=2),
    "dp2": dict(dp=2, mbs=2, steps=STEPS),
    "pp2": dict(pp=2, steps=2),
    "dp2_zero1": dict(dp=2, mbs=2, zero_stage=1, steps=2),
}
# the recipe's precision: bf16 weights, fp32 gradient accumulation, sequence-parallel tp
RECIPE_PRECISION = dict(tp=2, tp_mode="REDUCE_SCATTER", dtype="bfloat16", accumulate_grad_in_fp32=True, steps=6)


def hf_tensors(folder: Path):
    out = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            out.update({k: f.get_tensor(k) for k in f.keys()})
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from nanotron.parallel import ParallelContext
    from nanotron.serialize import load_weights
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("smollm3")
    with H.single_process_world():
        config = H.write_config(root / "ref" / "config.yaml", ckpt_dir=root / "ref" / "checkpoints", steps=STEPS,
                                lr=LR, save_initial_state=True)  # fmt: skip
        reference = H.train(config)
        ckpt0 = root / "ref" / "checkpoints" / "0"
        convert.convert(ckpt0, root / "hf")
        convert.convert(root / "hf", root / "nt_from_hf", to_nanotron=True)

        jobs = [{"name": name, "lr": LR, "init": str(root / "nt_from_hf"), "save_initial_state": True, **layout}
                for name, layout in LAYOUTS.items()]  # fmt: skip
        jobs.append({"name": "tp2_random_init", "tp": 2, "steps": 1, "lr": LR, "save_initial_state": True})
        jobs.append({"name": "tp2_bf16_fp32_accum", "lr": LR, "init": str(root / "nt_from_hf"), **RECIPE_PRECISION})
        spec = root / "jobs.json"
        spec.write_text(json.dumps({"out": str(root / "par"), "jobs": jobs}))
        proc = H.torchrun([H.__file__, spec])
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        parallel = {
            job["name"]: [json.loads((root / "par" / f"{job['name']}.rank{r}.json").read_text()) for r in (0, 1)]
            for job in jobs
        }

        cfg = SmolLM3Config.from_dict(json.loads((ckpt0 / "model_config.json").read_text()))
        pc = ParallelContext(tensor_parallel_size=1, pipeline_parallel_size=1, data_parallel_size=1)
        model = build_smollm3(cfg, pc).eval()
        load_weights(model, pc, root / "nt_from_hf")  # nanotron's own loader reads the converted checkpoint
        hf = AutoModelForCausalLM.from_pretrained(root / "hf", dtype=torch.float32).eval()
        yield types.SimpleNamespace(root=root, cfg=cfg, pc=pc, model=model, hf=hf, reference=reference,
                                    parallel=parallel)  # fmt: skip


def nanotron_logits(model, ids, positions):
    with torch.no_grad():
        return model.model(input_ids=ids, position_ids=positions).transpose(0, 1)  # [batch, seq, vocab]


def packed(lengths):
    return torch.cat([torch.arange(n) for n in lengths])[None]


# ---- parity with transformers -------------------------------------------------------------------
def test_logits_match_hf_single_document(run):
    ids = torch.randint(0, H.VOCAB, (2, H.SEQ), generator=torch.Generator().manual_seed(0))
    positions = torch.arange(H.SEQ).expand(2, -1)
    with torch.no_grad():
        expected = run.hf(input_ids=ids).logits
    diff = (nanotron_logits(run.model, ids, positions) - expected).abs().max().item()
    print(f"single-document max |logit diff| = {diff:.3g}")
    assert diff == 0.0  # bitwise: the same fp32 operations in the same order as transformers


def test_logits_match_hf_packed_documents(run):
    rows = [[7, 13, 12], [20, 12]]  # documents per packed row
    ids = torch.randint(0, H.VOCAB, (2, H.SEQ), generator=torch.Generator().manual_seed(1))
    positions = torch.cat([packed(lengths) for lengths in rows])
    got = nanotron_logits(run.model, ids, positions)
    with torch.no_grad():
        expected = torch.stack([
            torch.cat([run.hf(input_ids=doc[None]).logits[0] for doc in ids[r].split(lengths)])
            for r, lengths in enumerate(rows)
        ])  # fmt: skip
    diff = (got - expected).abs().max().item()
    print(f"packed-row max |logit diff| vs per-document HF runs = {diff:.3g}")
    # not bitwise: one masked SDPA call over the packed row reduces over other (masked) lengths than HF's
    # per-document calls; fp32 rounding of logits of magnitude ~1 (2.4e-7 measured) stays well under 1e-6
    assert diff <= 1e-6


def test_initialisation_scales(run):
    """N(0, 0.02) for the embedding and input projections, 0.02 / sqrt(2 x layers) for o_proj and
    down_proj, ones for RMSNorm (read from the converted initial checkpoint)."""
    weights = hf_tensors(run.root / "hf")
    small = 0.02 / (2 * run.cfg.num_hidden_layers) ** 0.5
    for name, tensor in weights.items():
        if name.endswith("norm.weight"):
            assert torch.equal(tensor, torch.ones_like(tensor)), name
        else:
            expected = small if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
            assert abs(tensor.mean().item()) < 0.1 * expected, name
            assert tensor.std().item() == pytest.approx(expected, rel=0.1), name


def test_nope_layers_follow_the_interval(run):
    from transformers import SmolLM3Config as HFConfig

    uses_rope = [block.pp_block.attn.use_rope for block in run.model.model.decoder]
    # independent source: transformers derives the layer list from the interval itself (no list passed)
    hf_layers = HFConfig(num_hidden_layers=len(uses_rope), no_rope_layer_interval=4).no_rope_layers
    assert uses_rope == [bool(x) for x in hf_layers]
    # the published model (HuggingFaceTB/SmolLM3-3B config.json, nanotron `no_rope_layer: 4`): 36 layers, NoPE in
    # the 0-based layers 3, 7, ..., 35 (9 NoPE, 27 RoPE)
    published = SmolLM3Config(num_hidden_layers=36)
    assert [i for i in range(36) if not published.uses_rope(i)] == list(range(3, 36, 4))
    # Behaviour: stretching positions (0, 3, 6, ...; still one document) changes what a RoPE layer
    # computes and leaves a NoPE layer's output bit-identical (inputs scaled so attention is not uniform).
    hidden = 30 * torch.randn(H.SEQ, 2, run.cfg.hidden_size, generator=torch.Generator().manual_seed(2))
    base = torch.arange(H.SEQ).expand(2, -1)
    with torch.no_grad():
        for i, block in enumerate(run.model.model.decoder):
            attn = block.pp_block.attn
            out = attn(hidden, base)
            change = ((out - attn(hidden, base * 3)).abs().max() / out.abs().max()).item()
            print(f"layer {i} ({'RoPE' if uses_rope[i] else 'NoPE'}): relative change {change:.3g}")
            assert (change > 0.05) if uses_rope[i] else (change == 0.0), (i, change)


def test_doc_masking_isolates_documents(run):
    lengths = [7, 13, 12]
    ids = torch.randint(0, H.VOCAB, (1, H.SEQ), generator=torch.Generator().manual_seed(3))
    edited = ids.clone()
    edited[0, 7:20] = (edited[0, 7:20] + 17) % H.VOCAB  # rewrite the middle document
    positions = packed(lengths)
    before, after = nanotron_logits(run.model, ids, positions), nanotron_logits(run.model, edited, positions)
    others = torch.cat([torch.arange(0, 7), torch.arange(20, 32)])
    assert (before[0, others] - after[0, others]).abs().max().item() <= 1e-6
    assert (before[0, 7:20] - after[0, 7:20]).abs().max().item() > 1e-3
    # the same check fails without intra-document masking: the last document then sees the edit
    attns = [block.pp_block.attn for block in run.model.model.decoder]
    try:
        for attn in attns:
            attn.doc_masking = False
        leaked = nanotron_logits(run.model, edited, positions)
    finally:
        for attn in attns:
            attn.doc_masking = True
    assert (before[0, 20:] - leaked[0, 20:]).abs().max().item() > 1e-3


# ---- parallel layouts ---------------------------------------------------------------------------
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_parallel_layout_matches_tp1(run, layout):
    reference = run.reference.losses
    ranks = [r["losses"] for r in run.parallel[layout] if r["losses"]]  # pp: only the output stage has it
    assert ranks, f"{layout}: no rank recorded a loss"
    for losses in ranks:
        diffs = [abs(a - b) for a, b in zip(losses, reference)]
        print(f"{layout}: |loss - tp1| per step: " + " ".join(f"{d:.2g}" for d in diffs))
        assert len(losses) == LAYOUTS[layout]["steps"]
        assert max(diffs) <= 1e-5, (layout, losses, reference[:len(losses)])


@pytest.mark.slow
def test_recipe_precision_trains(run):
    """bf16 + fp32 gradient accumulation + REDUCE_SCATTER tp=2 (the published recipe's settings)."""
    losses = run.parallel["tp2_bf16_fp32_accum"][0]["losses"]
    print("tp2 bf16 / fp32-accumulation losses: " + " ".join(f"{x:.3f}" for x in losses))
    assert abs(losses[0] - run.reference.losses[0]) < 1e-2
    assert losses[-1] < losses[0] - 1.0


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["dp2", "tp2_all_reduce"])
def test_distributed_trainer_loss_falls(run, layout):
    losses = run.parallel[layout][0]["losses"]
    print(f"{layout} losses: " + " ".join(f"{x:.3f}" for x in losses))
    assert len(losses) == STEPS
    assert max(losses[-3:]) < losses[0] - 1.0


def test_resume_restores_grouped_optimizer_exactly(run):
    """Resuming from a step-2 checkpoint (weights, both AdamW groups, LR schedule) continues the run
    bit for bit (uses the fixture's 1-process world). The LR changes at every step (linear warmup, then
    linear decay), so a schedule restored at the wrong step, or a first step after the resume at another
    rate, changes the losses."""
    import yaml

    from pretrain.synthetic_batches import synthetic_batches

    root = run.root / "resume"
    schedule = dict(lr_warmup_steps=2, lr_warmup_style="linear", lr_decay_style="linear",
                    lr_decay_starting_step=2, lr_decay_steps=4, min_decay_lr=0.0)
    config = H.write_config(root / "a.yaml", ckpt_dir=root / "checkpoints", steps=4, lr=LR, schedule=schedule)
    data = yaml.safe_load(config.read_text())
    data["checkpoints"]["checkpoint_interval"] = 2
    config.write_text(yaml.safe_dump(data))
    first = H.train(config)
    uninterrupted, lrs = first.losses, first.lrs
    assert len(set(lrs)) >= 3, lrs  # the rate moves during these steps (warmup, then decay)
    data["checkpoints"].update(resume_checkpoint_path=str(root / "checkpoints" / "2"),
                               checkpoints_path=str(root / "c2"))
    (root / "b.yaml").write_text(yaml.safe_dump(data))
    trainer = H.RecordingTrainer(str(root / "b.yaml"))
    batches = synthetic_batches(4, H.SEQ, H.VOCAB, trainer.parallel_context)
    next(batches), next(batches)  # the two micro-batches the first run consumed before the checkpoint
    trainer.train(batches)
    assert trainer.lrs == lrs[2:]
    assert trainer.losses == uninterrupted[2:]


def test_embedding_excluded_from_weight_decay(run):
    # the trainer's optimizer, on every rank of every layout (pp=2 rank 1 holds the tied lm_head)
    summaries = [H.param_group_summary(run.reference)]
    summaries += [r["param_groups"] for ranks in run.parallel.values() for r in ranks]
    for groups in summaries:
        for weight_decay, names in groups:
            has_embedding = [n for n in names if "token_embedding" in n]
            assert (weight_decay == 0.0) == bool(has_embedding) and (not has_embedding or names == [EMBEDDING_NAME])
            if weight_decay:
                assert weight_decay == pytest.approx(0.1)
    # behaviour: with zero gradients AdamW only decays, and the embedding must not move
    from nanotron.config import LRSchedulerArgs, OptimizerArgs

    model = build_smollm3(run.cfg, run.pc)
    model.load_state_dict(run.model.state_dict())
    args = OptimizerArgs(zero_stage=0, weight_decay=0.1, clip_grad=None, accumulate_grad_in_fp32=False,
                         adam_eps=1e-8, adam_beta1=0.9, adam_beta2=0.95, torch_adam_is_fused=False,
                         learning_rate_scheduler=LRSchedulerArgs(learning_rate=0.5,
                                                                 lr_warmup_style="constant"))  # fmt: skip
    optimizer, _ = build_optimizer(model, args, run.pc)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for name, param in model.named_parameters():
        factor = 1.0 if name == EMBEDDING_NAME else 1 - 0.5 * 0.1
        torch.testing.assert_close(param.detach(), before[name] * factor, rtol=1e-6, atol=0)


# ---- conversion ---------------------------------------------------------------------------------
def test_converted_folder_is_a_complete_hf_smollm3(run, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "<s>", "</s>"])
    tokenizer.train_from_iterator(["the tiny model reads a tiny story", "a story about a model"] * 20, trainer)
    tokenizer.save(str(tmp_path / "tokenizer.json"))

    out = convert.convert(run.root / "ref" / "checkpoints" / "0", tmp_path / "hf",
                          tokenizer=tmp_path / "tokenizer.json")
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["SmolLM3ForCausalLM"] and config["tie_word_embeddings"] is True
    assert config["no_rope_layer_interval"] == 4 and config["rope_parameters"]["rope_theta"] == 50000.0
    assert (config["num_key_value_heads"], config["max_position_embeddings"]) == (2, H.SEQ)
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] == 2
    tok = AutoTokenizer.from_pretrained(out)
    assert (tok.bos_token, tok.eos_token) == ("<s>", "</s>")
    model = AutoModelForCausalLM.from_pretrained(out)
    ids = tok("a tiny story", return_tensors="pt").input_ids
    generated = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > ids.shape[1]


@pytest.mark.parametrize("layout", ["tp2_all_reduce", "pp2", "tp2_random_init"])
def test_conversion_from_parallel_checkpoints(run, layout):
    """Checkpoints saved at tp=2 / pp=2 convert to the HF weights of the tp=1 checkpoint (bitwise);
    tp2_random_init was initialised at tp=2 from the seed alone: initialisation ignores the layout."""
    out = run.root / f"hf_{layout}"
    convert.convert(run.root / "par" / layout / "checkpoints" / "0", out)
    expected, got = hf_tensors(run.root / "hf"), hf_tensors(out)
    assert expected.keys() == got.keys()
    assert [k for k in expected if not torch.equal(expected[k], got[k])] == []


@pytest.mark.parametrize("tied", [True, False])
def test_hf_nanotron_hf_round_trip_is_exact(tmp_path, tied):
    from transformers import SmolLM3Config as HFConfig
    from transformers import SmolLM3ForCausalLM

    torch.manual_seed(0)
    model = SmolLM3ForCausalLM(HFConfig(**H.tiny_config(tie_word_embeddings=tied).to_hf_dict()))
    model.save_pretrained(tmp_path / "a")
    convert.convert(tmp_path / "a", tmp_path / "nt", to_nanotron=True)
    convert.convert(tmp_path / "nt", tmp_path / "b")
    original, back = hf_tensors(tmp_path / "a"), hf_tensors(tmp_path / "b")
    if tied:
        original.pop("lm_head.weight", None)
    assert original.keys() == back.keys() and ("lm_head.weight" in back) != tied
    assert all(torch.equal(original[k], back[k]) for k in original)


def run_convert(*args):
    env = dict(os.environ, PYTHONPATH=str(H.REPO))
    return subprocess.run([sys.executable, "-m", "pretrain.convert", *map(str, args)], cwd=H.REPO, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_convert_rejects_bad_input(tmp_path, run):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("not a checkpoint")
    for src, reason in ((tmp_path / "missing", "no such directory"), (tmp_path / "junk", "not a nanotron checkpoint")):
        result = run_convert(src, tmp_path / "out")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and str(src) in lines[0] and reason in lines[0], result.stderr
    # a checkpoint with a shard missing: refused in-process too, and nothing is left behind
    broken = tmp_path / "broken"
    shutil.copytree(run.root / "par" / "tp2_all_reduce" / "checkpoints" / "0", broken)
    next((broken / "model").rglob("*qkv_proj/*tp-rank-1-of-2*.safetensors")).unlink()
    assert convert.main([str(broken), str(tmp_path / "out")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "junk"]


def test_activation_recompute_gives_the_same_gradients(run):
    """parallelism.recompute_layer: every decoder layer under torch.utils.checkpoint. The loss and every
    gradient equal those without recompute (bitwise: the same operations, replayed), while the layers'
    activations are not kept (bench/recompute_memory.py measures the memory saved)."""
    import dataclasses

    ids = torch.randint(0, H.VOCAB, (2, H.SEQ), generator=torch.Generator().manual_seed(5))
    positions = torch.cat([packed([12, 20]), packed([32])])
    batch = dict(input_ids=ids, position_ids=positions, input_mask=torch.ones_like(ids, dtype=torch.bool),
                 label_ids=torch.roll(ids, -1, 1), label_mask=torch.ones_like(ids, dtype=torch.bool))
    grads = {}
    for recompute in (False, True):
        model = build_smollm3(dataclasses.replace(run.cfg, recompute_layer=recompute), run.pc).train()
        model.load_state_dict(run.model.state_dict())
        calls = []
        for block in model.model.decoder:
            block.pp_block.attn.register_forward_pre_hook(lambda *_: calls.append(1))
        loss = model(**batch)["loss"]
        loss.backward()
        # with recompute each layer's forward runs again during backward
        assert len(calls) == run.cfg.num_hidden_layers * (2 if recompute else 1)
        grads[recompute] = (loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()})
    (loss0, g0), (loss1, g1) = grads[False], grads[True]
    assert torch.equal(loss0, loss1) and g0.keys() == g1.keys() and len(g0) > 10
    for name in g0:
        assert torch.equal(g0[name], g1[name]), name


def test_yarn_export_stretches_rope_beyond_the_trained_length(run, tmp_path):
    """`--yarn-factor 2` (the model card's 128k over the trained 65,536): transformers loads YaRN RoPE with
    the original length kept, twice the positions, and YaRN's attention scaling 0.1 ln(factor) + 1."""
    import math

    from transformers import AutoConfig, AutoModelForCausalLM

    out = convert.convert(run.root / "ref" / "checkpoints" / "0", tmp_path / "yarn", yarn_factor=2.0)
    cfg = AutoConfig.from_pretrained(out)
    assert cfg.rope_parameters["rope_type"] == "yarn" and cfg.rope_parameters["factor"] == 2.0
    assert cfg.rope_parameters["original_max_position_embeddings"] == H.SEQ
    assert cfg.max_position_embeddings == 2 * H.SEQ
    rotary = AutoModelForCausalLM.from_pretrained(out).model.rotary_emb
    assert rotary.rope_type == "yarn" and rotary.max_seq_len_cached == 2 * H.SEQ
    assert rotary.attention_scaling == pytest.approx(0.1 * math.log(2.0) + 1)
    # without the flag: plain RoPE at the trained length
    plain = AutoConfig.from_pretrained(run.root / "hf")
    assert plain.rope_parameters["rope_type"] == "default" and plain.max_position_embeddings == H.SEQ
    bad = run_convert(run.root / "ref" / "checkpoints" / "0", tmp_path / "x", "--yarn-factor", "1")
    assert bad.returncode == 2 and "must be > 1" in bad.stderr and not (tmp_path / "x").exists()


def test_per_batch_values_are_built_once_per_batch_not_once_per_layer():
    """The document mask, cu_seqlens and RoPE tables: built by the first layer of a batch, reused by the others
    (and by the recompute pass); a new batch, even with equal positions, gets its own."""
    from pretrain.smollm3_nanotron import PerBatch, cu_seqlens_from_positions

    cache, builds = PerBatch(), []
    positions = torch.tensor([[0, 1, 2, 0, 1, 0]])

    def build():
        builds.append(1)
        return cu_seqlens_from_positions(positions, True)

    for _layer in range(4):
        cu, max_len = cache.get(positions, "cu", build)
    assert len(builds) == 1 and cu.tolist() == [0, 3, 5, 6] and max_len == 3
    positions = positions.clone()  # the next batch
    cache.get(positions, "cu", build)
    assert len(builds) == 2
