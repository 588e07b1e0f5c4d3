"""The pretraining dataloader: micro-batches of a stage's mixture for one rank, resumable exactly.

Sample j of a stage is `MixtureSampler.sample(j)` (seq_len + 1 tokens) with its per-document positions.
Step t of the stage (0-based) consumes the global batch of samples [t * B, (t + 1) * B), B = dp x micro
batch x grad accumulation; micro-batch a of data-parallel rank r takes the slice
[t * B + (a * dp + r) * mbs, ... + mbs). Tensor-parallel ranks get identical copies; pipeline ranks get
only the keys their stage consumes (TensorPointer elsewhere). Starting at any consumed-sample count gives
the same batches an uninterrupted run would have seen, so a resumed run is exact. A background thread reads
the next micro-batches while the current one trains (`prefetched`), in the same order.

Usage:
    loader = mixture_batches(sampler, start_sample=trainer.consumed_train_samples - samples_before_stage,
                             micro_batch_size=4, grad_accum=2, parallel_context=trainer.parallel_context,
                             input_pp_rank=model.input_pp_rank, output_pp_rank=model.output_pp_rank)
    trainer.train(loader)
"""
from __future__ import annotations

import collections
import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterator

import numpy as np
import torch

from pretrain.synthetic_batches import INPUT_KEYS, collate

PREFETCH = 2  # micro-batches read ahead of the training step


def micro_batch(sampler, first: int, size: int) -> Dict[str, torch.Tensor]:
    rows = [sampler[i] for i in range(first, first + size)]  # each sample located once: tokens and positions
    tokens = np.stack([r["tokens"] for r in rows])
    positions = np.stack([r["positions"] for r in rows])
    return collate(torch.from_numpy(tokens.astype(np.int64)), torch.from_numpy(positions.astype(np.int64)))


def prefetched(make, keys: Iterator, depth: int = PREFETCH) -> Iterator:
    """make(key) for each key, in order, computed `depth` keys ahead by one background thread (reading the
    memory-mapped token files and numpy's work release the GIL), so the training step does not wait for its
    batch. The order, and so every batch, is the same as without it."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        pending = collections.deque(pool.submit(make, k) for k in itertools.islice(keys, depth))
        while pending:
            batch = pending.popleft().result()
            nxt = next(keys, None)
            if nxt is not None:
                pending.append(pool.submit(make, nxt))
            yield batch


def mixture_batches(sampler, *, start_sample: int, micro_batch_size: int, grad_accum: int, parallel_context,
                    input_pp_rank: int = 0, output_pp_rank: int = 0) -> Iterator[Dict[str, object]]:
    from nanotron import distributed as dist
    from nanotron.parallel.pipeline_parallel.tensor_pointer import TensorPointer

    dp_rank, dp = dist.get_rank(parallel_context.dp_pg), parallel_context.dp_pg.size()
    pp_rank = dist.get_rank(parallel_context.pp_pg)
    global_batch = dp * micro_batch_size * grad_accum
    if start_sample % global_batch:
        raise ValueError(f"start sample {start_sample} is not a multiple of the global batch {global_batch}")
    first_step = start_sample // global_batch
    firsts = (step * global_batch + (a * dp + dp_rank) * micro_batch_size
              for step in itertools.count(first_step) for a in range(grad_accum))
    for batch in prefetched(lambda first: micro_batch(sampler, first, micro_batch_size), firsts):
        yield {key: value if pp_rank == (input_pp_rank if key in INPUT_KEYS else output_pp_rank)
               else TensorPointer(group_rank=input_pp_rank if key in INPUT_KEYS else output_pp_rank)
               for key, value in batch.items()}
