"""Mixture report: what each pretraining / long-context stage draws from each source.

Usage:
  python -m pretrain.data.report recipes/tiny                        # markdown on stdout
  python -m pretrain.data.report recipes/smollm3-3b -o mixtures.md   # works without the data: tokens unknown
  python -m pretrain.data.report recipes/tiny --max-epochs 3 --json

Per stage: source, category, weight, normalized share, tokens available (from runs/<recipe>/data/<source>/
when built, else "unknown"), tokens the stage draws (the planner's tokens x share), epochs over the source,
and the category shares. Sources repeated more than `max_epochs_warning` (the data recipe; --max-epochs
overrides it) are flagged, per stage and over the whole pipeline. Bad input: one line on stderr, exit 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from recipes.derive import mixture_shares, plan_row
from recipes.loader import RecipeError, load_recipe

CATEGORIES = ["web", "multilingual", "code", "math", "reasoning"]


def human(n) -> str:
    if n is None:
        return "unknown"
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


def available_tokens(recipe_name: str, source: str):
    """Tokens in the source's tokenized folder, or None when it is not built (corrupt folders raise)."""
    from pretrain.data.mixture import TokenizedFolder
    from pretrain.data.sources import source_folder

    folder = source_folder(recipe_name, source)
    if not folder.is_dir():
        return None
    return TokenizedFolder(folder).n_tokens


def build_report(directory, overrides=(), max_epochs=None) -> dict:
    recipes = load_recipe(directory, overrides)
    data = next((r for r in recipes.values() if r.kind == "data"), None)
    limit = max_epochs if max_epochs is not None else (data.max_epochs_warning if data else 5.0)
    name = next(iter(recipes.values())).name
    report = {"recipe": name, "max_epochs": limit, "stages": [], "warnings": [], "sources": {}}
    cache: dict = {}
    for r in recipes.values():
        if r.kind not in ("pretrain", "longctx"):
            continue
        mixture = r.data.mixture
        row = plan_row(r, mfu=0.4, peak_tflops=None)
        total_w = sum(s.weight for s in mixture.sources)
        stage = {"stage": r.stage, "mixture": mixture.name, "tokens": row["tokens"], "steps": row["steps"],
                 "first_step": row["first_step"], "last_step": row["last_step"], "sequence_length": row["seq_len"],
                 "sources": [], "category_shares": {}}
        for s in mixture.sources:
            if s.name not in cache:
                cache[s.name] = available_tokens(r.name, s.name)
            avail = cache[s.name]
            share = s.weight / total_w
            drawn = row["tokens"] * share
            epochs = drawn / avail if avail else None
            stage["sources"].append({"source": s.name, "category": s.category, "weight": s.weight,
                                     "share": 100 * share, "tokens_available": avail, "tokens_drawn": drawn,
                                     "epochs": epochs})
            tot = report["sources"].setdefault(s.name, {"category": s.category, "tokens_available": avail,
                                                        "tokens_drawn": 0.0, "stages": []})
            tot["tokens_drawn"] += drawn
            tot["stages"].append(r.stage)
            if epochs is not None and epochs > limit:
                report["warnings"].append(f"{r.stage}: {s.name} is repeated {epochs:.1f} epochs "
                                          f"(more than max_epochs_warning {limit:g})")
        shares = mixture_shares(mixture)
        stage["category_shares"] = {c: shares.get(c, 0.0) for c in CATEGORIES}
        stage["category_shares"]["web+multilingual"] = shares.get("web", 0.0) + shares.get("multilingual", 0.0)
        report["stages"].append(stage)
    for src, tot in report["sources"].items():
        avail = tot["tokens_available"]
        tot["epochs"] = tot["tokens_drawn"] / avail if avail else None
        if tot["epochs"] is not None and tot["epochs"] > limit:
            report["warnings"].append(f"all stages: {src} is repeated {tot['epochs']:.1f} epochs "
                                      f"(more than max_epochs_warning {limit:g})")
    return report


def to_markdown(rep: dict) -> str:
    out = [f"# Data mixtures of `{rep['recipe']}`", "",
           "Weights are sampling probabilities, normalized per stage (as nanotron does). Tokens drawn = the "
           "planner's tokens for the stage x the source's share. Tokens available come from "
           f"`runs/{rep['recipe']}/data/<source>/` (unknown: not built). Epochs above "
           f"{rep['max_epochs']:g} are flagged.", ""]
    for st in rep["stages"]:
        out += [f"## {st['stage']} (mixture `{st['mixture']}`)", "",
                f"{human(st['tokens'])} tokens: steps {st['first_step']:,}-{st['last_step']:,} of "
                f"sequences of {st['sequence_length']:,} tokens.", "",
                "| source | category | weight | share % | tokens available | tokens drawn | epochs |",
                "|---|---|---:|---:|---:|---:|---:|"]
        for s in st["sources"]:
            ep = "unknown" if s["epochs"] is None else f"{s['epochs']:.2f}"
            if s["epochs"] is not None and s["epochs"] > rep["max_epochs"]:
                ep += " (!)"
            out.append(f"| {s['source']} | {s['category']} | {s['weight']:g} | {s['share']:.2f} | "
                       f"{human(s['tokens_available'])} | {human(s['tokens_drawn'])} | {ep} |")
        out += ["", "| category | share % |", "|---|---:|"]
        out += [f"| {c} | {v:.1f} |" for c, v in st["category_shares"].items()]
        out.append("")
    out += ["## All stages", "", "| source | category | stages | tokens available | tokens drawn | epochs |",
            "|---|---|---|---:|---:|---:|"]
    for src, t in rep["sources"].items():
        ep = "unknown" if t["epochs"] is None else f"{t['epochs']:.2f}"
        out.append(f"| {src} | {t['category']} | {len(t['stages'])} | {human(t['tokens_available'])} | "
                   f"{human(t['tokens_drawn'])} | {ep} |")
    out.append("")
    if rep["warnings"]:
        out += ["## Warnings", ""] + [f"- {w}" for w in rep["warnings"]] + [""]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pretrain.data.report", description=__doc__.split("\n")[0])
    ap.add_argument("recipe", help="a recipe directory, e.g. recipes/tiny")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--max-epochs", type=float, default=None, help="warn above this many epochs "
                                                                  "(default: the data recipe's max_epochs_warning)")
    ap.add_argument("-o", "--output", help="write the report to this file (markdown, or JSON with --json)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.max_epochs is not None and args.max_epochs <= 0:
            raise RecipeError("--max-epochs", "", f"must be > 0 (got {args.max_epochs})")
        rep = build_report(args.recipe, args.overrides, args.max_epochs)
    except RecipeError as e:
        print(str(e), file=sys.stderr)
        return 2
    text = json.dumps(rep, indent=2) + "\n" if args.json else to_markdown(rep)
    for w in rep["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, out)
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
