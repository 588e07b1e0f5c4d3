"""TRL stages on several GPUs: the accelerate / DeepSpeed ZeRO-3 config and the Slurm launch the recipe
renders (the rendered files and commands, not a cluster)."""
import yaml
from conftest import REPO, run_cli

MID = REPO / "recipes/smollm3-3b/midtrain.yaml"


def test_the_accelerate_config_is_the_authors_zero3_for_8_nodes():
    """alignment-handbook recipes/accelerate_configs/zero3.yaml (bf16, zero3_init_flag), 8 nodes x 8 GPUs."""
    from pipeline.launch import accelerate_config
    from recipes.loader import load_stage

    c = accelerate_config(load_stage(MID))
    assert c["distributed_type"] == "DEEPSPEED" and c["mixed_precision"] == "bf16"
    assert c["deepspeed_config"]["zero_stage"] == 3 and c["deepspeed_config"]["zero3_init_flag"] is True
    assert (c["num_machines"], c["num_processes"]) == (8, 64)


def test_slurm_dry_run_prints_the_accelerate_and_sbatch_launch(tmp_path):
    out = run_cli("pipeline", "launch", MID, "--launcher", "slurm", "--dry-run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    sdir = tmp_path / "runs" / "smollm3-3b" / "midtrain"
    config, script = (sdir / "accelerate.yaml").read_text(), (sdir / "launch.sbatch").read_text()
    assert config in out.stdout and script in out.stdout  # printed, and written for sbatch
    assert yaml.safe_load(config)["deepspeed_config"]["zero_stage"] == 3
    assert "#SBATCH --nodes=8" in script and "#SBATCH --gpus-per-node=8" in script
    assert f"-m pipeline accelerate-node {sdir.resolve() / 'accelerate.yaml'} {MID}" in script
    from accelerate.commands.launch import launch_command_parser

    from pipeline.slurm import accelerate_node_command

    env = {"SLURM_NNODES": "8", "SLURM_NODEID": "3", "MASTER_ADDR": "node-0", "MASTER_PORT": "29500"}
    cmd = accelerate_node_command(sdir / "accelerate.yaml", MID, ["lr=1e-5"], "refuse", env)
    args = launch_command_parser().parse_args(cmd[3:])  # after `python -m accelerate.commands.launch`
    assert (args.num_machines, args.num_processes, args.machine_rank) == (8, 64, 3)
    assert args.main_process_ip == "node-0" and args.training_script_args == ["run", str(MID), "lr=1e-5"]


def test_accelerate_parses_the_launch_arguments(tmp_path):
    from accelerate.commands.launch import launch_command_parser

    from pipeline.launch import accelerate_args

    args = launch_command_parser().parse_args(
        ["--num_machines", "8", "--num_processes", "64", "--machine_rank", "3",
         *accelerate_args(tmp_path / "accelerate.yaml", MID, ["lr=1e-5"], "continue")])
    assert args.module and args.training_script == "pipeline" and args.num_processes == 64
    assert args.training_script_args == ["run", str(MID), "lr=1e-5", "--continue"]
    assert args.config_file == str(tmp_path / "accelerate.yaml")


def test_a_one_process_trl_stage_runs_in_place(tmp_path):
    out = run_cli("pipeline", "launch", REPO / "recipes/tiny/midtrain.yaml", "--dry-run", cwd=tmp_path)
    assert out.returncode == 0 and "one process, run in place" in out.stdout and not (tmp_path / "runs").exists()
