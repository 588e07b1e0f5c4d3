"""`make export-nanotron` against the SmolLM3 authors' nanotron configs, key by key, and the chain of stages.

The authors' configs are verbatim copies in tests/upstream/nanotron/ (huggingface/smollm
text/pretraining/smollm3/ at a041759883ec7152d18fb985ea49be641a0bceef). Every exported value must equal
theirs, except the keys of ALLOWED, each with the reason it differs.
"""
import shutil
import subprocess

import pytest
import yaml
from conftest import REPO, run_cli

from pretrain.export_nanotron import export

R3B = REPO / "recipes/smollm3-3b"
UPSTREAM = REPO / "tests/upstream/nanotron"
AUTHORS = {"pretrain-stage1": "stage1_8T.yaml", "pretrain-stage2": "stage2_8T_9T.yaml",
           "pretrain-stage3": "stage3_9T_11T.yaml", "longctx-32k": "long_context_4k_to_32k.yaml",
           "longctx-64k": "long_context_32k_to_64.yaml"}
CKPT, DATA, EVALS = "/shared/smollm3/checkpoints", "s3://smollm3/datasets", "/shared/smollm3/evals"

PATHS = "a path of the authors' cluster; the export's is under --checkpoints-root / --eval-root"
ALLOWED = {  # dotted key (or a prefix of it) -> why the export may differ from the authors' config
    "checkpoints.checkpoints_path": "the authors' node-local /scratch folder; exported: <checkpoints-root>/<stage>",
    "checkpoints.resume_checkpoint_path":
        "the authors' files are restart configs: stage 1, stage 3 and longctx-32k name their own upload folder "
        "on s3, stage 2 and longctx-64k the previous run's upload folder; exported: the previous stage's last "
        "checkpoint, <checkpoints-root>/<init_from>/<its last step> (null for stage 1: the chain starts there)",
    "checkpoints.load_lr_scheduler":
        "longctx-32k starts a new run from stage 3's last checkpoint: loading the LR scheduler would also load "
        "stage 3's step (4,720,000) and the authors' trainer stops on train_steps (20,000) > last_train_step; "
        "their file restarts the 32k run itself (resume path = its own folder), where true is right",
    "data_stages.0.data.dataset.dataset_read_path": "node-local copies of dataset_folder on the authors' cluster "
                                                    "(/scratch, /fsx); without it nanotron reads dataset_folder",
    "data_stages.1.data.dataset.dataset_read_path": "the same, stage 2's block",
    "data_stages.2.data.dataset.dataset_read_path": "the same, stage 3's block",
    "data_stages.0.data.dataset.tokenizer_name":
        "long context: the authors name their intermediate tokenizer repos HuggingFaceTB/SmolLM3-11T-32k-v1-"
        "remote-code and HuggingFaceTB/smollm3-11T-4k-remote-code, never released; the recipe uses the released "
        "HuggingFaceTB/SmolLM3-3B tokenizer (the same 128,256 ids, chat and think tokens named)",
    "tokenizer.tokenizer_name_or_path": "the same tokenizer as data_stages[0] (nanotron asserts they agree)",
    "tokenizer.tokenizer_revision": "the recipe pins the released tokenizer's commit; the authors left it null",
    "general.project": "the authors' W&B project (smollm3-3B-final); exported: the recipe's run name",
    "general.run": "the authors' run names (elie-48n-1704-part1, ...); exported: the stage name",
    "profiler": "the authors' long-context files omit the key; exported null, nanotron's default",
    "s3_upload": "the authors copied every checkpoint to their bucket with s5cmd from their venv; exported "
                 "null: checkpoints stay in checkpoints_path, which every node of the chain reads",
    "tokens.train_steps":
        "the authors' stage 1 and 2 files carry the whole run's 4,720,000 and were stopped by hand (stage 2 "
        "resumes .../3450000); exported: the stage's last step, so the chain stops where the next stage "
        "resumes. The LR schedule gives its decay start and length, so it does not move",
    "lighteval.slurm_script_dir": PATHS, "lighteval.logs_path": PATHS, "lighteval.local_checkpoint_dir": PATHS,
    "lighteval.output_dir": PATHS, "lighteval.slurm.hf_cache": PATHS,
    "lighteval.eval_config_override": "the authors' smollm3_eval.yaml (not published); exported: "
                                      "<eval-root>/smollm3_eval.yaml, where the user writes the tasks config",
    "lighteval.nanotron_path": "the authors' checkout; exported ./, the nanotron checkout run_train.py runs from",
    "lighteval.s3_save_path": "the authors' results bucket; exported null: results stay in output_dir (no s5cmd)",
    "lighteval.upload_to_wandb": "the authors' W&B account; exported off (it needs s3_save_path and an entity)",
    "lighteval.wandb_project": "the authors' W&B project", "lighteval.wandb_entity": "the authors' W&B entity",
    "lighteval.slurm.reservation": "the authors' Slurm reservation 'smollm'; exported null",
}


