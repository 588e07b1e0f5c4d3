"""The runner: every stage kind the recipes describe has a stage module."""
from pipeline.stages import stage_module


def test_every_kind_has_a_stage_module():
    from recipes.loader import KINDS

    for kind in KINDS:
        assert callable(stage_module(kind).run), kind
