"""Pretraining and long-context stages on nanotron (CPU, gloo, 2 processes): stage chaining, mixture
switching, WSD corners, exact resume after kill -9, conversion of the result."""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from tests.nanotron_stages import LC, RUN, descendants, losses, stage


@pytest.mark.slow
def test_stages_continue_one_run_and_switch_mixture_at_their_start_step(chain):
    expected = {"pretrain-stage1": (1, 10, "stage1"), "pretrain-stage2": (11, 13, "stage2"),
                "pretrain-stage3": (14, 16, "stage3")}
    for name, (first, last, mixture) in expected.items():
        m = json.loads((chain / name / "manifest.json").read_text())
        assert m["status"] == "completed" and m["metrics"]["mixture"] == mixture
        assert sorted(losses(chain / name)) == list(range(first, last + 1))
        cfg = yaml.safe_load((chain / name / "nanotron_config.yaml").read_text())
        assert cfg["tokens"]["train_steps"] == last
    # stage 2 resumes the run from stage 1's last checkpoint (weights, optimizer, schedule, step)
    cfg2 = yaml.safe_load((chain / "pretrain-stage2" / "nanotron_config.yaml").read_text())
    assert cfg2["checkpoints"]["resume_checkpoint_path"].endswith("pretrain-stage1/checkpoints/10")
    inputs = json.loads((chain / "pretrain-stage3" / "manifest.json").read_text())["inputs"]
    assert [i["stage"] for i in inputs] == ["data", "pretrain-stage2"]
    # each stage's batches come from its own mixture, counted from the stage's first sample
    for name in ("pretrain-stage2", "pretrain-stage3"):
        m = json.loads((chain / name / "manifest.json").read_text())
        assert m["recipe"]["data"]["mixture"]["name"] == expected[name][2]
        assert m["metrics"]["first_step"] == expected[name][0]


def wsd(step, lr=3e-3, warmup=3, decay_start=14, decay_steps=3):
    """The published WSD shape, written from its description: linear warmup, constant, linear decay to 0."""
    if step <= warmup:
        return lr * step / warmup
    if step < decay_start:
        return lr
    return lr * max(0.0, (decay_steps - (step - decay_start)) / decay_steps)


@pytest.mark.slow
def test_lr_follows_wsd_across_the_three_stages(chain):
    lrs = {}
    for name in ("pretrain-stage1", "pretrain-stage2", "pretrain-stage3"):
        lrs.update({s: e["lr"] for s, e in losses(chain / name).items()})
    # the logged lr is read after the step's scheduler update: the schedule evaluated at this step index
    for step, lr in lrs.items():
        assert lr == pytest.approx(wsd(step), abs=1e-12), (step, lr)
    assert lrs[3] == pytest.approx(3e-3) and lrs[13] == pytest.approx(3e-3) and lrs[16] == pytest.approx(1e-3)


@pytest.mark.slow
def test_pretraining_learns_and_converts_to_hf(chain):
    first = losses(chain / "pretrain-stage1")[1]["loss"]
    last = losses(chain / "pretrain-stage3")[16]["loss"]
    assert abs(first - math.log(4096)) < 0.3  # starts at chance
    assert last < first - 1.0
    m = json.loads((chain / "pretrain-stage3" / "manifest.json").read_text())["metrics"]
    assert m["hf_loss_on_training_samples"] < m["chance_loss"] - 1.0
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(chain / "pretrain-stage3" / "hf")
    assert model.config.no_rope_layer_interval == 4 and model.config.tie_word_embeddings
    assert len(AutoTokenizer.from_pretrained(chain / "pretrain-stage3" / "hf")) == 4096
    # report_to: [tensorboard] (recipes/smollm3-3b/_pretrain.yaml): the same per-step losses as losses.jsonl
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(chain / "pretrain-stage1" / "tensorboard"))
    events.Reload()
    logged = {e.step: e.value for e in events.Scalars("train/loss")}
    assert logged and all(abs(logged[s] - e["loss"]) < 1e-5 for s, e in losses(chain / "pretrain-stage1").items())


@pytest.mark.slow
def test_long_context_stages_extend_theta_and_length_at_dp2_and_tp2(chain):
    for name, theta, seq, (dp, tp) in (("longctx-32k", 2e6, 512, (2, 1)), ("longctx-64k", 5e6, 1024, (1, 2))):
        cfg = yaml.safe_load((chain / name / "nanotron_config.yaml").read_text())
        assert cfg["model"]["model_config"]["rope_theta"] == theta
        assert cfg["tokens"]["sequence_length"] == seq
        assert (cfg["parallelism"]["dp"], cfg["parallelism"]["tp"]) == (dp, tp)
        assert cfg["checkpoints"]["resume_checkpoint_path"] is None  # a new run, from the previous weights
        assert cfg["model"]["init_method"]["path"].endswith("/checkpoints/" + ("16" if name == "longctx-32k" else "4"))
        assert sorted(losses(chain / name)) == [1, 2, 3, 4]
        from transformers import AutoConfig
        hf = AutoConfig.from_pretrained(chain / name / "hf")
        assert hf.max_position_embeddings == seq and hf.rope_parameters["rope_theta"] == theta


