"""Synthetic data at scale: every distinct prompt gets an id of its own, and both generation backends feed the
model the same prompt tokens."""
import json
import sys
import types
import zlib

from conftest import REPO

from recipes.loader import load_stage

# Two different prompts whose crc32 (the old prompt id) collide: found by a random search over 8-word prompts.
A = [{"role": "user", "content": "apple lemon tiger swift ocean piano apple lemon"}]
B = [{"role": "user", "content": "swift tiger tiger tiger stone piano swift rocket"}]


def test_prompts_whose_crc32_collide_keep_two_ids():
    from posttrain.synth import prompt_id

    crc = [zlib.crc32(json.dumps(p, sort_keys=True).encode()) for p in (A, B)]
    assert crc[0] == crc[1]  # the old id, f"p{crc32:08x}", would have dropped one of them silently
    assert prompt_id({}, A) != prompt_id({}, B)
    assert prompt_id({}, A) == prompt_id({}, [dict(m) for m in A])  # a content hash: stable
    assert prompt_id({"id": "tulu-7"}, A) == "tulu-7"


def test_the_prompt_set_keeps_different_prompts_and_answers_a_repeated_one_once(tmp_path, monkeypatch, capsys):
    """A prompt dataset with a crc32 collision, one dataset id on two different prompts and one repeated prompt."""
    from posttrain import synth

    rows = [{"messages": A}, {"messages": B}, {"id": "x1", "messages": A},
            {"id": "x1", "messages": [{"role": "user", "content": "another question"}]}, {"messages": B}]
    data = tmp_path / "prompts"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv("SMOLLM3_RUNS", str(tmp_path / "runs"))
    r = load_stage(REPO / "recipes/tiny/synth.yaml",
                   [f"prompts=[{{dataset: {data}, split: train, weight: 1.0, columns: [id, messages]}}]"])
    got = synth.prompts(r)
    ids = [pid for pid, _, _ in got]
    assert len(ids) == len(set(ids)) == 4, ids  # A, B, x1 (A), x1-<key> (another question); B's repeat dropped
    assert [p[0]["content"] for _, p, _ in got].count(B[0]["content"]) == 1
    assert "x1" in ids and any(i.startswith("x1-") for i in ids)
    assert "1 repeated prompts answered once (4 distinct)" in capsys.readouterr().out


def test_tensor_parallelism_is_for_the_vllm_backend_only():
    import pytest

    from recipes.loader import RecipeError

    with pytest.raises(RecipeError, match="tensor_parallel_size: applies to backend vllm"):
        load_stage(REPO / "recipes/tiny/prefs.yaml", ["tensor_parallel_size=2"])


def test_vllm_and_transformers_get_the_same_prompt_tokens(tmp_path, monkeypatch):
    """A tokenizer that adds BOS itself (Llama 3's does): the rendered chat template already starts with it, so
    both backends must add none. vLLM does not run on this machine: a stand-in `vllm` module records what
    generate_batches hands it; the transformers path runs for real."""
    import torch
    from tokenizers import processors
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from posttrain import generate
    from posttrain.generate import Sampling, prompt_token_ids
    from tests.eval_fixtures import make_tiny_model

    model = make_tiny_model(tmp_path / "model")
    tok = AutoTokenizer.from_pretrained(model)
    bos = tok.bos_token or "<|begin_of_text|>"
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", special_tokens=[(bos, tok.convert_tokens_to_ids(bos))])
    tok.chat_template = bos + "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    tok.save_pretrained(model)
    tok = AutoTokenizer.from_pretrained(model)
    text = generate.render(tok, A, None)
    assert tok(text)["input_ids"][:2] == [tok.bos_token_id] * 2  # the default call doubles BOS: the trap
    ids = prompt_token_ids(tok, [text])[0]
    assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id

    seen = {}

    class LLM:
        def __init__(self, model, revision=None, seed=None, tensor_parallel_size=1):
            seen["tensor_parallel_size"] = tensor_parallel_size
            self.tok = AutoTokenizer.from_pretrained(model)

        def get_tokenizer(self):
            return self.tok

        def generate(self, prompts, params):
            seen["vllm"] = prompts
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text="")]) for _ in prompts]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=lambda **kw: kw))
    sampling = Sampling(0.0, 1.0, 2, 0)
    list(generate.generate_batches(str(model), [A, B], [None, None], sampling, 2, backend="vllm",
                                   tensor_parallel_size=load_stage(REPO / "recipes/smollm3-3b/synth.yaml")
                                   .tensor_parallel_size))
    assert seen["tensor_parallel_size"] == 4  # the 32B teacher over 4 GPUs (recipes/smollm3-3b/synth.yaml)
    lm = AutoModelForCausalLM.from_pretrained(model)
    calls = []
    real = lm.generate
    monkeypatch.setattr(lm, "generate", lambda **kw: calls.append(kw) or real(**kw))
    tok.padding_side = "left"
    generate.transformers_batch(lm, tok, [generate.render(tok, c, None) for c in (A, B)], sampling, 0)
    fed = [row[mask.bool()].tolist() for row, mask in zip(calls[0]["input_ids"], calls[0]["attention_mask"])]
    assert [p["prompt_token_ids"] for p in seen["vllm"]] == fed
    assert all(row.count(tok.bos_token_id) == 1 for row in fed)
    assert torch.is_tensor(calls[0]["input_ids"])
