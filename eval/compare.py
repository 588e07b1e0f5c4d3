"""Markdown tables: measured lighteval scores (± lighteval's standard error) beside every published SmolLM3 figure.

Usage: python -m eval compare RESULTS... [-o FILE.md] [--label L ...] [--model SmolLM3-3B] [--table auto]

RESULTS are lighteval results_*.json files, or folders searched for the newest one (an `eval run` output dir);
a folder of such folders (the eval stage's runs/<run>/eval) stands for each of them, in its manifest's order.
Every published figure of --model (eval/published/*.yaml: 62 for SmolLM3-3B) gets a row: the measured value and
its standard error beside the published one, or "not run" with the reason (the task is not in the results and
what scoring it takes: a Hub dataset, a GPU, a judge model; or the run's /think vs /no_think mode). Tasks with no
published figure follow. One results file: one table. Several: a stage x benchmark summary (labels from --label,
else the output folder names), then each run's measured rows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from eval.published import TABLES, figures, load_tables, measure_with_stderr, task_of

MODE_TABLES = {"instruct_no_think": "/no_think", "instruct_think": "/think"}


class ResultsError(ValueError):
    pass


def find_results_file(path) -> Path:
    p = Path(path)
    if p.is_dir():
        found = sorted(p.rglob("results_*.json"), key=lambda f: (f.stat().st_mtime, f.name))
        if not found:
            raise ResultsError(f"{p}: no lighteval results_*.json file in this folder")
        return found[-1]
    if not p.is_file():
        raise ResultsError(f"{p}: results file not found")
    return p


def expand(paths) -> list[Path]:
    """Each path, but a folder without results of its own and with `eval run` folders under it (runs/<run>/eval)
    becomes those folders: in the order of its manifest.json outputs, else by name."""
    out = []
    for p in map(Path, paths):
        own = p.is_dir() and (list(p.glob("results_*.json")) or list(p.glob("results/results_*.json")))
        subs = [d for d in sorted(p.iterdir()) if d.is_dir() and list(d.rglob("results_*.json"))] \
            if p.is_dir() and not own else []
        if not subs:
            out.append(p)
            continue
        try:
            order = json.loads((p / "manifest.json").read_text()).get("outputs") or []
        except (OSError, ValueError):
            order = []
        out += sorted(subs, key=lambda d: (order.index(d.name) if d.name in order else len(order), d.name))
    return out


def load_run(path) -> dict:
    """A results file as {scores, stderr ({task: {metric: se}}), config, file, meta (eval_run.json or {}),
    system_prompt}. eval_run.json (written by `python -m eval run` beside results/) gives the suite and the
    system prompt the run used (a BFCL run renders it into its prompts, so lighteval's config has none)."""
    f = find_results_file(path)
    try:
        data = json.loads(f.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(f"{f}: not a JSON results file ({type(e).__name__})") from None
    res = data.get("results") if isinstance(data, dict) else None
    if not isinstance(res, dict) or not all(isinstance(v, dict) for v in res.values()):
        raise ResultsError(f"{f}: field 'results' missing or not a mapping of task -> metrics")
    scores = {k: {m: v for m, v in metrics.items() if not m.endswith("_stderr")}
              for k, metrics in res.items() if k != "all"}
    stderr = {k: {m[:-len("_stderr")]: v for m, v in metrics.items() if m.endswith("_stderr")}
              for k, metrics in res.items() if k != "all"}
    config = data.get("config_general") or {}
    meta = {}
    for d in (f.parent, f.parent.parent):
        try:
            meta = json.loads((d / "eval_run.json").read_text())
            break
        except (OSError, ValueError):
            continue
    prompt = meta["system_prompt"] if "system_prompt" in meta else \
        (config.get("model_config") or {}).get("system_prompt")
    return {"scores": scores, "stderr": stderr, "config": config, "file": f, "meta": meta,
            "system_prompt": (prompt or "").strip() or None}


def load_results(path) -> tuple[dict, dict, Path]:
    """({task|fewshot: {metric: value}}, config_general, file) of a lighteval results file."""
    run = load_run(path)
    return run["scores"], run["config"], run["file"]


def default_label(f: Path) -> str:
    parts = [p for p in f.parent.parts if p not in ("results", "/")]
    return parts[-1] if parts else f.stem


def display_name(table: str, b: dict) -> str:
    return f"{b['name']} {MODE_TABLES[table]}" if table in MODE_TABLES else b["name"]


def _mode_mismatch(table: str, prompt) -> str | None:
    if table == "instruct_no_think" and prompt != "/no_think":
        return f"a /no_think figure: this run's system prompt is {prompt or 'none'}"
    if table == "instruct_think" and prompt == "/no_think":
        return "a /think figure: this run's system prompt is /no_think"
    return None


def why_not_run(b: dict, run: dict) -> str:
    """One line: why the figure has no measured value in this run."""
    mb, scores = b["measured_by"], run["scores"]
    present = [t for t in mb["tasks"] if any(task_of(k) == t or task_of(k).split(":")[0] == t for k in scores)]
    if present:
        return f"{', '.join(present)} in the results without metric {' / '.join(mb['metrics'])}"
    suite, run_suite = mb.get("suite", "?"), run["meta"].get("suite")
    needs = "needs " + "; ".join(mb["needs"]) if mb.get("needs") else ""
    if run_suite == suite:
        return f"skipped in this {suite} run" + (f": {needs}" if needs else "")
    if needs:
        return f"{needs} (suite {suite})"
    return f"task not in this run's results (suite {suite}: {', '.join(mb['tasks'])})"


def rows_for(run: dict, model: str, table: str = "auto") -> list[dict]:
    """One row per published figure of `model` (in table order), then one per measured task without one."""
    tables = load_tables()
    picked = TABLES if table == "auto" else (table,)
    rows, used_keys = [], set()
    for tname, key, b in figures(tables, model):
        if tname not in picked:
            continue
        row = {"benchmark": display_name(tname, b), "key": f"{tname}.{key}", "table": tname, "entries": [],
               "measured": None, "stderr": None, "published": b["values"][model], "delta": None,
               "match": "not run", "reason": ""}
        mismatch = _mode_mismatch(tname, run["system_prompt"]) if table == "auto" else None
        for match in ("exact", "proxy"):
            spec = b.get("measured_by") if match == "exact" else b.get("proxy")
            value, se, used = measure_with_stderr(run["scores"], spec, run["stderr"]) if spec and not mismatch \
                else (None, None, [])
            if value is not None:
                row.update(entries=[f"{k} {m}" for k, m in used], measured=value, stderr=se,
                           delta=value - row["published"], match=match,
                           reason=spec.get("note", "") if match == "proxy" else "")
                used_keys.update(k for k, _ in used)
                break
        else:
            row["reason"] = mismatch or why_not_run(b, run)
        rows.append(row)
    for k, metrics in sorted(run["scores"].items()):
        if k not in used_keys:
            for m, v in metrics.items():
                if isinstance(v, (int, float)):
                    se = run["stderr"].get(k, {}).get(m)
                    rows.append({"benchmark": task_of(k), "key": k, "table": "", "entries": [f"{k} {m}"],
                                 "measured": 100 * v, "stderr": None if se is None else 100 * se,
                                 "published": None, "delta": None, "match": "none", "reason": "no published figure"})
                    break
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _fmt(v, signed=False):
    return "–" if v is None else (f"{v:+.2f}" if signed else f"{v:.2f}")


def _se(v):
    return "–" if v is None else f"±{v:.2f}"


def detail_table(rows: list[dict], model: str) -> str:
    out = [f"| Benchmark | lighteval entries | Measured | Published ({model}) | Delta | Match | Stderr | Table | "
           "Not run because / note |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {_cell(r['benchmark'])} | {_cell(', '.join(r['entries']))} | {_fmt(r['measured'])} | "
                   f"{_fmt(r['published'])} | {_fmt(r['delta'], True)} | {r['match']} | {_se(r['stderr'])} | "
                   f"{r['table']} | {_cell(r['reason'])} |")
    return "\n".join(out)


def summary_table(runs: list[tuple[str, list[dict]]], model: str) -> str:
    """Benchmark | one column per run | Published | the runs' standard errors | why not run (grouped by reason)."""
    order, by_key = [], {}
    for _, rows in runs:
        for r in rows:
            if r["key"] not in by_key:
                order.append(r["key"])
                by_key[r["key"]] = r
    labels = [lab for lab, _ in runs]
    out = ["| Benchmark | " + " | ".join(map(_cell, labels)) + f" | Published ({model}) | "
           + " | ".join(f"± {_cell(lab)}" for lab in labels) + " | Not run because |",
           "|---" * (2 * len(labels) + 3) + "|"]
    for key in order:
        cells = [next((r for r in rows if r["key"] == key), None) for _, rows in runs]
        values = [_fmt(c["measured"] if c else None) for c in cells]
        errors = [_se(c["stderr"] if c else None) for c in cells]
        reasons = defaultdict(list)
        for lab, c in zip(labels, cells):
            if c is not None and c["measured"] is None:
                reasons[c["reason"]].append(lab)
        why = next(iter(reasons)) if len(reasons) == 1 and sum(map(len, reasons.values())) == len(labels) else \
            "; ".join(f"{', '.join(labs)}: {reason}" for reason, labs in reasons.items())
        out.append(f"| {_cell(by_key[key]['benchmark'])} | " + " | ".join(values) +
                   f" | {_fmt(by_key[key]['published'])} | " + " | ".join(errors) + f" | {_cell(why)} |")
    return "\n".join(out)


def _category(reason: str) -> str:
    if reason.startswith("a /"):
        return "the other /think or /no_think mode"
    for needle, cat in (("judge model", "a judge model"), ("a GPU", "a GPU"), ("EvalPlus", "EvalPlus's data files"),
                        ("the Hub dataset", "Hub datasets")):
        if needle in reason:
            return cat
    return "task not in the results"


def counts(runs: list[tuple[str, list[dict]]]) -> str:
    """'N published figures: M measured in at least one run (e exact, p proxy), K not run (by what they need)'."""
    best, reasons = {}, {}
    for _, rows in runs:
        for r in rows:
            if r["match"] != "none":
                rank = {"exact": 2, "proxy": 1}.get(r["match"], 0)
                if rank > best.get(r["key"], -1):
                    best[r["key"]] = rank
                reasons.setdefault(r["key"], r["reason"])
    exact, proxy = sum(v == 2 for v in best.values()), sum(v == 1 for v in best.values())
    missing = defaultdict(int)
    for k, v in best.items():
        if v == 0:
            missing[_category(reasons[k])] += 1
    text = f"{len(best)} published figures: {exact + proxy} measured ({exact} exact, {proxy} proxy), " \
           f"{len(best) - exact - proxy} not run"
    if not missing:
        return text
    ranked = sorted(missing.items(), key=lambda x: -x[1])
    return text + " (" + ", ".join(f"{c}: {n}" if c.startswith("task") else f"needs {c}: {n}" for c, n in ranked) + ")"


def compare(paths, labels=None, model: str = "SmolLM3-3B", table: str = "auto") -> str:
    """Markdown report for one or several lighteval results files/folders."""
    if labels and len(labels) != len(paths):
        raise ResultsError(f"--label given {len(labels)} times for {len(paths)} results")
    runs = []
    if not labels:
        paths = expand(paths)
    for i, p in enumerate(paths):
        run = load_run(p)
        label = labels[i] if labels else default_label(run["file"])
        runs.append((label, rows_for(run, model, table), run["file"]))
    parts = ["# Measured vs published SmolLM3 numbers",
             "Published values are percent (eval/published/*.yaml); measured lighteval scores are scaled to percent, "
             "± lighteval's standard error (of a mean over subtasks: propagated as independent). Match: exact = the "
             "published task, proxy = offline stand-in (see the yaml notes), not run = the reason in the last column, "
             "none = no published number.",
             counts([(lab, rows) for lab, rows, _ in runs]) + "."]
    if len(runs) > 1:
        parts += ["## Summary (stage x benchmark)", summary_table([(lab, rows) for lab, rows, _ in runs], model)]
    for label, rows, f in runs:
        shown = rows if len(runs) == 1 else [r for r in rows if r["measured"] is not None]
        parts += [f"## {label}", f"Results file: `{f}`", detail_table(shown, model)]
    return "\n\n".join(parts) + "\n"
