"""Startup at 11T tokens: a tokenized file is fully checked (every document end, every last token) once, by one
process, and the result is cached beside it (`<file>.ds.checked`, keyed by sizes and modification times); every
rank and every later start reads the cache. Observed on real files, through the real stages."""
import json
import os
import shutil

import numpy as np
import pytest

from pretrain.data.mixture import CHECKED_SUFFIX, TokenizedFolder
from recipes.loader import RecipeError
from tests.data_fixtures import copy_data, tiny_data  # noqa: F401 (fixture)


def test_a_full_check_is_cached_and_a_changed_file_is_checked_again(tiny_data, tmp_path):  # noqa: F811
    runs = copy_data(tiny_data, tmp_path)
    folder = runs / "tiny" / "data" / "code"
    for f in folder.glob("*" + CHECKED_SUFFIX):
        f.unlink()  # the data stage's own check cached them: start from none
    first = TokenizedFolder(folder, eos_id=1)
    assert first.checked == first.files and first.cached == []
    record = json.loads((folder / ("000_code.ds" + CHECKED_SUFFIX)).read_text())
    assert record["checked_by"].endswith(f":{os.getpid()}") and record["stamp"]["eos_id"] == 1
    again = TokenizedFolder(folder, eos_id=1)
    assert again.checked == [] and again.cached == first.files  # read from the cache, nothing re-read
    with pytest.raises(RecipeError, match=r"does not end with the eos token \(2\)"):
        TokenizedFolder(folder, eos_id=2)  # the cache is keyed by the eos id too: checked again, and refused

    # the index rewritten with two document ends swapped: same size, last end unchanged (the O(1) checks pass),
    # but a new modification time invalidates the cache and the full check refuses it
    index = folder / "000_code.ds.index"
    ends = np.fromfile(index, dtype="<u8")
    ends[[1, 2]] = ends[[2, 1]]
    ends.tofile(index)
    with pytest.raises(RecipeError, match="document ends must increase strictly"):
        TokenizedFolder(folder, eos_id=1)


@pytest.mark.slow
def test_the_launcher_checks_once_and_the_ranks_read_the_cache(tiny_data, tmp_path):  # noqa: F811
    """`python -m pipeline run` of a nanotron stage: the launching process checks the data before torchrun;
    the two ranks (and a second start) find the cache and leave it as it was."""
    from tests.nanotron_stages import RUN, stage

    runs = copy_data(tiny_data, tmp_path)
    data = runs / "tiny" / "data"
    for f in data.rglob("*" + CHECKED_SUFFIX):
        f.unlink()
    stage(runs, "pretrain-stage1", *RUN)
    records = {f: (f.stat().st_mtime_ns, json.loads(f.read_text())["checked_by"])
               for f in data.rglob("*" + CHECKED_SUFFIX)}
    from conftest import REPO

    from recipes.loader import load_stage

    sources = {s.name for s in load_stage(REPO / "recipes/tiny/pretrain-stage1.yaml").data.mixture.sources}
    assert {f.parent.name for f in records} == sources, records  # the stage-1 mixture's sources, each checked
    assert len({by for _, by in records.values()}) == 1  # by one process: the launcher
    shutil.rmtree(runs / "tiny" / "pretrain-stage1")
    stage(runs, "pretrain-stage1", *RUN)
    assert {f: (f.stat().st_mtime_ns, json.loads(f.read_text())["checked_by"])
            for f in data.rglob("*" + CHECKED_SUFFIX)} == records  # no rank, no later start re-checked
