"""Every schema invariant: a broken recipe exits 2 with one line `file: field: message`, no traceback,
and nothing is written under runs/."""
import re

import pytest
import yaml
from conftest import run_cli


def edit(root, rel, fn):
    path = root / rel
    data = yaml.safe_load(path.read_text()) or {}
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def set_key(*keys, value):
    def fn(d):
        for k in keys[:-1]:
            d = d.setdefault(k, {})
        d[keys[-1]] = value
    return fn


# (description, file to edit, edit, stage to run, overrides, expected file, expected field, message regex)
CASES = [
    ("hidden % heads", "recipes/tiny/base.yaml", set_key("model", "hidden_size", value=130), "pretrain-stage1", [],
     "recipes/tiny/base.yaml", "model.hidden_size",
     r"must be divisible by model.num_attention_heads \(4\) \(got 130\)"),
    ("heads % kv heads", "recipes/tiny/base.yaml", set_key("model", "num_key_value_heads", value=3), "sft", [],
     "recipes/tiny/base.yaml", "model.num_key_value_heads", r"must divide model.num_attention_heads \(4\) \(got 3\)"),
    ("tp | kv heads", None, None, "pretrain-stage1", ["parallelism.tp=4", "parallelism.dp=1"],
     "recipes/tiny/pretrain-stage1.yaml", "parallelism.tp", r"must divide model.num_key_value_heads \(2\) \(got 4\)"),
    ("tp | heads", None, None, "pretrain-stage1", ["model.num_key_value_heads=1", "parallelism.tp=3"],
     "recipes/tiny/pretrain-stage1.yaml", "parallelism.tp", r"must divide model.num_attention_heads \(4\) \(got 3\)"),
    ("layers % nope interval", "recipes/tiny/base.yaml", set_key("model", "num_hidden_layers", value=6),
     "pretrain-stage2", [],
     "recipes/tiny/base.yaml", "model.num_hidden_layers", r"must be divisible by model.no_rope_layer_interval \(4\) "
                                                          r"\(got 6\)"),
    ("seq <= max positions", "recipes/tiny/longctx-32k.yaml", set_key("batch", "sequence_length", value=1024),
     "longctx-32k", [],
     "recipes/tiny/longctx-32k.yaml", "batch.sequence_length", r"must be <= model.max_position_embeddings \(512\) "
                                                               r"\(got 1024\)"),
    ("global batch divisible", "recipes/tiny/_pretrain.yaml", set_key("batch", "global_batch_tokens", value=5000),
     "pretrain-stage3", [],
     "recipes/tiny/_pretrain.yaml", "batch.global_batch_tokens", r"must be divisible by dp x micro_batch_size x "
                                                                 r"sequence_length .*\(got 5000\)"),
    ("stage starts increasing", "recipes/tiny/_pretrain.yaml", set_key("steps", "stage_starts", "pretrain-stage3",
                                                                       value=50), "pretrain-stage1", [],
     "recipes/tiny/_pretrain.yaml", "steps.stage_starts.pretrain-stage3", r"strictly increasing \(got 50\)"),
    ("mixture weight > 0", "recipes/tiny/mixtures/stage1.yaml", lambda d: d["sources"][1].update(weight=0),
     "pretrain-stage1", [],
     "recipes/tiny/mixtures/stage1.yaml", "sources.1.weight", r"must be > 0 \(got 0\)"),
    ("lr > 0 (override)", None, None, "pretrain-stage1", ["optimizer.lr=-1"],
     "recipes/tiny/pretrain-stage1.yaml", "optimizer.lr", r"must be > 0 \(got -1\)"),
    ("lr > 0 (yaml)", "recipes/tiny/sft.yaml", set_key("lr", value=0.0), "sft", [],
     "recipes/tiny/sft.yaml", "lr", r"must be > 0 \(got 0.0\)"),
    ("merge weight > 0", "recipes/smollm3-3b/merge.yaml", lambda d: d["blend"][1].update(weight=-0.1), "merge", [],
     "recipes/smollm3-3b/merge.yaml", "blend.1.weight", r"must be > 0 \(got -0.1\)"),
    ("local data path exists", "recipes/tiny/mixtures/stage2.yaml",
     lambda d: d["sources"][0].update(builtin=None, path="corpora/missing"), "pretrain-stage2", [],
     "recipes/tiny/mixtures/stage2.yaml", "sources.0.path", r"local data path does not exist \(got corpora/missing\)"),
    ("local tokenizer exists", None, None, "pretrain-stage1", ["tokenizer.kind=local",
                                                               "tokenizer.name_or_path=no/such/tok"],
     "recipes/tiny/pretrain-stage1.yaml", "tokenizer.name_or_path", r"local data path does not exist"),
    ("unknown key", "recipes/tiny/_pretrain.yaml", set_key("optimizer", "learning_rate", value=1e-3),
     "pretrain-stage1", [],
     "recipes/tiny/_pretrain.yaml", "optimizer.learning_rate", r"unknown key"),
    ("wrong type", "recipes/tiny/base.yaml", set_key("model", "num_hidden_layers", value="four"), "pretrain-stage1", [],
     "recipes/tiny/base.yaml", "model.num_hidden_layers", r"valid integer.*\(got 'four'\)"),
    ("unknown kind", None, None, "merge", ["kind=soup"], "recipes/tiny/merge.yaml", "kind",
     r"must be one of .*got 'soup'"),
    ("dpo ignores padding_free", None, None, "apo", ["padding_free=true"], "recipes/tiny/apo.yaml", "padding_free",
     r"TRL 1.16's DPOTrainer ignores it .*\(got true\)"),
    ("beta is apo's", None, None, "sft", ["beta=0.1"], "recipes/tiny/sft.yaml", "beta",
     r"applies to an apo stage only \(got 0.1\)"),
    ("prefs models", None, None, "prefs", ["strong={from: x}"], "recipes/tiny/prefs.yaml", "strong",
     r"set exactly one of strong \(a model\) and strong_from \(a stage\)"),
    ("trl batch divisible", None, None, "apo", ["global_batch_size=6"], "recipes/tiny/apo.yaml", "global_batch_size",
     r"must be divisible by nodes x gpus_per_node x per_device_train_batch_size \(4\) \(got 6\)"),
    ("missing mixture", None, None, "pretrain-stage1", ["data.mixture=nope"], "recipes/tiny/pretrain-stage1.yaml",
     "data.mixture", r"no mixture file mixtures/nope.yaml"),
    ("override into a scalar", None, None, "pretrain-stage1", ["seed.foo=1"], "recipes/tiny/pretrain-stage1.yaml",
     "seed.foo", r"seed is a value, not a mapping of keys \(got 6\) \[from the override seed.foo=1\]"),
    ("override deeper into a scalar", None, None, "sft", ["lr.a.b=1"], "recipes/tiny/sft.yaml",
     "lr.a.b", r"lr is a value, not a mapping of keys"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_broken_recipe_is_one_line_exit_2(recipes_copy, case):
    _, rel, fn, stage, overrides, want_file, want_field, pattern = case
    if rel:
        edit(recipes_copy, rel, fn)
    out = run_cli("pipeline", "run", f"recipes/tiny/{stage}.yaml", *overrides, cwd=recipes_copy)
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    file, field, message = lines[0].split(": ", 2)
    assert (file, field) == (want_file, want_field), lines[0]
    assert re.search(pattern, message), lines[0]
    assert not (recipes_copy / "runs").exists()


def test_stages_of_one_run_must_agree_on_its_steps(recipes_copy):
    edit(recipes_copy, "recipes/tiny/pretrain-stage2.yaml", set_key("steps", "train_steps", value=200))
    out = run_cli("pipeline", "all", "recipes/tiny", cwd=recipes_copy)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith("recipes/tiny/pretrain-stage2.yaml: steps: must equal the steps of pretrain-stage1")
    assert not (recipes_copy / "runs").exists()


def test_pipeline_validates_every_stage_before_running_any(recipes_copy):
    edit(recipes_copy, "recipes/tiny/apo.yaml", set_key("beta", value=-1))
    out = run_cli("pipeline", "all", "recipes/tiny", cwd=recipes_copy)
    assert out.returncode == 2 and out.stderr.strip() == "recipes/tiny/apo.yaml: beta: must be > 0 (got -1)"
    assert not (recipes_copy / "runs").exists()


@pytest.mark.parametrize("args,needle", [
    (["show", "recipes/tiny/nope.yaml"], "recipes/tiny/nope.yaml: no such recipe file"),
    (["plan", "recipes/none"], "recipes/none: no such recipe directory"),
    (["show", "recipes/tiny/base.yaml"], "recipes/tiny/base.yaml: is not a stage"),
    (["show", "recipes/tiny/sft.yaml", "lr"], "override must look like key.path=value"),
])
def test_bad_paths_and_overrides(recipes_copy, args, needle):
    out = run_cli("recipes", *args, cwd=recipes_copy)
    assert out.returncode == 2 and needle in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_invalid_yaml_names_the_line(recipes_copy):
    (recipes_copy / "recipes/tiny/sft.yaml").write_text("kind: sft\nlr: [1\n")
    out = run_cli("recipes", "show", "recipes/tiny/sft.yaml", cwd=recipes_copy)
    assert out.returncode == 2
    assert out.stderr.startswith("recipes/tiny/sft.yaml: line ") and "invalid YAML" in out.stderr
