"""Values that follow from a stage recipe: batch arithmetic, step ranges, tokens, parameters, FLOPs, memory.

Nothing here is typed in a recipe. The cost model (FLOPs, memory) is a planner's estimate: it is
documented below term by term so that users can check it against their own measurements.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from recipes.schema import ModelConfig, NanotronStage, TrlStage

# Pipeline order of the stages (a recipe may define a subset).
PIPELINE = ["data", "pretrain-stage1", "pretrain-stage2", "pretrain-stage3", "longctx-32k", "longctx-64k",
            "midtrain", "synth", "sft", "prefs", "apo", "merge", "eval"]

GB = 1024**3


def param_count(m: ModelConfig) -> int:
    """Exact parameter count of SmolLM3ForCausalLM with this config (tied embeddings count once)."""
    h, kv = m.hidden_size, m.num_key_value_heads * m.head_dim
    attn = h * h + 2 * h * kv + h * h + (2 * kv + 2 * h if m.attention_bias else 0)
    mlp = 3 * h * m.intermediate_size
    layer = attn + mlp + 2 * h  # two RMSNorm weights
    emb = m.vocab_size * h
    head = 0 if m.tie_word_embeddings else m.vocab_size * h
    return emb + m.num_hidden_layers * layer + h + head


def flops_per_token(m: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token: 6 N for the matmuls (forward + backward, lm head included) plus causal
    attention scores and values, 6 L s h (half of the dense 12 L s h; document masking would lower it)."""
    return 6 * param_count(m) + 6 * m.num_hidden_layers * seq_len * m.hidden_size


def mixture_shares(mixture, merge_multilingual: bool = False) -> dict:
    """Category shares in percent of a mixture (weights normalized to 1, as nanotron does). With
    `merge_multilingual` the multilingual share is counted as web, as the blog's 85 / 12 / 3 split does."""
    total = sum(s.weight for s in mixture.sources)
    shares: dict = {}
    for s in mixture.sources:
        cat = "web" if merge_multilingual and s.category == "multilingual" else s.category
        shares[cat] = shares.get(cat, 0.0) + 100.0 * s.weight / total
    return shares


@dataclass(frozen=True)
class Derived:
    """What follows from any stage recipe."""

    params: int  # exact parameter count of the model (tied embeddings once)


@dataclass(frozen=True)
class NanotronDerived(Derived):
    """What follows from a pretraining / long-context stage: batch arithmetic, GPUs, the stage's steps in its
    run and the run's LR decay window."""

    grad_accum: int  # global_batch_tokens / (dp x micro_batch_size x sequence_length)
    global_batch_seqs: int
    gpus: int  # dp x tp x pp x cp
    nodes: int
    tokens: int  # trained by this stage
    first_step: int  # of this stage, in its run
    last_step: int
    steps: int
    decay_start_step: int
    decay_steps: int


@dataclass(frozen=True)
class TrlDerived(Derived):
    """What follows from a TRL stage (mid-training, SFT, APO)."""

    grad_accum: int  # global_batch_size / (gpus x per_device_train_batch_size)
    gpus: int
    nodes: int


