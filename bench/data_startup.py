"""A rank's data startup cost at 1x and 20x the data: opening a tokenized source (pretrain.data.mixture.
TokenizedFolder) once its full check is cached beside the files, against the first open that runs the check.

Two synthetic sources in datatrove's layout (`.ds` uint16 tokens, `.ds.index` uint64 document ends,
`.ds.metadata`), one file each, 50-token documents ending with eos: 1x = 400k documents (20M tokens), 20x = 8M
documents (400M tokens). The first open of each reads every document end and every last token and writes the
cache (what the launcher pays once); the cached opens (what every rank and every later start pays) are repeated,
interleaving 1x and 20x, and the median ratio 20x / 1x is reported with its spread.

Usage: .venv/bin/python bench/data_startup.py [--docs 400000] [--scale 20] [--repeat 7]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pretrain.data.mixture import TokenizedFolder  # noqa: E402

EOS, DOC = 1, 50


def write_source(folder: Path, docs: int, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    tokens = rng.integers(2, 4096, size=docs * DOC, dtype=np.uint16)
    ends = np.arange(1, docs + 1, dtype=np.uint64) * DOC
    tokens[ends.astype(np.int64) - 1] = EOS
    tokens.tofile(folder / "000.ds")
    ends.tofile(folder / "000.ds.index")
    (folder / "000.ds.metadata").write_text(f"bench|2\n{docs * DOC}\n")


def open_seconds(folder: Path) -> tuple[float, TokenizedFolder]:
    t0 = time.perf_counter()
    f = TokenizedFolder(folder, eos_id=EOS)
    return time.perf_counter() - t0, f


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=400_000)
    p.add_argument("--scale", type=int, default=20)
    p.add_argument("--repeat", type=int, default=7)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        sizes = {"1x": a.docs, f"{a.scale}x": a.docs * a.scale}
        first = {}
        for i, (name, docs) in enumerate(sizes.items()):
            write_source(Path(tmp) / name, docs, i)
            seconds, f = open_seconds(Path(tmp) / name)
            assert f.checked == f.files, "the first open runs the full check"
            first[name] = seconds
            print(f"{name}: {docs:,} documents, {f.n_tokens:,} tokens; first open (full check, cached): "
                  f"{seconds * 1000:.1f} ms")
        ratios, cached = [], {name: [] for name in sizes}
        for _ in range(a.repeat):
            for name in sizes:  # interleaved: a load change hits both sides
                seconds, f = open_seconds(Path(tmp) / name)
                assert f.checked == [] and f.cached == f.files, "a cached open reads no data"
                cached[name].append(seconds)
            ratios.append(cached[f"{a.scale}x"][-1] / cached["1x"][-1])
        for name, xs in cached.items():
            print(f"{name}: cached open (a rank's startup), median of {a.repeat}: "
                  f"{statistics.median(xs) * 1000:.2f} ms")
        big = f"{a.scale}x"
        print(f"full check {big} / 1x: {first[big] / first['1x']:.1f}x (grows with the data, paid once)")
        print(f"ratio (rank startup, {big} / 1x data, median of {a.repeat}): {statistics.median(ratios):.2f} "
              f"(spread {min(ratios):.2f}-{max(ratios):.2f}; target <= 1.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
