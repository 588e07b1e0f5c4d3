"""Score a Hugging Face causal LM folder (or Hub id) on a suite through lighteval's Python API.

Usage: python -m eval run --model MODEL --suite tiny --output-dir DIR [--max-samples N] [--system-prompt S]
       from eval.run import run_eval; scores = run_eval("path/to/model", "tiny", "out/")

Offline suites (eval.offline_data.OFFLINE_SUITES) register ONLY the project's tasks: lighteval 0.13 imports its
~650 built-in task modules on every Registry(), and some reach the network at import time.
Published suites (eval/suites/published.yaml) use lighteval 0.13's built-in tasks, loaded module by module
(a module that cannot import is skipped instead of failing the run), and need the network; their `custom|`
tasks are the authors' (eval/tasks/). With HF_HUB_OFFLINE and $SMOLLM3_EVAL_DATASETS (local dataset copies, see
eval/tasks/local.py) only those custom tasks run.
lighteval's sample cache is off (eval/lighteval_compat.py: it is keyed on the model path, not the weights).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path
from unittest import mock

from eval import code_tasks, specs
from eval.bfcl import SUITES as BFCL_SUITES
from eval.lighteval_compat import (
    empty_tasks_skipped,
    fixed_registry_cls,
    hide_nanotron_from_lighteval,
    lighteval_pipeline,
    only_custom_registry_cls,
)
from eval.offline_data import OFFLINE_SUITES

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class EvalInputError(ValueError):
    """Bad user input (missing model, unknown suite, bad file): reported as one line, exit code 2."""


def suite_names() -> list[str]:
    return sorted(OFFLINE_SUITES) + sorted(BFCL_SUITES) + sorted(specs.published_suites())


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no")


def check_model(model: str) -> str:
    """Absolute path of a local model folder, or a Hub id (only when the Hub may be reached)."""
    if os.path.isdir(model):
        if not os.path.isfile(os.path.join(model, "config.json")):
            raise EvalInputError(f"model folder {model} has no config.json")
        return os.path.abspath(model)
    local_looking = model.startswith((".", "/", "~")) or os.path.isdir(model.split("/")[0])
    if HUB_ID.match(model) and not local_looking:
        if _hub_offline():
            raise EvalInputError(f"model folder {model} not found (HF_HUB_OFFLINE is set, so no Hub id)")
        return model
    raise EvalInputError(f"model folder {model} not found")


def _model_config(model, backend, cache_dir, system_prompt, generation, opts, chat_template):
    from lighteval.models.model_input import GenerationParameters
    from lighteval.models.transformers.transformers_model import TransformersModelConfig
    from lighteval.models.vllm.vllm_model import VLLMModelConfig

    known = set(TransformersModelConfig.model_fields) | set(VLLMModelConfig.model_fields) | {"max_model_length"}
    unknown = sorted(set(opts) - known)
    if unknown:
        raise EvalInputError(f"unknown model option(s) {', '.join(unknown)} (see lighteval's model configs)")
    bad_gen = sorted(set(generation) - set(GenerationParameters.model_fields))
    if bad_gen:
        raise EvalInputError(f"unknown generation parameter(s) {', '.join(bad_gen)}")
    gen = GenerationParameters(**generation)
    if backend == "vllm":
        kw = {k: v for k, v in opts.items() if k in VLLMModelConfig.model_fields}
        return VLLMModelConfig(model_name=model, generation_parameters=gen, system_prompt=system_prompt,
                               cache_dir=cache_dir, override_chat_template=chat_template, **kw)
    import torch

    cuda = torch.cuda.is_available()
    return TransformersModelConfig(
        model_name=model, generation_parameters=gen, system_prompt=system_prompt, cache_dir=cache_dir,
        device="cuda" if cuda else "cpu", dtype=opts.get("dtype") or ("bfloat16" if cuda else "float32"),
        batch_size=opts.get("batch_size") or (None if cuda else 16), override_chat_template=chat_template,
        max_length=opts.get("max_length") or opts.get("max_model_length"),
    )


def flat_scores(results: dict) -> dict:
    """{task|fewshot: {metric: value}} without stderr entries or the 'all' average."""
    return {task: {m: float(v) if isinstance(v, (int, float)) else v for m, v in metrics.items()
                   if not m.endswith("_stderr")} for task, metrics in results.items() if task != "all"}


def run_eval(model_path: str, suite: str, output_dir, *, max_samples: int | None = None,
             system_prompt: str | None = None, backend: str = "transformers", context_lengths=(256, 512),
             data_dir=None, save_details: bool = True, **opts) -> dict:
    """Run `suite` on the model with lighteval; write lighteval's results (and details) into output_dir.

    Returns {"task|fewshot": {metric: value}}. opts: batch_size, dtype, max_length (transformers) or any
    VLLMModelConfig field (vllm); generation overrides via generation={...}. A
    published suite runs the tasks lighteval 0.13 knows and prints the skipped ones.
    """
    model = check_model(str(model_path))
    if suite not in suite_names():
        raise EvalInputError(f"unknown suite {suite!r} (known: {', '.join(suite_names())})")
    if backend not in ("transformers", "vllm"):
        raise EvalInputError(f"unknown backend {backend!r} (transformers or vllm)")
    if backend == "vllm":
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise EvalInputError("backend vllm asked but the vllm package is not installed")
    from eval.tasks.local import DATASETS_ENV, datasets_root

    evalplus_local = any(map(os.environ.get, code_tasks.OVERRIDE_ENV.values()))  # HumanEval+ / MBPP+ files
    if suite not in OFFLINE_SUITES and suite not in BFCL_SUITES and _hub_offline() and datasets_root() is None \
            and not evalplus_local:
        raise EvalInputError(f"suite {suite} downloads its datasets from the Hub, but HF_HUB_OFFLINE is set "
                             f"(local copies for its custom| tasks: {DATASETS_ENV})")
    hide_nanotron_from_lighteval()
    from lighteval.logging.evaluation_tracker import EvaluationTracker
    from lighteval.pipeline import ParallelismManager, PipelineParameters
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    context_lengths = tuple(int(x) for x in context_lengths)

    with tempfile.TemporaryDirectory(prefix="lighteval-cache-") as cache_dir:
        if suite in OFFLINE_SUITES:
            from eval.offline_data import write_offline_data
            from eval.offline_tasks import build_tasks_module, task_specs

            tok = _tokenizer(model)
            data = Path(data_dir) if data_dir else Path(cache_dir) / "data"
            write_offline_data(data, tok, context_lengths)
            custom = build_tasks_module(data, suite, context_lengths)
            tasks = ",".join(task_specs(suite, context_lengths))
            if max_samples is None:
                max_samples = OFFLINE_SUITES[suite]["max_samples"]
            generation, chat_template, multilingual = {"temperature": 0.0}, False, False
            registry_cls = only_custom_registry_cls()
        elif suite in BFCL_SUITES:  # eval/bfcl.py: prompts rendered with the model's template and tools
            from eval import bfcl

            generation = {**BFCL_SUITES[suite]["generation"], **(opts.pop("generation", None) or {})}
            if system_prompt is None:
                system_prompt = BFCL_SUITES[suite]["system_prompt"]
            custom = bfcl.build_tasks_module(Path(cache_dir) / "bfcl", _tokenizer(model), system_prompt,
                                             generation_size=generation.get("max_new_tokens"))
            if not custom.TASKS_TABLE:
                raise EvalInputError(f"suite {suite}: no BFCL category in {bfcl.data_root()}")
            tasks, chat_template, multilingual = ",".join(bfcl.task_specs(custom)), False, False
            registry_cls = only_custom_registry_cls()
        else:
            s = specs.published_suites()[suite]
            from eval.tasks import build_tasks_module, why_unavailable

            custom = build_tasks_module()  # the authors' custom| tasks (eval/tasks), over 0.13's same-named ones
            offline = _hub_offline()  # then only custom| tasks whose dataset is a local copy ($DATASETS_ENV)
            custom.TASKS_TABLE += code_tasks.build_task_configs(  # humaneval_plus, mbpp_plus (EvalPlus's data)
                Path(cache_dir) / "evalplus", offline, [x.task for x in s["specs"] if x.task in code_tasks.DATASETS])
            builtin = {} if offline else specs.builtin_task_configs(True, offline=False)[0]  # ifeval: nltk data
            why_not = {c.name: why_unavailable(c, offline) for c in custom.TASKS_TABLE}  # local copy, judge
            ours = {name for name, why in why_not.items() if why is None}
            runnable, skipped = specs.runnable_specs(s, set(builtin), ours)
            for spec, why in skipped:
                rebuilt = specs.resolve(specs.parse_spec(spec).task, set(why_not))
                if rebuilt:
                    why = next(why_not[n] for n in rebuilt if why_not[n])
                elif offline and not spec.startswith("custom|"):
                    why = "HF_HUB_OFFLINE is set: built-in tasks read the Hub"
                print(f"[eval] skipping {spec}: {why}", file=sys.stderr)
            if not runnable:
                raise EvalInputError(f"suite {suite}: no task lighteval 0.13 can run")
            tasks, multilingual = ",".join(runnable), True
            registry_cls = fixed_registry_cls(builtin)
            generation, chat_template = dict(s["generation"]), s.get("use_chat_template", False)
            if system_prompt is None:
                system_prompt = s.get("system_prompt")
            opts = {**s.get("model_args", {}), **opts}
        generation.update(opts.pop("generation", {}) or {})
        params = PipelineParameters(
            launcher_type=ParallelismManager.VLLM if backend == "vllm" else ParallelismManager.NONE,
            custom_tasks_directory=custom, max_samples=max_samples, load_tasks_multilingual=multilingual,
        )
        tracker = EvaluationTracker(output_dir=str(output_dir), save_details=save_details,
                                    results_path_template="{output_dir}/results")
        config = _model_config(model, backend, cache_dir, None if suite in BFCL_SUITES else system_prompt,
                               generation, opts, chat_template)  # BFCL: the mode is in its rendered prompts
        import datasets

        # offline data is regenerated per run: keep its `datasets` cache (and lighteval's parquet reads) in
        # the run's temp dir instead of piling up in ~/.cache/huggingface/datasets
        per_run = suite in OFFLINE_SUITES or suite in BFCL_SUITES
        local = Path(cache_dir) / "datasets" if per_run else datasets.config.HF_DATASETS_CACHE
        with mock.patch.object(datasets.config, "HF_DATASETS_CACHE", local), empty_tasks_skipped():
            pipeline = lighteval_pipeline(tasks, params, tracker, config, registry_cls,
                                          exact_token_norm=suite not in OFFLINE_SUITES)
            pipeline.evaluate()
            pipeline.save_and_push_results()
        results = tracker.results["results"]  # what the results file holds (get_results() renames task keys)
    meta = {"model": model, "suite": suite, "max_samples": max_samples, "system_prompt": system_prompt,
            "backend": backend, "context_lengths": list(context_lengths), "scores": flat_scores(results)}
    (output_dir / "eval_run.json").write_text(json.dumps(meta, indent=2, default=str))
    return meta["scores"]


def _tokenizer(model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


def dry_run(model: str, suite: str, *, backend: str = "transformers", system_prompt: str | None = None,
            context_lengths=(256, 512), max_samples: int | None = None, **opts) -> list[str]:
    """What run_eval would run, one line per task spec with its backend and settings: no model load, no lighteval
    registry, no network (a Hub id is printed as given, HF_HUB_OFFLINE or not)."""
    if not os.path.isdir(model) and not HUB_ID.match(model):
        raise EvalInputError(f"model folder {model} not found")
    if suite not in suite_names():
        raise EvalInputError(f"unknown suite {suite!r} (known: {', '.join(suite_names())})")
    if suite in OFFLINE_SUITES:
        tasks = [(t, t) for t in _offline_specs(suite, context_lengths)]
        generation, chat = {"temperature": 0.0}, False
        max_samples = OFFLINE_SUITES[suite]["max_samples"] if max_samples is None else max_samples
    elif suite in BFCL_SUITES:
        from eval.bfcl import CATEGORIES

        tasks = [(f"bfcl:{c}|0", f"bfcl:{c}|0") for c in CATEGORIES]
        generation, chat = dict(BFCL_SUITES[suite]["generation"]), "the model's, with tools (rendered by eval/bfcl.py)"
        system_prompt = BFCL_SUITES[suite]["system_prompt"] if system_prompt is None else system_prompt
    else:
        s = specs.published_suites()[suite]
        tasks = [(str(x), specs.to_lighteval(x)) for x in s["specs"]]
        generation, chat = dict(s["generation"]), s.get("use_chat_template", False)
        system_prompt = s.get("system_prompt") if system_prompt is None else system_prompt
        opts = {**s.get("model_args", {}), **opts}
    generation.update(opts.pop("generation", None) or {})
    settings = (f"backend={backend} model_args={json.dumps(opts, sort_keys=True)} "
                f"generation={json.dumps(generation, sort_keys=True)} system_prompt={system_prompt!r} "
                f"chat_template={chat!r} max_samples={max_samples}")
    lines = [f"[dry run] {suite} on {model}: {len(tasks)} task specs, nothing loaded"]
    return lines + [f"{spec}  lighteval={task}  {settings}" for spec, task in tasks]


def _offline_specs(suite: str, context_lengths) -> list[str]:
    from eval.offline_data import ruler_tasks

    out = []
    for task, (fewshot, _, _) in OFFLINE_SUITES[suite]["tasks"].items():
        if task == "passkey":
            names = [f"passkey_{int(n)}" for n in context_lengths]
        elif task == "ruler":
            names = [f"ruler_{n}:{kind}" for n, kind in ruler_tasks(suite, context_lengths)]
        else:
            names = [task]
        out += [f"{n}|{fewshot}" for n in names]
    return out
