"""The Slurm launcher for the published recipe (the export for the authors' nanotron: test_export_nanotron.py)."""
from conftest import REPO, run_cli

S1 = REPO / "recipes/smollm3-3b/pretrain-stage1.yaml"


def test_sbatch_for_smollm3_asks_for_48_nodes_of_8_gpus(tmp_path):
    res = run_cli("pipeline", "launch", S1, "--launcher", "slurm", "--dry-run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    script = (tmp_path / "runs/smollm3-3b/pretrain-stage1/launch.sbatch").read_text()
    assert "#SBATCH --nodes=48" in script and "#SBATCH --gpus-per-node=8" in script
    assert "#SBATCH --ntasks-per-node=1" in script
    assert "export CUDA_DEVICE_MAX_CONNECTIONS=1" in script
    assert "--nproc_per_node 8" in script and "--rdzv_backend c10d" in script
    assert "recipes/smollm3-3b/pretrain-stage1.yaml" in script
    # the job checks inputs, checkpoints and the resume rule once, before srun starts any rank
    prepare = script.index(f"-m pipeline prepare {S1}")
    assert prepare < script.index("export SMOLLM3_CHECKPOINTS_VERIFIED=1") < script.index("srun ")
    lc = run_cli("pipeline", "launch", REPO / "recipes/smollm3-3b/longctx-64k.yaml", "--launcher", "slurm", "--dry-run",
                 cwd=tmp_path)
    assert lc.returncode == 0
    assert "#SBATCH --nodes=12" in (tmp_path / "runs/smollm3-3b/longctx-64k/launch.sbatch").read_text()


def test_bad_override_writes_no_launch_script(tmp_path):
    res = run_cli("pipeline", "launch", S1, "parallelism.dp=0", "--launcher", "slurm", "--dry-run", cwd=tmp_path)
    assert res.returncode == 2 and "parallelism.dp: must be > 0 (got 0)" in res.stderr
    assert not (tmp_path / "runs").exists()


def test_context_parallelism_is_refused_before_launch(tmp_path):
    """nanotron 0.4 has no context parallelism: the published long-context layout (cp=4) is refused."""
    res = run_cli("pipeline", "launch", REPO / "recipes/smollm3-3b/longctx-32k.yaml", "--launcher", "slurm",
                  cwd=tmp_path)
    assert res.returncode == 2 and "parallelism.cp: nanotron 0.4 has no context parallelism" in res.stderr
    assert not (tmp_path / "runs").exists()


def test_the_planner_flags_stages_that_exceed_the_gpu_memory():
    """cluster.gpu_memory_gb takes effect: the published stage-1 estimate (48.6 GiB per GPU) fits 80 GB, not 40."""
    import json

    fits = json.loads(run_cli("recipes", "plan", REPO / "recipes/smollm3-3b", "--json").stdout)
    assert {r["stage"]: r["fits_gpu_memory"] for r in fits}["pretrain-stage1"] is True
    small = run_cli("recipes", "plan", REPO / "recipes/smollm3-3b", "cluster.gpu_memory_gb=40")
    assert "! pretrain-stage1: the estimate, 48.6 GiB per GPU, exceeds cluster.gpu_memory_gb (40)" in small.stdout
