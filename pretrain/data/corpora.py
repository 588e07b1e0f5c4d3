"""Built-in corpora of the tiny recipe: local material that needs no network.

A mixture source with `builtin: <name>` is generated here by the data stage, as jsonl shards of documents
`{"text", "id", "metadata"}` (the layout datatrove's JsonlReader reads). Every document's metadata records
where it comes from and under which license, so the tokenized data stays traceable.

  pydoc_topics        Python's documentation topics (`pydoc_data.topics`), English prose        PSF-2.0
  stdlib_code         the standard library's top-level `.py` files                              PSF-2.0
  math_word_problems  generated word problems with worked solutions (seeded, deterministic)     CC0-1.0
  reasoning_traces    generated step-by-step reasoning traces, long (~300-1500 tokens)          CC0-1.0

Generation is deterministic for a given Python version (the first two read the running interpreter's files).
"""
from __future__ import annotations

import json
import os
import random
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

GENERATOR_VERSION = 1  # bump when a generator changes: the data stage then rebuilds the corpus
PY = f"{sys.version_info[0]}.{sys.version_info[1]}"


@dataclass(frozen=True)
class Builtin:
    name: str
    license: str
    origin: str
    generate: Callable[[], Iterator[tuple[str, str, dict]]]  # yields (id suffix, text, extra metadata)


# -------------------------------------------------------------------------------------------- prose / code
def _pydoc_topics():
    from pydoc_data.topics import topics

    for key in sorted(topics):
        text = topics[key].strip()
        if text:
            yield key, text, {"title": key}


MAX_CODE_FILE_CHARS = 60_000  # a handful of huge modules would dominate the small code corpus
MAX_CODE_CHARS = 1_500_000  # ~400k tokens: several times what the tiny stages draw, quick to tokenize


