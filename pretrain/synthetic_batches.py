"""Synthetic packed batches for nanotron models that take per-document position ids (tests, smoke runs).

Usage:
    batches = synthetic_batches(micro_batch_size=2, sequence_length=64, vocab_size=256,
                                parallel_context=trainer.parallel_context,
                                input_pp_rank=model.input_pp_rank, output_pp_rank=model.output_pp_rank)
    trainer.train(batches)

Each row packs several short "documents" (arithmetic token sequences over the first `symbols` ids, so
a model learns them within a few steps); position ids restart at 0 at every document start. The global batch of
a step depends only on (seed, step, global batch size): data-parallel ranks take consecutive slices of it, tensor-
parallel ranks get identical copies, pipeline ranks get only the keys their stage consumes.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Sequence, Tuple

import torch

BATCH_KEYS = ("input_ids", "position_ids", "input_mask", "label_ids", "label_mask")
INPUT_KEYS = ("input_ids", "position_ids", "input_mask")


def pack_documents(documents: Sequence[Sequence[int]], length: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Concatenate documents into one row of `length` tokens (the last one truncated) with
    per-document positions. Returns (tokens, positions), both int64 [length]."""
    tokens: List[int] = []
    positions: List[int] = []
    for doc in documents:
        tokens.extend(doc)
        positions.extend(range(len(doc)))
        if len(tokens) >= length:
            break
    if len(tokens) < length:
        raise ValueError(f"documents hold {len(tokens)} tokens, fewer than the row length {length}")
    return torch.tensor(tokens[:length]), torch.tensor(positions[:length])


def random_documents(generator: torch.Generator, n_tokens: int, symbols: int, min_len: int, max_len: int):
    """Documents of random length whose tokens follow (start + stride * t) % symbols, stride in 1..3."""
    docs, total = [], 0
    while total < n_tokens:
        length = int(torch.randint(min_len, max_len + 1, (1,), generator=generator))
        start = int(torch.randint(0, symbols, (1,), generator=generator))
        stride = int(torch.randint(1, 4, (1,), generator=generator))
        docs.append([(start + stride * t) % symbols for t in range(length)])
        total += length
    return docs


def collate(tokens: torch.Tensor, positions: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Rows of sequence_length + 1 tokens -> the nanotron batch dict (next-token labels)."""
    return {
        "input_ids": tokens[:, :-1].contiguous(),
        "position_ids": positions[:, :-1].contiguous(),
        "input_mask": torch.ones_like(tokens[:, :-1], dtype=torch.bool),
        "label_ids": tokens[:, 1:].contiguous(),
        "label_mask": torch.ones_like(tokens[:, 1:], dtype=torch.bool),
    }


def global_batch(step: int, batch_size: int, sequence_length: int, vocab_size: int, seed: int = 0,
                 min_doc_len: int = 4, max_doc_len: int = 24, symbols: int = 32) -> Dict[str,
                                                                                         torch.Tensor]:  # fmt: skip
    """The whole batch of one step (all data-parallel ranks), as CPU tensors."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + step) % 2**63)
    symbols = min(symbols, vocab_size)
    rows = [
        pack_documents(
            random_documents(generator, sequence_length + 1, symbols, min_doc_len, max_doc_len), sequence_length + 1
        )
        for _ in range(batch_size)
    ]
    return collate(torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows]))


def synthetic_batches(
    micro_batch_size: int,
    sequence_length: int,
    vocab_size: int,
    parallel_context,
    input_pp_rank: int = 0,
    output_pp_rank: int = 0,
    seed: int = 0,
    min_doc_len: int = 4,
    max_doc_len: int = 24,
    symbols: int = 32,
) -> Iterator[Dict[str, object]]:
    """Endless micro-batches for this rank (see the module docstring)."""
    from nanotron import distributed as dist
    from nanotron.parallel.pipeline_parallel.tensor_pointer import TensorPointer

    dp_rank, dp_size = dist.get_rank(parallel_context.dp_pg), parallel_context.dp_pg.size()
    pp_rank = dist.get_rank(parallel_context.pp_pg)
    rows = slice(dp_rank * micro_batch_size, (dp_rank + 1) * micro_batch_size)
    step = 0
    while True:
        batch = global_batch(
            step, micro_batch_size * dp_size, sequence_length, vocab_size, seed, min_doc_len, max_doc_len, symbols
        )
        yield {
            key: value[rows]
            if pp_rank == (input_pp_rank if key in INPUT_KEYS else output_pp_rank)
            else TensorPointer(group_rank=input_pp_rank if key in INPUT_KEYS else output_pp_rank)
            for key, value in batch.items()
        }
        step += 1
