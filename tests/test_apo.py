"""Preference pairs and APO (tiny recipe, CPU): `make prefs` writes pairs with their fields, modes, models and
settings, drops identical and over-long pairs; the apo_zero loss of TRL's DPOTrainer equals the formula of
the APO paper (Eq. 7) computed here with plain torch; each pair's mode reaches the rendering of its prompt,
chosen and rejected answers; `make apo` starts at loss 1.0, its reward margin grows, the final model prefers
the chosen answer of held-out pairs more often than the SFT model, and every kept checkpoint loads and
generates in both modes."""
import json
import shutil

import pytest
from conftest import REPO

from posttrain.chat_template import write_template
from tests.nanotron_stages import records, stage


@pytest.mark.slow
def test_prefs_records_carry_their_fields_modes_and_models(apo_runs):
    sdir = apo_runs / "tiny" / "prefs"
    train, test = records(sdir / "data" / "train.jsonl"), records(sdir / "data" / "test.jsonl")
    assert train and test
    assert not {r["prompt_id"] for r in train} & {r["prompt_id"] for r in test}
    assert not {json.dumps(r["prompt"]) for r in train} & {json.dumps(r["prompt"]) for r in test}
    generated = [r for r in train + test if r["source"] == "generated"]
    local = [r for r in train + test if r["source"] == "builtin:preferences"]
    assert len(generated) == 80 and len(local) == 452  # 0.67 of the 120 preference prompts; 0.25 of the pairs
    for r in train + test:
        assert r["prompt"][-1]["role"] == "user"
        assert [m["role"] for m in r["chosen"]] == ["assistant"] == [m["role"] for m in r["rejected"]]
        assert r["chosen"] != r["rejected"]
    for r in generated:
        assert r["mode"] == "think" and r["chat_template_kwargs"] == {"enable_thinking": True}
        assert r["chosen_model"] == str(apo_runs / "tiny" / "sft" / "hf")
        assert r["rejected_model"] == str(apo_runs / "tiny" / "pretrain-stage1" / "hf")
        assert r["settings"]["temperature"] == 0.6 and r["settings"]["max_new_tokens"] == 96
        assert "<|im_end|>" not in r["chosen"][0]["content"] + r["rejected"][0]["content"]
    for r in local:
        assert r["mode"] == "no_think" and r["chat_template_kwargs"]["enable_thinking"] is False
    m = json.loads((sdir / "manifest.json").read_text())["metrics"]
    assert m["pairs"] == 532 and m["kept"] == len(train) + len(test) == 532 - m["dropped_same"] - m["dropped_too_long"]
    assert m["checkable"] == 80 and 0 <= m["strong_right"] <= 1 and 0 <= m["weak_right"] <= 1


