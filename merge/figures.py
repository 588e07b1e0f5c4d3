"""What the merge is for, measured on each model it writes (and on the long-context model it blends in):

- mode following (posttrain/modes.py): the think-block rate in think and no-think mode on a fixed set of
  held-out probe prompts (local, in no training data), greedy;
- the long-context figure: passkey retrieval (the eval suite's long-context task, eval/offline_data.py) at
  the recipe's `model.max_position_embeddings`: the exact-match rate of the passkey's tokens under teacher
  forcing, and the mean log-probability of the passkey (graded: it moves before the rate does).

The blog merged 0.1 of a mid-training checkpoint into the APO soup to recover long-context (RULER) scores;
these figures, soup and final side by side, show what that share does here.

Usage: figures(hf_folder, context_length, label) -> {"think_rate_think": ..., "passkey_logprob": ..., ...}
"""
from __future__ import annotations

N_PASSKEY = 8


def passkey(model, tokenizer, context_length: int) -> dict:
    from eval.offline_data import passkey_items
    from smollm3.scoring import token_logprobs

    logps, exact = [], 0
    for item in passkey_items(context_length, N_PASSKEY, tokenizer):
        prompt = tokenizer(item["prompt"], add_special_tokens=False)["input_ids"]
        answer = tokenizer(" " + item["passkey"], add_special_tokens=False)["input_ids"]
        logp, greedy = token_logprobs(model, prompt + answer, len(prompt))
        logps.append(float(logp.sum()))
        exact += greedy.tolist() == answer
    return {"passkey_logprob": sum(logps) / len(logps), "passkey_exact": exact / N_PASSKEY,
            "passkey_length": context_length}


def figures(folder, context_length: int, label: str) -> dict:
    from posttrain.generate import load
    from posttrain.modes import probe_conversations, think_rates

    model, tokenizer = load(str(folder))
    out = think_rates(model, tokenizer, probe_conversations(), label=label)
    out.update(passkey(model, tokenizer, context_length))
    print(f"[{label}] passkey at {context_length} tokens: exact {out['passkey_exact']:.2f}, mean log p "
          f"{out['passkey_logprob']:.2f}", flush=True)
    return out
