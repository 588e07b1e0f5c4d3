"""Task specs of the published suites: parse `suite|task|fewshot|truncate`, resolve against lighteval 0.13.

Usage: python -m eval suites            (lists every suite; the published ones with what 0.13 can run)
       from eval.specs import published_suites, builtin_task_names, resolve

lighteval 0.13 parses only `task|fewshot` (and `suite|task|fewshot` with the suite ignored): the authors'
4-field lines are converted by to_lighteval(). builtin_task_names() imports lighteval's task modules one by
one with sockets disabled, so it never touches the network; modules that fail offline are reported, not fatal
(tiny_benchmarks downloads a pickle from GitHub at import; some multilingual ones need extra packages).
"""

from __future__ import annotations

import contextlib
import importlib
import re
import socket
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import yaml

SUITES_DIR = Path(__file__).parent / "suites"
LIGHTEVAL_SUITES = {"helm", "bigbench", "harness", "leaderboard", "lighteval", "original", "extended", "custom",
                    "test", "community", "multilingual"}
SPEC_RE = re.compile(r"^(?P<suite>[a-z_]+)\|(?P<task>[A-Za-z0-9_][\w:.\-]*)\|(?P<fewshot>\d+)\|(?P<truncate>[01])$")


class Spec(NamedTuple):
    suite: str
    task: str
    fewshot: int
    truncate: int

    def __str__(self):
        return f"{self.suite}|{self.task}|{self.fewshot}|{self.truncate}"


def parse_spec(line: str) -> Spec:
    m = SPEC_RE.match(line.strip())
    if not m or m["suite"] not in LIGHTEVAL_SUITES:
        raise ValueError(f"bad task spec {line.strip()!r} (want suite|task|fewshot|truncate, suite in lighteval's)")
    return Spec(m["suite"], m["task"], int(m["fewshot"]), int(m["truncate"]))


def read_spec_file(path) -> list[Spec]:
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                out.append(parse_spec(line))
            except ValueError as e:
                raise ValueError(f"{path}:{n}: {e}") from None
    return out


def to_lighteval(spec: Spec) -> str:
    """lighteval 0.13 form (task|fewshot); its parser drops the suite and has no truncate field."""
    return f"{spec.task}|{spec.fewshot}"


@lru_cache(maxsize=1)
def _suites_yaml() -> dict:
    return yaml.safe_load((SUITES_DIR / "published.yaml").read_text())


def published_suites() -> dict:
    """name -> settings (extends resolved) with 'specs': list[Spec]."""
    raw, out = _suites_yaml()["suites"], {}
    for name, s in raw.items():
        merged = {**raw[s["extends"]], **s} if "extends" in s else dict(s)
        merged.pop("extends", None)
        merged["specs"] = read_spec_file(SUITES_DIR / merged["file"])
        out[name] = merged
    return out


def custom_task_notes() -> dict:
    return dict(_suites_yaml()["custom_tasks"])


def missing_notes() -> dict:
    return dict(_suites_yaml()["not_in_lighteval_0_13"])


@contextlib.contextmanager
def no_network():
    def refuse(*a, **k):
        raise OSError("network disabled while scanning lighteval's task registry")

    saved = socket.socket.connect, socket.getaddrinfo, socket.create_connection
    socket.socket.connect, socket.getaddrinfo, socket.create_connection = refuse, refuse, refuse
    try:
        yield
    finally:
        socket.socket.connect, socket.getaddrinfo, socket.create_connection = saved


