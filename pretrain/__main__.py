"""Pretraining command line: the stage as a config for the authors' nanotron.

Usage:
  python -m pretrain export-nanotron recipes/smollm3-3b/pretrain-stage2.yaml [key=value ...] [-o FILE]
      [--checkpoints-root ROOT] [--data-root ROOT] [--eval-root DIR]
(options: pretrain/export_nanotron.py, also `python -m pretrain.export_nanotron`)
Bad input exits with code 2 and one line `file: field: message` on stderr.
"""
from __future__ import annotations

import sys

from pretrain import export_nanotron
from recipes.cli import OneLineParser, guarded


def main(argv=None) -> int:
    ap = OneLineParser(prog="python -m pretrain", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=OneLineParser)
    ex = sub.add_parser("export-nanotron", help="write the stage in the schema of the authors' nanotron configs",
                        description=export_nanotron.__doc__.split("\n")[0])
    export_nanotron.add_arguments(ex)
    args = ap.parse_args(argv)
    return guarded(export_nanotron.command, args)


if __name__ == "__main__":
    sys.exit(main())
