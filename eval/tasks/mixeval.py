"""The authors' MixEval-Hard (`custom|mixeval_hard|0|0`: freeform + multichoice, LLM-judged) on lighteval 0.13.

Usage: from eval.tasks.mixeval import build; configs = build(datasets_dir=None)
       SMOLLM3_MIXEVAL_JUDGE=/models/judge SMOLLM3_MIXEVAL_JUDGE_BACKEND=transformers python -m eval run ...

tasks.py (huggingface/smollm text/evaluation/smollm3/tasks.py @a041759, lines cited) L496-667: MixEval/MixEval
MixEval_Hard, splits free_form and multiple_choice, the MixEval prompts, and a judge (JudgeLLMMixEval, L513-551):
the reasoning block stripped from the answer, the answer left-truncated to 2048 * 4 characters when it has more
than 2048 tokens, judged by flowaicom/Flow-Judge-v0.1 through vllm. Both tasks take the multichoice judge metric
(L554-570, L623-654: the freeform task too). The prompt functions and vllm judge settings are those of lighteval
2788496 (extended/mix_eval/main.py L44-83, metrics/llm_as_judge.py L150-160, L282-286); the prompt and judge
templates (lighteval.tasks.tasks.mix_eval.prompts / judge_prompts) are the same in 0.13 but for their import.

The judge is a setting: $SMOLLM3_MIXEVAL_JUDGE (model id or folder, default the authors' Flow-Judge) and
$SMOLLM3_MIXEVAL_JUDGE_BACKEND (vllm, the authors', or transformers: a local model on CPU or GPU, same prompt and
sampling). $SMOLLM3_MIXEVAL_JUDGE_MAX_TOKENS: the judge's new tokens (default 1024, tasks.py L565).
"""

from __future__ import annotations

import logging
import os
import re

import numpy as np
from lighteval.metrics.metrics_sample import SampleLevelComputation
from lighteval.metrics.utils.metric_utils import SampleLevelMetric
from lighteval.tasks.requests import Doc, SamplingMethod
from lighteval.tasks.tasks.mix_eval.judge_prompts import flow_judge_for_multichoice_template
from lighteval.tasks.tasks.mix_eval.prompts import construct_prompt_freeform, construct_prompt_multichoice
from lighteval.utils.utils import remove_reasoning_tags

from eval.tasks.common import task_config

logger = logging.getLogger(__name__)

JUDGE_ENV, BACKEND_ENV, MAX_TOKENS_ENV = ("SMOLLM3_MIXEVAL_JUDGE", "SMOLLM3_MIXEVAL_JUDGE_BACKEND",
                                          "SMOLLM3_MIXEVAL_JUDGE_MAX_TOKENS")
AUTHORS_JUDGE, AUTHORS_BACKEND = "flowaicom/Flow-Judge-v0.1", "vllm"  # tasks.py L559-564
JUDGE_MAX_TOKENS = 1024  # tasks.py L565 (its docstring, L504, says 6144; the code passes 1024)
MAX_INPUT_TOKENS = 2048  # tasks.py L510
REASONING_TAG_PAIRS = [("<think>", "</think>")]  # tasks.py L492-494
SHORT_NAME = "flow"  # tasks.py L563: the score is judge_score_flow
# lighteval 2788496 metrics/llm_as_judge.py L157-159: the vllm judge's engine and sampling
VLLM_ENGINE = {"max_model_len": 8192, "gpu_memory_utilization": 0.5, "dtype": "float16"}
SAMPLING = {"temperature": 0.8, "top_p": 0.95}


def judge_settings() -> tuple[str, str, int]:
    """(judge model, backend, max new tokens) from the environment; defaults: the authors'."""
    backend = os.environ.get(BACKEND_ENV) or AUTHORS_BACKEND
    if backend not in ("vllm", "transformers"):
        raise ValueError(f"{BACKEND_ENV}={backend!r}: vllm or transformers")
    return (os.environ.get(JUDGE_ENV) or AUTHORS_JUDGE, backend,
            int(os.environ.get(MAX_TOKENS_ENV) or JUDGE_MAX_TOKENS))


# ---------------------------------------------------------------- prompts (lighteval 2788496 mix_eval/main.py)
def _specific(line) -> dict:
    return {"problem-type": line["problem_type"], "benchmark-name": line["benchmark_name"], "question": line["prompt"]}


def mixeval_freeform_prompt(line, task_name: str = ""):  # main.py L44-57
    return Doc(task_name=task_name, query=construct_prompt_freeform(line), choices=line["target"],
               gold_index=list(range(len(line["target"]))), instruction="", specific=_specific(line))


def mixeval_multichoice_prompt(line, task_name: str = ""):  # main.py L61-74
    return Doc(task_name=task_name, query=construct_prompt_multichoice(line), choices=line["options"],
               gold_index=[int(target) for target in line["target"]], instruction="", specific=_specific(line))


# ---------------------------------------------------------------- judge
def process_judge_response(x) -> int:
    """main.py L77-83: the digit of "<score> d </score>" (whitespace on both sides required), else 0."""
    try:
        search = re.search(r"<score>\s(\d)\s</score>", x)
        return int(search.group(1)) if search else 0
    except Exception as e:  # noqa: BLE001 - as lighteval: a judge answer that is no string scores 0
        logger.warning(f"Error processing judge response for flow: {e}")
        return 0


