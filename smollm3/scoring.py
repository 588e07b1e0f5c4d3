"""The one scorer of token log-probabilities under a Hugging Face causal LM, in chunks of positions.

`model(ids).logits` holds positions x vocabulary fp32 values: 8 x 65,536 x 128,256 x 4 bytes is 269 GB for a
long-context batch. Here the decoder runs once (positions x hidden), and the output head and the log-softmax
run over `chunk` positions at a time, so peak memory grows with positions x hidden + chunk x vocabulary, not with
their product. Every figure that scores tokens uses it: the held-out losses (pretrain/heldout_loss.py), the
think-token and answer log-probabilities (posttrain/modes.py, posttrain/apo_stage.py) and the passkey
(merge/figures.py). Project code: transformers returns every position's logits and has no chunked scorer.

Usage: logp, greedy = token_logprobs(model, ids, start)   # log p(ids[t] | ids[:t]) for t in [start, len(ids))
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

CHUNK = 512  # positions per output-head call: 512 x 128,256 fp32 logits are 263 MB


@torch.no_grad()
def token_logprobs(model, ids: Sequence[int], start: int, end: Optional[int] = None,
                   chunk: int = CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(ids[t] | ids[:t]), the model's greedy token at t) for t in [start, end), end defaulting to
    len(ids); fp32 log-probabilities. start >= 1: position 0 has no context."""
    end = len(ids) if end is None else end
    if not 1 <= start <= end <= len(ids):
        raise ValueError(f"positions [{start}, {end}) of a {len(ids)}-token sequence")
    device = next(model.parameters()).device
    x = torch.tensor([list(ids[:end])], device=device)
    hidden = model.get_decoder()(input_ids=x).last_hidden_state[0]
    head = model.get_output_embeddings()
    logps, greedy = [], []
    for a in range(start - 1, end - 1, chunk):
        b = min(a + chunk, end - 1)
        logits = head(hidden[a:b]).float()
        greedy.append(logits.argmax(-1))
        target = logits.gather(1, x[0, a + 1:b + 1, None])[:, 0]
        logps.append(target - torch.logsumexp(logits, -1))  # log-softmax at the targets only
    return torch.cat(logps), torch.cat(greedy)