def derived(r) -> Derived:
    """The derived values of a stage (`python -m recipes show` prints them under `derived`)."""
    if isinstance(r, NanotronStage):
        p, b = r.parallelism, r.batch
        gpus = p.dp * p.tp * p.pp * p.cp
        starts = list(r.steps.stage_starts.items())
        i = [n for n, _ in starts].index(r.stage)
        first = starts[i][1]
        last = starts[i + 1][1] - 1 if i + 1 < len(starts) else r.steps.train_steps
        ds = r.lr_schedule.decay_start
        decay_start = r.steps.stage_starts[ds] if isinstance(ds, str) else ds
        return NanotronDerived(
            params=param_count(r.model),
            grad_accum=b.global_batch_tokens // (p.dp * b.micro_batch_size * b.sequence_length),
            global_batch_seqs=b.global_batch_tokens // b.sequence_length, gpus=gpus,
            nodes=-(-gpus // r.cluster.gpus_per_node), tokens=(last - first + 1) * b.global_batch_tokens,
            first_step=first, last_step=last, steps=last - first + 1, decay_start_step=decay_start,
            decay_steps=r.lr_schedule.decay_steps or (r.steps.train_steps - decay_start + 1))
    if isinstance(r, TrlStage):
        gpus = r.resources.nodes * (r.resources.gpus_per_node or r.cluster.gpus_per_node)
        return TrlDerived(params=param_count(r.model),
                          grad_accum=r.global_batch_size // (gpus * r.per_device_train_batch_size),
                          gpus=gpus, nodes=r.resources.nodes)
    return Derived(params=param_count(r.model))


def memory_gb(m: ModelConfig, *, tp: int, pp: int, dp: int, cp: int, seq: int, mbs: int, grad_accum: int,
              zero_stage: int, fp32_grads: bool, sequence_parallel: bool, shard_all: bool = False) -> dict:
    """Per-GPU memory estimate in GiB.

    weights: bf16 (2 B/param) over tp x pp; grads: fp32 accumulation buffers (4 B) or bf16 (2 B);
    optimizer: fp32 master copy + Adam m and v (12 B/param), over dp with ZeRO-1; `shard_all` (ZeRO-3)
    shards all three over dp. Activations per layer and micro-batch (bf16, flash attention, no dropout):
    2 s b (7 h + 2 kv_dim + 3 ffn) bytes, over tp with sequence parallelism and over cp; 1f1b keeps
    min(pp, grad_accum) micro-batches in flight on the first stage; plus fp32 logits s b V / tp.
    With full recompute only each layer's input (2 s b h) is kept, plus one layer recomputed at a time.
    """
    n = param_count(m) / (tp * pp)
    width = 2 if m.dtype == "bfloat16" else 4
    weights = n * width
    grads = n * (4 if fp32_grads or width == 4 else 2)
    optim = n * (12 if width == 2 else 8) / (dp if zero_stage >= 1 or shard_all else 1)
    if shard_all:
        weights, grads = weights / dp, grads / dp
    s = seq / cp
    act_div = tp if sequence_parallel else 1
    kv = m.num_key_value_heads * m.head_dim
    per_layer = 2 * s * mbs * (7 * m.hidden_size + 2 * kv + 3 * m.intermediate_size) / act_div
    layers = m.num_hidden_layers / pp
    inflight = min(pp, grad_accum)
    logits = 4 * s * mbs * m.vocab_size / tp
    act = per_layer * layers * inflight + logits
    act_rc = 2 * s * mbs * m.hidden_size / act_div * layers * inflight + per_layer + logits
    base = weights + grads + optim
    return dict(weights=weights / GB, grads=grads / GB, optimizer=optim / GB, activations=act / GB,
                activations_recompute=act_rc / GB, total=(base + act) / GB, total_recompute=(base + act_rc) / GB)


# Bytes per parameter of a nanotron checkpoint: the weights in the model dtype, plus the optimizer's fp32 master
# weights and Adam's two fp32 moments (12 bytes), sharded across ranks but summed on disk.
OPTIMIZER_BYTES_PER_PARAM = 12


def checkpoint_disk(r, params: int, steps: int) -> dict:
    """A nanotron stage's checkpoints: size of one, how many it writes (every `interval` steps of the stage),
    how many `keep_last` leaves, and the disk they take (decimal GB)."""
    each = params * ({"bfloat16": 2, "float32": 4}[r.model.dtype] + OPTIMIZER_BYTES_PER_PARAM) / 1e9
    written = steps // r.checkpoints.interval
    kept = written if r.checkpoints.keep_last is None else min(written, r.checkpoints.keep_last)
    return {"checkpoint_gb": each, "checkpoints_written": written, "checkpoints_kept": kept,
            "checkpoint_disk_gb": each * kept, "keep_last": r.checkpoints.keep_last}


def plan_row(r, *, mfu: float, peak_tflops: Optional[float]) -> dict:
    """One planner row (keys of `python -m recipes plan --json`)."""
    d = derived(r)
    peak = peak_tflops or r.cluster.peak_tflops
    row = dict(stage=r.stage, kind=r.kind, seq_len=None, micro_batch_size=None, grad_accum=None, dp=None,
               tp=None, pp=None, cp=None, gpus=None, nodes=None, global_batch_seqs=None,
               global_batch_tokens=None, steps=None, tokens=None, params=d.params,
               rope_theta=r.model.rope_theta, lr=None, flops=None, gpu_hours=None, memory_gb_per_gpu=None,
               memory=None, gpu_memory_gb=r.cluster.gpu_memory_gb, fits_gpu_memory=None)
    if isinstance(r, NanotronStage):
        p, b = r.parallelism, r.batch
        mem = memory_gb(r.model, tp=p.tp, pp=p.pp, dp=p.dp, cp=p.cp, seq=b.sequence_length,
                        mbs=b.micro_batch_size, grad_accum=d.grad_accum, zero_stage=p.zero_stage,
                        fp32_grads=r.optimizer.accumulate_grad_in_fp32,
                        sequence_parallel=p.tp_mode == "reduce_scatter")
        flops = d.tokens * flops_per_token(r.model, b.sequence_length)
        row.update(seq_len=b.sequence_length, micro_batch_size=b.micro_batch_size, grad_accum=d.grad_accum,
                   dp=p.dp, tp=p.tp, pp=p.pp, cp=p.cp, gpus=d.gpus, nodes=d.nodes,
                   global_batch_seqs=d.global_batch_seqs, global_batch_tokens=b.global_batch_tokens,
                   steps=d.steps, tokens=d.tokens, lr=r.optimizer.lr, flops=flops,
                   gpu_hours=flops / (peak * 1e12 * mfu) / 3600,
                   memory_gb_per_gpu=mem["total_recompute" if p.recompute_layer else "total"], memory=mem,
                   first_step=d.first_step, last_step=d.last_step,
                   decay_start_step=d.decay_start_step, decay_steps=d.decay_steps,
                   checkpoints=checkpoint_disk(r, d.params, d.steps))
    elif isinstance(r, TrlStage):
        mem = memory_gb(r.model, tp=1, pp=1, dp=d.gpus, cp=1, seq=r.max_length,
                        mbs=r.per_device_train_batch_size, grad_accum=d.grad_accum, zero_stage=1,
                        fp32_grads=True, sequence_parallel=False, shard_all=True)
        row.update(seq_len=r.max_length, micro_batch_size=r.per_device_train_batch_size,
                   grad_accum=d.grad_accum, dp=d.gpus, tp=1, pp=1, cp=1, gpus=d.gpus, nodes=d.nodes,
                   global_batch_seqs=r.global_batch_size, global_batch_tokens=r.global_batch_size * r.max_length,
                   steps=r.max_steps, lr=r.lr,
                   memory_gb_per_gpu=mem["total_recompute" if r.gradient_checkpointing else "total"], memory=mem)
    if row["memory_gb_per_gpu"] is not None:
        row["fits_gpu_memory"] = row["memory_gb_per_gpu"] <= r.cluster.gpu_memory_gb
    return row
