"""Trustworthy nanotron stages: a checkpoint is continued only under the recipe that trained it (or when the
user says so), bad input is one line before torchrun starts, damaged checkpoints are passed over, and a
rank started without the launcher (Slurm, torchrun by hand) honours the stage's manifest."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

from tests.nanotron_stages import RUN, losses, stage


def one_line_error(proc, *needles):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1500:], proc.stderr[-3000:])
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def copy_run(chain, tmp_path, *stages):
    """A writable copy of the data and some stages of the completed short run."""
    runs = tmp_path / "runs"
    for name in ("data", *stages):
        shutil.copytree(chain / name, runs / "tiny" / name)
    return runs


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_changed_recipe_refuses_to_resume_and_fresh_or_continue_do_what_they_say(chain, tmp_path):
    runs = copy_run(chain, tmp_path, "pretrain-stage1")
    sdir = runs / "tiny" / "pretrain-stage1"
    before = snapshot(sdir)
    # the README's example after a completed run: not up to date, and its checkpoints were trained at 3e-3
    line = one_line_error(stage(runs, "pretrain-stage1", *RUN, "optimizer.lr=3e-4", check=False),
                          "optimizer.lr: 0.003 -> 0.0003", "--fresh", "run_name=", "--continue")
    assert line.startswith("recipes/tiny/pretrain-stage1.yaml: ")
    assert snapshot(sdir) == before  # nothing written

    # --continue: continue checkpoint 10 under the new recipe (two more steps at the new rate), recorded
    out = stage(runs, "pretrain-stage1", *RUN, "optimizer.lr=1e-3", "steps.stage_starts.pretrain-stage2=13",
                "--continue")
    m = json.loads((sdir / "manifest.json").read_text())
    assert m["status"] == "completed" and m["recipe"]["optimizer"]["lr"] == 1e-3
    assert m["continued_from"]["training_sha256"] == json.loads((sdir / "checkpoints/10/COMPLETE").read_text())[
        "training_sha256"]
    assert "optimizer.lr: 0.003 -> 0.001" in m["continued_from"]["changes"]
    steps = losses(sdir)
    assert sorted(steps) == list(range(1, 13)) and [steps[11]["lr"], steps[12]["lr"]] == [1e-3, 1e-3]
    assert [steps[s]["loss"] for s in range(1, 11)] == [losses(chain / "pretrain-stage1")[s]["loss"]
                                                        for s in range(1, 11)]

    # --fresh: the old directory is set aside, the stage starts over at step 1 with the new recipe
    out = stage(runs, "pretrain-stage1", *RUN, "optimizer.lr=3e-4", "checkpoints.keep_last=1", "--fresh")
    aside = [p for p in (runs / "tiny").iterdir() if p.name.startswith("pretrain-stage1.replaced-")]
    assert len(aside) == 1 and sorted(losses(aside[0])) == list(range(1, 13)), out.stdout[-2000:]
    fresh = losses(sdir)
    assert sorted(fresh) == list(range(1, 11)) and fresh[3]["lr"] == pytest.approx(3e-4)
    assert json.loads((sdir / "manifest.json").read_text())["continued_from"] is None
    # checkpoints.keep_last=1: only the newest checkpoint is kept
    assert sorted(p.name for p in (sdir / "checkpoints").iterdir() if p.name.isdigit()) == ["10"]


@pytest.mark.slow
def test_the_next_stage_of_a_run_refuses_a_previous_stage_trained_under_another_run_recipe(chain, tmp_path):
    runs = copy_run(chain, tmp_path, "pretrain-stage1")
    one_line_error(stage(runs, "pretrain-stage2", *RUN, "optimizer.weight_decay=0.2", check=False),
                   "pretrain-stage1", "checkpoint 10", "optimizer.weight_decay: 0.1 -> 0.2")
    assert not (runs / "tiny" / "pretrain-stage2").exists()


@pytest.mark.slow
def test_a_damaged_checkpoint_is_passed_over_with_a_warning(chain, tmp_path):
    runs = copy_run(chain, tmp_path, "pretrain-stage1")
    sdir = runs / "tiny" / "pretrain-stage1"
    manifest = json.loads((sdir / "manifest.json").read_text())
    (sdir / "manifest.json").write_text(json.dumps({**manifest, "status": "failed"}))  # as after a kill
    shard = sorted((sdir / "checkpoints" / "10").rglob("*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[:-8] + b"\0" * 8)  # same size, other bytes
    out = stage(runs, "pretrain-stage1", *RUN)
    assert "checkpoint" in out.stdout and "is damaged" in out.stdout and "resuming from" in out.stdout
    assert (sdir / "checkpoints" / "10.damaged" / "DAMAGED").is_file()
    resumed, uninterrupted = losses(sdir), losses(chain / "pretrain-stage1")
    for s in (9, 10):  # retrained from checkpoint 8: the uninterrupted losses
        assert resumed[s]["loss"] == uninterrupted[s]["loss"]
    # with no intact checkpoint left to fall back to, the stage stops: one line, nothing moved
    (sdir / "manifest.json").write_text(json.dumps({**manifest, "status": "failed"}))
    for ckpt in ("4", "8", "10"):
        f = sorted((sdir / "checkpoints" / ckpt).rglob("*.safetensors"))[0]
        f.write_bytes(b"\0" + f.read_bytes()[1:])
    before = snapshot(sdir)
    one_line_error(stage(runs, "pretrain-stage1", *RUN, check=False), "damaged checkpoint", "--fresh")
    assert snapshot(sdir) == before


@pytest.mark.slow
def test_a_rank_started_without_the_launcher_honours_the_manifest(chain, tmp_path):
    """What a Slurm job (or torchrun by hand) runs in every rank skips a completed stage."""
    runs = copy_run(chain, tmp_path, "pretrain-stage1", "pretrain-stage2")
    sdir = runs / "tiny" / "pretrain-stage2"
    before = snapshot(sdir)
    env = dict(os.environ, SMOLLM3_RUNS=str(runs), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "pipeline", "run", "recipes/tiny/pretrain-stage2.yaml", *RUN]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "up to date" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    assert snapshot(sdir) == before  # nothing retrained, nothing re-converted


def test_missing_inputs_are_one_line_before_torchrun(data_runs, tmp_path):
    empty = tmp_path / "empty-runs"
    one_line_error(stage(empty, "pretrain-stage1", check=False), "no tokenizer here: run `make data` first")
    assert not (empty / "tiny" / "pretrain-stage1").exists()
    # the tokenizer has 4,096 tokens
    one_line_error(stage(data_runs, "pretrain-stage1", "model.vocab_size=8192", check=False),
                   "model.vocab_size", "4096 tokens but the model 8192")
    # a source folder that is missing
    runs = tmp_path / "runs"
    shutil.copytree(data_runs / "tiny" / "data", runs / "tiny" / "data")
    shutil.rmtree(runs / "tiny" / "data" / "code")
    one_line_error(stage(runs, "pretrain-stage1", check=False), "code", "missing tokenized source")
    # the stage it starts from has no complete checkpoint
    only_data = tmp_path / "only-data"
    shutil.copytree(data_runs / "tiny" / "data", only_data / "tiny" / "data")
    one_line_error(stage(only_data, "pretrain-stage2", check=False), "init_from",
                   "no complete checkpoint of pretrain-stage1")
    assert sorted(p.name for p in (only_data / "tiny").iterdir()) == ["data"]
    assert sorted(p.name for p in (runs / "tiny").iterdir()) == ["data"]


@pytest.mark.parametrize("name, overrides, field, message", [
    ("pretrain-stage1", ["parallelism.tp_linear_async_communication=true"],
     "parallelism.tp_linear_async_communication", "CUDA streams only"),
    ("pretrain-stage1", ["lr_schedule.decay_style=1-sqrt"], "lr_schedule.decay_style", "linear or cosine only"),
    ("pretrain-stage1", ["model.attn_implementation=flash_attention_2"], "model.attn_implementation",
     "needs a CUDA GPU"),
    ("longctx-32k", ["model.attn_implementation=llama3_ring_attention"], "model.attn_implementation",
     "no ring attention"),
    ("pretrain-stage2", ["checkpoints.load_optimizer=false", "checkpoints.load_lr_scheduler=false"],
     "checkpoints.load_optimizer", "continues its run"),
    ("longctx-32k", ["checkpoints.load_optimizer=true", "checkpoints.load_lr_scheduler=true"],
     "checkpoints.load_optimizer", "starts a new run from the weights of pretrain-stage3"),
    ("pretrain-stage1", ["checkpoints.load_lr_scheduler=false"], "checkpoints.load_lr_scheduler", "together"),
    ("pretrain-stage1", ["model.attention_bias=true"], "model.attention_bias", "no attention biases"),
])
def test_values_the_stage_would_not_apply_are_refused_before_launch(tmp_path, name, overrides, field, message):
    runs = tmp_path / "runs"
    line = one_line_error(stage(runs, name, *overrides, check=False), f": {field}: ", message)
    assert line.startswith("recipes/tiny/")
    assert not runs.exists()


def test_resume_choices_apply_to_nanotron_stages_only(tmp_path):
    one_line_error(stage(tmp_path / "runs", "data", "--fresh", check=False), "--fresh applies to stages that resume")


@pytest.mark.slow
def test_run_name_trains_in_a_new_run_directory_on_the_recipes_data(chain, tmp_path):
    runs = copy_run(chain, tmp_path, "pretrain-stage1")
    before = snapshot(runs / "tiny" / "pretrain-stage1")
    stage(runs, "pretrain-stage1", *RUN, "optimizer.lr=3e-4", "run_name=lr3e-4")
    alt = runs / "lr3e-4" / "pretrain-stage1"
    assert sorted(losses(alt)) == list(range(1, 11)) and losses(alt)[3]["lr"] == pytest.approx(3e-4)
    inputs = json.loads((alt / "manifest.json").read_text())["inputs"]
    assert [i["path"] for i in inputs] == [str(runs / "tiny" / "data")]
    assert snapshot(runs / "tiny" / "pretrain-stage1") == before and not (runs / "lr3e-4" / "data").exists()


@pytest.mark.slow
def test_hf_yarn_factor_rewrites_the_hf_folder_without_retraining(chain, tmp_path):
    from tests.nanotron_stages import LC

    runs = copy_run(chain, tmp_path, "longctx-32k", "longctx-64k")
    sdir = runs / "tiny" / "longctx-64k"
    steps_before = losses(sdir)
    stage(runs, "longctx-64k", *LC, "hf_yarn_factor=2.0")
    config = json.loads((sdir / "hf" / "config.json").read_text())
    assert config["rope_parameters"] == {"rope_type": "yarn", "factor": 2.0, "rope_theta": 5e6,
                                         "original_max_position_embeddings": 1024}
    assert config["max_position_embeddings"] == 2048
    assert losses(sdir) == steps_before  # the same checkpoints: nothing retrained
    assert json.loads((sdir / "manifest.json").read_text())["recipe"]["hf_yarn_factor"] == 2.0


@pytest.mark.slow
def test_a_nanotron_stage_can_start_from_a_hugging_face_model(chain, tmp_path):
    from tests.nanotron_stages import LC

    runs = copy_run(chain, tmp_path)
    model = tmp_path / "some-model"
    shutil.copytree(chain / "pretrain-stage3" / "hf", model)
    new_run = ["checkpoints.load_optimizer=false", "checkpoints.load_lr_scheduler=false"]
    init = f"init={{from: {model}}}"
    one_line_error(stage(runs, "longctx-32k", *LC, init, "model.intermediate_size=512", *new_run, check=False),
                   "init.from", "intermediate_size 384 vs 512")
    one_line_error(stage(runs, "pretrain-stage2", *RUN, init, *new_run, check=False), ": init: ",
                   "continues its run")
    out = stage(runs, "longctx-32k", *LC, init)  # longctx-32k starts a new run anyway
    sdir = runs / "tiny" / "longctx-32k"
    assert (sdir / "init_nanotron" / "model_config.json").is_file() and "converting" in out.stdout
    import yaml

    cfg = yaml.safe_load((sdir / "nanotron_config.yaml").read_text())
    assert cfg["model"]["init_method"]["path"] == str(sdir / "init_nanotron")
    resumed = losses(sdir)
    assert sorted(resumed) == [1, 2, 3, 4]
    # the same weights as pretrain-stage3's last checkpoint: the same first loss as the chain's longctx-32k
    assert resumed[1]["loss"] == pytest.approx(losses(chain / "longctx-32k")[1]["loss"], abs=1e-5)
    m = json.loads((sdir / "manifest.json").read_text())
    assert [i["path"] for i in m["inputs"]][-1] == str(model)
    # the long-context figure compares this stage with the model it started from
    assert m["metrics"]["heldout_past_previous_length"]["from_stage"] == str(model)
