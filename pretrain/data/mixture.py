"""Blend tokenized sources into training samples with exact token shares (nanotron 0.4 has no blending).

A sample is a window of `seq_len + 1` tokens taken from ONE source: window w of a source covers tokens
[w * seq_len, w * seq_len + seq_len + 1), so consecutive windows share one token, as in nanotron's Nanoset
(`input_ids = row[:-1]`, `label_ids = row[1:]`). Which source sample i comes from is deterministic: source s
emits its k-th sample at "time" (k + phase_s) / weight_s (phase_s in (0, 1), seeded) and samples are taken in
time order (a stride schedule: like the largest-deficit rule, but in closed form), so after any n samples
source s has given n x weight_s samples, off by less than 1 + n_sources x weight_s. Sample i is located in
O(number of sources), with no precomputed blending table: a resumed run reads sample i directly.
Within a source, the k-th draw reads window perm_epoch(k mod n_windows), a seeded permutation per epoch,
so a source that is exhausted is repeated in a new order. The permutation's key is drawn from the data seed,
the stage (`stream`) and the source's name: a source that several stages share is read in a new order in
each of them, so stage 2 does not start again from the windows stage 1 began with. (The authors' configs
give every data stage the same seed, 6; whether their nanoset then repeats each source's first samples at a
stage switch is not documented, so this repository chose not to.) Same seed and stage, same samples.

Per-document positions come from the `.ds.index` document ends: they restart at 0 at the start of the
window and after every end of document (the token after an eos), for intra-document attention masking.

Usage (the pretraining dataloader):
    sampler = MixtureSampler.from_stage(recipe)                       # a validated pretrain / longctx stage
    sampler = MixtureSampler(["runs/tiny/data/prose", ...], [0.85, ...], seq_len=256, seed=6, stream="stage1")
    row = sampler.sample(i)          # np.int64 array of seq_len + 1 tokens
    pos = sampler.positions(i)       # np.int64 array of seq_len + 1 per-document positions
    item = sampler[i]                # {"tokens", "positions", "source", "start"}

A missing folder, a truncated `.ds` file, or an index that does not match its data raises RecipeError
(one line naming the file; the CLIs print it and exit 2).
"""
from __future__ import annotations

import json
import os
import socket
import time
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from recipes.loader import RecipeError, display
from rundir import write_text_atomic

MASK64 = (1 << 64) - 1


# ------------------------------------------------------------------------------------ tokenized folder
FULL_CHECK_MAX_DOCS = 100_000_000  # "auto": above this many documents per file only the O(1) checks run
CHECKED_SUFFIX = ".checked"  # beside each `.ds`: the full check passed for these sizes and modification times
CHECK_VERSION = 1


def _stamp(f: Path, index: Path, eos_id: Optional[int]) -> dict:
    """What a full check's result depends on: both files' sizes and modification times, and the eos id."""
    a, b = f.stat(), index.stat()
    return {"version": CHECK_VERSION, "ds": [a.st_size, a.st_mtime_ns], "index": [b.st_size, b.st_mtime_ns],
            "eos_id": eos_id}


