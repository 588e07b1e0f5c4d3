"""Benchmark: tokens per second per GPU and MFU of the smollm3-3b shape at sequence 4096 on one GPU.

Trains the published architecture (36 layers, hidden 2048, GQA 16/4, NoPE every 4th layer, document
masking, bf16 with fp32 gradient accumulation) through this repository's nanotron path on one GPU
(dp = tp = pp = 1) on random packed documents, and reports tokens/s and model FLOPs utilization
(FLOPs per token from recipes.derive.flops_per_token: 6 N + 6 L s h, over the GPU's dense bf16 peak).
Reference points: the published run averaged about 14,000 tokens/s per H100 (11.2T tokens, 384 GPUs,
24 days), about 31% MFU by this count; the target is >= 40%.

Usage: .venv/bin/python bench/gpu_throughput.py [--micro-batch 1] [--steps 10] [--warmup 3] [--peak-tflops 989]
Needs a CUDA GPU with flash-attn installed (requirements-gpu.txt).
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--micro-batch", type=int, default=1)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--peak-tflops", type=float, default=None, help="default: the recipe's cluster.peak_tflops")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("bench/gpu_throughput.py: needs a CUDA GPU (none found)", file=sys.stderr)
        return 2
    import pretrain.nanotron_compat  # noqa: F401
    from pretrain.nanotron_config import nanotron_config
    from pretrain.synthetic_batches import synthetic_batches
    from pretrain.train_stage import StageTrainer
    from recipes.derive import flops_per_token
    from recipes.loader import load_stage

    seq = 4096
    recipe = load_stage(REPO / "recipes/smollm3-3b/pretrain-stage1.yaml", [
        "parallelism.dp=1", "parallelism.tp=1", f"batch.micro_batch_size={args.micro_batch}",
        f"batch.global_batch_tokens={args.micro_batch * args.grad_accum * seq}",
        "tokenizer.kind=hub"])
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="localhost", MASTER_PORT=str(port))
    times = []

    class Timed(StageTrainer):
        def training_step(self, dataloader):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = super().training_step(dataloader)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            return out

    with tempfile.TemporaryDirectory() as tmp:
        config = nanotron_config(recipe, checkpoints_dir=Path(tmp) / "ckpt",
                                 token_ids={"bos": 128000, "eos": 128001, "pad": None})
        config.tokens.train_steps = args.warmup + args.steps
        config.checkpoints.checkpoint_interval = 10**9
        config.save_as_yaml(Path(tmp) / "config.yaml")
        trainer = Timed(str(Path(tmp) / "config.yaml"))
        model = trainer.unwrapped_model
        trainer.train(synthetic_batches(micro_batch_size=args.micro_batch, sequence_length=seq,
                                        vocab_size=recipe.model.vocab_size, parallel_context=trainer.parallel_context,
                                        input_pp_rank=model.input_pp_rank, output_pp_rank=model.output_pp_rank,
                                        min_doc_len=512, max_doc_len=4096, symbols=recipe.model.vocab_size))
    step = sum(times[args.warmup:]) / len(times[args.warmup:])
    tokens = args.micro_batch * args.grad_accum * seq
    tps = tokens / step
    peak = (args.peak_tflops or recipe.cluster.peak_tflops) * 1e12
    mfu = tps * flops_per_token(recipe.model, seq) / peak
    print(f"{torch.cuda.get_device_name()}: {tokens} tokens/step, {step * 1e3:.0f} ms/step, "
          f"{tps:,.0f} tokens/s/GPU, MFU {mfu:.1%} of {peak / 1e12:g} TFLOPS "
          f"(published run: ~14,000 tokens/s/GPU, ~31%; target >= 40%); "
          f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
