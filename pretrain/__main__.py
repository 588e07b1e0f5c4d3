"""Pretraining command line: the stage as a config for the authors' nanotron.

Usage:
  python -m pretrain export-nanotron recipes/smollm3-3b/pretrain-stage1.yaml [key=value ...] [-o FILE] [--data-root URL]
Bad input exits with code 2 and one line `file: field: message` on stderr.
"""
from __future__ import annotations

import sys

from recipes.cli import OneLineParser, guarded


def main(argv=None) -> int:
    ap = OneLineParser(prog="python -m pretrain", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=OneLineParser)
    ex = sub.add_parser("export-nanotron", help="write the stage in the schema of the authors' nanotron configs")
    ex.add_argument("recipe")
    ex.add_argument("overrides", nargs="*")
    ex.add_argument("-o", "--output", default=None, help="file to write (default: stdout)")
    ex.add_argument("--data-root", default=None, help="root of the tokenized source folders")
    args = ap.parse_args(argv)
    return guarded(_command, args)


def _command(args) -> int:
    from pretrain.export_nanotron import export, write

    text = write(export(args.recipe, args.overrides, args.data_root), args.output)
    if not args.output:
        print(text, end="")
    else:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
