"""Held-out documents per category, disjoint from the training corpora: what the pretraining and long-context
rows of the report card are measured on (scored by pretrain/heldout_loss.py after each nanotron stage).

The data stage writes `runs/<run>/data/heldout/<category>.jsonl` for every builtin source, from material the
training corpus of that source never reads:
  pydoc_topics (web)          docstrings of standard-library sub-packages (training reads pydoc_data.topics)
  stdlib_code (code)          .py files of standard-library sub-packages (training reads only Lib/*.py)
  math_word_problems (math)   the same templates under another seed
  reasoning_traces            the same templates under another seed
A candidate whose text occurs anywhere in the training documents of the builtin corpora (equal to one, or inside
one) is dropped and counted in the data manifest; tests/test_heldout.py checks the written files against the
corpora.
Sources read from the Hub or from a path get no held-out set here: the data manifest names them as not
measured (a held-out split of a Hub dataset is a recipe change this repository does not make for you).

The corpora module owns the generators; this one only picks other seeds and other files (project code: no
library offers held-out sets of these local corpora).
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import sysconfig
from pathlib import Path
from typing import Iterator

from pretrain.data import corpora

N_DOCS = 24  # per category: enough for a stable mean loss on the tiny model, seconds to score
HELDOUT_VERSION = 1  # bump when a picker changes: the data stage then rebuilds the held-out set
# Sub-packages of the standard library that hold ordinary library code and prose (no tests, no data tables).
PACKAGES = ("asyncio", "collections", "concurrent", "ctypes", "curses", "dbm", "email", "html", "http",
            "importlib", "json", "logging", "multiprocessing", "sqlite3", "tomllib", "urllib", "wsgiref", "xml",
            "xmlrpc", "zoneinfo")
CODE_CHARS = (4_000, 60_000)  # long files: the long-context rows score positions past 512 tokens of them
DOCSTRING_MIN_CHARS = 400


def _package_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for pkg in PACKAGES if (root / pkg).is_dir() for p in (root / pkg).rglob("*.py")
                  if "test" not in p.relative_to(root).parts[1:-1])


def _spread(items: list, n: int) -> list:
    """n items taken evenly across the list (so one package does not fill the set)."""
    if len(items) <= n:
        return items
    return [items[i * len(items) // n] for i in range(n)]


def _code() -> Iterator[str]:
    files = []
    for p in _package_files():
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if CODE_CHARS[0] <= len(text) <= CODE_CHARS[1]:
            files.append(text)
    yield from _spread(files, 4 * N_DOCS)


def _docstrings() -> Iterator[str]:
    found = []
    for p in _package_files():
        try:
            tree = ast.parse(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            continue
        for node in [tree, *ast.walk(tree)]:
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= DOCSTRING_MIN_CHARS:
                    found.append(doc.strip() + "\n")
    yield from _spread(sorted(set(found)), 4 * N_DOCS)


PICKERS = {  # builtin corpus -> held-out candidates (more than N_DOCS: some may be dropped as training text)
    "pydoc_topics": _docstrings,
    "stdlib_code": _code,
    "math_word_problems": lambda: (t for _, t, _ in corpora._math_word_problems(seed=7_000_001, n=4 * N_DOCS)),
    "reasoning_traces": lambda: (t for _, t, _ in corpora._reasoning_traces(seed=7_000_002, n=4 * N_DOCS)),
}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def training_text(corpora_dir: Path) -> str:
    """Every document text of every builtin corpus written under corpora_dir, joined by NUL characters."""
    texts = []
    for f in sorted(Path(corpora_dir).glob("*/*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in fh if line.strip()]
    return "\0".join(texts)


def spec() -> dict:
    return {"heldout_version": HELDOUT_VERSION, "n_docs": N_DOCS, "python": corpora.PY}


def write_heldout(sources, corpora_dir: Path, out_dir: Path) -> dict:
    """Write `<category>.jsonl` under out_dir for the builtin sources (atomically). Returns the manifest entry:
    per category the documents kept, the candidates dropped as training text, and the file's sha256."""
    training, seen = training_text(corpora_dir), set()
    by_category: dict[str, list[dict]] = {}
    dropped: dict[str, int] = {}
    for s in sorted(sources, key=lambda s: s.name):
        if s.kind != "builtin" or s.builtin not in PICKERS:
            continue
        docs = by_category.setdefault(s.category, [])
        for text in PICKERS[s.builtin]():
            if len([d for d in docs if d["source"] == s.name]) >= N_DOCS:
                break
            if text in seen:  # no duplicates inside the held-out set either
                continue
            if text in training:
                dropped[s.category] = dropped.get(s.category, 0) + 1
                continue
            seen.add(text)
            docs.append({"text": text, "source": s.name, "builtin": s.builtin})
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    stats = {}
    for category, docs in sorted(by_category.items()):
        body = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
        (tmp / f"{category}.jsonl").write_text(body, encoding="utf-8")
        stats[category] = {"documents": len(docs), "dropped_as_training_text": dropped.get(category, 0),
                           "sha256": _digest(body)}
    (tmp / "heldout.json").write_text(json.dumps({"spec": spec(), "categories": stats}, indent=2) + "\n")
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return stats


def read_heldout(heldout_dir: Path) -> dict[str, list[str]]:
    """{category: [text, ...]} of a held-out folder; {} when there is none."""
    out = {}
    for f in sorted(Path(heldout_dir).glob("*.jsonl")):
        out[f.stem] = [json.loads(line)["text"] for line in f.read_text(encoding="utf-8").splitlines() if line]
    return out