@pytest.mark.slow
def test_completed_stage_is_skipped(chain, data_runs):
    t0 = time.time()
    out = stage(data_runs, "pretrain-stage2", *RUN)
    assert "up to date" in out.stdout and time.time() - t0 < 30


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_uninterrupted_losses(chain, data_runs, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(data_runs / "tiny" / "data", runs / "tiny" / "data")
    env = dict(os.environ, SMOLLM3_RUNS=str(runs))
    cmd = [sys.executable, "-m", "pipeline", "run", "recipes/tiny/pretrain-stage1.yaml", *RUN]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    sdir = runs / "tiny" / "pretrain-stage1"
    deadline = time.time() + 300
    while time.time() < deadline and (not sdir.exists() or max(losses(sdir), default=0) < 5):
        time.sleep(0.1)
    for pid in descendants(proc.pid):  # kill -9 the whole job: launcher, torchrun and both ranks
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    done = sorted(int(p.name) for p in (sdir / "checkpoints").iterdir() if (p / "COMPLETE").exists())
    assert done and done[-1] < 10, done  # killed mid-stage, after a complete checkpoint
    # an interrupted checkpoint write (no COMPLETE marker) must never be taken as the latest
    (sdir / "checkpoints" / "9").mkdir()
    stage(runs, "pretrain-stage1", *RUN)
    resumed, uninterrupted = losses(sdir), losses(chain / "pretrain-stage1")
    assert sorted(resumed) == list(range(1, 11))
    for step in range(1, 11):
        assert abs(resumed[step]["loss"] - uninterrupted[step]["loss"]) <= 1e-6, step


def test_published_wsd_corners_through_nanotron_scheduler():
    """The smollm3-3b schedule as nanotron builds it from this repo's config: warmup to 2e-4 over 2,000 steps,
    constant until step 4,198,001, linear decay to 0 over the last 522,000 steps."""
    import torch

    import pretrain.nanotron_compat  # noqa: F401  (before anything from nanotron)

    # isort: split
    from nanotron.helpers import lr_scheduler_builder

    from pretrain.nanotron_config import nanotron_config
    from recipes.loader import load_stage

    r = load_stage(REPO / "recipes/smollm3-3b/pretrain-stage2.yaml")
    cfg = nanotron_config(r, checkpoints_dir=Path("unused"), token_ids={"bos": 128000, "eos": 128001})
    from nanotron.optim.named_optimizer import NamedOptimizer

    opt = NamedOptimizer(named_params_or_groups=[("w", torch.nn.Parameter(torch.zeros(1)))],
                         optimizer_builder=lambda groups: torch.optim.SGD(groups, lr=2e-4))
    sched = lr_scheduler_builder(opt, cfg.optimizer.learning_rate_scheduler, total_training_steps=4_720_000)
    lr = lambda step: 2e-4 * sched.lr_lambdas[0](step)  # noqa: E731
    assert lr(1000) == pytest.approx(1e-4) and lr(2000) == pytest.approx(2e-4)
    assert lr(2001) == pytest.approx(2e-4) and lr(4_198_000) == pytest.approx(2e-4)
    assert lr(4_198_001) == pytest.approx(2e-4)  # decay starts here
    assert lr(4_198_001 + 261_000) == pytest.approx(1e-4)  # half way down
    assert lr(4_720_000) == pytest.approx(2e-4 / 522_000) and lr(4_720_001) == 0.0
    assert cfg.tokens.train_steps == 4_198_000  # stage 2 ends the step before stage 3 starts


# Golden losses (torchtitan-style): every step's loss of the short tiny run above (`chain`), recorded in
# tests/golden/tiny_nanotron_losses.json. On one machine the run is deterministic (two fp32 gloo ranks give
# the same losses bit for bit on every run, see the kill -9 test); the tolerance leaves room for other CPUs'
# BLAS kernels, while a real change (model, data order, optimizer, schedule) moves losses by 1e-2 or more
# within these steps. Refresh when a change is meant to move them:
#   make golden      (SMOLLM3_REFRESH_GOLDEN=1 pytest tests/test_pretrain_stages.py -k golden)
GOLDEN = REPO / "tests" / "golden" / "tiny_nanotron_losses.json"
GOLDEN_ABS_TOL = 5e-4
GOLDEN_STAGES = ("pretrain-stage1", "pretrain-stage2", "pretrain-stage3", "longctx-32k", "longctx-64k")


@pytest.mark.slow
def test_losses_match_the_golden_losses(chain):
    got = {name: {str(s): e["loss"] for s, e in sorted(losses(chain / name).items())} for name in GOLDEN_STAGES}
    if os.environ.get("SMOLLM3_REFRESH_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps({"overrides": {"pretrain": RUN, "longctx": LC}, "abs_tol": GOLDEN_ABS_TOL,
                                      "losses": got}, indent=1) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert golden["overrides"] == {"pretrain": RUN, "longctx": LC}, "the run changed: refresh with `make golden`"
    for name in GOLDEN_STAGES:
        assert list(got[name]) == list(golden["losses"][name]), name
        for step, loss in got[name].items():
            assert abs(loss - golden["losses"][name][step]) <= GOLDEN_ABS_TOL, (name, step, loss,
                                                                              golden["losses"][name][step])