def judge_input(response) -> str:
    """tasks.py L527-535: the answer without its reasoning block, stripped; left-truncated to the last
    MAX_INPUT_TOKENS * 4 characters when the model generated more than MAX_INPUT_TOKENS tokens."""
    text = remove_reasoning_tags(response.text[0], tag_pairs=REASONING_TAG_PAIRS).strip()
    if response.output_tokens and len(response.output_tokens[0]) > MAX_INPUT_TOKENS:
        text = f"{text[-MAX_INPUT_TOKENS * 4:]}"
    return text


def _chat_ids(tokenizer, messages) -> list[int]:
    # lighteval 2788496 llm_as_judge.py L283: tokenizer.apply_chat_template(p) - tokenized, no generation prompt
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=False)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def generate_vllm(model: str, prompts: list, max_tokens: int) -> list[str]:
    """lighteval 2788496 JudgeLM with judge_backend="vllm" (llm_as_judge.py L150-160, L282-286)."""
    from vllm import LLM, SamplingParams
    from vllm.transformers_utils.tokenizer import get_tokenizer

    tokenizer = get_tokenizer(model, tokenizer_mode="auto")
    llm = LLM(model=model, **VLLM_ENGINE)
    try:
        outputs = llm.generate([{"prompt_token_ids": _chat_ids(tokenizer, p)} for p in prompts],
                               sampling_params=SamplingParams(max_tokens=max_tokens, **SAMPLING), use_tqdm=True)
        return [o.outputs[0].text for o in outputs]
    finally:
        del llm


def generate_transformers(model: str, prompts: list, max_tokens: int) -> list[str]:
    """The same prompts (chat template, tokenized, no generation prompt) and sampling with transformers, one
    prompt at a time: for a local judge (CPU or one GPU) where vllm is not at hand."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    judge = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float16 if device == "cuda" else torch.float32)
    judge.to(device).eval()
    out = []
    for messages in prompts:
        ids = torch.tensor([_chat_ids(tokenizer, messages)], device=device)
        with torch.no_grad():
            gen = judge.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, max_new_tokens=max_tokens,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id, **SAMPLING)
        out.append(tokenizer.decode(gen[0, ids.shape[1]:], skip_special_tokens=True))
    return out


class MixEvalJudge(SampleLevelComputation):
    """tasks.py L513-551 (JudgeLLMMixEval.compute), batched over a task's docs: question = the MixEval prompt
    without its context, options = the Doc's choices, gold = its first gold, answer = judge_input. Returns the
    judge_score_flow of each doc; the judge's prompt and answer go into doc.specific (lighteval's details)."""

    def __init__(self, template=flow_judge_for_multichoice_template, process=process_judge_response):
        self.template, self.process = template, process

    def compute(self, responses: list, docs: list, **kwargs) -> list:
        model, backend, max_tokens = judge_settings()
        answers = [judge_input(r) for r in responses]
        prompts = [self.template(question=d.specific["question"], options=d.choices, answer=a, gold=d.get_golds()[0])
                   for d, a in zip(docs, answers)]
        generate = generate_vllm if backend == "vllm" else generate_transformers
        judgements = generate(model, prompts, max_tokens) if prompts else []
        scores = [self.process(j) for j in judgements]
        for doc, prompt, judgement in zip(docs, prompts, judgements):
            doc.specific.update({f"user_prompt_{SHORT_NAME}": prompt[0]["content"],
                                 f"judgement_{SHORT_NAME}": judgement})
        return scores


def judge_metric() -> SampleLevelMetric:
    """llm_judge_mixeval_multichoice_flow_judge (tasks.py L554-570): judge_score_flow averaged over the docs. A
    plain batched metric: 0.13 keys a batched grouping's outputs by its name list and fails on it."""
    return SampleLevelMetric(metric_name=f"judge_score_{SHORT_NAME}", sample_level_fn=MixEvalJudge(),
                             category=SamplingMethod.GENERATIVE, corpus_level_fn=np.mean, higher_is_better=True,
                             batched_compute=True)


def judge_problem(offline: bool) -> str | None:
    """Why the judge cannot run here (None: it can): its backend is not installed, or offline and not local."""
    import importlib.util

    model, backend, _ = judge_settings()
    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        return f"its judge backend vllm is not installed ({BACKEND_ENV}=transformers runs {model} without it)"
    if offline and not os.path.isdir(model):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(model, "config.json"), str):
            return f"HF_HUB_OFFLINE is set and its judge {model} is neither a folder nor in the Hub cache ({JUDGE_ENV})"
    return None


# ---------------------------------------------------------------- task configs
TASKS = {"mixeval_hard:freeform": (mixeval_freeform_prompt, "free_form"),  # tasks.py L623-637
         "mixeval_hard:multichoice": (mixeval_multichoice_prompt, "multiple_choice")}  # tasks.py L640-654


def build(datasets_dir=None) -> list:
    """Configs of mixeval_hard:freeform and mixeval_hard:multichoice (the superset mixeval_hard)."""
    return [task_config(name, prompt, "MixEval/MixEval", "MixEval_Hard", None, datasets_dir, metrics=[judge_metric()],
                        hf_avail_splits=[split], evaluation_splits=[split], few_shots_split=None,
                        few_shots_select="random_sampling", generation_size=100, stop_sequence=[], version="0.1")
            for name, (prompt, split) in TASKS.items()]