@lru_cache(maxsize=4)
def builtin_task_configs(multilingual: bool = True, offline: bool = True) -> tuple[dict, dict]:
    """({name: LightevalTaskConfig} of lighteval 0.13's built-in tasks, {module: error} for modules that fail).

    Unlike Registry(), a failing module (network at import, missing optional extra) is skipped, not fatal.
    offline=True disables sockets meanwhile (use False for real runs: ifeval fetches nltk data at import)."""
    import logging
    import warnings

    import lighteval.tasks.registry as reg

    base = Path(reg.__file__).parent
    mods = [f"lighteval.tasks.tasks.{f.stem}" for f in sorted((base / "tasks").glob("*.py")) if f.stem != "__init__"]
    mods += [f"lighteval.tasks.tasks.{d.name}.main" for d in sorted((base / "tasks").iterdir())
             if d.is_dir() and (d / "main.py").exists()]
    if multilingual:
        mods += [f"lighteval.tasks.multilingual.tasks.{f.stem}"
                 for f in sorted((base / "multilingual" / "tasks").glob("*.py")) if f.stem != "__init__"]
    configs, failed = {}, {}
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with no_network() if offline else contextlib.nullcontext(), warnings.catch_warnings(), \
                contextlib.redirect_stdout(None), contextlib.redirect_stderr(None):
            warnings.simplefilter("ignore")
            for mod in mods:
                try:
                    configs.update({c.name: c for c in getattr(importlib.import_module(mod), "TASKS_TABLE", [])})
                except BaseException as e:  # noqa: BLE001 - a failing module must not hide the others
                    failed[mod] = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
    finally:
        logging.disable(previous)
    return configs, failed


def builtin_task_names(multilingual: bool = True) -> tuple[frozenset, dict]:
    """(names of lighteval 0.13's built-in tasks, {module: error}), found with the network disabled."""
    configs, failed = builtin_task_configs(multilingual, True)
    return frozenset(configs), failed


def resolve(task: str, names) -> list[str]:
    """The task names lighteval would run for `task`: itself, or a superset's subtasks (prefix before ':')."""
    if task in names:
        return [task]
    subs = sorted(n for n in names if n.split(":")[0] == task)
    return subs if len(subs) > 1 else []


def classify(spec: Spec, names) -> tuple[str, str]:
    """('builtin', '') | ('custom', what defines it) | ('missing', why)."""
    if spec.suite == "custom":
        return "custom", custom_task_notes().get(spec.task, "defined only in the authors' tasks.py")
    if resolve(spec.task, names):
        return "builtin", ""
    for prefix, why in missing_notes().items():
        if spec.task.startswith(prefix):
            return "missing", why
    return "missing", "not a task of lighteval 0.13"


def runnable_specs(suite: dict, names=None, custom_names=()) -> tuple[list[str], list[tuple[str, str]]]:
    """(lighteval 0.13 task strings that resolve, [(spec, why skipped)]); names default: offline scan.
    custom_names: the custom tasks at hand (eval.tasks.task_names()); a `custom|` spec runs if it resolves there,
    and so does a built-in task of lighteval 2788496 that 0.13 lacks and eval/tasks rebuilds (global_mmlu_ca_*)."""
    names = builtin_task_names(True)[0] if names is None else names
    run, skipped = [], []
    for spec in suite["specs"]:
        kind, why = classify(spec, names)
        if kind == "builtin" or resolve(spec.task, custom_names):
            run.append(to_lighteval(spec))
        else:
            skipped.append((str(spec), f"{kind}: {why}"))
    return run, skipped


def main() -> int:
    from eval.bfcl import CATEGORIES, SUITES
    from eval.code_tasks import DATASETS
    from eval.offline_data import OFFLINE_SUITES
    from eval.tasks import task_names

    customs = task_names() | set(DATASETS)  # the authors' custom| tasks (eval/tasks/), HumanEval+ / MBPP+
    for name, s in OFFLINE_SUITES.items():
        print(f"{name}: offline, tasks {', '.join(s['tasks'])}, max_samples {s['max_samples']}")
    for name, s in SUITES.items():
        print(f"{name}: BFCL (eval/bfcl.py), bfcl:{', bfcl:'.join(CATEGORIES)}, system_prompt {s['system_prompt']!r}, "
              f"generation {s['generation']}")
    for name, s in published_suites().items():
        run, skipped = runnable_specs(s, None, customs)
        ours = sum(bool(resolve(spec.task, customs)) for spec in s["specs"])
        print(f"{name}: {len(s['specs'])} specs ({s['file']}), system_prompt {s['system_prompt']!r}, "
              f"generation {s['generation']}; lighteval 0.13 runs {len(run)} ({ours} of them from eval/tasks, "
              f"eval/code_tasks), skips {len(skipped)}")
        for spec, why in skipped:
            print(f"  skip {spec}: {why[:110]}")
    return 0
