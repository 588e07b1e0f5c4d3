"""Synthetic data and dual-mode SFT (tiny recipe, CPU): `make synth` answers local prompts with the mid-trained
model as teacher and resumes without regenerating; `make sft` trains in both modes from the mid-trained
model with the smollm3 template; held-out loss falls; the HF folder's template renders as the template file
does; mode following is measured before and after; `python -m posttrain chat` answers in both modes."""
import json
import shutil

import pytest
from conftest import REPO, run_cli

from posttrain.chat_template import write_template
from tests.nanotron_stages import records, stage


@pytest.mark.slow
def test_synth_writes_think_mode_records_with_their_provenance(sft_runs):
    sdir = sft_runs / "tiny" / "synth"
    train, test = records(sdir / "data" / "train.jsonl"), records(sdir / "data" / "test.jsonl")
    m = json.loads((sdir / "manifest.json").read_text())
    assert len(train) + len(test) == 120 and test and train  # builtin:reasoning-prompts, all of them
    assert not {r["prompt_id"] for r in train} & {r["prompt_id"] for r in test}
    teacher = str(sft_runs / "tiny" / "midtrain" / "hf")
    for r in train + test:
        assert r["model"] == teacher and r["mode"] == "think" and r["chat_template_kwargs"] == {"enable_thinking": True}
        assert r["settings"]["temperature"] == 0.6 and r["settings"]["top_p"] == 0.95
        assert r["settings"]["max_new_tokens"] == m["recipe"]["sampling"]["max_new_tokens"] == 160
        user, answer = r["messages"]
        assert user["role"] == "user" and answer["role"] == "assistant" and answer["content"].strip()
        assert "<|im_end|>" not in answer["content"] and "<|pad|>" not in answer["content"]  # cut at the first eos
    assert m["status"] == "completed" and m["inputs"][0]["stage"] == "midtrain"
    # how often the (weak, tiny) teacher wrote the think format is measured, whatever it is
    assert 0.0 <= m["metrics"]["closes_think"] <= m["metrics"]["opens_think"] <= 1.0, m["metrics"]


@pytest.mark.slow
def test_synth_killed_halfway_generates_only_the_missing_prompts_and_the_same_answers(sft_runs, tmp_path):
    """Answers are written batch by batch (16 prompts); a kill after two batches leaves 32 records and a cut
    line. The rerun keeps the 32, samples the other 88 with the seeds of the uninterrupted run, and so writes
    the same answers (temperature 0.6)."""
    runs = tmp_path / "runs"
    for name in ("data", "midtrain", "synth"):
        shutil.copytree(sft_runs / "tiny" / name, runs / "tiny" / name)
    sdir = runs / "tiny" / "synth"
    complete = {r["prompt_id"]: r for r in records(sdir / "records.jsonl")}
    kept = records(sdir / "records.jsonl")[:32]
    (sdir / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept) + '{"prompt_id": "cut')
    m = json.loads((sdir / "manifest.json").read_text())
    (sdir / "manifest.json").write_text(json.dumps({**m, "status": "running"}))  # as a kill leaves it
    out = stage(runs, "synth")
    assert "32 already answered" in out.stdout and "generating 88" in out.stdout, out.stdout[-2000:]
    again = records(sdir / "data" / "train.jsonl") + records(sdir / "data" / "test.jsonl")
    by_id = {r["prompt_id"]: r for r in again}
    assert len(by_id) == 120 and all(by_id[r["prompt_id"]] == r for r in kept)
    def answers(recs):  # a record also names the teacher's folder, which is another copy here
        return {pid: (r["messages"], r["settings"], r["teacher_id"]) for pid, r in recs.items()}

    assert answers(by_id) == answers(complete)  # the regenerated answers are the uninterrupted run's
    # the line cut by the kill is gone: every line of records.jsonl is a whole record
    assert answers({r["prompt_id"]: r for r in records(sdir / "records.jsonl")}) == answers(complete)
    assert "up to date" in stage(runs, "synth").stdout


