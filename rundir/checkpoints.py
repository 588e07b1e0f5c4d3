"""Checkpoint folders a stage can trust: a COMPLETE marker with checksums, written once every rank finished.

`<stage>/checkpoints/<step>/COMPLETE` is JSON: the step, what the trainer wants back on resume, the
hashes of the training recipe that wrote it (rundir.resume), and an xxh64 checksum and size of every file
of the checkpoint. A folder without the marker was interrupted while being written; one whose files no
longer match their checksums is damaged. Both are passed over in favour of the previous intact one.

Usage:
    mark_complete(ckpt_dir / "120", step=120, training_sha256=...)   # rank 0, after a barrier
    intact, damaged = intact_checkpoints(ckpt_dir)                    # oldest first
    latest, damaged_newer = latest_intact(ckpt_dir)                   # what a resume verifies
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Optional

import xxhash

from rundir import write_text_atomic

COMPLETE = "COMPLETE"
_CHUNK = 1 << 22


def _files(path: Path) -> list[Path]:
    return sorted(f for f in path.rglob("*") if f.is_file() and f.name != COMPLETE)


def file_checksum(f: Path) -> str:
    h = xxhash.xxh64()
    with open(f, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_files(path: Path) -> list[str]:
    """The relative names of a checkpoint folder's files but the marker, sorted."""
    return [str(f.relative_to(path)) for f in _files(Path(path))]


def checksums(path: Path, names: Optional[list[str]] = None) -> dict:
    """{relative file name: [size, xxh64]} of the folder's files (or of `names`, a share of them: the ranks of
    a job each hash theirs)."""
    path = Path(path)
    names = checkpoint_files(path) if names is None else names
    return {n: [(path / n).stat().st_size, file_checksum(path / n)] for n in names}


def mark_complete(path: Path, files: Optional[dict] = None, **info) -> None:
    """Write the COMPLETE marker (atomically) with `info` and the checksums of the folder's files (`files`: as
    `checksums` gives them, computed by the ranks; None: computed here)."""
    path = Path(path)
    write_text_atomic(path / COMPLETE, json.dumps({**info, "files": checksums(path) if files is None else files},
                                                  indent=1) + "\n")


def read_marker(path: Path) -> Optional[dict]:
    try:
        return json.loads((Path(path) / COMPLETE).read_text())
    except (OSError, ValueError):
        return None


def damage(path: Path) -> Optional[str]:
    """Why a marked checkpoint cannot be trusted (a missing, resized, changed or extra file), else None."""
    marker = read_marker(path)
    if marker is None:
        return "its COMPLETE marker is unreadable"
    if "files" not in marker:
        return "its COMPLETE marker has no checksums (written by an older version)"
    recorded = marker["files"]
    present = {str(f.relative_to(path)) for f in _files(path)}
    for name in sorted(set(recorded) - present):
        return f"{name} is missing"
    for name in sorted(present - set(recorded)):
        return f"{name} was not part of the checkpoint"
    for name, (size, digest) in sorted(recorded.items()):
        f = path / name
        if f.stat().st_size != size:
            return f"{name} has {f.stat().st_size:,} bytes, {size:,} when written"
        if file_checksum(f) != digest:
            return f"{name} does not match its checksum"
    return None


def step_of(path: Path) -> Optional[int]:
    """The step of a checkpoint folder: nanotron's `<step>`, or the transformers Trainer's `checkpoint-<step>`."""
    m = re.fullmatch(r"(?:checkpoint-)?(\d+)", Path(path).name)
    return int(m.group(1)) if m else None


def marked_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Checkpoint folders with a COMPLETE marker (every rank finished writing), oldest first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    done = [p for p in ckpt_dir.iterdir() if p.is_dir() and step_of(p) is not None and (p / COMPLETE).is_file()]
    return sorted(done, key=step_of)


def intact_checkpoints(ckpt_dir: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(marked checkpoints whose files match their checksums, [(damaged checkpoint, why)]), oldest first."""
    intact, damaged = [], []
    for p in marked_checkpoints(ckpt_dir):
        why = damage(p)
        (damaged.append((p, why)) if why else intact.append(p))
    return intact, damaged


def latest_intact(ckpt_dir: Path) -> tuple[Optional[Path], list[tuple[Path, str]]]:
    """(the newest marked checkpoint whose files match their checksums or None, [(damaged checkpoint newer than
    it, why)] oldest first). Verifies newest first and stops at the first intact one: a resume reads the
    checkpoint it resumes, not every one kept."""
    damaged = []
    for p in reversed(marked_checkpoints(ckpt_dir)):
        why = damage(p)
        if why is None:
            return p, damaged[::-1]
        damaged.append((p, why))
    return None, damaged[::-1]


def set_aside(path: Path, reason: str) -> Path:
    """Rename a damaged checkpoint to `<step>.damaged` (kept for inspection, never resumed from)."""
    target = path.with_name(f"{path.name}.damaged")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.damaged{n}")
    path.rename(target)
    (target / "DAMAGED").write_text(reason + "\n")
    return target


def prune(ckpt_dir: Path, keep_last: Optional[int]) -> list[Path]:
    """Delete all but the newest `keep_last` marked checkpoints (None: keep every one)."""
    if keep_last is None:
        return []
    old = marked_checkpoints(ckpt_dir)[:-keep_last]
    for p in old:
        shutil.rmtree(p)
    return old
