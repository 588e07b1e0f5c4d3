"""Workarounds for lighteval 0.13, in one place (each function says which defect it covers).

- lighteval imports nanotron whenever it is installed, and nanotron 0.4 from PyPI cannot be imported:
  `hide_nanotron_from_lighteval`.
- `Registry()` imports all ~650 built-in task modules, some of which reach the network at import time or
  need extras we do not install: `fixed_registry_cls` / `only_custom_registry_cls` register only the
  tasks we ask for.
- the sample cache, which every model writes and reads back per request, is keyed on the model path and
  config, not the weights (a retrained checkpoint in the same folder would be served the old answers), and joins
  cache_dir and the model path (an absolute path escapes cache_dir and writes into the model folder): no
  sample cache (`lighteval_pipeline`); each run scores every request (measured: 1-1.5 s of a 12 s tiny run).
- the transformers backend, through its accelerate gather (used even by one process), keeps
  `gathered_continuations[i][:num_choices][:len_choice]` continuation rows: acc_norm_token divides every choice
  by the same padded length (= acc), or fails (IndexError) when the longest choice has fewer tokens than there
  are choices (" Yes"/" No", " 0".." 3"): `exact_token_norm` of `lighteval_pipeline`.
- a task with no document (a Global MMLU subject whose filter keeps nothing) raises and fails the whole run:
  `empty_tasks_skipped`.
- its transformers model module turns autograd off for the whole process at import
  (`torch.set_grad_enabled(False)`); tests/conftest.py turns it back on after each test.
`lighteval_pipeline` builds lighteval's Pipeline with these in place.
"""

from __future__ import annotations

import sys
from unittest import mock


def hide_nanotron_from_lighteval() -> None:
    """lighteval imports nanotron whenever it is installed (evaluation_tracker, pipeline, info_loggers), and
    nanotron 0.4 from PyPI cannot be imported (circular import): every lighteval import would fail. We never
    use lighteval's nanotron backend, so make lighteval see nanotron as absent. Must run before those modules
    are imported; harmless if they already were (then nanotron imported fine)."""
    import functools

    import lighteval.utils.imports as li

    if getattr(li.is_package_available, "_hides_nanotron", False):
        return
    original = li.is_package_available

    @functools.lru_cache()
    def is_package_available(package):
        return False if str(package) == "nanotron" else original(package)

    is_package_available._hides_nanotron = True
    li.is_package_available = is_package_available


class _NoSampleCache:
    """Stands in for SampleCache while the Pipeline is built (it touches nothing), then set to None."""

    def __init__(self, model_config):
        pass

    def _init_registry(self, registry):
        pass


def fixed_registry_cls(base_configs: dict | None = None):
    """A Registry over given built-in configs (none: only the custom module's tasks) that imports no
    lighteval task module itself: Registry() imports all ~650 and fails on any that cannot import."""
    from lighteval.tasks.registry import Registry

    class FixedRegistry(Registry):
        def __init__(self, tasks=None, load_multilingual=False, custom_tasks=None):
            self.tasks_list = self._get_full_task_list_from_input_string(tasks) if tasks else []
            self._load_multilingual, self._custom_tasks = load_multilingual, custom_tasks
            self._task_registry = dict(base_configs or {})
            if custom_tasks is not None:
                self._task_registry.update(Registry._extract_configs(Registry.create_custom_tasks_module(custom_tasks)))
            self.task_to_configs = self._update_task_configs()

    return FixedRegistry


def only_custom_registry_cls():
    return fixed_registry_cls(None)


def lighteval_pipeline(tasks, params, tracker, model_config, registry_cls, exact_token_norm=False):
    """lighteval's Pipeline, built with our Registry class and no sample cache (see the module docstring).
    exact_token_norm: a one-process transformers model skips the gather (see the module docstring); off for the
    offline suites, whose recorded mc_cloze acc_norm_token (tests/golden) has 0.13's value."""
    import contextlib

    import lighteval.pipeline as lp
    from lighteval.models.transformers import transformers_model as tm
    from lighteval.models.vllm import vllm_model as vm

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(lp, "Registry", registry_cls))
        for module in (tm, vm):
            stack.enter_context(mock.patch.object(module, "SampleCache", _NoSampleCache))
        pipeline = lp.Pipeline(tasks=tasks, pipeline_parameters=params, evaluation_tracker=tracker,
                               model_config=model_config)
    pipeline.model._cache = None  # patch: lighteval's own "caching disabled" branch of @cached
    accelerator = getattr(pipeline.model, "accelerator", None)
    if exact_token_norm and isinstance(pipeline.model, tm.TransformersModel) and accelerator is not None \
            and accelerator.num_processes == 1:
        # lighteval 0.13 defect: the gather branch of _loglikelihood_tokens slices [:num_choices][:len_choice]
        # (rows twice); with one process gathering is the identity, so its non-gather branch is the same, right
        pipeline.model.accelerator = None
    return pipeline


def empty_tasks_skipped():
    """Patch: lighteval 0.13 raises on a task with no document, failing the run; 2788496 (the authors') ran it
    with none.
    A Global MMLU subject without a culturally-agnostic item in a language (hf_filter) is left out instead."""
    from lighteval.tasks.lighteval_task import LightevalTask

    get_docs = LightevalTask.get_docs

    def get_docs_or_none(self, max_samples=None):
        if not self.eval_docs():
            print(f"[eval] {self.name}: no document (after its filter), left out", file=sys.stderr)
            return []
        return get_docs(self, max_samples)

    return mock.patch.object(LightevalTask, "get_docs", get_docs_or_none)