def flatten(x, prefix=""):
    """Dotted keys; mappings and lists of mappings are walked (data_stages.0.name), other lists are values."""
    if isinstance(x, dict) and x:
        items = x.items()
    elif isinstance(x, list) and x and all(isinstance(e, dict) for e in x):
        items = ((str(i), e) for i, e in enumerate(x))
    else:
        return {prefix[:-1]: x}
    return {k: v for key, value in items for k, v in flatten(value, f"{prefix}{key}.").items()}


def same(a, b) -> bool:
    """Equal values of the same YAML type (an int and a float are both numbers: 0 == 0.0)."""
    def kind(v):
        return "number" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v).__name__
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return kind(a) == kind(b) and a == b


def allowed(key: str) -> bool:
    parts = key.split(".")
    return any(".".join(parts[:n]) in ALLOWED for n in range(1, len(parts) + 1))


def differences(ours: dict, theirs: dict) -> dict:
    ours, theirs = flatten(ours), flatten(theirs)
    absent = "<absent>"
    return {k: (ours.get(k, absent), theirs.get(k, absent)) for k in sorted(set(ours) | set(theirs))
            if k not in ours or k not in theirs or not same(ours[k], theirs[k])}


@pytest.fixture(scope="module")
def exported():
    return {stage: export(R3B / f"{stage}.yaml", data_root=DATA, checkpoints_root=CKPT, eval_root=EVALS)
            for stage in AUTHORS}


@pytest.fixture(scope="module")
def diffs(exported):
    return {stage: differences(exported[stage], yaml.safe_load((UPSTREAM / f).read_text()))
            for stage, f in AUTHORS.items()}


@pytest.mark.parametrize("stage", list(AUTHORS))
def test_export_equals_the_authors_config_but_for_the_listed_keys(diffs, stage):
    unexplained = {k: v for k, v in diffs[stage].items() if not allowed(k)}
    assert not unexplained, "\n".join(f"{k}: exported {a!r}, authors {b!r}" for k, (a, b) in unexplained.items())


def test_every_listed_difference_occurs(diffs):
    seen = {k for d in diffs.values() for key in d for k in [".".join(key.split(".")[:n])
                                                             for n in range(1, key.count(".") + 2)]}
    assert sorted(set(ALLOWED) - seen) == [], "ALLOWED lists keys that no longer differ"


def test_the_published_values_are_compared(exported, diffs):
    """Spot checks that the comparison covers what matters (and does not pass vacuously)."""
    s3 = flatten(exported["pretrain-stage3"])
    assert len(s3) > 100 and sum(len(d) for d in diffs.values()) < 5 * len(ALLOWED)
    assert s3["data_stages.2.data.dataset.dataset_folder"][0] == \
        "s3://smollm3/datasets/llama_tokenized-global-chunks/fineweb-edu/fineweb-edu/"
    assert [s3[f"data_stages.{i}.start_training_step"] for i in range(3)] == [1, 3450001, 4198001]
    mc = exported["longctx-64k"]["model"]["model_config"]
    assert (mc["pretraining_tp"], mc["rope_theta"], mc["_attn_implementation"], mc["ring_attn_heads_k_stride"]) \
        == (2, 5000000.0, "llama3_ring_attention", 1)
    assert exported["pretrain-stage3"]["lighteval"]["eval_interval"] == 6000