def _stdlib_code():
    root = Path(sysconfig.get_paths()["stdlib"])
    total = 0
    for path in sorted(root.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not text.strip() or len(text) > MAX_CODE_FILE_CHARS:
            continue
        if total + len(text) > MAX_CODE_CHARS:
            break
        total += len(text)
        yield path.name, text, {"file": f"Lib/{path.name}"}


# ----------------------------------------------------------------------------------- math word problems
NAMES = ["Ada", "Ben", "Chen", "Dara", "Eli", "Farah", "Gus", "Hana", "Ivo", "Jun", "Kemal", "Lena", "Mo",
         "Nia", "Omar", "Pia", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Vik", "Wen", "Yara", "Zoe"]
ITEMS = ["notebook", "apple", "pencil", "ticket", "mug", "plant", "book", "sticker", "lamp", "scarf"]


def _wp_change(r):
    name, item = r.choice(NAMES), r.choice(ITEMS)
    n, price = r.randint(2, 12), r.randint(2, 15)
    cost = n * price
    bill = next(b for b in (20, 50, 100, 200) if b >= cost)
    return (f"{name} buys {n} {item}s that cost ${price} each and pays with a ${bill} bill. "
            f"How much change does {name} get back?",
            [f"The {item}s cost {n} x ${price} = ${cost}.",
             f"The change is ${bill} - ${cost} = ${bill - cost}."], f"${bill - cost}")


def _wp_speed(r):
    name = r.choice(NAMES)
    speed, hours = r.randint(3, 90), r.randint(2, 9)
    extra = r.randint(1, 4)
    d1, d2 = speed * hours, speed * extra
    return (f"{name} travels at {speed} km per hour for {hours} hours, then keeps the same speed for another "
            f"{extra} hours. How far does {name} travel in total?",
            [f"In the first part {name} covers {speed} x {hours} = {d1} km.",
             f"In the second part {name} covers {speed} x {extra} = {d2} km.",
             f"In total that is {d1} + {d2} = {d1 + d2} km."], f"{d1 + d2} km")


def _wp_share(r):
    a, b = r.randint(1, 7), r.randint(1, 7)
    unit = r.randint(2, 30)
    total = (a + b) * unit
    n1, n2 = r.sample(NAMES, 2)
    return (f"{n1} and {n2} share {total} marbles in the ratio {a}:{b}. How many marbles does {n2} get?",
            [f"The ratio has {a} + {b} = {a + b} parts.",
             f"One part is {total} / {a + b} = {unit} marbles.",
             f"{n2} gets {b} x {unit} = {b * unit} marbles."], f"{b * unit}")


def _wp_percent(r):
    price = r.randint(4, 60) * 5
    pct = r.choice([10, 15, 20, 25, 30, 40, 50])
    off = price * pct // 100
    return (f"A jacket costs ${price}. It is on sale for {pct}% off. What is the sale price?",
            [f"The discount is {pct}% of ${price} = {pct}/100 x {price} = ${off}.",
             f"The sale price is ${price} - ${off} = ${price - off}."], f"${price - off}")


def _wp_rectangle(r):
    w, h = r.randint(2, 40), r.randint(2, 40)
    return (f"A garden is {w} m wide and {h} m long. What are its area and its perimeter?",
            [f"The area is {w} x {h} = {w * h} square metres.",
             f"The perimeter is 2 x ({w} + {h}) = 2 x {w + h} = {2 * (w + h)} m."],
            f"area {w * h} m^2, perimeter {2 * (w + h)} m")


def _wp_average(r):
    name = r.choice(NAMES)
    k = r.randint(3, 6)
    mean = r.randint(50, 95)
    scores = [mean + r.randint(-8, 8) for _ in range(k - 1)]
    scores.append(mean * k - sum(scores))
    return (f"{name}'s test scores are {', '.join(map(str, scores))}. What is the average score?",
            [f"The sum is {' + '.join(map(str, scores))} = {sum(scores)}.",
             f"There are {k} tests, so the average is {sum(scores)} / {k} = {mean}."], f"{mean}")


def _wp_ages(r):
    n1, n2 = r.sample(NAMES, 2)
    young, gap, years = r.randint(3, 30), r.randint(2, 30), r.randint(2, 15)
    old = young + gap
    return (f"{n1} is {gap} years older than {n2}. {n2} is {young} years old. "
            f"How old will {n1} be in {years} years?",
            [f"{n1} is now {young} + {gap} = {old} years old.",
             f"In {years} years {n1} will be {old} + {years} = {old + years}."], f"{old + years}")


def _wp_work(r):
    rate, machines, hours = r.randint(5, 40), r.randint(2, 8), r.randint(2, 10)
    per_hour = rate * machines
    return (f"A machine makes {rate} parts per hour. How many parts do {machines} machines make in {hours} hours?",
            [f"Together the machines make {machines} x {rate} = {per_hour} parts per hour.",
             f"In {hours} hours they make {per_hour} x {hours} = {per_hour * hours} parts."], f"{per_hour * hours}")


WORD_PROBLEMS = [_wp_change, _wp_speed, _wp_share, _wp_percent, _wp_rectangle, _wp_average, _wp_ages, _wp_work]
N_WORD_PROBLEMS = 2000


def _math_word_problems(seed: int = 20250708, n: int = N_WORD_PROBLEMS):
    r = random.Random(seed)
    for i in range(n):
        kind = WORD_PROBLEMS[i % len(WORD_PROBLEMS)]
        question, steps, answer = kind(r)
        text = (f"Problem: {question}\n\nSolution:\n" + "\n".join(f"Step {j + 1}: {s}" for j, s in enumerate(steps))
                + f"\n\nAnswer: {answer}\n")
        yield f"{i:05d}", text, {"template": kind.__name__[4:]}


# ------------------------------------------------------------------------------------ reasoning traces
def _rt_bubble_sort(r, size):
    xs = [r.randint(0, 99) for _ in range(size)]
    lines = [f"Problem: sort the list {xs} in increasing order with bubble sort, showing every swap.", "",
             "Reasoning:"]
    a, step, n = list(xs), 0, len(xs)
    for p in range(n - 1):
        swapped = False
        lines.append(f"Pass {p + 1} starts from {a}.")
        for i in range(n - 1 - p):
            step += 1
            if a[i] > a[i + 1]:
                a[i], a[i + 1] = a[i + 1], a[i]
                swapped = True
                lines.append(f"Step {step}: {a[i + 1]} > {a[i]}, so swap them: {a}.")
            else:
                lines.append(f"Step {step}: {a[i]} <= {a[i + 1]}, keep the order.")
        if not swapped:
            lines.append(f"No swap in pass {p + 1}, so the list is sorted.")
            break
    lines += ["", f"Check: each element is at most the next one, and the list still has {n} elements.",
              f"Answer: {a}"]
    return "\n".join(lines)


def _rt_euclid(r, size):
    g = r.randint(2, 50)
    a, b = g * r.randint(10 * size, 40 * size), g * r.randint(3, 9 * size)
    lines = [f"Problem: find the greatest common divisor of {a} and {b} with Euclid's algorithm.", "",
             "Reasoning:"]
    x, y, step = a, b, 0
    while y:
        step += 1
        q, rem = divmod(x, y)
        lines.append(f"Step {step}: {x} = {q} x {y} + {rem}. The remainder is {rem}, so continue with ({y}, {rem}).")
        x, y = y, rem
    lines += [f"The remainder is 0, so the last divisor, {x}, is the greatest common divisor.",
              f"Check: {a} / {x} = {a // x} and {b} / {x} = {b // x}, both whole numbers.", f"Answer: {x}"]
    return "\n".join(lines)


def _collatz_steps(n):
    steps = 0
    while n != 1:
        n, steps = (n // 2 if n % 2 == 0 else 3 * n + 1), steps + 1
    return steps


def _rt_collatz(r, size):
    n0 = r.randint(7, 30 * size)
    while _collatz_steps(n0) > 45:
        n0 = r.randint(7, 30 * size)
    lines = [f"Problem: starting from {n0}, apply the rule 'halve an even number, triple an odd number and add "
             f"one' until reaching 1. How many steps does it take?", "", "Reasoning:"]
    n, step = n0, 0
    while n != 1 and step < 400:
        step += 1
        if n % 2 == 0:
            lines.append(f"Step {step}: {n} is even, so halve it: {n} / 2 = {n // 2}.")
            n //= 2
        else:
            lines.append(f"Step {step}: {n} is odd, so 3 x {n} + 1 = {3 * n + 1}.")
            n = 3 * n + 1
    lines += [f"We reached 1 after {step} steps.", f"Answer: {step}"]
    return "\n".join(lines)


def _rt_running_total(r, size):
    name = r.choice(NAMES)
    balance = r.randint(50, 500)
    lines = [f"Problem: {name} starts the month with ${balance}. Track every transaction below and give the final "
             f"balance.", ""]
    events = []
    for _ in range(3 * size):
        if r.random() < 0.5:
            events.append(("earns", r.randint(5, 120)))
        else:
            events.append(("spends", r.randint(5, 90)))
    for day, (verb, amount) in enumerate(events, 1):
        lines.append(f"Day {day}: {name} {verb} ${amount}.")
    lines += ["", "Reasoning:"]
    for day, (verb, amount) in enumerate(events, 1):
        new = balance + amount if verb == "earns" else balance - amount
        op = "+" if verb == "earns" else "-"
        lines.append(f"After day {day}: ${balance} {op} ${amount} = ${new}.")
        balance = new
    earned = sum(a for v, a in events if v == "earns")
    spent = sum(a for v, a in events if v == "spends")
    lines += [f"Check: total earned ${earned}, total spent ${spent}; the start plus the difference gives the same "
              f"final balance.", f"Answer: ${balance}"]
    return "\n".join(lines)


def _rt_linear_system(r, size):
    x, y = r.randint(-9, 12), r.randint(-9, 12)
    eqs = []
    for _ in range(2):
        a, b = r.randint(1, 9), r.randint(1, 9)
        eqs.append((a, b, a * x + b * y))
    (a1, b1, c1), (a2, b2, c2) = eqs
    det = a1 * b2 - a2 * b1
    if det == 0:
        a2, b2 = a2 + 1, b2
        c2 = a2 * x + b2 * y
        det = a1 * b2 - a2 * b1
    lines = [f"Problem: solve the system {a1}x + {b1}y = {c1} and {a2}x + {b2}y = {c2}.", "", "Reasoning:",
             f"Step 1: multiply the first equation by {a2}: {a1 * a2}x + {b1 * a2}y = {c1 * a2}.",
             f"Step 2: multiply the second equation by {a1}: {a1 * a2}x + {b2 * a1}y = {c2 * a1}.",
             f"Step 3: subtract the first result from the second: ({b2 * a1} - {b1 * a2})y = {c2 * a1} - {c1 * a2}, "
             f"so {b2 * a1 - b1 * a2}y = {c2 * a1 - c1 * a2}.",
             f"Step 4: y = {c2 * a1 - c1 * a2} / {b2 * a1 - b1 * a2} = {y}.",
             f"Step 5: substitute into the first equation: {a1}x + {b1} x {y} = {c1}, so {a1}x = {c1 - b1 * y}.",
             f"Step 6: x = {c1 - b1 * y} / {a1} = {x}.",
             f"Check: {a1} x {x} + {b1} x {y} = {c1} and {a2} x {x} + {b2} x {y} = {c2}. Both hold.",
             f"Answer: x = {x}, y = {y}"]
    return "\n".join(lines)


TRACES = [_rt_bubble_sort, _rt_euclid, _rt_collatz, _rt_running_total, _rt_linear_system]
N_TRACES = 400


TRACE_CHARS = (900, 3800)  # ~300-1500 tokens of the tiny BPE (about 2.6 characters per token here)


def _reasoning_traces(seed: int = 20250709, n: int = N_TRACES):
    r = random.Random(seed)
    for i in range(n):
        parts, kinds = [], []
        # chained sub-problems make one long trace; stop at a random target length, never above the maximum
        target, size, tries = r.randint(TRACE_CHARS[0], TRACE_CHARS[1] - 600), 0, 0
        while size < target and tries < 20:
            tries += 1
            kind = r.choice(TRACES)
            part = kind(r, r.randint(4, 7))
            if size + len(part) > TRACE_CHARS[1] - 100:
                continue
            kinds.append(kind.__name__[4:])
            parts.append(part)
            size += len(part) + 10
        text = ("Let's work through the following problems step by step, checking each result.\n\n"
                + "\n\n".join(f"Part {j + 1}.\n{p}" for j, p in enumerate(parts)) + "\n")
        yield f"{i:05d}", text, {"templates": kinds}


BUILTINS: dict[str, Builtin] = {b.name: b for b in [
    Builtin("pydoc_topics", "PSF-2.0", f"Python {PY} standard library, pydoc_data.topics", _pydoc_topics),
    Builtin("stdlib_code", "PSF-2.0", f"Python {PY} standard library, Lib/*.py", _stdlib_code),
    Builtin("math_word_problems", "CC0-1.0", "generated by pretrain/data/corpora.py (seeded templates)",
            _math_word_problems),
    Builtin("reasoning_traces", "CC0-1.0", "generated by pretrain/data/corpora.py (seeded templates)",
            _reasoning_traces),
]}


def documents(name: str) -> Iterator[dict]:
    """The documents of one builtin corpus, in a fixed order."""
    b = BUILTINS[name]
    for suffix, text, extra in b.generate():
        yield {"text": text, "id": f"{name}/{suffix}",
               "metadata": {"source": name, "origin": b.origin, "license": b.license, **extra}}


def spec(name: str) -> dict:
    """What determines a corpus' content (a change triggers a rebuild)."""
    return {"builtin": name, "generator_version": GENERATOR_VERSION, "python": PY}


def write_corpus(name: str, out_dir: Path, shards: int) -> dict:
    """Write `name` as `shards` jsonl files under out_dir (atomically: built in a temporary sibling, then
    renamed). Returns {"documents": n, "chars": c}. Skips the work when out_dir holds the same spec."""
    out_dir = Path(out_dir)
    meta_file = out_dir / "corpus.json"
    want = {**spec(name), "shards": shards}
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text())
            if meta.get("spec") == want:
                return meta["stats"]
        except ValueError:
            pass
    tmp = out_dir.with_name(f".{out_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files = [open(tmp / f"{i:05d}.jsonl", "w", encoding="utf-8") for i in range(shards)]
    n = chars = 0
    try:
        for doc in documents(name):
            files[n % shards].write(json.dumps(doc, ensure_ascii=False) + "\n")
            n += 1
            chars += len(doc["text"])
    finally:
        for f in files:
            f.close()
    stats = {"documents": n, "chars": chars}
    (tmp / "corpus.json").write_text(json.dumps({"spec": want, "stats": stats, "license": BUILTINS[name].license,
                                                 "origin": BUILTINS[name].origin}, indent=2) + "\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return stats
