"""Markdown tables: measured lighteval scores side by side with the published SmolLM3 numbers.

Usage: python -m eval compare RESULTS... [-o FILE.md] [--label L ...] [--model SmolLM3-3B] [--table auto]

RESULTS are lighteval results_*.json files, or folders searched for the newest one (an `eval run` output dir).
One file: benchmark | lighteval entries | measured | published | delta | match.
Several: a stage x benchmark summary (labels from --label, else the output folder names), then one table each.
"""

from __future__ import annotations

import json
from pathlib import Path

from eval.published import load_tables, measure, task_of


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


def load_results(path) -> tuple[dict, dict, Path]:
    """({task|fewshot: {metric: value}}, config_general, file) of a lighteval results file."""
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
    return scores, data.get("config_general") or {}, f


def default_label(f: Path) -> str:
    parts = [p for p in f.parent.parts if p not in ("results", "/")]
    return parts[-1] if parts else f.stem


def pick_tables(config: dict, table: str) -> list[str]:
    if table != "auto":
        return [table]
    prompt = ((config.get("model_config") or {}).get("system_prompt") or "").strip()
    return ["base_en", "base_multilingual", "instruct_no_think" if prompt == "/no_think" else "instruct_think"]


def rows_for(scores: dict, config: dict, model: str, table: str = "auto") -> list[dict]:
    tables, rows, used_keys = load_tables(), [], set()
    for tname in pick_tables(config, table):
        t = tables[tname]
        for key, b in t["benchmarks"].items():
            for match in ("exact", "proxy"):
                spec = b.get("measured_by") if match == "exact" else b.get("proxy")
                value, used = measure(scores, spec) if spec else (None, [])
                if value is not None:
                    pub = b["values"].get(model)
                    rows.append({"benchmark": b["name"], "key": f"{tname}.{key}",
                                 "entries": [f"{k} {m}" for k, m in used], "measured": value,
                                 "published": pub, "delta": None if pub is None else value - pub, "match": match})
                    used_keys.update(k for k, _ in used)
                    break
    for k, metrics in sorted(scores.items()):
        if k not in used_keys:
            for m, v in metrics.items():
                if isinstance(v, (int, float)):
                    rows.append({"benchmark": task_of(k), "key": k, "entries": [f"{k} {m}"], "measured": 100 * v,
                                 "published": None, "delta": None, "match": "none"})
                    break
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _fmt(v, signed=False):
    return "–" if v is None else (f"{v:+.2f}" if signed else f"{v:.2f}")


def detail_table(rows: list[dict], model: str) -> str:
    out = [f"| Benchmark | lighteval entries | Measured | Published ({model}) | Delta | Match |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {_cell(r['benchmark'])} | {_cell(', '.join(r['entries']))} | {_fmt(r['measured'])} | "
                   f"{_fmt(r['published'])}"
                   f" | {_fmt(r['delta'], True)} | {r['match']} |")
    return "\n".join(out)


def summary_table(runs: list[tuple[str, list[dict]]], model: str) -> str:
    order, published = [], {}
    for _, rows in runs:
        for r in rows:
            if r["benchmark"] not in published:
                order.append(r["benchmark"])
                published[r["benchmark"]] = r["published"]
    labels = [lab for lab, _ in runs]
    out = ["| Benchmark | " + " | ".join(map(_cell, labels)) + f" | Published ({model}) |",
           "|---" * (len(labels) + 2) + "|"]
    for bench in order:
        cells = [_fmt(next((r["measured"] for r in rows if r["benchmark"] == bench), None)) for _, rows in runs]
        out.append(f"| {_cell(bench)} | " + " | ".join(cells) + f" | {_fmt(published[bench])} |")
    return "\n".join(out)


def compare(paths, labels=None, model: str = "SmolLM3-3B", table: str = "auto") -> str:
    """Markdown report for one or several lighteval results files/folders."""
    if labels and len(labels) != len(paths):
        raise ResultsError(f"--label given {len(labels)} times for {len(paths)} results")
    runs = []
    for i, p in enumerate(paths):
        scores, config, f = load_results(p)
        label = labels[i] if labels else default_label(f)
        runs.append((label, rows_for(scores, config, model, table), f))
    parts = ["# Measured vs published SmolLM3 numbers",
             "Published values are percent (eval/published/*.yaml); measured lighteval scores are scaled to percent. "
             "Match: exact = the published task, proxy = offline stand-in (see the yaml notes), none = no published "
             "number."]
    if len(runs) > 1:
        parts += ["## Summary (stage x benchmark)", summary_table([(lab, rows) for lab, rows, _ in runs], model)]
    for label, rows, f in runs:
        parts += [f"## {label}", f"Results file: `{f}`", detail_table(rows, model)]
    return "\n\n".join(parts) + "\n"
