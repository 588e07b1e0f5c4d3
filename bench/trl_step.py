"""Benchmark: CPU time per mid-training step of the TRL path vs a plain transformers + AdamW loop on the same
packed batches, and the packing efficiency (real tokens / packed slots) of TRL's packing.

The TRL side is this repository's mid-training configuration (posttrain/trl_config.py, `SFTTrainer`, the tiny
recipe's ChatML conversations, bfd packing) on a fresh tiny SmolLM3; the plain side takes the very batches
TRL's dataloader produces and runs forward, backward, gradient clipping and `torch.optim.AdamW` on a copy of
the same model. One micro-batch per step on both sides. To show where a difference comes from, the plain loop
also runs with TRL 1.16's own loss head (`add_fused_lm_head`, which SFTTrainer installs to compute log-probs,
entropy and top-1 accuracy in tiles), with and without the entropy it logs. Packing efficiency is measured on the tiny
conversations and on a synthetic long-tailed (log-normal) length distribution. Needs `make data` (tokenizer).

The headline ratio interleaves the two sides in one process: `--repeats` rounds, each a block of `--block` plain
steps (run from a TrainerCallback between two TRL steps, outside their timing) then the next `--block` TRL steps
on the same batches; printed: the median of the per-round ratios with their spread (target <= 1.2). The loss-head
breakdown after it is one sequential run of each variant.

With `--shape smollm3` the model keeps the tiny vocabulary but takes SmolLM3-3B's proportions (width / MLP ratio,
query / key-value heads) at a depth that gives its LM head the share of the per-token matmul FLOPs it has in
SmolLM3-3B (computed from the smollm3-3b recipe: about 9 %, against 40 % for the tiny recipe's model). TRL's fused
LM head recomputes the head's logits in the backward pass, so its cost grows with that share: the tiny shape
measures it at four times the weight it has at scale.

Usage: .venv/bin/python bench/trl_step.py [--repeats 7] [--block 4] [--warmup 3] [--threads 2] [--shape tiny|smollm3]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def head_share(m) -> float:
    """The LM head's share of a model's per-token matmul FLOPs (6 N of recipes.derive: the parameters, attention
    scores aside; an untied input embedding is a lookup, not a matmul)."""
    from recipes.derive import param_count

    head = m.hidden_size * m.vocab_size
    return head / (param_count(m) - (0 if m.tie_word_embeddings else head))


def smollm3_model():
    from recipes.loader import load_stage

    return load_stage(REPO / "recipes/smollm3-3b/midtrain.yaml").model


def smollm3_proportions(tiny, big, hidden: int = 256, head_dim: int = 32) -> list[str]:
    """Model overrides for the tiny recipe: SmolLM3-3B's (`big`) MLP ratio and query / key-value head ratio at
    `hidden`, and the depth (a multiple of its NoPE interval) whose LM-head FLOP share is nearest SmolLM3-3B's."""
    heads = hidden // head_dim
    m = tiny.model.model_copy(update=dict(
        hidden_size=hidden, intermediate_size=round(hidden * big.intermediate_size / big.hidden_size),
        num_attention_heads=heads, num_key_value_heads=heads * big.num_key_value_heads // big.num_attention_heads))
    step = big.no_rope_layer_interval
    depth = min(range(step, 65, step), key=lambda n: abs(head_share(m.model_copy(update={"num_hidden_layers": n}))
                                                         - head_share(big)))
    return [f"model.{k}={getattr(m, k)}" for k in ("hidden_size", "intermediate_size", "num_attention_heads",
                                                    "num_key_value_heads")] + [f"model.num_hidden_layers={depth}"]


def trl_trainer(recipe, tmp: str, steps: int, callback):
    import torch
    from transformers import AutoTokenizer, SmolLM3Config, SmolLM3ForCausalLM
    from trl import SFTTrainer

    from posttrain.chat_template import CHATML
    from posttrain.mixture import mixture
    from posttrain.trl_config import trl_config
    from pretrain.data.tokenizer import tokenizer_dir
    from smollm3.hf_config import SmolLM3Config as Ours

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir(recipe)))
    tok.chat_template, tok.eos_token = CHATML, recipe.eos_token
    ids = {"bos": tok.bos_token_id, "eos": tok.eos_token_id, "pad": tok.pad_token_id}
    torch.manual_seed(0)
    model = SmolLM3ForCausalLM(SmolLM3Config(**Ours.from_recipe(recipe.model, ids).to_hf_dict()))
    config = trl_config(recipe, cuda=False, output_dir=tmp)
    config.max_steps, config.save_strategy, config.logging_steps = steps, "no", 10**9

    trainer = SFTTrainer(model=model, args=config, train_dataset=mixture(recipe), processing_class=tok,
                         callbacks=[callback])
    return trainer, copy.deepcopy(model)


def interleaving_timer(warmup: int, block: int):
    """A TrainerCallback timing each TRL step; before the step that opens a round it runs `self.plain`'s block on
    the batches of that round's TRL steps (set `plain` and `batches` before training)."""
    from transformers import TrainerCallback

    class Interleave(TrainerCallback):
        def __init__(self):
            self.cpu, self.plain_blocks, self.plain, self.batches = [], [], None, []

        def on_step_begin(self, args, state, control, **kw):
            i = state.global_step
            if i == 0:
                for b in self.batches[:warmup]:
                    self.plain.step(b)
            if i >= warmup and (i - warmup) % block == 0:
                self.plain_blocks.append([self.plain.step(b) for b in self.batches[i:i + block]])
            self.t0 = time.process_time()

        def on_step_end(self, *a, **k):
            self.cpu.append(time.process_time() - self.t0)

    return Interleave()