@pytest.mark.slow
def test_prefs_drops_identical_and_over_long_pairs_and_reuses_the_generations(apo_runs, tmp_path):
    runs = tmp_path / "runs"
    for name in ("data", "pretrain-stage1", "sft", "prefs"):
        shutil.copytree(apo_runs / "tiny" / name, runs / "tiny" / name)
    local = tmp_path / "tulu"  # the Tulu 3 layout: prompt as a string, chosen / rejected as whole conversations
    local.mkdir()
    def conversation(question, answer):
        return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]

    rows = [{"prompt": "Say hi.", "chosen": conversation("Say hi.", "Hi!"), "rejected": conversation("Say hi.", "Hi!")},
            {"prompt": "Name a colour.", "chosen": conversation("Name a colour.", "Blue."),
             "rejected": conversation("Name a colour.", "Nine.")}]
    (local / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs = (f"pairs=[{{dataset: '{local}', split: train, weight: 1.0, mode: no_think, "
             "columns: [prompt, chosen, rejected]}]")
    out = stage(runs, "prefs", pairs, "max_length=300")
    assert "generating 0" in out.stdout, out.stdout[-2000:]  # both models' answers reused
    m = json.loads((runs / "tiny" / "prefs" / "manifest.json").read_text())["metrics"]
    assert m["pairs"] == 82 and m["dropped_same"] == 1 and m["dropped_too_long"] > 0, m
    assert f"1 with chosen == rejected and {m['dropped_too_long']} over max_length 300 dropped" in out.stdout
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(runs / "tiny" / "sft" / "hf")
    kept = records(runs / "tiny" / "prefs" / "data" / "train.jsonl") + records(runs / "tiny" / "prefs" / "data" /
                                                                              "test.jsonl")
    assert len(kept) == m["kept"] and any(r["chosen"][0]["content"] == "Blue." for r in kept)
    for r in kept:
        for answer in ("chosen", "rejected"):
            ids = tok.apply_chat_template(r["prompt"] + r[answer], tokenize=True, **r["chat_template_kwargs"])
            assert len(getattr(ids, "input_ids", ids)) <= 300


@pytest.fixture(scope="module")
def dpo(tmp_path_factory):
    """A DPOTrainer (apo_zero, beta 0.05, the tiny apo recipe's TRL config) on two random tiny chat models (policy
    and a different reference), and two pairs with the same prompt, one per mode."""
    from datasets import Dataset
    from eval_fixtures import make_tiny_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

    from posttrain.trl_config import trl_config
    from recipes.loader import load_stage

    root = tmp_path_factory.mktemp("dpo")
    policy, reference = make_tiny_model(root / "policy", 0, chat=True), make_tiny_model(root / "ref", 1, chat=True)
    tok = AutoTokenizer.from_pretrained(policy)
    pair = {"prompt": [{"role": "user", "content": "What is 2 + 2?"}],
            "chosen": [{"role": "assistant", "content": "It is 4."}],
            "rejected": [{"role": "assistant", "content": "It is five, I think."}]}
    data = Dataset.from_list([{**pair, "chat_template_kwargs": {"enable_thinking": mode}}
                              for mode in (True, False)])
    r = load_stage(REPO / "recipes" / "tiny" / "apo.yaml", ["report_to=[]"])
    config = trl_config(r, cuda=False, output_dir=str(root / "out"))
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(policy),
                         ref_model=AutoModelForCausalLM.from_pretrained(reference), args=config,
                         train_dataset=data, processing_class=tok)
    return trainer, tok, data


def test_the_mode_reaches_the_rendering_of_prompt_chosen_and_rejected(dpo):
    trainer, tok, _ = dpo
    think, no_think = trainer.train_dataset[0], trainer.train_dataset[1]
    prompt_think, prompt_no = tok.decode(think["prompt_ids"]), tok.decode(no_think["prompt_ids"])
    assert "Reasoning Mode: /think\n" in prompt_think and prompt_think.endswith("<|im_start|>assistant\n")
    assert "Reasoning Mode: /no_think\n" in prompt_no
    assert prompt_no.endswith("<|im_start|>assistant\n<think>\n\n</think>\n")
    assert "Today Date: 01 July 2025" in prompt_think
    for row in (think, no_think):
        assert tok.decode(row["chosen_ids"]) == "It is 4.<|im_end|>\n"
        assert tok.decode(row["rejected_ids"]) == "It is five, I think.<|im_end|>\n"
    assert think["prompt_ids"] != no_think["prompt_ids"]


