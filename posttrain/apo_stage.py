"""APO on TRL: `DPOTrainer` with `loss_type="apo_zero"` (anchored preference optimization, Eq. 7 of arXiv
2408.06266) from the SFT model, against a frozen copy of it as reference (TRL makes it when `ref_model` is
None, as alignment-handbook's scripts/dpo.py @ 925acdf loads a second copy), on preference pairs each rendered in its
own mode (`chat_template_kwargs`, forwarded by TRL 1.16's DPO tokenization to prompt, chosen and rejected),
with the chat template saved with the SFT model (alignment-handbook recipes/smollm3/dpo/apo.yaml @ 925acdf).

The shared machinery is posttrain/trl_stage.py (checkpoints, resume, held-out loss, HF folder). This stage
adds the held-out preference accuracy before and after: the fraction of held-out pairs whose chosen answer
the model gives a higher mean log-probability per token than the rejected one (and the same by summed
log-probabilities, as DPO scores them). Every checkpoint the recipe keeps (`save_steps`,
`save_total_limit`) stays a complete, loadable HF folder for the merge stage's soup.

Usage: make apo RECIPE=recipes/tiny   (python -m pipeline run recipes/tiny/apo.yaml)
"""
from __future__ import annotations

from posttrain import trl_stage

N_PAIRS = 200  # held-out pairs scored for the preference accuracy (all of them when fewer)


def build_trainer(model, tokenizer, train, heldout, config, callbacks):
    from trl import DPOTrainer

    return DPOTrainer(model=model, ref_model=None, args=config, train_dataset=train, eval_dataset=heldout,
                      processing_class=tokenizer, callbacks=callbacks)


def answer_logprob(model, tokenizer, prompt: list[dict], answer: list[dict], kwargs: dict) -> tuple[float, int]:
    """(log p(answer | prompt) summed over the answer's tokens, how many tokens), rendered by the tokenizer's
    chat template in the pair's mode; the answer starts where the prompt alone and prompt + answer diverge
    (as TRL does)."""
    from smollm3.scoring import token_logprobs

    head = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, **kwargs)
    full = tokenizer.apply_chat_template(prompt + answer, tokenize=True, **kwargs)
    head, full = list(getattr(head, "input_ids", head)), list(getattr(full, "input_ids", full))
    start = next((i for i, (a, b) in enumerate(zip(head, full)) if a != b), min(len(head), len(full)))
    logp, _ = token_logprobs(model, full, start)
    return float(logp.sum()), len(full) - start


def preference_accuracy(model, tokenizer, heldout) -> dict:
    """How often the model prefers the chosen answer of a held-out pair: `preference_accuracy`, by the mean
    log-probability per answer token (length-normalized: a summed log-probability favours the shorter answer
    whatever it says, so a cut-off answer would "win" by being short), and `preference_accuracy_summed`, by
    the summed log-probability DPO scores; `preference_pairs`: how many pairs were scored."""
    training = model.training
    model.eval()
    wins, wins_summed, n = 0, 0, min(N_PAIRS, len(heldout))
    try:
        for ex in heldout.select(range(n)):
            kw = {k: v for k, v in (ex.get("chat_template_kwargs") or {}).items() if v is not None}
            (chosen, n_chosen), (rejected, n_rejected) = (answer_logprob(model, tokenizer, ex["prompt"], ex[k], kw)
                                                          for k in ("chosen", "rejected"))
            wins += chosen / max(n_chosen, 1) > rejected / max(n_rejected, 1)
            wins_summed += chosen > rejected
    finally:
        model.train(training)
    print(f"[apo] preference accuracy on {n} held-out pairs: {wins / n:.3f} per token, {wins_summed / n:.3f} "
          "summed", flush=True)
    return {"preference_accuracy": wins / n, "preference_accuracy_summed": wins_summed / n, "preference_pairs": n}


def run(recipe, resume: str = "refuse") -> None:
    trl_stage.run(recipe, build_trainer, resume, measure=preference_accuracy)
