"""The prefs stage (`make prefs`): preference pairs for APO, as the SmolLM3 authors built theirs.

- generated pairs: a strong model (published: Qwen3-32B) and a weak one (Qwen3-0.6B) answer each prompt of
  `prompts` in the recipe's mode (think) through the synth stage's resumable generation (posttrain/synth.py:
  same settings, records flushed batch by batch, a rerun generates only what is missing, per model); the
  strong answer is `chosen`, the weak one `rejected`;
- existing pairs: the `pairs` datasets (published: the Tulu 3 preference mixture, no-think), mapped to the
  conversational form TRL's DPOTrainer reads (`as_pair`);
- a pair whose chosen equals its rejected, or whose rendered prompt + longer answer exceeds `max_length`
  tokens (in the recipe's tokenizer, rendered by the smollm3 chat template, as APO will), is dropped and
  counted;
- where a prompt carries the `answer` a correct solution ends with (the tiny recipe's generated problems), the
  log and the manifest say how often each model's final answer is right;
- output: `runs/<run>/prefs/data/{train,test}.jsonl`: prompt, chosen, rejected, chat_template_kwargs, and per
  record its source, prompt id, mode, the two models and the sampling settings. `test_fraction` of the
  prompt ids (by hash) form the test split, held out from APO training.

Usage: make prefs RECIPE=recipes/tiny   (python -m pipeline run recipes/tiny/prefs.yaml)
"""
from __future__ import annotations

import json
import re

from recipes.loader import RecipeError, display
from rundir import StageRun

ANSWER = re.compile(r"Answer:\s*(.+)")


def models(r) -> dict:
    """{"strong": find_model triple, "weak": ...}; checked before anything is written."""
    from posttrain.trl_stage import find_model

    return {role: find_model(r, getattr(r, role), getattr(r, f"{role}_from"), (f"{role}.from", f"{role}_from"))
            for role in ("strong", "weak")} if r.prompts else {}


def as_pair(example: dict) -> dict:
    """A preference example in TRL's conversational form: prompt = the messages before the answer, chosen /
    rejected = the assistant answer alone. Accepts prompt as a string or messages, and chosen / rejected as a
    string, the answer's messages, or the whole conversation (prompt included, as the Tulu 3 mixture has)."""
    def answer(x):
        if isinstance(x, str):
            return [{"role": "assistant", "content": x}]
        return [m for m in x if m["role"] == "assistant"][-1:]

    prompt = example.get("prompt")
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if not prompt:
        chosen = example["chosen"]
        prompt = chosen[:max(i for i, m in enumerate(chosen) if m["role"] == "assistant")]
    return {"prompt": [{"role": m["role"], "content": m["content"]} for m in prompt],
            "chosen": answer(example["chosen"]), "rejected": answer(example["rejected"])}


def final_answer(text: str):
    """The final answer of a generation (after its think block): the text after the last `Answer:`."""
    found = ANSWER.findall(text.rpartition("</think>")[2] or text)
    return found[-1].strip().rstrip(".") if found else None


def too_long(tok, pair: dict, limit: int) -> bool:
    kw = {k: v for k, v in pair["chat_template_kwargs"].items() if v is not None}
    for answer in ("chosen", "rejected"):
        ids = tok.apply_chat_template(pair["prompt"] + pair[answer], tokenize=True, **kw)
        if len(getattr(ids, "input_ids", ids)) > limit:  # transformers 5 returns a BatchEncoding
            return True
    return False


def own_template(model: str, revision) -> bool:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model, revision=revision).chat_template is not None


def generated_pairs(r, found, run_dir, counts) -> list[dict]:
    """Both models answer every prompt (each with its own chat template; one without, such as a pretraining
    checkpoint, with the smollm3 template) and the pairs are formed; right answers are counted."""
    from posttrain.chat_template import recipe_chat, smollm3_template
    from posttrain.synth import answer_all, prompts

    rows = prompts(r)
    answers = {}
    for role in ("strong", "weak"):
        model, revision, _ = found[role]
        template = None if own_template(model, revision) else smollm3_template(recipe_chat(r, "chat"))
        answers[role] = answer_all(r, found[role], getattr(r, role) is None, rows, run_dir / f"{role}.jsonl",
                                   f"prefs {role}", template)[0]
    out = []
    for pid, prompt, example in rows:
        strong, weak = (answers[role][pid]["messages"][-1]["content"] for role in ("strong", "weak"))
        if "answer" in example and example["answer"] is not None:
            counts["checkable"] += 1
            counts["strong_right"] += final_answer(strong) == str(example["answer"])
            counts["weak_right"] += final_answer(weak) == str(example["answer"])
        out.append({"prompt_id": pid, "prompt": prompt, "chosen": [{"role": "assistant", "content": strong}],
                    "rejected": [{"role": "assistant", "content": weak}],
                    "chat_template_kwargs": {"enable_thinking": r.mode == "think"}, "mode": r.mode,
                    "source": "generated", "chosen_model": found["strong"][0], "rejected_model": found["weak"][0],
                    "settings": answers["strong"][pid]["settings"]})
    return out


