"""HumanEval+ and MBPP+ (EvalPlus 0.3.1) as lighteval custom tasks: the model card's base-table rows, greedy pass@1.

Usage: from eval.code_tasks import build_task_configs, check; configs = build_task_configs(out_dir)
       python -m eval run --model M --suite smollm3-base ...   (custom|humaneval_plus|0|0, custom|mbpp_plus|0|0)
       HUMANEVAL_OVERRIDE_PATH=HumanEvalPlus.jsonl MBPP_OVERRIDE_PATH=MbppPlus.jsonl ...   (local copies, offline)

Everything is EvalPlus's own, as its `evalplus.codegen` + `evalplus.evaluate` run a base model (direct completion):
the problems (`get_human_eval_plus` / `get_mbpp_plus`: HumanEvalPlus v0.1.10 and MbppPlus v0.2.0, downloaded once
from the evalplus GitHub releases into evalplus's cache, ~/.cache/evalplus, or read from the file its own
HUMANEVAL_OVERRIDE_PATH / MBPP_OVERRIDE_PATH name), the prompt (`prompt.strip() + "\\n"`), the stop words (EOS +
`extra_eos_for_direct_completion`), 768 new tokens, `sanitize(prompt + completion, entry_point)`, the expected
outputs (`get_groundtruth`: the canonical solutions run once, cached by evalplus under the file's md5) and
`check_correctness`: base tests then plus tests, each in a subprocess (`untrusted_check`: reliability guard, 4 GiB,
per-input time limit max(1 s, 4 x the canonical solution's time), the process killed past the sum).
pass@1 = base and plus tests pass (the "+" number); pass@1_base = the base tests alone (HumanEval / MBPP).
evalplus is installed without its dependencies (eval/README.md): `ensure_nodeps_path` finds it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

DATASETS = {"humaneval_plus": "humaneval", "mbpp_plus": "mbpp"}  # lighteval task -> evalplus dataset
OVERRIDE_ENV = {"humaneval": "HUMANEVAL_OVERRIDE_PATH", "mbpp": "MBPP_OVERRIDE_PATH"}  # evalplus's own variables
RELEASE = {"humaneval": ("HumanEvalPlus", "HUMANEVAL_PLUS_VERSION"), "mbpp": ("MbppPlus", "MBPP_PLUS_VERSION")}
GENERATION_SIZE = 768  # evalplus.provider.base.DecoderBase max_new_tokens
NODEPS_ENV = "SMOLLM3_NODEPS"
INSTALL = "pip install --no-deps --target .venv/nodeps evalplus==0.3.1 bfcl-eval==2026.3.23 (eval/README.md)"
_LOCK = threading.RLock()


def ensure_nodeps_path() -> None:
    """Put the folder that holds evalplus and bfcl-eval (pip install --no-deps --target) on sys.path: $SMOLLM3_NODEPS,
    default <venv>/nodeps. Appended, so a regular installation of either package wins."""
    path = os.environ.get(NODEPS_ENV) or os.path.join(sys.prefix, "nodeps")
    if os.path.isdir(path) and path not in sys.path:
        sys.path.append(path)


def source_path(dataset: str, download: bool = True) -> Path | None:
    """The EvalPlus release file of `dataset` ('humaneval' | 'mbpp'): the override variable's file, else evalplus's
    cached copy (downloaded first when `download`; None when absent and not allowed to download)."""
    if os.environ.get(OVERRIDE_ENV[dataset]):
        return Path(os.environ[OVERRIDE_ENV[dataset]])
    ensure_nodeps_path()
    import evalplus.data.humaneval as he
    import evalplus.data.mbpp as mb
    from evalplus.data.utils import get_dataset_metadata, make_cache

    name, version_attr = RELEASE[dataset]
    url, cache = get_dataset_metadata(name, getattr(he if dataset == "humaneval" else mb, version_attr), False)
    if not os.path.exists(cache):
        if not download:
            return None
        make_cache(url, cache)
    return Path(cache)


@lru_cache(maxsize=4)
def problems(dataset: str, path: str) -> dict:
    """{task_id: problem} of the release file at `path`, through evalplus's own loader (get_human_eval_plus /
    get_mbpp_plus, which also turn MBPP+'s JSON inputs back into tuples, sets, ...)."""
    ensure_nodeps_path()
    import evalplus.data.humaneval as he
    import evalplus.data.mbpp as mb

    module, attr = (he, "HUMANEVAL_OVERRIDE_PATH") if dataset == "humaneval" else (mb, "MBPP_OVERRIDE_PATH")
    with _LOCK:  # evalplus reads its override variable once, at import: point that module value at `path`
        saved = getattr(module, attr)
        setattr(module, attr, str(path))
        try:
            return he.get_human_eval_plus() if dataset == "humaneval" else mb.get_mbpp_plus()
        finally:
            setattr(module, attr, saved)


@lru_cache(maxsize=4)
def expected_outputs(dataset: str, path: str) -> dict:
    """evalplus's get_groundtruth: the canonical solutions run on every base and plus input (outputs and times),
    cached by evalplus in its cache folder under the md5 of the file."""
    import hashlib

    from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS
    from evalplus.evaluate import get_groundtruth

    digest = hashlib.md5(Path(path).read_bytes()).hexdigest()  # = get_human_eval_plus_hash / get_mbpp_plus_hash
    not_none = MBPP_OUTPUT_NOT_NONE_TASKS if dataset == "mbpp" else []
    with _LOCK:
        return get_groundtruth(problems(dataset, path), digest, not_none)