def test_the_apo_zero_loss_equals_the_papers_formula_computed_with_torch(dpo):
    """Eq. 7 of arXiv 2408.06266 as TRL names it (reference section 7): per pair
    (1 - sigmoid(beta * (log pi(chosen) - log ref(chosen)))) + sigmoid(beta * (log pi(rejected) - log ref(rejected))),
    log-probabilities summed over the answer's tokens; the batch loss is the mean over pairs."""
    import torch

    trainer, _, _ = dpo
    rows = [trainer.train_dataset[i] for i in range(2)]
    batch = trainer.data_collator(rows)
    with torch.no_grad():
        loss = float(trainer.compute_loss(trainer.model, batch))

    def answer_logp(model, prompt_ids, answer_ids):
        ids = torch.tensor([prompt_ids + answer_ids])
        with torch.no_grad():
            logp = model(input_ids=ids).logits[0].double().log_softmax(-1)
        return sum(float(logp[len(prompt_ids) + i - 1, t]) for i, t in enumerate(answer_ids))

    beta, expected = 0.05, []
    for row in rows:
        ratio = {k: answer_logp(trainer.model, row["prompt_ids"], row[f"{k}_ids"])
                 - answer_logp(trainer.ref_model, row["prompt_ids"], row[f"{k}_ids"]) for k in ("chosen", "rejected")}
        assert abs(ratio["chosen"]) > 1e-3  # the two models differ: the loss is not at its starting value
        expected.append((1 - torch.sigmoid(torch.tensor(beta * ratio["chosen"])))
                        + torch.sigmoid(torch.tensor(beta * ratio["rejected"])))
    assert trainer.beta == beta and trainer.loss_types == ["apo_zero"]
    assert loss == pytest.approx(float(sum(expected) / len(expected)), abs=1e-5)


@pytest.mark.slow
def test_apo_starts_at_one_its_margin_grows_and_held_out_preference_rises(apo_runs):
    sdir = apo_runs / "tiny" / "apo"
    m = json.loads((sdir / "manifest.json").read_text())
    assert m["status"] == "completed" and {i["stage"] for i in m["inputs"]} == {"sft", "prefs"}
    metrics = m["metrics"]
    assert metrics["heldout_loss_before"] == pytest.approx(1.0, abs=1e-6)  # apo_zero at the reference policy
    steps = records(sdir / "losses.jsonl")
    assert [s["step"] for s in steps] == list(range(1, 61))
    assert steps[0]["loss"] == pytest.approx(1.0, abs=1e-4)
    assert steps[0]["rewards/margins"] == pytest.approx(0, abs=1e-4)
    margins = [s["rewards/margins"] for s in steps]  # per batch of 8 pairs: noisy, so by quarters of the run
    assert sum(margins[-15:]) / 15 > sum(margins[:15]) / 15 + 0.1, margins
    assert metrics["heldout_rewards_margins_after"] > 0 and metrics["heldout_loss_after"] < 1.0
    assert metrics["preference_accuracy_after"] > metrics["preference_accuracy_before"], metrics  # per token
    assert 0 <= metrics["preference_accuracy_summed_after"] <= 1, metrics  # reported, whichever way it moves
    assert metrics["preference_pairs_after"] == metrics["examples_heldout"]


@pytest.mark.slow
def test_every_kept_apo_checkpoint_loads_and_generates_in_both_modes(apo_runs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sdir = apo_runs / "tiny" / "apo"
    kept = json.loads((sdir / "manifest.json").read_text())["metrics"]["checkpoints"]
    assert kept == ["checkpoint-15", "checkpoint-30", "checkpoint-45", "checkpoint-60"]
    template = write_template(REPO / "recipes" / "tiny")
    for folder in [sdir / "hf"] + [sdir / "checkpoints" / name for name in kept]:
        tok = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder)
        assert tok.chat_template == template and tok.eos_token == "<|im_end|>"
        assert json.loads((folder / "config.json").read_text())["eos_token_id"] == tok.convert_tokens_to_ids(
            "<|im_end|>")  # the SFT model's, as alignment-handbook's scripts/sft.py sets it
        for think in (True, False):
            text = tok.apply_chat_template([{"role": "user", "content": "What is a computer?"}], tokenize=False,
                                           add_generation_prompt=True, enable_thinking=think)
            ids = tok(text, return_tensors="pt", add_special_tokens=False)
            out = model.generate(**ids, max_new_tokens=4, do_sample=False)
            assert out.shape[1] > ids["input_ids"].shape[1]
