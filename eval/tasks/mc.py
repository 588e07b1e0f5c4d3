"""The authors' multiple-choice tasks (log-likelihood, CF formulation; MMLU-Pro also MCF) on lighteval 0.13.

Usage: from eval.tasks.mc import build; configs = build(datasets_dir=None)

Each config repeats tasks.py (huggingface/smollm text/evaluation/smollm3/tasks.py @a041759, lines cited) field
for field: dataset, revision, subset, splits, few-shot split, prompt template + adapter, metrics. The prompt
templates (lighteval.tasks.templates.*) are the same in lighteval 0.13 as at 2788496 (only docstrings and the
LETTER_INDICES import moved). Revisions that differ (loading scripts, which datasets >= 4 cannot run): see
REVISIONS and eval/README.md.
"""

from __future__ import annotations

from functools import partial
from string import ascii_uppercase

from lighteval.tasks.multilingual.adapters import winogrand_adapter
from lighteval.tasks.multilingual.utils.task_utils import get_metrics_for_formulation
from lighteval.tasks.templates.boolq import get_boolq_prompt_function
from lighteval.tasks.templates.continuation import get_continuation_prompt_function
from lighteval.tasks.templates.hellaswag import get_hellaswag_prompt_function
from lighteval.tasks.templates.multichoice import get_mcq_prompt_function
from lighteval.tasks.templates.utils.formulation import CFFormulation, MCFFormulation
from lighteval.utils.language import Language

from eval.tasks.common import qa_metrics, task_config

LETTER_INDICES = ascii_uppercase  # lighteval 2788496 default_prompts.LETTER_INDICES: "A".."Z"

# hf_repo -> (the authors' revision at a041759, the revision used here). They differ only where a041759 pins a
# loading-script revision: datasets >= 4 refuses those ("Dataset scripts are no longer supported").
REVISIONS = {
    "allenai/ai2_arc": ("210d026faf9955653af8916fad021475a3f00453",) * 2,
    "google/boolq": (None, None),
    # 6002345 is the hellaswag.py script (its datasets cache is a 0.1.0 script build); 218ec52 is the Hub's
    # parquet main (data/<split>-00000-of-00001.parquet, the same 10,042 validation rows). Neither authors'
    # branch changes it; not checked against the Hub from here (no network).
    "Rowan/hellaswag": ("6002345709e0801764318f06bf06ce1e7d1a1fe3", "218ec52e09a7e7462a5400043bb9a69a41d06b76"),
    "tau/commonsense_qa": ("94630fe30dad47192a8546eb75f094926d47e155",) * 2,
    "allenai/openbookqa": ("388097ea7776314e93a529163e0fea805b8a6454",) * 2,
    # 85ac5b5 / 2e8ac2d are winogrande.py / piqa.py scripts; 01e7417 / ba2f7a4 (a Hub PR converting piqa to
    # parquet) are the authors' own replacements on their noscript-evals branch (tasks.py @3ad6b85 L225, L250).
    "allenai/winogrande": ("85ac5b5a3b7a930e22d590176e39460400d19e41", "01e74176c63542e6b0bcb004dcdea22d94fb67b5"),
    "ybisk/piqa": ("2e8ac2dffd59bac8c3c6714948f4c551a0848bb0", "ba2f7a4920f4968f04c174c53cc157c899e93501"),
    "cais/mmlu": ("c30699e8356da336a370243923dbaf21066bb9fe",) * 2,
    "TIGER-Lab/MMLU-Pro": ("3373e0b32277875b8db2aa555a333b78a08477ea",) * 2,
}

# tasks.py L295-311 (the order of the authors' list)
# fmt: off
MMLU_SUBSETS = [
    'abstract_algebra', 'anatomy', 'astronomy', 'business_ethics', 'clinical_knowledge',
    'college_biology', 'college_chemistry', 'college_computer_science', 'college_mathematics',
    'college_medicine', 'college_physics', 'computer_security', 'conceptual_physics',
    'econometrics', 'electrical_engineering', 'elementary_mathematics', 'formal_logic',
    'global_facts', 'high_school_biology', 'high_school_chemistry', 'high_school_computer_science',
    'high_school_european_history', 'high_school_geography', 'high_school_government_and_politics',
    'high_school_macroeconomics', 'high_school_mathematics', 'high_school_microeconomics',
    'high_school_physics', 'high_school_psychology', 'high_school_statistics',
    'high_school_us_history', 'high_school_world_history', 'human_aging', 'human_sexuality',
    'international_law', 'jurisprudence', 'logical_fallacies', 'machine_learning', 'management',
    'marketing', 'medical_genetics', 'miscellaneous', 'moral_disputes', 'moral_scenarios',
    'nutrition', 'philosophy', 'prehistory', 'professional_accounting', 'professional_law',
    'professional_medicine', 'professional_psychology', 'public_relations', 'security_studies',
    'sociology', 'us_foreign_policy', 'virology', 'world_religions'
]
# fmt: on


# ---------------------------------------------------------------- adapters (dataset row -> template input)
def arc_adapter(line):  # tasks.py L89-95
    key = line["answerKey"]
    return {"question": line["question"], "choices": line["choices"]["text"],
            "gold_idx": int(key) - 1 if key.isdigit() else LETTER_INDICES.index(key)}


def boolq_adapter(line):  # tasks.py L117-121
    return {"question": line["question"], "answer": line["answer"], "context": line["passage"]}


