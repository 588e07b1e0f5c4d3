"""Mode following: does a dual-mode model think when asked to and answer directly when not?

On held-out prompts (the first user turn of each held-out conversation), the model answers greedily twice:
once in think mode and once in no-think mode (`enable_thinking`, rendered by the stage's chat template, which
prefills an empty think block in no-think mode). The think-block rate of a mode is the fraction of answers
that open a `<think>` block: high in think mode and low in no-think mode is a model that follows the mode.
A graded figure goes with it: the mean log-probability that the answer's first token is `<think>`, per mode
(a small model can move it long before greedy decoding flips).

Usage: think_rates(model, tokenizer, heldout) -> {"think_rate_think": 0.9, "think_rate_no_think": 0.1, ...}
"""
from __future__ import annotations

from posttrain.generate import Sampling, opens_think, render, transformers_batch

N_PROMPTS = 40
PROBE = Sampling(temperature=0.0, top_p=1.0, max_new_tokens=8)  # enough to see whether it opens <think>


def held_out_prompts(heldout, n: int = N_PROMPTS) -> list[list[dict]]:
    """Up to n distinct first user turns of the held-out conversations, in their order."""
    out, seen = [], set()
    for messages in heldout["messages"]:
        user = next((m["content"] for m in messages if m["role"] == "user"), None)
        if user is not None and user not in seen:
            seen.add(user)
            out.append([{"role": "user", "content": user}])
        if len(out) == n:
            break
    return out


def think_logprob(model, tokenizer, text: str) -> float:
    """log p(`<think>` is the first answer token | the rendered prompt)."""
    from smollm3.scoring import token_logprobs

    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    logp, _ = token_logprobs(model, ids + [tokenizer.convert_tokens_to_ids("<think>")], len(ids))
    return float(logp[0])


def probe_conversations(n: int = N_PROMPTS) -> dict:
    """A fixed probe set for models without a held-out split of their own (the merge stage): the first user
    turns of the local held-out conversations, chit-chat (chatterbot-corpus test questions) and worked problems
    (the reasoning-chats test split) in turn; none of them is in any training split."""
    from posttrain.builtin_chats import chatterbot_chats, conversations

    chats, problems = chatterbot_chats("test"), conversations("test")
    mixed = [c["messages"] for pair in zip(chats, problems) for c in pair]
    return {"messages": mixed[:2 * n]}


def think_rates(model, tokenizer, heldout, batch_size: int = 20, label: str = "sft") -> dict:
    prompts = held_out_prompts(heldout)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    training = model.training
    model.eval()
    rates = {}
    try:
        for mode in ("think", "no_think"):
            kw = {"enable_thinking": mode == "think"}
            answers = []
            for i in range(0, len(prompts), batch_size):
                texts = [render(tokenizer, p, kw) for p in prompts[i:i + batch_size]]
                answers += transformers_batch(model, tokenizer, texts, PROBE, i)
            rates[f"think_rate_{mode}"] = sum(map(opens_think, answers)) / len(answers)
            logps = [think_logprob(model, tokenizer, render(tokenizer, p, kw)) for p in prompts]
            rates[f"think_logprob_{mode}"] = sum(logps) / len(logps)
    finally:
        tokenizer.padding_side = side
        model.train(training)
    rates["mode_prompts"] = len(prompts)
    print(f"[{label}] mode following on {len(prompts)} held-out prompts: opens <think> in think mode "
          f"{rates['think_rate_think']:.2f}, in no-think mode {rates['think_rate_no_think']:.2f}; mean log p(<think> "
          f"first) {rates['think_logprob_think']:.2f} vs {rates['think_logprob_no_think']:.2f}", flush=True)
    return rates
