"""Command-line plumbing shared by the entrypoints: bad input is one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import signal
import sys

from recipes.loader import RecipeError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`prog: message`) and exit code 2."""

    def error(self, message):
        print(f"{self.prog}: {message}", file=sys.stderr)
        sys.exit(2)


def guarded(fn, *args) -> int:
    """Run a command; a RecipeError becomes `file: field: message` on stderr and exit code 2."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly
    try:
        return fn(*args) or 0
    except RecipeError as e:
        print(str(e), file=sys.stderr)
        return 2
