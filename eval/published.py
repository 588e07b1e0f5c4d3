"""Published SmolLM3 numbers (eval/published/*.yaml): load, validate, and match to lighteval result entries.

Usage: from eval.published import load_tables; tables = load_tables()   # {table name: table dict}

Each table: models (column order), benchmarks {key: {name, source, values {model: percent|null},
measured_by {tasks, metrics, scale, suite, needs}, optional proxy {tasks, metrics, scale, note}, optional note}}.
measured_by.tasks are lighteval task names (a superset name such as arc_cf averages its subtasks);
the first metric of measured_by.metrics present in the results is used; scale converts to percent.
measured_by.suite is the `python -m eval run` suite that scores it, measured_by.needs what that takes beyond an
offline CPU machine (a Hub dataset, a GPU, a judge model; [] for nothing): compare's "not run" reasons.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

PUBLISHED_DIR = Path(__file__).parent / "published"
TABLES = ("base_en", "base_multilingual", "instruct_no_think", "instruct_think")


class PublishedError(ValueError):
    pass


def _check_table(path: Path, t) -> dict:
    def need(cond, field):
        if not cond:
            raise PublishedError(f"{path}: bad or missing field {field}")

    need(isinstance(t, dict), "(top level)")
    need(isinstance(t.get("models"), list) and t["models"], "models")
    need(isinstance(t.get("benchmarks"), dict) and t["benchmarks"], "benchmarks")
    for key, b in t["benchmarks"].items():
        need(isinstance(b, dict) and isinstance(b.get("name"), str), f"benchmarks.{key}.name")
        need(isinstance(b.get("source"), str) and b["source"], f"benchmarks.{key}.source")
        vals = b.get("values")
        need(isinstance(vals, dict) and set(vals) <= set(t["models"]), f"benchmarks.{key}.values")
        for m, v in vals.items():
            need(v is None or isinstance(v, (int, float)) and 0 <= v <= 100, f"benchmarks.{key}.values.{m}")
        for part in ("measured_by", "proxy"):
            if part in b or part == "measured_by":
                mb = b.get(part)
                need(isinstance(mb, dict) and isinstance(mb.get("tasks"), list)
                     and isinstance(mb.get("metrics"), list) and isinstance(mb.get("scale", 100), (int, float)),
                     f"benchmarks.{key}.{part}")
        mb = b["measured_by"]
        need(isinstance(mb.get("suite", ""), str), f"benchmarks.{key}.measured_by.suite")
        need(isinstance(mb.get("needs", []), list) and all(isinstance(x, str) for x in mb.get("needs", [])),
             f"benchmarks.{key}.measured_by.needs")
    return t


_PARSED: dict = {}  # (path, size, mtime) -> checked table: compare reads the tables once per results folder


def load_tables(directory=PUBLISHED_DIR) -> dict:
    out = {}
    for name in TABLES:
        path = Path(directory) / f"{name}.yaml"
        try:
            st = path.stat()
            key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
            if key not in _PARSED:
                _PARSED[key] = _check_table(path, yaml.safe_load(path.read_text()))
            out[name] = copy.deepcopy(_PARSED[key])
        except (OSError, yaml.YAMLError) as e:
            raise PublishedError(f"{path}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    return out


def task_of(result_key: str) -> str:
    """'mmlu_cf:anatomy|0' -> 'mmlu_cf:anatomy' (lighteval result keys are task|fewshot)."""
    head, _, tail = result_key.rpartition("|")
    return head if head and tail.isdigit() else result_key


def figures(tables: dict | None = None, model: str = "SmolLM3-3B") -> list[tuple[str, str, dict]]:
    """Every published figure of `model`: [(table, key, benchmark)] in file order (62 for SmolLM3-3B)."""
    tables = load_tables() if tables is None else tables
    return [(t, k, b) for t in TABLES for k, b in tables[t]["benchmarks"].items() if b["values"].get(model) is not None]


def measure(results: dict, spec: dict) -> tuple[float | None, list[tuple[str, str]]]:
    """Percent score of a benchmark from {task|fewshot: {metric: value}}: mean over spec tasks (a superset
    task averages its subtasks); returns (value or None, [(result key, metric)] used)."""
    value, _, used = measure_with_stderr(results, spec)
    return value, used


def measure_with_stderr(results: dict, spec: dict, stderr: dict | None = None):
    """(percent value or None, its standard error or None, [(result key, metric)] used).

    stderr: {task|fewshot: {metric: lighteval's <metric>_stderr}}. The value is a mean of means (subtasks within
    a task, then tasks), so its standard error is propagated as for independent estimates: sqrt(sum se^2) / n at
    each level; None when any entry used has no stderr."""
    per_task, used = [], []
    for task in spec["tasks"]:
        keys = [k for k in results if task_of(k) == task] or \
               [k for k in results if task_of(k).split(":")[0] == task and ":" in task_of(k)]
        vals = []
        for k in keys:
            metric = next((m for m in spec["metrics"] if isinstance(results[k].get(m), (int, float))), None)
            if metric is not None:
                se = (stderr or {}).get(k, {}).get(metric)
                vals.append((float(results[k][metric]), se if isinstance(se, (int, float)) else None))
                used.append((k, metric))
        if vals:
            per_task.append(_mean_se(vals))
    if not per_task:
        return None, None, []
    value, se = _mean_se(per_task)
    scale = spec.get("scale", 100)
    return value * scale, None if se is None else se * scale, used


def _mean_se(pairs: list[tuple[float, float | None]]) -> tuple[float, float | None]:
    n = len(pairs)
    mean = sum(v for v, _ in pairs) / n
    if any(se is None for _, se in pairs):
        return mean, None
    return mean, sum(se * se for _, se in pairs) ** 0.5 / n
