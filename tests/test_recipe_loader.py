"""Inheritance, fragments, overrides and provenance of the recipe loader; the tiny twin of smollm3-3b."""
import json

import pytest
import yaml
from conftest import REPO, run_cli

from recipes.derive import PIPELINE, mixture_shares
from recipes.loader import Layers, load_mixture, load_recipe, load_stage, parse_override

TINY = REPO / "recipes" / "tiny"


@pytest.fixture(scope="module")
def tiny():
    return load_recipe(TINY)


@pytest.fixture(scope="module")
def big():
    return load_recipe(REPO / "recipes" / "smollm3-3b")


def test_tiny_has_every_stage_of_the_published_recipe(tiny, big):
    assert list(tiny) == list(big) == PIPELINE
    assert all(tiny[s].kind == big[s].kind for s in PIPELINE)


def test_tiny_keeps_the_architecture_family(tiny):
    m = tiny["pretrain-stage1"].model
    assert m.num_key_value_heads < m.num_attention_heads  # GQA
    assert m.num_hidden_layers % m.no_rope_layer_interval == 0 and m.no_rope_layer_interval == 4
    assert m.tie_word_embeddings and m.use_doc_masking


def test_tiny_inherits_what_it_does_not_override(tiny, big):
    t, b = tiny["pretrain-stage1"], big["pretrain-stage1"]
    assert t.optimizer.beta2 == b.optimizer.beta2 == 0.95
    assert t.optimizer.weight_decay_exclude == b.optimizer.weight_decay_exclude
    assert t.lr_schedule.decay_start == "pretrain-stage3" and t.lr_schedule.decay_style == "linear"
    assert [tiny[s].model.rope_theta for s in ("pretrain-stage3", "longctx-32k", "longctx-64k")] == [5e4, 2e6, 5e6]
    assert tiny["apo"].loss_type == "apo_zero" and tiny["apo"].beta == 0.05
    assert tiny["sft"].assistant_only_loss and tiny["sft"].chat_template == "smollm3"
    assert [(x.model, x.weight) for x in tiny["merge"].blend] == [("soup", 0.9), ("midtrain", 0.1)]


def test_tiny_exercises_both_parallel_paths_on_two_processes(tiny):
    pars = [(tiny[s].parallelism.dp, tiny[s].parallelism.tp) for s in PIPELINE if tiny[s].kind in ("pretrain",
                                                                                                   "longctx")]
    assert (2, 1) in pars and (1, 2) in pars
    assert all(dp * tp == 2 for dp, tp in pars)


def test_tiny_mixture_shares_follow_the_published_split():
    for name, web in (("stage1", 85), ("stage2", 75), ("stage3", 63)):
        shares = mixture_shares(load_mixture(TINY, name), merge_multilingual=True)
        assert abs(shares["web"] - web) < 1
    assert all(s.builtin and s.license for s in load_mixture(TINY, "longctx1").sources)


def test_show_prints_resolved_recipe_with_derived_values():
    out = run_cli("recipes", "show", TINY / "pretrain-stage2.yaml", "optimizer.lr=3e-4", "batch.micro_batch_size=2")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["stage"] == "pretrain-stage2" and d["name"] == "tiny"
    assert d["optimizer"]["lr"] == 3e-4  # YAML 1.1 would read "3e-4" as a string
    assert d["derived"]["grad_accum"] == 4096 // (2 * 2 * 256)
    assert (d["derived"]["first_step"], d["derived"]["last_step"]) == (81, 100)


def test_override_types():
    assert parse_override("a.b=3e-4") == (("a", "b"), 3e-4)
    assert parse_override("a=true") == (("a",), True)
    assert parse_override("a=[1, 2]") == (("a",), [1, 2])
    assert parse_override("a.b=text") == (("a", "b"), "text")


def test_a_stage_scoped_override_changes_that_stage_only(tiny):
    """`data:executor.kind=slurm` reaches the data stage and no other (the others have no `executor`, and would
    refuse it); a plain override reaches every stage."""
    got = load_recipe(TINY, ["data:executor.kind=slurm", "midtrain:resources.gpus_per_node=2", "seed=7"])
    assert got["data"].executor.kind == "slurm" and tiny["data"].executor.kind == "local"
    assert got["midtrain"].resources.gpus_per_node == 2 and got["sft"].resources.gpus_per_node == 1
    assert {r.seed for r in got.values()} == {7}
    rest = [s for s in PIPELINE if s not in ("data", "midtrain")]
    assert all(got[s].model_dump() == tiny[s].model_dump() | {"seed": 7} for s in rest)
    assert load_stage(TINY / "sft.yaml", ["midtrain:resources.gpus_per_node=2"]).resources.gpus_per_node == 1


@pytest.mark.parametrize("override", ["datta:executor.kind=slurm", "data:=1"])
def test_a_stage_scoped_override_naming_no_stage_is_one_line(override):
    out = run_cli("recipes", "check", TINY, override)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"<command line>: {override}: an override for one stage looks like <stage>:key.path=value (stages: "
        + ", ".join(PIPELINE) + ")"], out.stderr


def test_layers_merge_maps_and_replace_lists_with_provenance():
    layers = Layers()
    layers.add({"model": {"a": 1, "b": [1, 2]}, "x": 1}, "base.yaml")
    layers.add({"model": {"b": [3]}, "parent": "../p"}, "stage.yaml")
    assert layers.data == {"model": {"a": 1, "b": [3]}, "x": 1}
    assert layers.source_of(("model", "a"), "?") == "base.yaml"
    assert layers.source_of(("model", "b"), "?") == "stage.yaml"


def test_child_recipe_applies_on_top_of_parent_stage(tmp_path):
    """A grandchild recipe inherits through two levels and can override a fragment value."""
    child = tmp_path / "mine"
    child.mkdir()
    (child / "base.yaml").write_text(yaml.safe_dump({"parent": str(TINY), "name": "mine"}))
    (child / "_pretrain.yaml").write_text(yaml.safe_dump({"optimizer": {"lr": 1e-4}}))
    (child / "pretrain-stage3.yaml").write_text("")
    r = load_stage(child / "pretrain-stage3.yaml")
    assert (r.name, r.optimizer.lr, r.model.hidden_size, r.data.mixture.name) == ("mine", 1e-4, 128, "stage3")


def test_check_command_validates_all_stages():
    out = run_cli("recipes", "check", TINY)
    assert out.returncode == 0 and "13 stages valid" in out.stdout
