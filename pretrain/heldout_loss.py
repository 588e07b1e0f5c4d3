"""Held-out loss of a stage's Hugging Face model on the data stage's held-out documents
(`runs/<run>/data/heldout/<category>.jsonl`, disjoint from training: pretrain/data/heldout.py).

Two figures, recorded in the manifest of every nanotron stage by pretrain/train_stage.finish:
  per category   mean next-token loss on the first `length` tokens of each held-out document of the category
  past a length  mean next-token loss on positions [start, end) of the held-out documents at least `end` tokens
                 long (the long-context stages: positions the previous model was never trained on)
Means are per token, scored by smollm3.scoring (in chunks: a long window never holds a positions x vocabulary
tensor). Project code: transformers has no held-out scorer.

Usage (what finish does):  HeldoutScorer(hf_dir).categories(docs, length=256); .past(docs, 256, 512)
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from pretrain.data.heldout import read_heldout
from smollm3.scoring import token_logprobs

TAIL_DOCS = 8  # long documents scored past a length


class HeldoutScorer:
    def __init__(self, hf_dir: Path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
        self.tok = AutoTokenizer.from_pretrained(str(hf_dir))
        self._ids: dict[str, list[int]] = {}

    def ids(self, text: str) -> list[int]:
        if text not in self._ids:
            self._ids[text] = self.tok(text, add_special_tokens=False)["input_ids"]
        return self._ids[text]

    def _sum(self, ids: list[int], start: int, end: int) -> tuple[float, int]:
        """Summed loss of predicting tokens start..end-1 (start >= 1) from the tokens before each."""
        logp, _ = token_logprobs(self.model, ids, start, end)
        return -float(logp.sum()), end - start

    def categories(self, docs: dict[str, list[str]], length: int) -> dict[str, dict]:
        """{category: {loss, documents, tokens}} over the first `length` tokens of every document."""
        out = {}
        for category, texts in docs.items():
            loss = tokens = 0
            for text in texts:
                ids = self.ids(text)
                if len(ids) >= 2:
                    s, n = self._sum(ids, 1, min(length, len(ids)))
                    loss, tokens = loss + s, tokens + n
            if tokens:
                out[category] = {"loss": loss / tokens, "documents": len(texts), "tokens": tokens}
        return out

    def past(self, docs: dict[str, list[str]], start: int, end: int) -> Optional[dict]:
        """{loss, documents, tokens, positions} on positions [start, end) of the first TAIL_DOCS held-out documents
        (any category, in category order) of at least `end` tokens; None when none is that long."""
        long = [t for texts in docs.values() for t in texts if len(self.ids(t)) >= end][:TAIL_DOCS]
        if not long or start < 1:
            return None
        loss = tokens = 0
        for text in long:
            s, n = self._sum(self.ids(text), start, end)
            loss, tokens = loss + s, tokens + n
        return {"loss": loss / tokens, "documents": len(long), "tokens": tokens, "positions": [start, end]}



def stage_figures(r, hf_dir: Path) -> dict:
    """The held-out metrics of a nanotron stage's converted model (see the module doc):
    heldout_loss {category: ...} on the first `sequence_length` tokens (for a long-context stage, the previous
    model's trained length, both models); for a long-context stage also heldout_past_previous_length
    {before, after, positions}: the `init_from` model and this one on positions [previous length, sequence length).
    {"heldout": "not measured: ..."} when the data stage wrote no held-out set (non-builtin sources)."""
    from rundir import stage_dir
    from smollm3.hf_config import trained_length

    docs = read_heldout(stage_dir(r.run, "data") / "heldout")
    if not docs:
        return {"heldout": "not measured: the data stage wrote no held-out documents (only builtin sources have "
                           "them, pretrain/data/heldout.py)"}
    after = HeldoutScorer(hf_dir)
    if r.kind != "longctx":
        return {"heldout_loss": after.categories(docs, r.batch.sequence_length)}
    # the model this stage started from: `init.from` (a local folder; a Hub id is not scored) or init_from's hf/
    prev_hf = (Path(r.init.from_) if r.init is not None
               else stage_dir(r.run, r.init_from) / "hf" if r.init_from else None)
    if prev_hf is None or not (prev_hf / "config.json").is_file():
        return {"heldout_loss": after.categories(docs, r.batch.sequence_length),
                "heldout": "past the previous length: not measured (no local Hugging Face folder of the model this "
                           "stage started from)"}
    before = HeldoutScorer(prev_hf)
    start, end = trained_length(prev_hf), r.batch.sequence_length
    origin = r.init.from_ if r.init is not None else r.init_from
    return {"heldout_loss": after.categories(docs, start), "heldout_loss_before": before.categories(docs, start),
            "heldout_past_previous_length": {"before": before.past(docs, start, end),
                                             "after": after.past(docs, start, end), "from_stage": origin}}
