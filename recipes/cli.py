"""Command-line plumbing shared by the entrypoints: bad input is one line on stderr and exit code 2; a full
disk is one line and exit code 1."""
from __future__ import annotations

import argparse
import errno
import signal
import sys

from recipes.loader import RecipeError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`prog: message`) and exit code 2."""

    def error(self, message):
        print(f"{self.prog}: {message}", file=sys.stderr)
        sys.exit(2)


# How a full disk (or a file-size limit) reaches Python: an OSError with one of these errno values, or, from
# libraries that write through Rust or C++ (safetensors, torch.save), an exception whose message carries it.
DISK_FULL_ERRNO = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
DISK_FULL_TEXT = ("No space left on device", "StorageFull", "Disk quota exceeded", "File too large")


def disk_full(e: BaseException) -> str | None:
    """The one-line reason when e (or an exception it was raised from) is a full disk, else None."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNO:
            return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
        text = str(e)
        for marker in DISK_FULL_TEXT:
            if marker in text:
                return f"{type(e).__name__}: {marker}"
        e = e.__cause__ or e.__context__
    return None


def guarded(fn, *args) -> int:
    """Run a command; a RecipeError becomes `file: field: message` on stderr and exit code 2, a full disk one
    line and exit code 1 (the interrupted stage's manifest never says completed, so the same command resumes
    once there is room)."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly
    try:
        return fn(*args) or 0
    except RecipeError as e:
        print(str(e), file=sys.stderr)
        return 2
    except Exception as e:
        reason = disk_full(e)
        if reason is None:
            raise
        print(f"disk full: {reason}; free space and run the same command again (completed stages are kept)",
              file=sys.stderr)
        return 1
