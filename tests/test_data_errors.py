"""Bad input to the data stage, the sampler and the report: one line naming the file, exit 2, nothing written."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.data_fixtures import cli, copy_data, tiny_data  # noqa: F401


def one_line_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------------ tokenizer vocabulary
def test_tokenizer_vocab_must_match_the_model(tmp_path):
    runs = tmp_path / "runs"
    proc = cli("pipeline", "run", "recipes/tiny/data.yaml", "model.vocab_size=8192", runs=runs)
    line = one_line_error(proc, "tokenizer.build_vocab_size", "8192")
    assert line.startswith("recipes/tiny/base.yaml")
    assert not runs.exists()


def test_existing_tokenizer_with_another_vocab_is_refused(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    tok = tiny_data["data"] / "tokenizer"
    proc = cli("pipeline", "run", "recipes/tiny/data.yaml", "tokenizer.kind=local", f"tokenizer.name_or_path={tok}",
               "model.vocab_size=2048", runs=runs)
    one_line_error(proc, "model.vocab_size", "4,096", "2,048", "tokenizer.json")
    assert not runs.exists()


# ---------------------------------------------------------------------------------- missing sources
@pytest.mark.parametrize("source, needle", [
    ("{name: extra, category: math, weight: 0.1, builtin: no_such_corpus}", "sources.3.builtin: unknown builtin"),
    ("{name: extra, category: math, weight: 0.1, path: empty_dir}", "sources.3.path: missing source: no .jsonl"),
    ("{name: extra, category: math, weight: 0.1, path: not_there}", "sources.3.path"),
    ("{name: extra, category: math, weight: 0.1}", "sources.3.dataset: missing source"),
])
def test_missing_source(recipes_copy, source, needle):
    mixture = recipes_copy / "recipes" / "tiny" / "mixtures" / "stage1.yaml"
    (mixture.parent / "empty_dir").mkdir()
    mixture.write_text(mixture.read_text() + f"  - {source}\n")
    proc = cli("pipeline", "run", "recipes/tiny/data.yaml", cwd=recipes_copy, runs=recipes_copy / "runs")
    one_line_error(proc, "recipes/tiny/mixtures/stage1.yaml", needle)
    assert not (recipes_copy / "runs").exists()


def test_sampler_refuses_a_missing_folder(tmp_path):
    from pretrain.data.mixture import MixtureSampler
    from recipes.loader import RecipeError

    with pytest.raises(RecipeError, match="missing tokenized source"):
        MixtureSampler([tmp_path / "nope"], [1.0], 256)


# ------------------------------------------------------------------------------ damaged data on disk
def test_truncated_ds_file(tiny_data, tmp_path):
    runs = copy_data(tiny_data, tmp_path)
    ds = runs / "tiny" / "data" / "prose" / "000_prose.ds"
    with open(ds, "r+b") as f:
        f.truncate(ds.stat().st_size - 4)
    # the mixture report, the sampler and a rerun of the stage all refuse it
    one_line_error(cli("pretrain.data.report", "recipes/tiny", runs=runs), "000_prose.ds", "truncated")
    one_line_error(cli("pipeline", "run", "recipes/tiny/data.yaml", runs=runs), "000_prose.ds", "truncated")
    from pretrain.data.mixture import MixtureSampler
    from recipes.loader import RecipeError

    with pytest.raises(RecipeError, match="truncated"):
        MixtureSampler([ds.parent], [1.0], 256)


@pytest.mark.parametrize("damage, needle", [
    ("drop_last", "does not match its data"),
    ("swap", "does not match its data"),
    ("odd_bytes", "truncated"),
])
def test_index_that_does_not_match_its_data(tiny_data, tmp_path, damage, needle):
    runs = copy_data(tiny_data, tmp_path)
    index = runs / "tiny" / "data" / "math" / "000_math.ds.index"
    ends = np.fromfile(index, dtype=np.uint64)
    if damage == "drop_last":
        ends[:-1].tofile(index)
    elif damage == "swap":
        ends[[3, 4]] = ends[[4, 3]]
        ends.tofile(index)
    else:
        index.write_bytes(index.read_bytes() + b"\0\0\0")
    one_line_error(cli("pretrain.data.report", "recipes/tiny", runs=runs), "000_math.ds.index", needle)


def test_documents_not_ending_with_eos_are_detected(tiny_data, tmp_path):
    """An index shifted by one token (same length, still increasing) no longer points at the eos tokens."""
    from pretrain.data.mixture import MixtureSampler
    from recipes.loader import RecipeError

    runs = copy_data(tiny_data, tmp_path)
    index = runs / "tiny" / "data" / "math" / "000_math.ds.index"
    ends = np.fromfile(index, dtype=np.uint64)
    ends[:-1] -= 1
    ends.tofile(index)
    with pytest.raises(RecipeError, match="does not end with the eos token"):
        MixtureSampler([index.parent], [1.0], 256, eos_id=1)


def test_damaged_output_is_not_half_rewritten(tiny_data, tmp_path):
    """A refused rerun leaves the outputs as they were (nothing half-written)."""
    runs = copy_data(tiny_data, tmp_path)
    ds = runs / "tiny" / "data" / "code" / "000_code.ds"
    with open(ds, "r+b") as f:
        f.truncate(100)
    before = sorted((p, p.stat().st_size) for p in (runs / "tiny" / "data").rglob("*") if p.is_file())
    proc = cli("pipeline", "run", "recipes/tiny/data.yaml", runs=runs)
    one_line_error(proc, "000_code.ds")
    after = sorted((p, p.stat().st_size) for p in (runs / "tiny" / "data").rglob("*") if p.is_file())
    assert before == after
    shutil.rmtree(runs)


def test_tokenizer_eos_id_must_match_the_recipe(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    tok = tiny_data["data"] / "tokenizer"
    proc = cli("pipeline", "run", "recipes/tiny/data.yaml", "tokenizer.kind=local", f"tokenizer.name_or_path={tok}",
               "tokenizer.eos_token_id=7", runs=runs)
    one_line_error(proc, "tokenizer.eos_token_id", "(got 7)")
    assert not runs.exists()