def existing_pairs(r) -> list[dict]:
    """The `pairs` datasets' examples as records; the prompt id is a hash of the prompt, so that a prompt asked
    twice lands in one split."""
    from posttrain.mixture import mixture_parts
    from posttrain.synth import prompt_id

    out = []
    for d, part in zip(r.pairs, mixture_parts(r, datasets=r.pairs, field="pairs") if r.pairs else []):
        for example in part:
            kw = {k: v for k, v in (example.get("chat_template_kwargs") or {}).items() if v is not None}
            pair = as_pair(example)
            out.append({"prompt_id": prompt_id({}, pair["prompt"]), **pair,
                        "chat_template_kwargs": kw, "mode": "think" if kw.get("enable_thinking", True) else "no_think",
                        "source": d.dataset, "chosen_model": None, "rejected_model": None, "settings": None})
    return out


def policy_tokenizer(r):
    """The tokenizer of the model APO trains (the recipe's), with the smollm3 chat template: what max_length
    is measured in."""
    from transformers import AutoTokenizer

    from posttrain.chat_template import check_tokens, recipe_chat, smollm3_template
    from pretrain.data.tokenizer import tokenizer_dir

    name = r.tokenizer.name_or_path if r.tokenizer.kind == "hub" else tokenizer_dir(r)
    if r.tokenizer.kind != "hub" and not name.exists():
        raise RecipeError(r.file_of("tokenizer.name_or_path"), "tokenizer.name_or_path", f"{display(name)} does not "
                          "exist (run make data first): max_length is measured in its tokens")
    tok = AutoTokenizer.from_pretrained(str(name), revision=r.tokenizer.revision)
    tok.chat_template = smollm3_template(recipe_chat(r, "chat"))
    check_tokens(tok, "smollm3", r.file_of("tokenizer.name_or_path"), "tokenizer.name_or_path")
    return tok


def run(r) -> None:
    from posttrain.mixture import stage_inputs
    from posttrain.synth import check_backend, is_test, write_jsonl

    found = models(r)
    check_backend(r)
    tok = policy_tokenizer(r)
    inputs = [f[2] for f in found.values() if f[2] is not None]
    inputs += stage_inputs(r, r.pairs, "pairs") + stage_inputs(r, r.prompts, "prompts")
    with StageRun(r, inputs=inputs) as run_:
        if run_.skip:
            return
        counts = dict(checkable=0, strong_right=0, weak_right=0, same=0, too_long=0)
        pairs = (generated_pairs(r, found, run_.dir, counts) if r.prompts else []) + existing_pairs(r)
        kept = []
        for p in pairs:
            if p["chosen"] == p["rejected"]:
                counts["same"] += 1
            elif too_long(tok, p, r.max_length):
                counts["too_long"] += 1
            else:
                kept.append(p)
        data = run_.dir / "data"
        data.mkdir(exist_ok=True)
        splits = {s: [p for p in kept if is_test(p["prompt_id"], r.test_fraction) == (s == "test")]
                  for s in ("train", "test")}
        for split, rows in splits.items():
            write_jsonl(data / f"{split}.jsonl", rows)
        right = {k: counts[f"{k}_right"] / counts["checkable"] if counts["checkable"] else None
                 for k in ("strong", "weak")}
        run_.outputs += ["data/train.jsonl", "data/test.jsonl"]
        run_.metrics.update(pairs=len(pairs), kept=len(kept), dropped_same=counts["same"],
                            dropped_too_long=counts["too_long"], train=len(splits["train"]), test=len(splits["test"]),
                            checkable=counts["checkable"], strong_right=right["strong"], weak_right=right["weak"],
                            modes={m: sum(p["mode"] == m for p in kept) for m in ("think", "no_think")})
        print(f"[prefs] {len(kept)} pairs kept of {len(pairs)} ({counts['same']} with chosen == rejected and "
              f"{counts['too_long']} over max_length {r.max_length} dropped): {len(splits['train'])} train / "
              f"{len(splits['test'])} test in {display(data)}", flush=True)
        if counts["checkable"]:
            print(f"[prefs] checkable answers: the strong model is right on {counts['strong_right']}/"
                  f"{counts['checkable']}, the weak one on {counts['weak_right']}/{counts['checkable']}", flush=True)
        print(f"[prefs] per mode: {json.dumps(run_.metrics['modes'])}", flush=True)
