"""The sbatch script of every stage, for both recipes: accepted by bash (-n) and shellcheck, no GPUs asked of a CPU
cluster, the recipe's cluster section in #SBATCH lines, and the stage's arguments passed through unchanged (the
script's command line, split by bash itself, gives back the exact override)."""
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from recipes.loader import load_recipe

SHELLCHECK = Path(sys.executable).with_name("shellcheck")
TRICKY = "description=a b {c: 'd'} \"e\" f=g $HOME `x` \\ ;"


def scripts(directory, overrides):
    from pipeline.slurm import stage_script

    return {name: stage_script(r, directory / f"{name}.yaml", overrides)
            for name, r in load_recipe(directory, overrides).items()}


@pytest.mark.parametrize("recipe", ["tiny", "smollm3-3b"])
def test_every_stage_script_passes_bash_and_shellcheck(recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("SMOLLM3_RUNS", str(tmp_path / "runs"))
    overrides = [TRICKY, "cluster.gpus_per_node=1", "cluster.partition=local", "data:executor.kind=slurm"] \
        if recipe == "tiny" else [TRICKY]
    for name, text in scripts(REPO / "recipes" / recipe, overrides).items():
        path = tmp_path / f"{name}.sbatch"
        path.write_text(text)
        syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert syntax.returncode == 0, (name, syntax.stderr)
        lint = subprocess.run([str(SHELLCHECK), "--shell=bash", str(path)], capture_output=True, text=True)
        assert lint.returncode == 0, (name, lint.stdout)


def test_cpu_recipes_ask_for_no_gpus_and_the_cluster_section_reaches_sbatch(tmp_path, monkeypatch):
    monkeypatch.setenv("SMOLLM3_RUNS", str(tmp_path / "runs"))
    cluster = ["cluster.gpus_per_node=1", "cluster.partition=debug", "cluster.account=proj-42", "cluster.qos=low",
               "cluster.constraint=avx512", "cluster.time_limit=0:30:00",
               "cluster.sbatch_extra=[--mail-type=FAIL, --requeue]"]
    tiny = scripts(REPO / "recipes/tiny", cluster)
    for name, text in tiny.items():
        assert "--gpus-per-node" not in text and "--exclusive" not in text, name
        for line in ("--partition=debug", "--account=proj-42", "--qos=low", "--constraint=avx512",
                     "--time=0:30:00", "--mail-type=FAIL", "--requeue", "--cpus-per-task=1"):
            assert f"#SBATCH {line}\n" in text, (name, line)
    assert "#SBATCH --nodes=2" in tiny["pretrain-stage1"] and "--nproc_per_node 1" in tiny["pretrain-stage1"]
    assert "#SBATCH --nodes=1" in tiny["sft"] and "-m pipeline run" in tiny["sft"]  # one process: no launcher
    from pipeline.slurm import stage_script
    from recipes.loader import load_stage

    mid = REPO / "recipes/tiny/midtrain.yaml"
    two = ["cluster.gpus_per_node=1", "resources.gpus_per_node=1", "resources.nodes=2"]
    text = stage_script(load_stage(mid, two), mid, two)  # a TRL stage on two nodes: accelerate once per node
    assert "#SBATCH --nodes=2" in text and "srun --kill-on-bad-exit=1" in text and "accelerate-node" in text
    big = scripts(REPO / "recipes/smollm3-3b", [])
    assert "#SBATCH --gpus-per-node=8" in big["pretrain-stage1"] and "#SBATCH --nodes=48" in big["pretrain-stage1"]
    assert "#SBATCH --nodes=8" in big["midtrain"] and "#SBATCH --partition=hopper-prod" in big["midtrain"]


def test_an_override_reaches_the_stage_command_line_unchanged(tmp_path):
    """bash splits the script's command line into exactly the arguments the stage was given (printed by a
    stand-in python that echoes its argv, one per line)."""
    from pipeline.slurm import stage_script
    from recipes.loader import load_stage

    for stage, override in (("data", TRICKY), ("midtrain", "init={from: /models/my model, revision: main}")):
        path = REPO / f"recipes/tiny/{stage}.yaml"
        line = next(ln for ln in stage_script(load_stage(path, [override]), path, [override]).splitlines()
                    if " -m pipeline run " in ln)
        argv = subprocess.run(["bash", "-c", "printf '%s\\n' " + line.split(" -m pipeline run ", 1)[1]],
                              capture_output=True, text=True, check=True).stdout.splitlines()
        assert argv == [str(path), override], argv
        assert shlex.split(line)[-1] == override


def test_a_data_stage_on_datatrove_slurm_runs_after_datatrove_and_only_verifies(tmp_path):
    """`data:executor.kind=slurm`: the stage's job exports the verify-only switch; with it, a source whose datatrove
    jobs did not complete is one line (exit 2) and nothing is submitted. Without the switch no export."""
    from conftest import run_cli

    from pipeline.slurm import stage_script
    from pretrain.data.stage import VERIFY_ONLY_ENV
    from recipes.loader import load_stage

    path = REPO / "recipes/tiny/data.yaml"
    slurm = ["cluster.partition=local", "executor.kind=slurm"]
    assert f"export {VERIFY_ONLY_ENV}=1 " in stage_script(load_stage(path, slurm), path, slurm)
    assert VERIFY_ONLY_ENV not in stage_script(load_stage(path), path)
    env = {VERIFY_ONLY_ENV: "1", "SMOLLM3_RUNS": str(tmp_path / "runs"), "SLURM_CONF": str(tmp_path / "none")}
    out = run_cli("pipeline", "run", path, *slurm, cwd=tmp_path, env=env)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1] == (
        f"{path}: executor.kind: source prose: its datatrove Slurm jobs did not all complete (logs in "
        "runs/tiny/data/_logs/prose); submit the pipeline again to relaunch what failed"), out.stderr[-2000:]
    assert not (tmp_path / "runs/tiny/data/_logs").exists()  # no datatrove executor launched
