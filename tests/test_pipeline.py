"""The runner: every stage kind the recipes describe has a stage module."""
from pipeline.kinds import stage_module


def test_every_kind_has_a_stage_module():
    from recipes.loader import KINDS

    for kind in KINDS:
        assert callable(stage_module(kind).run), kind


def test_a_bad_override_stops_the_whole_pipeline_before_any_work(tmp_path):
    """`make smoke OVERRIDES="model.num_attention_heads=7"`: every stage is validated first; one line, exit 2,
    nothing written."""
    from conftest import REPO, run_cli

    out = run_cli("pipeline", "all", REPO / "recipes" / "tiny", "model.num_attention_heads=7", cwd=tmp_path)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert out.stderr.strip().splitlines() == [
        f"{REPO / 'recipes' / 'tiny' / 'base.yaml'}: model.hidden_size: must be divisible by model.num_attention_heads "
        "(7) (got 128) [with the overrides model.num_attention_heads=7]"], out.stderr
    assert "===" not in out.stdout and list(tmp_path.iterdir()) == []
