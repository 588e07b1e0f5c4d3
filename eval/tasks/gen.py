"""The authors' generative math tasks (gsm8k 5-shot, math_cot 4-shot, gsm_plus) on lighteval 0.13.

Usage: from eval.tasks.gen import build; configs = build(datasets_dir=None)

tasks.py (huggingface/smollm text/evaluation/smollm3/tasks.py @a041759) takes gsm8k's and math_cot's prompts
from lighteval 2788496's default_prompts (a module 0.13 no longer has) and gsm_plus's metric from its
Metrics.math_pass_at_1_1n (gone in 0.13): all three are written out here from that commit, line for line.
"""

from __future__ import annotations

import numpy as np
from lighteval.metrics.dynamic_metrics import MultilingualExtractiveMatchMetric
from lighteval.metrics.metrics_sample import PassAtK
from lighteval.metrics.utils.extractive_match_utils import (
    ExprExtractionConfig,
    LatexExtractionConfig,
    extract_target_from_pred,
    get_extraction_regexes,
)
from lighteval.metrics.utils.math_comparison import compare_gold_target
from lighteval.metrics.utils.metric_utils import SampleLevelMetric
from lighteval.tasks.requests import Doc, SamplingMethod
from lighteval.utils.language import Language

from eval.tasks.common import task_config

