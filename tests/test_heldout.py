"""The held-out documents the pretraining and long-context rows of the report card are measured on: written by
the data stage per category, none of them inside any training document; and the scorer's per-token loss
equals the loss transformers computes itself."""
import json

import pytest


def training_texts(data_dir):
    return [json.loads(line)["text"] for f in sorted((data_dir / "_corpora").glob("*/*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.slow
def test_held_out_documents_are_disjoint_from_every_training_document(data_runs):
    data = data_runs / "tiny" / "data"
    m = json.loads((data / "manifest.json").read_text())
    assert "heldout" in m["outputs"] and m["metrics"]["heldout_not_measured"] == []
    training = training_texts(data)
    assert len(training) == m["metrics"]["documents"] + sum(v.get("dropped_duplicates", 0)
                                                            for v in m["metrics"]["sources"].values())
    corpus = "\0".join(training)
    seen = set()
    for category in ("web", "code", "math", "reasoning"):
        docs = [json.loads(line) for line in (data / "heldout" / f"{category}.jsonl").read_text().splitlines()]
        assert len(docs) == m["metrics"]["heldout"][category]["documents"] == 24, category
        for d in docs:
            assert d["text"] not in corpus, (category, d["text"][:200])  # not a training document, nor inside one
            assert d["text"] not in seen
            seen.add(d["text"])
    long_code = [d for d in map(json.loads, (data / "heldout" / "code.jsonl").read_text().splitlines())
                 if len(d["text"]) > 8 * 1024]
    assert len(long_code) >= 8  # enough documents past 1,024 tokens for the long-context rows


def test_the_scorer_matches_the_models_own_loss(tmp_path):
    """categories() over whole short documents and past() over a window equal transformers' mean cross-entropy
    (labels = input_ids) computed on the same tokens."""
    import torch
    from eval_fixtures import make_tiny_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pretrain.heldout_loss import HeldoutScorer

    hf = make_tiny_model(tmp_path / "m", seed=3, chat=True)
    scorer, tok = HeldoutScorer(hf), AutoTokenizer.from_pretrained(hf)
    model = AutoModelForCausalLM.from_pretrained(hf).eval()
    text = "the quick brown fox jumps over the lazy dog " * 12
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > 64
    with torch.no_grad():
        whole = float(model(input_ids=torch.tensor([ids[:32]]), labels=torch.tensor([ids[:32]])).loss)
        logits = model(input_ids=torch.tensor([ids[:64]])).logits[0]
        window = float(torch.nn.functional.cross_entropy(logits[31:63], torch.tensor(ids[32:64])))
    got = scorer.categories({"x": [text]}, length=32)["x"]
    assert got["tokens"] == 31 and got["loss"] == pytest.approx(whole, abs=1e-5)
    past = scorer.past({"x": [text, "too short"]}, 32, 64)
    assert past["documents"] == 1 and past["tokens"] == 32 and past["loss"] == pytest.approx(window, abs=1e-5)
    assert scorer.past({"x": ["too short"]}, 32, 64) is None
