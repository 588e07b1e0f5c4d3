"""The pretraining dataloader: micro-batches of a stage's mixture for one rank, resumable exactly.

Sample j of a stage is `MixtureSampler.sample(j)` (seq_len + 1 tokens) with its per-document positions.
Step t of the stage (0-based) consumes the global batch of samples [t * B, (t + 1) * B), B = dp x micro
batch x grad accumulation; micro-batch a of data-parallel rank r takes the slice
[t * B + (a * dp + r) * mbs, ... + mbs). Tensor-parallel ranks get identical copies; pipeline ranks get
only the keys their stage consumes (TensorPointer elsewhere). Starting at any consumed-sample count gives
the same batches an uninterrupted run would have seen, so a resumed run is exact.

Usage:
    loader = mixture_batches(sampler, start_sample=trainer.consumed_train_samples - samples_before_stage,
                             micro_batch_size=4, grad_accum=2, parallel_context=trainer.parallel_context,
                             input_pp_rank=model.input_pp_rank, output_pp_rank=model.output_pp_rank)
    trainer.train(loader)
"""
from __future__ import annotations

from typing import Dict, Iterator

import numpy as np
import torch

from pretrain.synthetic_batches import INPUT_KEYS, collate


def micro_batch(sampler, first: int, size: int) -> Dict[str, torch.Tensor]:
    tokens = np.stack([sampler.sample(i) for i in range(first, first + size)])
    positions = np.stack([sampler.positions(i) for i in range(first, first + size)])
    return collate(torch.from_numpy(tokens.astype(np.int64)), torch.from_numpy(positions.astype(np.int64)))


def mixture_batches(sampler, *, start_sample: int, micro_batch_size: int, grad_accum: int, parallel_context,
                    input_pp_rank: int = 0, output_pp_rank: int = 0) -> Iterator[Dict[str, object]]:
    from nanotron import distributed as dist
    from nanotron.parallel.pipeline_parallel.tensor_pointer import TensorPointer

    dp_rank, dp = dist.get_rank(parallel_context.dp_pg), parallel_context.dp_pg.size()
    pp_rank = dist.get_rank(parallel_context.pp_pg)
    global_batch = dp * micro_batch_size * grad_accum
    if start_sample % global_batch:
        raise ValueError(f"start sample {start_sample} is not a multiple of the global batch {global_batch}")
    step = start_sample // global_batch
    while True:
        for a in range(grad_accum):
            first = step * global_batch + (a * dp + dp_rank) * micro_batch_size
            batch = micro_batch(sampler, first, micro_batch_size)
            yield {key: value if pp_rank == (input_pp_rank if key in INPUT_KEYS else output_pp_rank)
                   else TensorPointer(group_rank=input_pp_rank if key in INPUT_KEYS else output_pp_rank)
                   for key, value in batch.items()}
        step += 1