def prompt_text(problem: dict) -> str:
    """evalplus.codegen: the prompt of a base model (HumanEval+: signature + docstring; MBPP+: its docstring)."""
    return problem["prompt"].strip() + "\n"


def stop_words(dataset: str) -> list[str]:
    ensure_nodeps_path()
    from evalplus.provider.utility import EOS, extra_eos_for_direct_completion

    return EOS + extra_eos_for_direct_completion(dataset)


def truncate_at(text: str, stops) -> str:
    cut = min([i for i in (text.find(s) for s in stops) if i >= 0], default=len(text))
    return text[:cut]


def check(dataset: str, path, task_id: str, completion: str, min_time_limit: float | None = None,
          gt_time_limit_factor: float | None = None) -> dict:
    """Score one completion with evalplus: {'base': status, 'plus': status, 'pass@1': 0/1, 'pass@1_base': 0/1}
    (status 'pass' | 'fail' | 'timeout'). The time-limit arguments default to evalplus's (1 s, 4x)."""
    ensure_nodeps_path()
    from evalplus.config import DEFAULT_GT_TIME_LIMIT_FACTOR, DEFAULT_MIN_TIME_LIMIT
    from evalplus.eval import PASS
    from evalplus.evaluate import check_correctness
    from evalplus.sanitize import sanitize

    problem = problems(dataset, str(path))[task_id]
    solution = sanitize(prompt_text(problem) + truncate_at(completion, stop_words(dataset)), problem["entry_point"])
    expected = expected_outputs(dataset, str(path))[task_id]
    result = check_correctness(
        dataset, 0, problem, solution, expected, base_only=False, fast_check=True,
        min_time_limit=DEFAULT_MIN_TIME_LIMIT if min_time_limit is None else min_time_limit,
        gt_time_limit_factor=DEFAULT_GT_TIME_LIMIT_FACTOR if gt_time_limit_factor is None else gt_time_limit_factor)
    base, plus = result["base"][0], result["plus"][0]
    return {"base": base, "plus": plus, "pass@1": float(base == PASS and plus == PASS),
            "pass@1_base": float(base == PASS), "solution": solution}


_checked = lru_cache(maxsize=8192)(check)  # both metrics of a sample share one evalplus run


def _metric(key: str):
    import numpy as np
    from lighteval.metrics.metrics_sample import SampleLevelComputation
    from lighteval.metrics.utils.metric_utils import SampleLevelMetric
    from lighteval.tasks.requests import SamplingMethod

    class EvalPlusPass(SampleLevelComputation):
        """EvalPlus check of one greedy completion per problem; problems run in parallel subprocesses."""

        def compute(self, responses, docs, **kwargs) -> list[float]:
            def one(pair):
                response, doc = pair
                s = doc.specific
                return _checked(s["dataset"], s["source"], s["task_id"], response.final_text[0])[key]

            with ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) // 2)) as pool:  # evalplus's default
                return list(pool.map(one, zip(responses, docs)))

    return SampleLevelMetric(metric_name=key, sample_level_fn=EvalPlusPass(), category=SamplingMethod.GENERATIVE,
                             corpus_level_fn=np.mean, higher_is_better=True, batched_compute=True)


def code_prompt(line: dict, task_name: str = None):
    from lighteval.tasks.requests import Doc

    return Doc(task_name=task_name, query=line["prompt"], choices=[""], gold_index=0,
               specific={k: line[k] for k in ("task_id", "dataset", "source", "entry_point")})


def write_task_data(folder, dataset: str, path) -> Path:
    """<folder>/test.jsonl: one row per problem (task_id, prompt, entry_point, dataset, source), what lighteval loads;
    the tests stay in the release file and are read back by `check`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "test.jsonl", "w") as f:
        for task_id, p in problems(dataset, str(path)).items():
            row = {"task_id": task_id, "prompt": prompt_text(p), "entry_point": p["entry_point"], "dataset": dataset,
                   "source": str(Path(path).resolve())}
            f.write(json.dumps(row) + "\n")
    return folder


def build_task_configs(out_dir, offline: bool = False, tasks=tuple(DATASETS)) -> list:
    """LightevalTaskConfigs of `tasks` over data written under out_dir. offline: use only local release files
    (override variable or evalplus's cache); a task without one is left out."""
    from lighteval.tasks.lighteval_task import LightevalTaskConfig

    configs = []
    for name in tasks:
        dataset = DATASETS[name]
        try:
            path = source_path(dataset, download=not offline)
        except ImportError as e:  # eval.run then skips the task with its note
            print(f"[eval] {name}: evalplus is not importable ({e}); {INSTALL}", file=sys.stderr)
            continue
        if path is None:  # eval.run says why it skips the task (its note in eval/suites/published.yaml)
            continue
        folder = write_task_data(Path(out_dir) / name, dataset, path)
        configs.append(LightevalTaskConfig(
            name=name, prompt_function=code_prompt, hf_repo=str(folder), hf_subset="default",
            metrics=[_metric("pass@1"), _metric("pass@1_base")], hf_avail_splits=["test"], evaluation_splits=["test"],
            few_shots_split=None, few_shots_select=None, generation_size=GENERATION_SIZE,
            stop_sequence=stop_words(dataset), version=0))
    return configs


def build_tasks_module(out_dir, offline: bool = False):
    """A module with TASKS_TABLE (lighteval's custom-tasks form)."""
    import types

    module = types.ModuleType("smollm3_code_tasks", __doc__)
    module.TASKS_TABLE = build_task_configs(out_dir, offline)
    return module
