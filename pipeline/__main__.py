"""Pipeline command line: run one stage, every stage of a recipe, or launch a nanotron stage.

Usage:
  python -m pipeline run recipes/tiny/pretrain-stage1.yaml [key=value ...]     # one stage (= make <stage>)
  python -m pipeline all recipes/tiny [key=value ...]                          # every stage in order (= make all)
  python -m pipeline launch recipes/smollm3-3b/pretrain-stage1.yaml [key=value ...] [--launcher slurm] [--dry-run]
Bad input exits with code 2 and one line `file: field: message` on stderr.
"""
from __future__ import annotations

import sys

from recipes.cli import OneLineParser, guarded


def main(argv=None) -> int:
    ap = OneLineParser(prog="python -m pipeline", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=OneLineParser)
    run = sub.add_parser("run", help="run one stage")
    run.add_argument("recipe", help="a stage file, e.g. recipes/tiny/pretrain-stage1.yaml")
    run.add_argument("overrides", nargs="*")
    every = sub.add_parser("all", help="run every stage of a recipe in pipeline order")
    every.add_argument("recipe", help="a recipe directory, e.g. recipes/tiny")
    every.add_argument("overrides", nargs="*")
    la = sub.add_parser("launch", help="run a nanotron stage with torchrun, locally or through Slurm")
    la.add_argument("recipe")
    la.add_argument("overrides", nargs="*")
    la.add_argument("--launcher", choices=["local", "slurm"], default="local")
    la.add_argument("--dry-run", action="store_true", help="write the launch script only")
    return guarded(_command, ap.parse_args(argv))


def _command(args) -> int:
    if args.cmd == "run":
        from pipeline.stages import run_stage
        return run_stage(args.recipe, args.overrides)
    if args.cmd == "all":
        from pipeline.stages import run_pipeline
        return run_pipeline(args.recipe, args.overrides)
    from pipeline.launch import launch
    return launch(args.recipe, args.overrides, launcher=args.launcher, dry_run=args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
