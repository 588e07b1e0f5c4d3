"""Local conversations for the tiny recipe's TRL stages (no Hub): `builtin:reasoning-chats`.

Each conversation is a user problem and an assistant answer that reasons first, in SmolLM3's think format:
`<think>\n...worked steps...\n</think>\n` then the answer line. The problems come from the seeded reasoning
generators of the pretraining corpora (pretrain/data/corpora.py: bubble sort, Euclid, Collatz, running
totals, linear systems) with seeds of their own; the `test` split holds problems that appear in no `train`
conversation, for held-out losses.

Usage: dataset("reasoning-chats", "train") -> datasets.Dataset with columns id, messages
"""
from __future__ import annotations

import random

SPLITS = {"train": (20251202, 400), "test": (20251203, 60)}  # seed, number of conversations
NAMES = ("reasoning-chats",)


def _conversation(trace: str) -> list[dict]:
    problem, _, rest = trace.partition("\n\nReasoning:\n")
    steps, _, answer = rest.rpartition("\nAnswer: ")
    user = problem.removeprefix("Problem: ").strip()
    return [{"role": "user", "content": user},
            {"role": "assistant", "content": f"<think>\n{steps.strip()}\n</think>\nAnswer: {answer.strip()}"}]


def conversations(split: str) -> list[dict]:
    from pretrain.data.corpora import TRACES

    seed, n = SPLITS[split]
    r = random.Random(seed)
    held_out = {c["messages"][0]["content"] for c in conversations("train")} if split == "test" else set()
    out, seen = [], set(held_out)
    while len(out) < n:
        kind = r.choice(TRACES)
        messages = _conversation(kind(r, r.randint(3, 6)))
        if messages[0]["content"] in seen:
            continue
        seen.add(messages[0]["content"])
        out.append({"id": f"{split}-{len(out):04d}-{kind.__name__[4:]}", "messages": messages})
    return out


def dataset(name: str, split: str):
    from datasets import Dataset

    if name not in NAMES or split not in SPLITS:
        raise KeyError(f"builtin:{name} split {split}")
    return Dataset.from_list(conversations(split))
