"""Shared pieces of the SmolLM3 authors' custom tasks: where they come from, the CF metrics, the task config.

Usage: from eval.tasks.common import task_config, qa_metrics

Source of every definition in eval/tasks/: huggingface/smollm, text/evaluation/smollm3/tasks.py at commit
a041759883ec7152d18fb985ea49be641a0bceef (written for lighteval 2788496c3ef9973a24c7d8b87ee5b2cceb430872);
"tasks.py Lnn" in this package refers to a line of that file. Local dataset copies: eval/tasks/local.py.
"""

from __future__ import annotations

from functools import wraps

from lighteval.metrics.dynamic_metrics import LogLikelihoodAccMetric
from lighteval.metrics.normalizations import LogProbCharNorm, LogProbTokenNorm
from lighteval.tasks.lighteval_task import LightevalTaskConfig

from eval.tasks.local import dataset_source

AUTHORS_TASKS = "huggingface/smollm text/evaluation/smollm3/tasks.py @a041759883ec7152d18fb985ea49be641a0bceef"
# The authors' own datasets>=4 update of the same file (branch noscript-evals): where a revision of tasks.py
# @a041759 is a loading script, which `datasets` >= 4 (needed by lighteval 0.13) no longer runs, we take theirs.
AUTHORS_NOSCRIPT = "huggingface/smollm tasks.py @3ad6b854175c763528ca026822f2e8bb5ac94640 (branch noscript-evals)"


def qa_metrics() -> list:
    """tasks.py L77-80: log-likelihood accuracy, token- and character-normalised (acc_norm_token, acc_norm).

    tasks.py L715-721 then drops the PMI metrics of every task; none of these has one."""
    return [LogLikelihoodAccMetric(normalization=LogProbTokenNorm()),
            LogLikelihoodAccMetric(normalization=LogProbCharNorm())]


def without_empty_instruction(prompt_function):
    """The templates give an empty instruction ("") to lighteval: 0.13's PromptManager then puts that empty
    part before the query ("\\n\\n" + query) and strips the query; lighteval 2788496 (the authors') prepended
    nothing. An empty instruction becomes None, so the model reads the same text as in the authors' runs."""

    @wraps(prompt_function)
    def prompt(line, task_name: str = None):
        doc = prompt_function(line, task_name)
        if doc is not None and doc.instruction == "":
            doc.instruction = None
        return doc

    return prompt


def task_config(name: str, prompt_function, hf_repo: str, hf_subset: str, revision: str | None,
                datasets_dir=None, **fields) -> LightevalTaskConfig:
    """A lighteval 0.13 task config. The authors' `suite=("custom",)` and `trust_dataset=True` have no field in
    0.13 (the suite is ignored by its task parser; datasets >= 4 runs no loading script) and are dropped;
    `metric=` is 0.13's `metrics=`."""
    repo, rev = dataset_source(hf_repo, revision, datasets_dir)
    return LightevalTaskConfig(name=name, prompt_function=without_empty_instruction(prompt_function),
                               hf_repo=repo, hf_subset=hf_subset, hf_revision=rev, **fields)
