"""Pipeline command line: run one stage, every stage of a recipe, or launch a nanotron stage.

Usage:
  python -m pipeline run recipes/tiny/pretrain-stage1.yaml [key=value ...]     # one stage (= make <stage>)
  python -m pipeline all recipes/tiny [key=value ...]                          # every stage in order (= make all)
  python -m pipeline all recipes/tiny [key=value ...] --launcher slurm         # one Slurm job per stage, dependent
  python -m pipeline status recipes/tiny [key=value ...]                       # each stage's job and manifest
  python -m pipeline report recipes/tiny [key=value ...]                       # runs/<run>/report.md (= make report)
  python -m pipeline launch recipes/smollm3-3b/pretrain-stage1.yaml [key=value ...] [--launcher slurm] [--dry-run]
A nanotron stage continues only checkpoints of its own training recipe; otherwise it refuses and offers
--fresh (set the old run directory aside, start over), run_name=<name> (a new run directory) or --continue
(continue the checkpoint under the changed recipe, recorded in the manifest).
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
    for p in (run,):
        how = p.add_mutually_exclusive_group()
        how.add_argument("--fresh", action="store_true",
                         help="set the stage's run directory aside and start it over (nanotron stages)")
        how.add_argument("--continue", dest="cont", action="store_true",
                         help="continue its checkpoint even though the training recipe changed; recorded")
    every = sub.add_parser("all", help="run every stage of a recipe in pipeline order")
    every.add_argument("recipe", help="a recipe directory, e.g. recipes/tiny")
    every.add_argument("overrides", nargs="*")
    every.add_argument("--launcher", choices=["local", "slurm"], default="local",
                       help="slurm: submit one job per incomplete stage, each after the jobs of its inputs")
    st = sub.add_parser("status", help="each stage's Slurm job, its state and the stage's manifest status")
    st.add_argument("recipe", help="a recipe directory, e.g. recipes/tiny")
    st.add_argument("overrides", nargs="*")
    node = sub.add_parser("accelerate-node", help="one node's accelerate launch inside a TRL stage's Slurm job")
    node.add_argument("config")
    node.add_argument("recipe")
    node.add_argument("overrides", nargs="*")
    node.add_argument("--continue", dest="cont", action="store_true", help="as for run")
    rep = sub.add_parser("report", help="the run's report card: runs/<run>/report.md and its plots")
    rep.add_argument("recipe", help="a recipe directory, e.g. recipes/tiny")
    rep.add_argument("overrides", nargs="*")
    la = sub.add_parser("launch", help="launch a training stage (torchrun / accelerate), or any stage as a Slurm job")
    la.add_argument("recipe")
    la.add_argument("overrides", nargs="*")
    la.add_argument("--launcher", choices=["local", "slurm"], default="local")
    la.add_argument("--dry-run", action="store_true", help="write the launch script only")
    how = la.add_mutually_exclusive_group()
    how.add_argument("--fresh", action="store_true", help="as for run")
    how.add_argument("--continue", dest="cont", action="store_true", help="as for run")
    prep = sub.add_parser("prepare", help="a nanotron stage's checks before launch (the first step of a Slurm job)")
    prep.add_argument("recipe")
    prep.add_argument("overrides", nargs="*")
    prep.add_argument("--continue", dest="cont", action="store_true", help="as for run")
    return guarded(_command, ap.parse_args(argv))


def _resume(args) -> str:
    return "fresh" if getattr(args, "fresh", False) else "continue" if getattr(args, "cont", False) else "refuse"


def _command(args) -> int:
    if args.cmd == "run":
        from pipeline.stages import run_stage
        return run_stage(args.recipe, args.overrides, resume=_resume(args))
    if args.cmd == "all" and args.launcher == "slurm":
        from pipeline.jobs import submit_pipeline
        return submit_pipeline(args.recipe, args.overrides)
    if args.cmd == "all":
        from pipeline.stages import run_pipeline
        return run_pipeline(args.recipe, args.overrides)
    if args.cmd == "status":
        from pipeline.jobs import status
        return status(args.recipe, args.overrides)
    if args.cmd == "accelerate-node":
        from pipeline.slurm import accelerate_node
        return accelerate_node(args.config, args.recipe, args.overrides, _resume(args))
    if args.cmd == "report":
        from pipeline.report import report
        report(args.recipe, args.overrides)
        return 0
    from pipeline.launch import launch, prepare
    from recipes.loader import load_stage

    r = load_stage(args.recipe, args.overrides)  # resolved once, handed to the launcher
    if args.cmd == "prepare":
        return prepare(r, args.recipe, resume=_resume(args))
    if args.launcher == "slurm":
        from pipeline.slurm import submit_stage
        return submit_stage(r, args.recipe, args.overrides, dry_run=args.dry_run, resume=_resume(args))
    return launch(r, args.recipe, args.overrides, dry_run=args.dry_run, resume=_resume(args))


if __name__ == "__main__":
    sys.exit(main())
