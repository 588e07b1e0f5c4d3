"""Reasoning mid-training on TRL (tiny recipe, CPU): from the last long-context model, ChatML, packed; held-out
loss falls; a complete HF folder that generates; skipped when up to date; resumed after kill -9 with the
uninterrupted losses; a changed recipe refused."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO

from tests.nanotron_stages import MID_FAST as FAST  # what the session fixture midtrain_runs ran
from tests.nanotron_stages import descendants, stage


def steps(sdir):
    by_step = {}
    for line in (sdir / "losses.jsonl").read_text().splitlines():
        e = json.loads(line)
        by_step[e["step"]] = e
    return by_step


@pytest.mark.slow
def test_midtrain_lowers_the_held_out_loss_and_writes_a_model_that_generates(midtrain_runs):
    sdir = midtrain_runs / "tiny" / "midtrain"
    m = json.loads((sdir / "manifest.json").read_text())
    assert m["status"] == "completed" and m["inputs"][0]["stage"] == "longctx-64k"
    metrics = m["metrics"]
    assert metrics["heldout_loss_after"] < metrics["heldout_loss_before"] - 0.2, metrics
    assert metrics["steps"] == 8 and sorted(steps(sdir)) == list(range(1, 9))
    assert 0.5 < metrics["packing_efficiency"] <= 1.0 and metrics["packing_strategy"] == "bfd"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(sdir / "tensorboard"))  # report_to: [tensorboard]
    events.Reload()
    logged = {e.step: e.value for e in events.Scalars("train/loss")}
    assert sorted(logged) == list(range(1, 9))
    assert all(abs(logged[s] - e["loss"]) < 1e-5 for s, e in steps(sdir).items())
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(sdir / "hf")
    model = AutoModelForCausalLM.from_pretrained(sdir / "hf")
    assert tok.eos_token == "<|im_end|>" and model.generation_config.eos_token_id == tok.eos_token_id
    config = json.loads((sdir / "hf" / "config.json").read_text())
    assert config["eos_token_id"] == tok.convert_tokens_to_ids("<|im_end|>") and config["rope_scaling"] is None
    prompt = tok.apply_chat_template([{"role": "user", "content": "find the greatest common divisor of 84 and 36"}],
                                     add_generation_prompt=True, return_tensors="pt", return_dict=True)
    assert tok.decode(prompt["input_ids"][0]).endswith("<|im_start|>assistant\n")
    out = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]


@pytest.mark.slow
def test_midtrain_is_skipped_when_up_to_date_and_refuses_a_changed_recipe(midtrain_runs):
    again = stage(midtrain_runs, "midtrain", *FAST)
    assert "up to date" in again.stdout
    refused = stage(midtrain_runs, "midtrain", *FAST, "lr=1e-4", check=False)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr[-2000:]
    assert "lr: 0.0005 -> 0.0001" in refused.stderr and "--fresh" in refused.stderr


@pytest.mark.slow
def test_midtrain_killed_and_rerun_ends_with_the_uninterrupted_losses(midtrain_runs, tmp_path):
    runs = tmp_path / "runs"
    for name in ("data", "longctx-64k"):
        shutil.copytree(midtrain_runs / "tiny" / name, runs / "tiny" / name)
    sdir = runs / "tiny" / "midtrain"
    env = dict(os.environ, SMOLLM3_RUNS=str(runs), PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "recipes/tiny/midtrain.yaml", *FAST], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (sdir / "checkpoints" / "checkpoint-4" / "COMPLETE").exists():
        time.sleep(0.1)
    for pid in descendants(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    assert not (sdir / "hf").exists(), "killed too late"
    # the input rebuilt since the checkpoint was written: refused (rundir.resume.check_checkpoint), then restored
    manifest = runs / "tiny" / "longctx-64k" / "manifest.json"
    original = manifest.read_text()
    manifest.write_text(json.dumps({**json.loads(original), "end_time": 0}))
    refused = stage(runs, "midtrain", *FAST, check=False)
    assert refused.returncode == 2 and "longctx-64k rebuilt" in refused.stderr, refused.stderr[-2000:]
    manifest.write_text(original)
    stage(runs, "midtrain", *FAST)
    m = json.loads((sdir / "manifest.json").read_text())
    assert m["status"] == "completed" and m["resumed_from"].endswith("checkpoint-4")
    resumed, uninterrupted = steps(sdir), steps(midtrain_runs / "tiny" / "midtrain")
    for s in range(5, 9):
        assert resumed[s]["loss"] == pytest.approx(uninterrupted[s]["loss"], abs=1e-4), s


@pytest.mark.slow
def test_midtrain_can_start_from_any_hugging_face_folder(midtrain_runs, tmp_path):
    """init.from: a local folder instead of the previous stage's output (no longctx-64k in this run)."""
    model = tmp_path / "published-base"
    shutil.copytree(midtrain_runs / "tiny" / "longctx-64k" / "hf", model)
    runs = tmp_path / "runs"
    shutil.copytree(midtrain_runs / "tiny" / "data", runs / "tiny" / "data")
    stage(runs, "midtrain", *FAST, f"init={{from: {model}}}")
    m = json.loads((runs / "tiny" / "midtrain" / "manifest.json").read_text())
    assert m["status"] == "completed" and m["init_model"] == str(model)
    assert [i["path"] for i in m["inputs"]] == [str(model)]
    assert m["metrics"]["heldout_loss_after"] < m["metrics"]["heldout_loss_before"]


@pytest.mark.slow
def test_a_damaged_latest_checkpoint_is_passed_over_for_the_previous_one(midtrain_runs, tmp_path):
    """A TRL stage killed after its last checkpoint, that checkpoint then damaged on disk: the rerun warns,
    resumes the previous intact one and ends with the uninterrupted losses."""
    keep = [*FAST, "save_total_limit=2"]  # the published limit (1) keeps no previous checkpoint to fall back to
    runs = tmp_path / "runs"
    for name in ("data", "longctx-64k"):
        shutil.copytree(midtrain_runs / "tiny" / name, runs / "tiny" / name)
    stage(runs, "midtrain", *keep)
    sdir = runs / "tiny" / "midtrain"
    uninterrupted = steps(sdir)
    manifest = json.loads((sdir / "manifest.json").read_text())
    (sdir / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))  # as a kill leaves it
    shutil.rmtree(sdir / "hf")
    with open(sdir / "checkpoints" / "checkpoint-8" / "model.safetensors", "ab") as f:
        f.write(b"x")
    out = stage(runs, "midtrain", *keep)
    assert "checkpoint-8 is damaged (model.safetensors has" in out.stdout and "not resumed" in out.stdout, out.stdout
    m = json.loads((sdir / "manifest.json").read_text())
    assert m["status"] == "completed" and m["resumed_from"].endswith("checkpoint-6")
    assert m["metrics"]["checkpoints"] == ["checkpoint-6", "checkpoint-8"]  # the step-8 checkpoint written anew
    resumed = steps(sdir)
    for s in (7, 8):
        assert resumed[s]["loss"] == pytest.approx(uninterrupted[s]["loss"], abs=1e-4), s