class PlainLoop:
    """Forward, backward, clipping and AdamW on a copy of `model`; `step(batch)` -> its CPU seconds. `head`:
    compute the loss as TRL 1.16 does, through its fused LM head (trl.trainer.utils.add_fused_lm_head) with these
    extra per-token outputs (SFTTrainer asks for entropy and is_top1, for its logged metrics); () = transformers'
    own loss."""

    def __init__(self, model, recipe, head: tuple = ()):
        import torch

        self.model, self.head, self.clip = copy.deepcopy(model), head, recipe.max_grad_norm
        if head:
            from trl.trainer.utils import add_fused_lm_head

            add_fused_lm_head(self.model, outputs=("log_probs", *head))
        self.model.train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=recipe.lr)

    def step(self, batch) -> float:
        import torch

        t0 = time.process_time()
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "labels", "position_ids")}
        if self.head:
            loss = self.model(**inputs, use_cache=False, fused_lm_head=True).loss
        else:
            loss = self.model(**inputs, use_cache=False).loss  # as TRL: no cache, so packed documents stay apart
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return time.process_time() - t0


def plain_cpu_per_step(model, batches, recipe, warmup: int, head: tuple = ()) -> float:
    """Median CPU seconds per step of a PlainLoop over `batches` after `warmup` of them."""
    loop = PlainLoop(model, recipe, head)
    return statistics.median([loop.step(b) for b in batches][warmup:])


def long_tailed_efficiency(seq_len: int, n: int = 4000, seed: int = 0) -> float:
    import numpy as np
    from datasets import Dataset
    from trl.data_utils import pack_dataset

    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(mean=np.log(seq_len / 6), sigma=1.0, size=n), 8, seq_len).astype(int)
    ds = Dataset.from_dict({"input_ids": [list(range(k)) for k in lengths]})
    packed = pack_dataset(ds, seq_len, strategy="bfd")
    return sum(len(x) for x in packed["input_ids"]) / (len(packed) * seq_len)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--block", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shape", choices=("tiny", "smollm3"), default="tiny",
                    help="the tiny recipe's model, or SmolLM3-3B's proportions with the tiny vocabulary")
    args = ap.parse_args()
    import torch

    from posttrain.trl_stage import packing_efficiency
    from recipes.loader import load_stage

    torch.set_num_threads(args.threads)
    path = REPO / "recipes/tiny/midtrain.yaml"
    big = smollm3_model()
    shape = smollm3_proportions(load_stage(path), big) if args.shape == "smollm3" else []
    recipe = load_stage(path, ["global_batch_size=4", *shape])  # 1 micro-batch per step
    steps = args.warmup + args.repeats * args.block
    timer = interleaving_timer(args.warmup, args.block)
    with tempfile.TemporaryDirectory() as tmp:
        trainer, plain_model = trl_trainer(recipe, tmp, steps, timer)
        batches = []
        for batch in trainer.get_train_dataloader():
            batches.append(batch)
            if len(batches) == steps:
                break
        timer.plain, timer.batches = PlainLoop(plain_model, recipe), batches
        trainer.train()
        trl_times, plain_blocks = timer.cpu[args.warmup:], timer.plain_blocks
        rounds = [(plain_blocks[r], trl_times[r * args.block:(r + 1) * args.block]) for r in range(args.repeats)]
        fused = plain_cpu_per_step(plain_model, batches, recipe, args.warmup, head=("entropy", "is_top1"))
        fused_bare = plain_cpu_per_step(plain_model, batches, recipe, args.warmup, head=("is_top1",))
        plain_seq = plain_cpu_per_step(plain_model, batches, recipe, args.warmup)
        tiny_eff = packing_efficiency(trainer.train_dataset, recipe.max_length)
    tokens = batches[0]["input_ids"].numel()
    m = recipe.model
    print(f"model: {args.shape} shape, hidden {m.hidden_size}, MLP {m.intermediate_size}, {m.num_hidden_layers} "
          f"layers, {m.num_attention_heads} / {m.num_key_value_heads} heads, vocabulary {m.vocab_size}: LM head "
          f"{head_share(m):.0%} of the matmul FLOPs per token (SmolLM3-3B: "
          f"{head_share(big):.0%})")
    print(f"batch: {tuple(batches[0]['input_ids'].shape)} = {tokens} packed tokens, {args.threads} threads, "
          f"{args.repeats} rounds of {args.block} + {args.block} interleaved steps after {args.warmup} warm-up")
    from rounds import report  # bench/rounds.py, beside this script

    report(rounds, ("transformers + AdamW", "TRL SFTTrainer"), 1.2, f"TRL / plain ({args.shape} shape)")
    trl = statistics.median(trl_times)
    print("loss-head breakdown (one sequential run each, after the interleaved rounds):")
    print(f"  transformers + AdamW                                : {plain_seq * 1e3:8.1f} ms")
    print(f"  + TRL's fused LM head (log-probs, is_top1)          : {fused_bare * 1e3:8.1f} ms")
    print(f"  + TRL's fused LM head (log-probs, entropy, is_top1) : {fused * 1e3:8.1f} ms  (what SFTTrainer computes)")
    print(f"  TRL's loss head / plain: {fused / plain_seq:.2f} (its entropy metric alone: {fused / fused_bare:.2f}); "
          f"the Trainer around it: {trl / fused:.2f}")
    print(f"packing efficiency (bfd): tiny conversations {tiny_eff:.3f}; long-tailed synthetic lengths "
          f"{long_tailed_efficiency(recipe.max_length):.3f}  (target >= 0.95)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
