"""Batched chat generation for the post-training stages: synthetic data (`make synth`), preference pairs,
mode-following checks and `python -m posttrain chat`. One interface, two backends: transformers (always)
and vLLM (optional, when installed; the published scale).

Each conversation is rendered with the model's own chat template and its `chat_template_kwargs` (for
example `enable_thinking`), ends with the generation prompt, and is answered up to the first eos token.

Usage: for start, texts in generate_batches(model, conversations, kwargs, sampling, batch_size): ...
       split_think("<think>\\nsteps\\n</think>\\nanswer") -> ("steps", "answer")
"""
from __future__ import annotations

import importlib.util
import math
import time
from dataclasses import dataclass
from typing import Iterator, Optional


@dataclass(frozen=True)
class Sampling:
    temperature: float  # 0: greedy
    top_p: float
    max_new_tokens: int
    seed: int = 0


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def load(model: str, revision: Optional[str] = None, template: Optional[str] = None):
    """(model, tokenizer) for the transformers backend; `template` replaces the tokenizer's chat template."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model, revision=revision)
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    if template is not None:
        tok.chat_template = template
    cuda = torch.cuda.is_available()
    lm = AutoModelForCausalLM.from_pretrained(model, revision=revision,
                                              dtype=torch.bfloat16 if cuda else torch.float32)
    return lm.to("cuda" if cuda else "cpu").eval(), tok


def render(tok, messages: list[dict], kwargs: Optional[dict]) -> str:
    kw = {k: v for k, v in (kwargs or {}).items() if v is not None}
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kw)


def prompt_token_ids(tok, prompts: list[str]) -> list[list[int]]:
    """The rendered prompts' token ids, as both backends feed them: the chat template already wrote every special
    token, so none is added (a tokenizer that adds BOS would otherwise give vLLM a second one)."""
    return tok(prompts, add_special_tokens=False)["input_ids"]


def _answer(tok, ids) -> str:
    """The generated tokens up to (not including) the first eos or pad token, decoded."""
    ids = [int(t) for t in ids]  # ints: a tensor element is never `in` a set of ints
    stops = {tok.eos_token_id, tok.pad_token_id} - {None}
    end = next((i for i, t in enumerate(ids) if t in stops), len(ids))
    return tok.decode(ids[:end], skip_special_tokens=False)


def transformers_batch(lm, tok, prompts: list[str], sampling: Sampling, step: int) -> list[str]:
    """Answers of one batch; sampling is seeded with `seed + step` (the batch's index in the whole list)."""
    import torch

    enc = tok.pad({"input_ids": prompt_token_ids(tok, prompts)}, return_tensors="pt").to(lm.device)
    torch.manual_seed(sampling.seed + step)
    sample = sampling.temperature > 0
    with torch.no_grad():
        out = lm.generate(**enc, max_new_tokens=sampling.max_new_tokens, do_sample=sample,
                          temperature=sampling.temperature if sample else None,
                          top_p=sampling.top_p if sample else None, top_k=None,
                          pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return [_answer(tok, row[enc["input_ids"].shape[1]:]) for row in out]


def generate_batches(model: str, conversations: list[list[dict]], kwargs: list[Optional[dict]], sampling: Sampling,
                     batch_size: int, *, backend: str = "transformers", revision: Optional[str] = None,
                     template: Optional[str] = None, label: str = "generate",
                     positions: Optional[list[int]] = None,
                     tensor_parallel_size: int = 1) -> Iterator[tuple[int, list[str]]]:
    """Answer every conversation; yields (index of the batch's first conversation, its answers) batch by batch,
    printing progress (conversations/s, ETA), so that a caller can write each batch as it comes.
    `positions`: each conversation's index in the whole list when these are what is left of it (a resumed run):
    a batch is then seeded as it was in the uninterrupted run, and samples the same answers.
    `tensor_parallel_size`: GPUs the vLLM engine shards the model over (vLLM only)."""
    t0, n = time.time(), len(conversations)
    if backend == "vllm":
        from vllm import LLM, SamplingParams  # optional backend: requirements-gpu.txt

        llm = LLM(model=model, revision=revision, seed=sampling.seed, tensor_parallel_size=tensor_parallel_size)
        tok = llm.get_tokenizer()
        if template is not None:
            tok.chat_template = template
        params = SamplingParams(temperature=sampling.temperature, top_p=sampling.top_p,
                                max_tokens=sampling.max_new_tokens, seed=sampling.seed)
        batch_fn = lambda prompts, step: [o.outputs[0].text for o in llm.generate(  # noqa: E731
            [{"prompt_token_ids": ids} for ids in prompt_token_ids(tok, prompts)], params)]
    else:
        lm, tok = load(model, revision, template)
        batch_fn = lambda prompts, step: transformers_batch(lm, tok, prompts, sampling, step)  # noqa: E731
    for step, start in enumerate(range(0, n, batch_size)):
        prompts = [render(tok, c, k) for c, k in zip(conversations[start:start + batch_size],
                                                     kwargs[start:start + batch_size])]
        answers = batch_fn(prompts, positions[start] // batch_size if positions else step)
        done = min(start + batch_size, n)
        rate = done / max(time.time() - t0, 1e-9)
        eta = (n - done) / rate if rate else math.inf
        print(f"[{label}] {done}/{n} conversations, {rate:.2f}/s, ETA {eta:.0f}s", flush=True)
        yield start, answers


def split_think(text: str) -> tuple[Optional[str], str]:
    """(the think block's text or None, the final answer) of a generation."""
    body = text.lstrip()
    if not body.startswith("<think>"):
        return None, text.strip()
    inner, closed, rest = body[len("<think>"):].partition("</think>")
    return inner.strip(), rest.strip() if closed else ""


def opens_think(text: str) -> bool:
    """Does a generation open a think block with something in it (its first non-blank characters are `<think>`,
    and non-blank text follows before any `</think>`)? An empty `<think>\n\n</think>` block, the no-think
    form, does not count."""
    body = text.lstrip()
    return body.startswith("<think>") and bool(body[len("<think>"):].partition("</think>")[0].strip())
