"""Recipe command line: resolve, validate and plan stage recipes.

Usage:
  python -m recipes show recipes/tiny/pretrain-stage1.yaml [key=value ...]   # resolved stage as JSON
  python -m recipes plan recipes/smollm3-3b [--json] [--mfu 0.4] [--peak-tflops 989] [key=value ...]
  python -m recipes check recipes/tiny [key=value ...]                       # validate every stage
Running stages is the runner's job: `python -m pipeline run|all` (pipeline/__main__.py).
Bad input exits with code 2 and one line `file: field: message` on stderr.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict

from recipes.cli import OneLineParser, guarded
from recipes.derive import derived, plan_row
from recipes.loader import RecipeError, load_recipe, load_stage
from recipes.plan_table import format_plan


def main(argv=None) -> int:
    ap = OneLineParser(prog="python -m recipes", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=OneLineParser)
    show = sub.add_parser("show", help="print one resolved stage recipe as JSON")
    show.add_argument("recipe")
    show.add_argument("overrides", nargs="*")
    plan = sub.add_parser("plan", help="one row per stage: batch, parallelism, steps, tokens, cost, memory")
    plan.add_argument("recipe", help="a recipe directory, e.g. recipes/smollm3-3b")
    plan.add_argument("overrides", nargs="*")
    plan.add_argument("--json", action="store_true")
    plan.add_argument("--mfu", type=float, default=0.4, help="model FLOPs utilization for GPU-hours (0.4)")
    plan.add_argument("--peak-tflops", type=float, default=None,
                      help="dense bf16 peak per GPU (default: the recipe's cluster.peak_tflops)")
    check = sub.add_parser("check", help="validate every stage of a recipe directory")
    check.add_argument("recipe", help="a recipe directory, e.g. recipes/tiny")
    check.add_argument("overrides", nargs="*")
    args = ap.parse_args(argv)
    return guarded(_command, args)


def _command(args) -> int:
    if args.cmd == "show":
        r = load_stage(args.recipe, args.overrides)
        print(json.dumps({**r.model_dump(mode="json"), "derived": asdict(derived(r))}, indent=2))
    elif args.cmd == "plan":
        if not 0 < args.mfu <= 1:
            raise RecipeError("--mfu", "", f"must be in (0, 1] (got {args.mfu})")
        recipes = load_recipe(args.recipe, args.overrides)
        rows = [plan_row(r, mfu=args.mfu, peak_tflops=args.peak_tflops) for r in recipes.values()]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            gpu = next(iter(recipes.values())).cluster
            print(format_plan(rows, mfu=args.mfu, peak=args.peak_tflops or gpu.peak_tflops, gpu=gpu.gpu))
    elif args.cmd == "check":
        recipes = load_recipe(args.recipe, args.overrides)
        print(f"{args.recipe}: {len(recipes)} stages valid: {', '.join(recipes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
