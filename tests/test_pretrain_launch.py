"""The upstream nanotron export and the Slurm launcher for the published recipe."""
import yaml
from conftest import REPO, run_cli

S1 = REPO / "recipes/smollm3-3b/pretrain-stage1.yaml"


def test_export_carries_the_published_stage1_values(tmp_path):
    out = tmp_path / "stage1.yaml"
    res = run_cli("pretrain", "export-nanotron", S1, "-o", out, "--data-root", "s3://smollm3/datasets")
    assert res.returncode == 0, res.stderr
    c = yaml.safe_load(out.read_text())
    mc = c["model"]["model_config"]
    # values of text/pretraining/smollm3/stage1_8T.yaml
    assert (mc["hidden_size"], mc["intermediate_size"], mc["num_hidden_layers"], mc["num_attention_heads"],
            mc["num_key_value_heads"], mc["vocab_size"]) == (2048, 11008, 36, 16, 4, 128256)
    assert (mc["no_rope_layer"], mc["_use_doc_masking"], mc["rope_theta"], mc["tie_word_embeddings"]) == \
        (4, True, 50000.0, True)
    assert (mc["bos_token_id"], mc["eos_token_id"], mc["max_position_embeddings"]) == (128000, 128001, 4096)
    assert c["model"]["init_method"]["std"] == 0.02 and c["model"]["dtype"] == "bfloat16"
    p = c["parallelism"]
    assert (p["dp"], p["tp"], p["pp"], p["context_parallel_size"], p["tp_mode"], p["pp_engine"]) == \
        (192, 2, 1, 1, "REDUCE_SCATTER", "1f1b")
    t = c["tokens"]
    assert (t["micro_batch_size"], t["batch_accumulation_per_replica"], t["sequence_length"], t["train_steps"]) == \
        (3, 1, 4096, 4720000)
    lr = c["optimizer"]["learning_rate_scheduler"]
    assert lr == {"learning_rate": 0.0002, "lr_warmup_steps": 2000, "lr_warmup_style": "linear",
                  "lr_decay_starting_step": 4198001, "lr_decay_steps": 522000, "lr_decay_style": "linear",
                  "min_decay_lr": 0.0}
    o = c["optimizer"]
    assert (o["weight_decay"], o["clip_grad"], o["weight_decay_exclude_named_params"]) == (0.1, 1.0,
                                                                                           [".*token_embedding.*"])
    assert (o["optimizer_factory"]["adam_beta1"], o["optimizer_factory"]["adam_beta2"]) == (0.9, 0.95)
    [stage] = c["data_stages"]
    assert (stage["name"], stage["start_training_step"]) == ("stable", 1)
    ds = stage["data"]["dataset"]
    assert len(ds["dataset_folder"]) == len(ds["dataset_weights"]) == 41
    assert ds["dataset_folder"][0] == "s3://smollm3/datasets/fineweb-edu"
    assert ds["dataset_weights"][:2] == [0.333, 0.37]
    assert (ds["token_size_in_bytes"], ds["return_positions"], stage["data"]["seed"]) == (4, True, 6)


def test_export_of_stage3_lists_every_data_stage_of_the_run():
    res = run_cli("pretrain", "export-nanotron", REPO / "recipes/smollm3-3b/pretrain-stage3.yaml")
    assert res.returncode == 0, res.stderr
    c = yaml.safe_load(res.stdout)
    assert [(s["name"], s["start_training_step"], len(s["data"]["dataset"]["dataset_weights"]))
            for s in c["data_stages"]] == \
        [("stable", 1, 41), ("stable stage 2", 3450001, 46), ("decay stage", 4198001, 56)]


def test_export_long_context_uses_ring_attention_and_cp():
    res = run_cli("pretrain", "export-nanotron", REPO / "recipes/smollm3-3b/longctx-32k.yaml")
    c = yaml.safe_load(res.stdout)
    mc = c["model"]["model_config"]
    assert (mc["rope_theta"], mc["max_position_embeddings"], mc["_attn_implementation"],
            mc["ring_attn_heads_k_stride"]) == \
        (2000000.0, 32768, "llama3_ring_attention", 1)
    assert (c["parallelism"]["context_parallel_size"], c["tokens"]["batch_accumulation_per_replica"]) == (4, 6)


def test_export_refuses_a_non_nanotron_stage():
    res = run_cli("pretrain", "export-nanotron", REPO / "recipes/smollm3-3b/sft.yaml")
    assert res.returncode == 2
    assert res.stderr.strip().endswith("kind: must be pretrain or longctx to export (got 'sft')")


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