def hellaswag_adapter(line):  # tasks.py L142-148
    return {"activity_label": line["activity_label"], "ctx_a": line["ctx_a"], "ctx_b": line["ctx_b"],
            "continuations": line["endings"], "gold_idx": int(line["label"])}


def commonsenseqa_adapter(line):  # tasks.py L169-173
    return {"question": line["question"], "choices": line["choices"]["text"],
            "gold_idx": line["choices"]["label"].index(line["answerKey"].strip())}


def openbookqa_adapter(line):  # tasks.py L195-199
    return {"question": line["question_stem"], "choices": line["choices"]["text"],
            "gold_idx": LETTER_INDICES.index(line["answerKey"])}


def piqa_adapter(line):  # tasks.py L244-248
    return {"question": line["goal"], "choices": [line["sol1"], line["sol2"]], "gold_idx": int(line["label"])}


def mmlu_adapter(line):  # tasks.py L318-322
    return {"question": line["question"], "choices": line["choices"], "gold_idx": int(line["answer"])}


def mmlu_pro_adapter(line):  # tasks.py L344-348
    return {"question": line["question"], "choices": line["options"], "gold_idx": line["answer_index"]}


# ---------------------------------------------------------------- task configs
def _cfg(name, prompt, repo, subset, datasets_dir, **fields):
    return task_config(name, prompt, repo, subset, REVISIONS[repo][1], datasets_dir, **fields)


def _mcq(adapter, formulation=CFFormulation()):
    return get_mcq_prompt_function(Language.ENGLISH, adapter, formulation=formulation)


def build(datasets_dir=None) -> list:
    """Configs of hellaswag_cf, arc_cf:{easy,challenge}, mmlu_cf:<57>, mmlu_pro_cf, mmlu_pro_mcf, boolq_cf,
    commonsenseqa_cf, winogrande_cf, openbookqa_cf, piqa_cf."""
    cf = CFFormulation()
    out = [
        _cfg("hellaswag_cf",  # tasks.py L136-160
             get_hellaswag_prompt_function(language=Language.ENGLISH, adapter=hellaswag_adapter, formulation=cf),
             "Rowan/hellaswag", "default", datasets_dir, evaluation_splits=["validation"],
             hf_avail_splits=["train", "validation"], metrics=get_metrics_for_formulation(cf, qa_metrics())),
    ]
    out += [_cfg(f"arc_cf:{subset.lower()}", _mcq(arc_adapter), "allenai/ai2_arc", f"ARC-{subset}",  # L84-109
                 datasets_dir, evaluation_splits=("test",), few_shots_split="train",
                 metrics=get_metrics_for_formulation(cf, qa_metrics()))
            for subset in ("Easy", "Challenge")]
    out += [_cfg(f"mmlu_cf:{subset}", _mcq(mmlu_adapter), "cais/mmlu", subset, datasets_dir,  # L313-336
                 evaluation_splits=("test",), few_shots_split="dev",
                 metrics=get_metrics_for_formulation(cf, qa_metrics()))
            for subset in MMLU_SUBSETS]
    out += [_cfg(f"mmlu_pro_{f.name.lower()}", _mcq(mmlu_pro_adapter, f), "TIGER-Lab/MMLU-Pro",  # L339-361
                 "default", datasets_dir, evaluation_splits=("test",), few_shots_split="validation",
                 metrics=get_metrics_for_formulation(f, qa_metrics()))
            for f in (cf, MCFFormulation())]  # MCF (letters): acc only, unnormalised (task_utils.py)
    out += [
        _cfg("boolq_cf",  # tasks.py L113-132
             get_boolq_prompt_function(Language.ENGLISH, boolq_adapter, formulation=cf), "google/boolq", "default",
             datasets_dir, evaluation_splits=("validation",), few_shots_split="train", generation_size=5,
             stop_sequence=["\n"], metrics=get_metrics_for_formulation(cf, qa_metrics())),
        _cfg("commonsenseqa_cf", _mcq(commonsenseqa_adapter), "tau/commonsense_qa", "default",  # L164-186
             datasets_dir, hf_avail_splits=["train", "validation"], evaluation_splits=["validation"],
             few_shots_split="train", metrics=get_metrics_for_formulation(cf, qa_metrics())),
        _cfg("winogrande_cf",  # tasks.py L216-235: metric=qa_metrics directly
             get_continuation_prompt_function(Language.ENGLISH, partial(winogrand_adapter, Language.ENGLISH),
                                              formulation=cf),
             "allenai/winogrande", "winogrande_xl", datasets_dir, hf_avail_splits=["train", "validation"],
             evaluation_splits=["validation"], few_shots_split="train", metrics=qa_metrics()),
        _cfg("openbookqa_cf", _mcq(openbookqa_adapter), "allenai/openbookqa", "main", datasets_dir,  # L190-212
             hf_avail_splits=["train", "validation"], evaluation_splits=["validation"], few_shots_split="train",
             metrics=get_metrics_for_formulation(cf, qa_metrics())),
        _cfg("piqa_cf", _mcq(piqa_adapter), "ybisk/piqa", "plain_text", datasets_dir,  # L239-262
             hf_avail_splits=["train", "validation"], evaluation_splits=["validation"], few_shots_split="train",
             metrics=get_metrics_for_formulation(cf, qa_metrics())),
    ]
    return out

