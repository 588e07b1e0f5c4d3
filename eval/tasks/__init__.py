"""The SmolLM3 authors' custom lighteval tasks (the `custom|...` specs of their suites), rebuilt on lighteval 0.13.

Usage: from eval.tasks import build_tasks_module; module = build_tasks_module()   # lighteval custom tasks
       SMOLLM3_EVAL_DATASETS=/data/hub python -m eval run --model M --suite smollm3-base --output-dir out

Source: huggingface/smollm text/evaluation/smollm3/tasks.py @a041759883ec7152d18fb985ea49be641a0bceef, written
for lighteval 2788496, whose imports 0.13 no longer has. Tasks: hellaswag_cf, arc_cf:{easy,challenge},
mmlu_cf:<57 subjects>, mmlu_pro_cf, mmlu_pro_mcf, boolq_cf, commonsenseqa_cf, winogrande_cf, openbookqa_cf,
piqa_cf (eval/tasks/mc.py); gsm8k, math_cot:<7 subjects>, gsm_plus (eval/tasks/gen.py); mixeval_hard:{freeform,
multichoice} (eval/tasks/mixeval.py). `arc_cf`, `mmlu_cf`, `math_cot` and `mixeval_hard` are supersets lighteval
expands into their subtasks. Also lighteval 2788496's global_mmlu_ca_<lang>_cf:<57 subjects> and
global_mmlu_instruct_<lang> of the suites (`lighteval|` / `extended|` specs), gone in 0.13
(eval/tasks/multilingual.py). Differences from the authors' definitions, and the local-copy layout
($SMOLLM3_EVAL_DATASETS, eval/tasks/local.py): eval/README.md.
gsm8k, gsm_plus and mixeval_hard:* share a name with 0.13 built-ins; eval.run registers these over them.
"""

from __future__ import annotations

import types

from eval.tasks.local import DATASETS_ENV, dataset_source, datasets_root

__all__ = ["DATASETS_ENV", "all_task_configs", "build_task_configs", "build_tasks_module", "dataset_source",
           "datasets_root", "task_names", "why_unavailable"]


def build_task_configs(datasets_dir=None) -> list:
    """The English tasks' LightevalTaskConfig (mc.py, gen.py); datasets_dir (default $SMOLLM3_EVAL_DATASETS)
    holds local copies."""
    from eval.tasks import gen, mc

    return mc.build(datasets_dir) + gen.build(datasets_dir)


def all_task_configs(datasets_dir=None) -> list:
    """build_task_configs, then MixEval-Hard (mixeval.py) and Global MMLU (multilingual.py)."""
    from eval.tasks import mixeval, multilingual

    return build_task_configs(datasets_dir) + mixeval.build(datasets_dir) + multilingual.build(datasets_dir)


def task_names() -> frozenset:
    """Names of the tasks (subtask names for the supersets: arc_cf:easy, mmlu_cf:anatomy, math_cot:algebra)."""
    return frozenset(c.name for c in all_task_configs(datasets_dir=""))


def why_unavailable(config, offline: bool) -> str | None:
    """Why a task of the module cannot run here (None: it can): offline without a local copy of its dataset,
    or (mixeval_hard) a judge that cannot be loaded."""
    import os

    if offline and not os.path.isdir(config.hf_repo):
        return f"HF_HUB_OFFLINE is set and ${DATASETS_ENV} holds no copy of its dataset"
    if config.name.startswith("mixeval_hard:"):
        from eval.tasks.mixeval import judge_problem

        return judge_problem(offline)
    return None


def build_tasks_module(datasets_dir=None) -> types.ModuleType:
    """A module with TASKS_TABLE, what lighteval's Registry(custom_tasks=...) takes."""
    module = types.ModuleType("smollm3_custom_tasks", __doc__)
    module.TASKS_TABLE = all_task_configs(datasets_dir)
    return module