def test_the_stages_chain_each_resumes_the_previous_last_checkpoint(exported):
    ck = {stage: c["checkpoints"] for stage, c in exported.items()}
    assert ck["pretrain-stage2"]["resume_checkpoint_path"] == f"{CKPT}/pretrain-stage1/3450000"
    assert ck["pretrain-stage1"]["resume_checkpoint_path"] is None
    previous = {"pretrain-stage2": "pretrain-stage1", "pretrain-stage3": "pretrain-stage2",
                "longctx-32k": "pretrain-stage3", "longctx-64k": "longctx-32k"}
    for stage, prev in previous.items():
        assert ck[stage]["checkpoints_path"] == f"{CKPT}/{stage}"
        # nanotron saves <checkpoints_path>/<step>, and a final checkpoint at the stage's last step
        last = exported[prev]["tokens"]["train_steps"]
        assert ck[stage]["resume_checkpoint_path"] == f"{ck[prev]['checkpoints_path']}/{last}"
        assert ck[prev]["save_final_state"] is True
    assert [exported[s]["tokens"]["train_steps"] for s in AUTHORS] == [3450000, 4198000, 4720000, 20000, 22000]
    # a new run (the long-context stages) starts its step and LR schedule at 0
    assert [(ck[s]["load_optimizer"], ck[s]["load_lr_scheduler"]) for s in AUTHORS] == \
        [(True, True), (True, True), (True, True), (True, False), (False, False)]


def test_without_checkpoints_root_one_line_says_the_stage_would_start_from_scratch(tmp_path):
    res = run_cli("pretrain", "export-nanotron", R3B / "pretrain-stage2.yaml", "-o", tmp_path / "s2.yaml")
    assert res.returncode == 0, res.stderr
    [note] = [line for line in res.stderr.splitlines() if "resume_checkpoint_path" in line]
    assert "left null" in note and "from scratch" in note and "pretrain-stage1" in note and "3450000" in note
    c = yaml.safe_load((tmp_path / "s2.yaml").read_text())
    assert c["checkpoints"]["resume_checkpoint_path"] is None
    assert c["checkpoints"]["checkpoints_path"].endswith("runs/smollm3-3b/pretrain-stage2/checkpoints")
    res = run_cli("pretrain", "export-nanotron", R3B / "pretrain-stage1.yaml", "-o", tmp_path / "s1.yaml")
    assert res.returncode == 0 and "resume_checkpoint_path" not in res.stderr


def test_without_data_root_the_folders_are_those_make_data_writes():
    res = run_cli("pretrain", "export-nanotron", R3B / "pretrain-stage3.yaml")
    assert res.returncode == 0, res.stderr
    c = yaml.safe_load(res.stdout)
    assert [(s["name"], s["start_training_step"], len(s["data"]["dataset"]["dataset_weights"]))
            for s in c["data_stages"]] == [("stable", 1, 41), ("stable stage 2", 3450001, 46),
                                           ("decay stage", 4198001, 56)]
    assert c["data_stages"][0]["data"]["dataset"]["dataset_folder"][0].endswith("runs/smollm3-3b/data/fineweb-edu")


@pytest.mark.parametrize("module", [("pretrain.export_nanotron",), ("pretrain", "export-nanotron")])
def test_help_prints_the_usage(module):
    res = run_cli(*module, "--help")
    assert res.returncode == 0 and res.stdout.startswith("usage:")
    for option in ("--checkpoints-root", "--data-root", "--eval-root", "--output"):
        assert option in res.stdout


@pytest.mark.parametrize("args, field", [
    (["pretrain-stage2.yaml", "export.lighteval.eval_interval=3000"], "export.lighteval.eval_interval: must be a "
                                                                      "multiple of checkpoints.interval (2000)"),
    (["pretrain-stage2.yaml", "--checkpoints-root", "s3://bucket/ckpt"], "--checkpoints-root: must be a folder"),
    (["pretrain-stage2.yaml", "optimizer.lr=-1"], "optimizer.lr:"),
    (["sft.yaml"], "kind: must be pretrain or longctx to export (got 'sft')"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, args, field):
    out = tmp_path / "out.yaml"
    res = run_cli("pretrain.export_nanotron", R3B / args[0], *args[1:], "-o", out)
    assert res.returncode == 2
    [line] = res.stderr.strip().splitlines()
    assert line.startswith("recipes/smollm3-3b/") and field in line, line
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_target_passes_the_roots():
    res = subprocess.run(["make", "-n", "export-nanotron", "STAGE=pretrain-stage2", "RECIPE=recipes/smollm3-3b",
                          f"CHECKPOINTS_ROOT={CKPT}", f"DATA_ROOT={DATA}", "OUT=s2.yaml"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    command = " ".join(res.stdout.replace("\\\n", " ").split())
    assert (f"-m pretrain export-nanotron recipes/smollm3-3b/pretrain-stage2.yaml -o s2.yaml --checkpoints-root "
            f"{CKPT} --data-root {DATA}") in command