def _cached(f: Path, stamp: dict) -> bool:
    try:
        return json.loads(f.with_name(f.name + CHECKED_SUFFIX).read_text())["stamp"] == stamp
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _record(f: Path, stamp: dict) -> None:
    """Cache a passed full check beside the data (atomically); a read-only data folder just goes uncached."""
    try:
        write_text_atomic(f.with_name(f.name + CHECKED_SUFFIX), json.dumps(
            {"stamp": stamp, "checked_by": f"{socket.gethostname()}:{os.getpid()}",
             "checked_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
    except OSError:
        pass


class TokenizedFolder:
    """One source's datatrove output: `*.ds` (flat token ids), `*.ds.index` (uint64 document ends, in
    tokens, per file) and `*.ds.metadata` ("tokenizer|token size", token count). Validated on open:
    sizes, the last document end against the data and the metadata (always, O(1)), document ends increasing
    and documents ending with eos (if eos_id) (the full check: "full", or "auto" for files of up to 100M
    documents). A passed full check is cached beside the file (`<file>.ds.checked`, keyed by both files' sizes
    and modification times and the eos id): the launcher checks each file once, and every rank and every later
    start reads the cache instead of the data. `checked` / `cached` list the files checked / taken from it."""

    def __init__(self, path, eos_id: Optional[int] = None, check: str = "auto"):
        if check not in ("full", "light", "auto"):
            raise ValueError(f"check must be full, light or auto (got {check!r})")
        self.path = Path(path)
        if not self.path.is_dir():
            raise RecipeError(display(self.path), "", "missing tokenized source: no such folder "
                                                      "(build it with the data stage: make data)")
        files = sorted(p for p in self.path.glob("*.ds") if p.is_file())
        if not files:
            raise RecipeError(display(self.path), "", "missing tokenized source: no .ds files in it "
                                                      "(build it with the data stage: make data)")
        self.files, self.tokens_mm, self.index_mm, self.offsets = [], [], [], [0]
        self.checked, self.cached = [], []
        self.token_size = None
        for f in files:
            tsize, meta_count = self._metadata(f)
            if self.token_size not in (None, tsize):
                raise RecipeError(display(f), "", f"token size {tsize} differs from the other files "
                                                  f"({self.token_size})")
            self.token_size = tsize
            nbytes = f.stat().st_size
            index = f.with_name(f.name + ".index")
            if not index.is_file():
                raise RecipeError(display(index), "", f"missing: {f.name} has no document index")
            isize = index.stat().st_size
            if isize % 8:
                raise RecipeError(display(index), "", f"truncated: {isize} bytes is not a whole number of "
                                                      "uint64 document ends")
            ends = np.memmap(index, dtype="<u8", mode="r") if isize else np.zeros(0, dtype="<u8")
            ntok = nbytes // tsize
            last = int(ends[-1]) if len(ends) else 0
            if nbytes % tsize or last > ntok:
                raise RecipeError(display(f), "", f"truncated: {nbytes:,} bytes hold {ntok:,} tokens of {tsize} "
                                                  f"bytes but its index {index.name} ends at token {last:,}")
            if last < ntok:
                raise RecipeError(display(index), "", f"does not match its data: the documents end at token "
                                                      f"{last:,} but {f.name} holds {ntok:,} tokens")
            full = check == "full" or (check == "auto" and len(ends) <= FULL_CHECK_MAX_DOCS)
            stamp = _stamp(f, index, eos_id) if full else None
            if full and _cached(f, stamp):
                full = False
                self.cached.append(f)
            if len(ends) and (int(ends[0]) <= 0 or (full and np.any(np.diff(ends.astype(np.int64)) <= 0))):
                raise RecipeError(display(index), "", "does not match its data: document ends must increase "
                                                      "strictly")
            if meta_count is not None and meta_count != ntok:
                raise RecipeError(display(f), "", f"does not match its metadata: {ntok:,} tokens on disk, "
                                                  f"{meta_count:,} written")
            if ntok == 0:
                continue
            dtype = "<u2" if tsize == 2 else "<u4"
            toks = np.memmap(f, dtype=dtype, mode="r")
            if eos_id is not None and full:
                bad = np.flatnonzero(toks[ends.astype(np.int64) - 1] != eos_id)
                if len(bad):
                    raise RecipeError(display(index), "", f"does not match its data: document {int(bad[0])} "
                                                          f"does not end with the eos token ({eos_id})")
            if full:
                _record(f, stamp)
                self.checked.append(f)
            self.files.append(f)
            self.tokens_mm.append(toks)
            self.index_mm.append(ends)
            self.offsets.append(self.offsets[-1] + ntok)
        self.n_tokens = self.offsets[-1]
        self.n_docs = sum(len(e) for e in self.index_mm)

    @staticmethod
    def _metadata(f: Path):
        meta = f.with_name(f.name + ".metadata")
        if not meta.is_file():
            raise RecipeError(display(meta), "", f"missing: {f.name} has no .ds.metadata (token size unknown)")
        lines = meta.read_text().splitlines()
        try:
            tsize = int(lines[0].rsplit("|", 1)[1])
            count = int(lines[1]) if len(lines) > 1 else None
        except (IndexError, ValueError):
            raise RecipeError(display(meta), "", "unreadable metadata (expected 'tokenizer|token size' and a "
                                                 "token count)") from None
        if tsize not in (2, 4):
            raise RecipeError(display(meta), "", f"token size must be 2 or 4 bytes (got {tsize})")
        return tsize, count

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Tokens [start, stop) of the concatenated files, as int64."""
        if not 0 <= start <= stop <= self.n_tokens:
            raise IndexError(f"tokens [{start}, {stop}) outside [0, {self.n_tokens})")
        out, pos = np.empty(stop - start, dtype=np.int64), start
        f = int(np.searchsorted(self.offsets, start, side="right")) - 1
        while pos < stop:
            o, n = self.offsets[f], self.offsets[f + 1]
            take = min(stop, n) - pos
            out[pos - start: pos - start + take] = self.tokens_mm[f][pos - o: pos - o + take]
            pos += take
            f += 1
        return out

    def doc_ends_between(self, start: int, stop: int) -> np.ndarray:
        """Global document ends e with start < e < stop (e is the index of the next document's first token)."""
        parts = []
        f = int(np.searchsorted(self.offsets, start, side="right")) - 1
        while f < len(self.files) and self.offsets[f] < stop:
            o, ends = self.offsets[f], self.index_mm[f]
            lo = int(np.searchsorted(ends, max(start - o, 0), side="right"))
            hi = int(np.searchsorted(ends, stop - o, side="left"))
            parts.append(ends[lo:hi].astype(np.int64) + o)
            f += 1
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def document_bounds(self, d: int) -> tuple[int, int]:
        """Token range [start, end) of document d (its eos included)."""
        counts = np.cumsum([0] + [len(e) for e in self.index_mm])
        f = int(np.searchsorted(counts, d, side="right")) - 1
        local = d - counts[f]
        ends = self.index_mm[f]
        start = int(ends[local - 1]) if local > 0 else 0
        return self.offsets[f] + start, self.offsets[f] + int(ends[local])


# -------------------------------------------------------------------------------------- permutations
def _mix64(x: int) -> int:
    """splitmix64 finalizer: a well-mixed 64-bit hash of x."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def permute_index(j: int, n: int, key: int) -> int:
    """A keyed bijection of [0, n) (a 4-round Feistel network with cycle walking): O(1), no table."""
    if n <= 1:
        return j
    bits = max(2, (n - 1).bit_length())
    bits += bits % 2
    half, mask = bits // 2, (1 << (bits // 2)) - 1
    x = j
    while True:
        left, right = x >> half, x & mask
        for rnd in range(4):
            left, right = right, left ^ (_mix64(right ^ _mix64(key + rnd)) & mask)
        x = (left << half) | right
        if x < n:
            return x


# ------------------------------------------------------------------------------------------- sampler
class MixtureSampler:
    """Deterministic weighted blend of tokenized folders; see the module docstring."""

    def __init__(self, folders: Sequence, weights: Sequence[float], seq_len: int, seed: int = 0,
                 names: Optional[Sequence[str]] = None, eos_id: Optional[int] = None, stream: str = ""):
        if len(folders) != len(weights) or not folders:
            raise ValueError("folders and weights must be non-empty and of the same length")
        w = np.asarray(weights, dtype=np.float64)
        if np.any(~np.isfinite(w)) or np.any(w <= 0):
            raise ValueError(f"weights must be positive (got {list(weights)})")
        self.sources = [f if isinstance(f, TokenizedFolder) else TokenizedFolder(f, eos_id=eos_id) for f in folders]
        self.names = list(names) if names else [s.path.name for s in self.sources]
        self.weights = w / w.sum()
        self.seq_len = int(seq_len)
        self.seed = int(seed) & MASK64
        self.n_windows = np.array([(s.n_tokens - 1) // self.seq_len if s.n_tokens else 0 for s in self.sources],
                                  dtype=np.int64)
        for s, nw in zip(self.sources, self.n_windows):
            if nw <= 0:
                raise RecipeError(display(s.path), "", f"holds {s.n_tokens:,} tokens: fewer than one sample of "
                                                       f"{self.seq_len + 1} tokens")
        rng = np.random.default_rng([self.seed, 0x5EED])
        self.phase = rng.uniform(0.05, 0.95, size=len(self.sources))
        self.tie = rng.permutation(len(self.sources))  # tie-break among sources due at the same time
        # per source: the key of its window permutations (data seed, stage, source name)
        self.keys = [_mix64(self.seed ^ zlib.crc32(f"{stream}/{name}".encode())) for name in self.names]

    @classmethod
    def from_stage(cls, recipe, *, eos_id: Optional[int] = None) -> "MixtureSampler":
        """The sampler of a pretrain / longctx stage: its mixture's sources, weights and data seed."""
        from pretrain.data.sources import source_folder

        mixture = recipe.data.mixture
        names = [s.name for s in mixture.sources]
        return cls([source_folder(recipe.name, n) for n in names], [s.weight for s in mixture.sources],
                   recipe.batch.sequence_length, recipe.data.seed, names=names, eos_id=eos_id, stream=recipe.stage)

    # ---- which source and window each sample reads
    def _count_lt(self, t: float) -> np.ndarray:
        """Per source: how many of its samples are due strictly before time t."""
        w, ph = self.weights, self.phase
        c = np.maximum(0, np.ceil(t * w - ph)).astype(np.int64)
        c = np.where((c > 0) & ((c - 1 + ph) / w >= t), c - 1, c)  # float rounding: agree with _times
        c = np.where((c + ph) / w < t, c + 1, c)
        return c

    def locate(self, i: int) -> tuple[int, int]:
        """(source index, k): sample i is the k-th sample drawn from that source."""
        if i < 0:
            raise IndexError(f"sample index must be >= 0 (got {i})")
        n_src = len(self.sources)
        lo, hi = max(0.0, i - n_src - 2.0), i + n_src + 3.0
        clo = self._count_lt(lo)
        while clo.sum() > i:
            lo = max(0.0, lo - n_src - 2.0)
            clo = self._count_lt(lo)
        chi = self._count_lt(hi)
        while chi.sum() <= i:
            hi += n_src + 2.0
            chi = self._count_lt(hi)
        cand_s = np.repeat(np.arange(n_src), chi - clo)
        cand_k = np.concatenate([np.arange(a, b) for a, b in zip(clo, chi)])
        times = (cand_k + self.phase[cand_s]) / self.weights[cand_s]
        order = np.lexsort((self.tie[cand_s], times))
        j = order[i - int(clo.sum())]
        return int(cand_s[j]), int(cand_k[j])

    def counts(self, n: int) -> np.ndarray:
        """How many of the first n samples each source provides."""
        if n <= 0:
            return np.zeros(len(self.sources), dtype=np.int64)
        s, k = self.locate(n)  # the first sample not counted
        t = (k + self.phase[s]) / self.weights[s]
        c = self._count_lt(t)
        due = (c + self.phase) / self.weights == t
        return c + (due & (self.tie < self.tie[s])).astype(np.int64)

    def epochs(self, n: int) -> np.ndarray:
        """Epochs over each source after n samples."""
        return self.counts(n) / self.n_windows

    def window_start(self, s: int, k: int) -> int:
        nw = int(self.n_windows[s])
        epoch, j = divmod(k, nw)
        key = _mix64(self.keys[s] ^ _mix64(epoch))
        return permute_index(j, nw, key) * self.seq_len

    # ---- samples
    def sample(self, i: int) -> np.ndarray:
        """Sample i: seq_len + 1 tokens (int64) from one source."""
        s, k = self.locate(i)
        start = self.window_start(s, k)
        return self.sources[s].tokens(start, start + self.seq_len + 1)

    def positions(self, i: int) -> np.ndarray:
        """Per-document positions of sample i: 0 at the window start and after each document end."""
        s, k = self.locate(i)
        start = self.window_start(s, k)
        return self._positions(s, start)

    def _positions(self, s: int, start: int) -> np.ndarray:
        n = self.seq_len + 1
        rel = self.sources[s].doc_ends_between(start, start + n) - start
        idx = np.arange(n, dtype=np.int64)
        seg_start = np.zeros(n, dtype=np.int64)
        seg_start[rel] = rel
        return idx - np.maximum.accumulate(seg_start)

    def __getitem__(self, i: int) -> dict:
        s, k = self.locate(i)
        start = self.window_start(s, k)
        return {"tokens": self.sources[s].tokens(start, start + self.seq_len + 1),
                "positions": self._positions(s, start), "source": self.names[s], "start": start}
