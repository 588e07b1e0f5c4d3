"""Benchmark: CPU time per training step of the nanotron path vs plain transformers + torch AdamW.

Both sides train the tiny recipe's model (SmolLM3, GQA, NoPE every 4th layer, tied embeddings) on the same
batch of packed documents from the tiny mixture, in one process: nanotron's trainer step (this repo's
SmolLM3 model, compatibility layer, grouped AdamW, gradient clipping, LR schedule) against
`SmolLM3ForCausalLM` + `torch.optim.AdamW` (forward, backward, clip, step). The two sides are interleaved in
one process: `--repeats` rounds, each a block of `--block` transformers steps then a block of nanotron steps
(run from inside nanotron's training loop, between two of its steps), so a slower moment of a shared machine
falls on both. Printed: the median of the per-round ratios (median step time of each block) with their spread
(target <= 1.0). Needs the tiny data (`make data`).

Usage: .venv/bin/python bench/train_step.py [--repeats 7] [--block 4] [--warmup 3] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# isort: split
import pretrain.nanotron_compat  # noqa: F401,E402

# isort: split
import torch  # noqa: E402
from rounds import report  # noqa: E402  (bench/rounds.py, beside this script)

from pretrain.data.mixture import MixtureSampler  # noqa: E402
from pretrain.dataloader import micro_batch  # noqa: E402
from pretrain.nanotron_config import nanotron_config  # noqa: E402
from pretrain.train_checks import token_ids  # noqa: E402
from pretrain.train_stage import StageTrainer  # noqa: E402
from recipes.loader import load_stage  # noqa: E402
from smollm3.hf_config import SmolLM3Config as NanotronSmolLM3Config  # noqa: E402

ONE_PROCESS = ["parallelism.dp=1", "parallelism.tp=1", "batch.global_batch_tokens=1024",
               "steps.train_steps=10000", "lr_schedule.warmup_steps=10"]  # 1 micro-batch of 4 x 256 per step


def cpu_times(fn, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        t0 = time.process_time()
        fn()
        out.append(time.process_time() - t0)
    return out


class TimedTrainer(StageTrainer):
    """Records the CPU time of every training step (forward, backward, optimizer, schedule); `between(i)` runs
    before step i, outside the timing."""

    def post_init(self):
        super().post_init()
        self.step_cpu = []
        self.between = None

    def training_step(self, dataloader):
        if self.between is not None:
            self.between(len(self.step_cpu))
        t0 = time.process_time()
        out = super().training_step(dataloader)
        self.step_cpu.append(time.process_time() - t0)
        return out


def interleaved(recipe, batch, tmp: Path, hf_step, repeats: int, block: int, warmup: int):
    """[(transformers block times, nanotron block times)] per round (see the module doc)."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="localhost", MASTER_PORT=str(port))
    ids, _ = token_ids(recipe)
    config = nanotron_config(recipe, checkpoints_dir=tmp / "ckpt", token_ids=ids)
    config.tokens.train_steps = warmup + repeats * block
    config.checkpoints.checkpoint_interval = 10**9
    config.logging.log_level = "error"
    config.logging.iteration_step_info_interval = 10**9
    config.save_as_yaml(tmp / "config.yaml")
    trainer = TimedTrainer(str(tmp / "config.yaml"))
    hf_blocks = []

    def between(i: int) -> None:  # before nanotron's step i: a transformers block at the start of each round
        if i == 0:
            cpu_times(hf_step, warmup)
        if i >= warmup and (i - warmup) % block == 0:
            hf_blocks.append(cpu_times(hf_step, block))

    def loader():
        while True:
            yield batch

    trainer.between = between
    trainer.train(loader())
    nt = trainer.step_cpu[warmup:]
    return [(hf_blocks[r], nt[r * block:(r + 1) * block]) for r in range(repeats)]


def hf_step_fn(recipe, batch):
    from transformers import SmolLM3Config, SmolLM3ForCausalLM

    ids, _ = token_ids(recipe)
    cfg = SmolLM3Config(**NanotronSmolLM3Config.from_recipe(recipe.model, ids).to_hf_dict())
    model = SmolLM3ForCausalLM(cfg).train()
    o = recipe.optimizer
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps,
                            weight_decay=o.weight_decay)
    inputs, labels = batch["input_ids"], batch["label_ids"]

    def step():
        logits = model(input_ids=inputs, position_ids=batch["position_ids"]).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), o.clip_grad)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--block", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import tempfile

    recipe = load_stage(REPO / "recipes/tiny/pretrain-stage1.yaml", ONE_PROCESS)
    sampler = MixtureSampler.from_stage(recipe)
    batch = micro_batch(sampler, 0, recipe.batch.micro_batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        rounds = interleaved(recipe, batch, Path(tmp), hf_step_fn(recipe, batch), args.repeats, args.block,
                             args.warmup)
    tokens = batch["input_ids"].numel()
    print(f"batch: {tuple(batch['input_ids'].shape)} = {tokens} tokens, {args.threads} threads, {args.repeats} "
          f"rounds of {args.block} + {args.block} interleaved steps after {args.warmup} warm-up")
    report(rounds, ("transformers + AdamW", "nanotron (this repo)"), 1.0, "nanotron / transformers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