@pytest.mark.slow
def test_sft_lowers_the_held_out_loss_and_its_template_renders_both_modes(sft_runs):
    sdir = sft_runs / "tiny" / "sft"
    m = json.loads((sdir / "manifest.json").read_text())
    assert m["status"] == "completed"
    assert {i["stage"] for i in m["inputs"]} == {"midtrain", "synth"}
    metrics = m["metrics"]
    assert metrics["heldout_loss_after"] < metrics["heldout_loss_before"] - 0.1, metrics
    for k in ("think_rate_think_before", "think_rate_no_think_before", "think_rate_think_after",
              "think_rate_no_think_after"):
        assert 0.0 <= metrics[k] <= 1.0, (k, metrics)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(sdir / "hf")
    assert tok.chat_template == write_template(REPO / "recipes" / "tiny")
    assert tok.eos_token == "<|im_end|>"
    config = json.loads((sdir / "hf" / "config.json").read_text())  # as alignment-handbook's scripts/sft.py sets it
    assert config["eos_token_id"] == tok.convert_tokens_to_ids("<|im_end|>") and config["rope_theta"] == 5e6
    model = AutoModelForCausalLM.from_pretrained(sdir / "hf")
    reference = AutoTokenizer.from_pretrained(sdir / "hf")
    reference.chat_template = write_template(REPO / "recipes" / "tiny")
    messages = [{"role": "user", "content": "What is a computer?"}]
    for think in (True, False):
        kw = {"enable_thinking": think, "add_generation_prompt": True}
        text = tok.apply_chat_template(messages, tokenize=False, **kw)
        assert text == reference.apply_chat_template(messages, tokenize=False, **kw)
        assert text.endswith("<|im_start|>assistant\n" + ("" if think else "<think>\n\n</think>\n"))
        ids = tok(text, return_tensors="pt", add_special_tokens=False)
        assert model.generate(**ids, max_new_tokens=4, do_sample=False).shape[1] > ids["input_ids"].shape[1]


@pytest.mark.slow
def test_after_sft_the_tiny_model_follows_the_mode(sft_runs):
    """On 40 held-out prompts (greedy): before SFT no answer opens a think block in either mode; after SFT most
    think-mode answers open one with text in it, and no-think answers (after the prefilled empty block) rarely
    do (README: 1.00 / 0.00 on make smoke)."""
    metrics = json.loads((sft_runs / "tiny" / "sft" / "manifest.json").read_text())["metrics"]
    assert metrics["mode_prompts_after"] == 40
    assert metrics["think_rate_think_before"] <= 0.1 and metrics["think_rate_no_think_before"] <= 0.1, metrics
    assert metrics["think_rate_think_after"] > 0.5, metrics
    assert metrics["think_rate_no_think_after"] < 0.2, metrics
    assert metrics["think_logprob_think_after"] > metrics["think_logprob_think_before"] + 2.0, metrics


def test_an_empty_think_block_is_not_thinking():
    from posttrain.generate import opens_think

    assert opens_think("<think>\nFirst, 2 + 2") and opens_think("  <think>\nx\n</think>\nA")
    assert not opens_think("<think>\n\n</think>\nAnswer: 4") and not opens_think("Answer: <think>")
    assert not opens_think("<think>\n")


@pytest.mark.slow
def test_chat_cli_answers_in_both_modes(sft_runs):
    hf = sft_runs / "tiny" / "sft" / "hf"
    for flag in ("--think", "--no-think"):
        out = run_cli("posttrain", "chat", hf, flag, "What is a computer?", "--max-new-tokens", "16")
        assert out.returncode == 0 and out.stdout.startswith(("[think]\n", "[answer]\n")), out.stderr[-2000:]
    bad = run_cli("posttrain", "chat", sft_runs / "nowhere", "hi")
    assert bad.returncode == 2 and "no config.json" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_a_model_whose_tokenizer_lacks_the_templates_tokens_is_refused_before_anything_is_written(tmp_path):
    """SFT from a model whose tokenizer has no chat or think tokens: one line naming the folder and the missing
    tokens, exit 2, no run directory."""
    from tests.eval_fixtures import make_tiny_model

    model = make_tiny_model(tmp_path / "plain")  # a tokenizer without <|im_start|> ... </think>
    runs = tmp_path / "runs"
    out = stage(runs, "sft", f"init={{from: {model}}}", check=False)
    assert out.returncode == 2, out.stdout[-1000:] + out.stderr[-2000:]
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"{model}: init.from: the tokenizer lacks the smollm3 template's special token(s) <|im_start|>, " \
           "<|im_end|>, <think>, </think>" in out.stderr, out.stderr
    assert not (runs / "tiny" / "sft").exists()
