"""The runner: stages not built yet are named in the user's terms, and the pipeline goes on without them."""
import pytest
from conftest import REPO, run_cli

from pipeline.stages import NOT_BUILT, stage_module


@pytest.mark.parametrize("stage, words", [("apo", "APO preference alignment (TRL) is not built yet"),
                                          ("merge", "model merging (mergekit) is not built yet")])
def test_a_stage_not_built_yet_says_what_is_missing(tmp_path, stage, words):
    out = run_cli("pipeline", "run", REPO / f"recipes/tiny/{stage}.yaml", cwd=tmp_path)
    assert out.returncode == 3 and words in out.stderr and "issue" not in out.stderr.lower(), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()


def test_every_kind_has_a_module_or_a_reason():
    from recipes.loader import KINDS

    for kind in KINDS:
        assert (stage_module(kind) is None) == (kind in NOT_BUILT), kind
        assert "issue" not in NOT_BUILT.get(kind, "").lower()
