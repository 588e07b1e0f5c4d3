"""Evaluation CLI: lighteval runs on checkpoints and comparison with the published SmolLM3 numbers.

Usage: python -m eval run --model MODEL --suite SUITE --output-dir DIR [--max-samples N] [--system-prompt S]
                          [--backend transformers|vllm] [--context-lengths 256,512] [--set KEY=VALUE ...]
                          [--dry-run]   (every task spec with its backend and settings; nothing loaded)
       python -m eval compare RESULTS... [-o FILE.md] [--label L ...] [--model SmolLM3-3B] [--table auto]
       python -m eval suites
       python -m eval trajectory RUN_DIR [--suite tiny] [--released-dir DIR|MAP.yaml] [--revisions R,...] [--out DIR]

Bad input (missing model folder, unknown suite, bad results file) prints one line on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys

import yaml

TABLE_CHOICES = ("auto", "base_en", "base_multilingual", "instruct_no_think", "instruct_think")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line on stderr, exit 2 (argparse would print the usage too)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _kv(text: str):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set wants KEY=VALUE, got {text!r}")
    return key, yaml.safe_load(value)


def _lengths(text: str):
    try:
        out = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--context-lengths wants integers like 256,512, got {text!r}") from None
    if not out or min(out) < 64:
        raise argparse.ArgumentTypeError(f"--context-lengths wants integers >= 64, got {text!r}")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m eval", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="score a model on a suite with lighteval")
    r.add_argument("--model", required=True, help="Hugging Face model folder or Hub id")
    r.add_argument("--suite", required=True, help="tiny, offline, mc, math, humaneval, passkey, smollm3-base, ...")
    r.add_argument("--output-dir", required=True)
    r.add_argument("--max-samples", type=int)
    r.add_argument("--system-prompt", help="e.g. /think or /no_think")
    r.add_argument("--backend", default="transformers", choices=("transformers", "vllm"))
    r.add_argument("--context-lengths", type=_lengths, default=(256, 512), help="RULER / passkey lengths (tokens)")
    r.add_argument("--data-dir", help="keep the generated offline data here (default: a temp dir)")
    r.add_argument("--set", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="model option, e.g. batch_size=4, dtype=bfloat16, tensor_parallel_size=1")
    r.add_argument("--dry-run", action="store_true",
                   help="print every task spec with its backend and settings, load nothing (works offline)")
    c = sub.add_parser("compare", help="markdown table: measured vs published")
    c.add_argument("results", nargs="+", help="lighteval results_*.json files or eval output folders")
    c.add_argument("-o", "--output", help="write the markdown here (default: stdout)")
    c.add_argument("--label", action="append", help="stage label per results argument, in order")
    c.add_argument("--model", default="SmolLM3-3B", help="published column to compare with")
    c.add_argument("--table", default="auto", choices=TABLE_CHOICES)
    sub.add_parser("suites", help="list the suites and what lighteval 0.13 can run of the published ones")
    t = sub.add_parser("trajectory", help="your stage checkpoints beside the released ones, matched by tokens")
    t.add_argument("run_dir", help="runs/<run>: its nanotron stages' hf/ folders and manifests")
    t.add_argument("--suite", default="tiny")
    t.add_argument("--released-dir", help="folder of revision-named HF folders, or YAML {revision: folder}")
    t.add_argument("--revisions", type=lambda s: [x for x in s.split(",") if x], help="Hub revisions to consider")
    t.add_argument("--repo", default="HuggingFaceTB/SmolLM3-3B-checkpoints")
    t.add_argument("--out", help="output folder (default RUN_DIR/trajectory)")
    t.add_argument("--max-samples", type=int)
    t.add_argument("--rescore", action="store_true", help="score again even where results exist")
    return p


def _hub_reachable() -> bool:
    """HF_HUB_OFFLINE unset and huggingface.co answers a TCP connect within 2 s (nothing is downloaded)."""
    import os
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=2).close()
        return True
    except OSError:
        return False


def machine_lines() -> list[str]:
    """Each spec of the two published suites: 'runnable' here, or the one-line reason (what this machine lacks: the
    Hub or a local copy of the dataset, a GPU, a judge model), after eval.specs' own skip reasons and the task
    module's why_unavailable hook where eval/tasks has one."""
    import os

    import torch

    from eval import specs, tasks
    from eval.code_tasks import DATASETS, OVERRIDE_ENV
    from eval.published import figures

    hub, gpu = _hub_reachable(), torch.cuda.is_available()
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no")
    custom = {c.name: c for c in getattr(tasks, "all_task_configs", tasks.build_task_configs)(None)}
    builtin = specs.builtin_task_configs(True, True)[0]
    hook = getattr(tasks, "why_unavailable", None)
    hard = {t: n for _, _, b in figures() for t in b["measured_by"]["tasks"] for n in b["measured_by"]["needs"]
            if "GPU" in n or "judge" in n}
    lacks = "HF_HUB_OFFLINE is set" if offline else "the Hub is not reachable"
    out = [f"On this machine (GPU: {'yes' if gpu else 'no'}, Hub: {'yes' if hub else 'no'}):"]
    for suite in ("smollm3-base", "smollm3-instruct"):
        s = specs.published_suites()[suite]
        skipped = dict(specs.runnable_specs(s, None, set(custom) | set(DATASETS))[1])
        for spec in s["specs"]:
            why = skipped.get(str(spec))
            names = specs.resolve(spec.task, custom) or specs.resolve(spec.task, builtin)
            cfg = custom.get(names[0]) or builtin.get(names[0]) if names else None
            if why is None and spec.task in DATASETS:
                env = OVERRIDE_ENV[DATASETS[spec.task]]
                if not hub and not os.environ.get(env):
                    why = f"needs EvalPlus's data file from GitHub ({lacks}; or ${env})"
            elif why is None and cfg is not None:
                why = hook(cfg, offline) if hook and cfg.name in custom else None
                if why and "Hub" not in why and not os.path.isdir(str(cfg.hf_repo)):
                    why += f" (the Hub dataset {cfg.hf_repo})"
                if why is None and not os.path.isdir(str(cfg.hf_repo)) and not hub:
                    why = f"needs the Hub dataset {cfg.hf_repo} ({lacks})"
            if why is None and spec.task in hard and not gpu:
                why = f"needs {hard[spec.task]}"
            out.append(f"  {suite} {spec}: {why or 'runnable'}")
    return out


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from eval.compare import ResultsError
    from eval.published import PublishedError
    from eval.run import EvalInputError
    from eval.trajectory import TrajectoryError

    try:
        if args.cmd == "run" and args.dry_run:
            from eval.run import dry_run

            print("\n".join(dry_run(args.model, args.suite, backend=args.backend, system_prompt=args.system_prompt,
                                     context_lengths=args.context_lengths, max_samples=args.max_samples,
                                     **dict(args.set))))
        elif args.cmd == "run":
            from eval.run import run_eval

            scores = run_eval(args.model, args.suite, args.output_dir, max_samples=args.max_samples,
                              system_prompt=args.system_prompt, backend=args.backend,
                              context_lengths=args.context_lengths, data_dir=args.data_dir, **dict(args.set))
            print(json.dumps(scores, indent=2))
        elif args.cmd == "compare":
            from eval.compare import compare

            text = compare(args.results, args.label, args.model, args.table)
            if args.output:
                with open(args.output, "w") as f:
                    f.write(text)
                print(f"wrote {args.output}")
            else:
                print(text)
        elif args.cmd == "trajectory":
            from eval.trajectory import trajectory

            trajectory(args.run_dir, args.suite, args.released_dir, args.revisions, args.repo, args.out,
                       args.max_samples, args.rescore)
        else:
            from eval.specs import main as list_suites

            rc = list_suites()
            print("\n".join(machine_lines()))
            return rc
    except (EvalInputError, ResultsError, PublishedError, TrajectoryError) as e:
        print(f"python -m eval {args.cmd}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