# hf_repo -> (the authors' revision at a041759, the revision used here)
REVISIONS = {
    "openai/gsm8k": ("e53f048856ff4f594e959d75785d2c2d37b678ee",) * 2,
    "DigitalLearningGmbH/MATH-lighteval": (None, None),
    "qintongli/GSM-Plus": (None, None),
}
MATH_SUBSETS = ["algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                "prealgebra", "precalculus"]  # tasks.py L477-485


# ---------------------------------------------------------------- prompts
def gsm8k_prompt(line, task_name: str = None):
    """lighteval 2788496 src/lighteval/tasks/default_prompts.py L930-937 (prompt.gsm8k, tasks.py L431)."""
    return Doc(task_name=task_name, query=f"Question: {line['question']}\nAnswer:",
               choices=[f" {line['answer']}"], gold_index=0)


def math_cot_prompt(line, task_name: str = None):
    """lighteval 2788496 src/lighteval/tasks/default_prompts.py L1465-1471 (prompt.math_cot, tasks.py L464)."""
    return Doc(task_name=task_name,
               query=f"{line['problem']}\nPlease reason step by step, and put your final answer within \\boxed{{}}.",
               gold_index=0, choices=[f" {line['solution']}"])


# tasks.py L674-678 (simple-evals / Llama 3 style); note the two spaces after "clearly."
MATH_QUERY_TEMPLATE = """
Solve the following math problem efficiently and clearly.  The last line of your response should be of the following format: 'Therefore, the final answer is: $\\boxed{{ANSWER}}$. I hope it is correct' (without quotes) where ANSWER is just the final number or expression that solves the problem. Think step by step before answering.

{Question}
""".strip()  # noqa: E501


def gsm_plus_prompt(line, task_name: str = None):
    """tasks.py L669-690: the boxed-answer query; the 'critical thinking' perturbations are skipped."""
    if line["perturbation_type"] == "critical thinking":
        return None
    return Doc(task_name=task_name, query=MATH_QUERY_TEMPLATE.format(Question=line["question"]),
               choices=[line["answer"]], gold_index=0)


# ---------------------------------------------------------------- metrics
def extractive_match(gold_targets) -> SampleLevelMetric:
    """multilingual_extractive_match_metric(ENGLISH, fallback first_match, precision 5, max) of lighteval 2788496
    as 0.13's class: gold parsed with `gold_targets`, the prediction as an expression or LaTeX, boxed first."""
    return SampleLevelMetric(
        metric_name="extractive_match",
        sample_level_fn=MultilingualExtractiveMatchMetric(
            language=Language.ENGLISH, fallback_mode="first_match", precision=5,
            gold_extraction_target=gold_targets,
            pred_extraction_target=(ExprExtractionConfig(), LatexExtractionConfig(boxed_match_priority=0)),
            aggregation_function=max),
        category=SamplingMethod.GENERATIVE, corpus_level_fn=np.mean, higher_is_better=True)


def expr_gold_metric() -> SampleLevelMetric:
    """Metrics.expr_gold_metric, lighteval 2788496 src/lighteval/metrics/metrics.py L195-203 (gsm8k)."""
    return extractive_match((ExprExtractionConfig(),))


def latex_gold_metric() -> SampleLevelMetric:
    """tasks.py L447-458 (math_cot): the same, gold parsed as LaTeX."""
    return extractive_match((LatexExtractionConfig(),))


# lighteval 2788496 called compare_gold_target(pred, gold, formatted_doc): the Doc landed in `precision`, so any
# comparison that needs rounding raised inside and scored 0 (e.g. "18.0" vs "18"). We pass the intended 6.
MATH_PASS_PRECISION = 6


def math_pass_score(doc: Doc, model_response) -> int:
    """One prediction against the gold: both parsed as an expression or LaTeX (no fallback), compared with
    sympy (lighteval 2788496 metrics.py L381-412, PassAtK normalize_gold / normalize_pred / compare_gold_target)."""
    regexes = get_extraction_regexes(None, [ExprExtractionConfig(), LatexExtractionConfig()], Language.ENGLISH)
    gold = extract_target_from_pred(doc.get_golds()[0], regexes)
    pred = extract_target_from_pred(model_response.final_text[0], regexes)
    return int(compare_gold_target(pred, gold, MATH_PASS_PRECISION))


def math_pass_at_1_1n() -> SampleLevelMetric:
    """Metrics.math_pass_at_1_1n of lighteval 2788496 (gsm_plus, tasks.py L704-706): pass@1 over 1 sample."""
    return SampleLevelMetric(
        metric_name="math_pass@1:1_samples",
        sample_level_fn=PassAtK(k=1, n=1, strip_strings=True, sample_scoring_function=math_pass_score),
        category=SamplingMethod.GENERATIVE, corpus_level_fn=np.mean, higher_is_better=True)


# ---------------------------------------------------------------- task configs
def _cfg(name, prompt, repo, subset, datasets_dir, **fields):
    return task_config(name, prompt, repo, subset, REVISIONS[repo][1], datasets_dir, **fields)


def build(datasets_dir=None) -> list:
    """Configs of gsm8k, math_cot:<7 subjects>, gsm_plus."""
    out = [_cfg("gsm8k", gsm8k_prompt, "openai/gsm8k", "main", datasets_dir,  # tasks.py L428-444
                hf_avail_splits=["train", "test"], evaluation_splits=["test"], metrics=[expr_gold_metric()],
                generation_size=256, stop_sequence=["Question:"], few_shots_select="random_sampling_from_train")]
    out += [_cfg(f"math_cot:{subset}", math_cot_prompt, "DigitalLearningGmbH/MATH-lighteval", subset,  # L460-486
                 datasets_dir, hf_avail_splits=["train", "test"], evaluation_splits=["test"],
                 few_shots_split="train", few_shots_select="random_sampling_from_train", generation_size=4096,
                 metrics=[latex_gold_metric()], stop_sequence=["\n"], version=0)
            for subset in MATH_SUBSETS]
    out.append(_cfg("gsm_plus", gsm_plus_prompt, "qintongli/GSM-Plus", "default", datasets_dir,  # L693-710
                    hf_avail_splits=["testmini"], evaluation_splits=["testmini"], few_shots_split=None,
                    few_shots_select=None, generation_size=None, metrics=[math_pass_at_1_1n()],
                    # tasks.py: None. The same "no stop sequence"; 0.13 turns None into () and its transformers
                    # backend then fails on `[eos_token] + ()` (TypeError)
                    stop_sequence=[], version=0))
    return out
