"""The smollm3-3b chain's Hub paths, offline: a Hub cache built here (HF_HUB_OFFLINE=1, HF_HUB_CACHE) holds a
stand-in tokenizer (the tiny run's own, as a Hub repository at a pinned commit) and a stand-in model.

- a nanotron stage with `tokenizer.kind: hub` writes an hf/ folder WITH the tokenizer (it used to ship none, so
  mid-training stopped at AutoTokenizer.from_pretrained(longctx-64k/hf));
- a TRL stage starts from `init: {from: <Hub id>, revision: <commit>}` and from that hf/ folder;
- a Hub tokenizer the cache lacks is one line naming the recipe field, exit 2.
"""
import os
import shutil
from pathlib import Path

import pytest
from conftest import REPO, hub_cache

from recipes.loader import RecipeError, load_stage

COMMIT = "1f" * 20
HUB_TOKENIZER = ["tokenizer.kind=hub", "tokenizer.name_or_path=smollm3-test/tokenizer", f"tokenizer.revision={COMMIT}"]


@pytest.fixture
def hub(tmp_path, data_runs, monkeypatch):
    """A runs/ copy of the tiny data and a Hub cache with the tiny tokenizer as smollm3-test/tokenizer."""
    runs = tmp_path / "runs"
    shutil.copytree(data_runs / "tiny" / "data", runs / "tiny" / "data", symlinks=True)
    cache = tmp_path / "hub"
    hub_cache(cache, "smollm3-test/tokenizer", runs / "tiny" / "data" / "tokenizer", COMMIT)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))  # the stages' processes
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # this one (read at import into constants)
    monkeypatch.setenv("SMOLLM3_RUNS", str(runs))
    return {"runs": runs, "cache": cache}


def test_a_hub_tokenizer_resolves_from_the_cache_or_is_one_line(hub):
    from pretrain.data.tokenizer import hub_folder
    from pretrain.train_checks import token_ids

    r = load_stage(REPO / "recipes/tiny/pretrain-stage1.yaml", HUB_TOKENIZER)
    folder = hub_folder(r)
    assert folder == hub["cache"] / "models--smollm3-test--tokenizer" / "snapshots" / COMMIT
    from pretrain.data.tokenizer import datatrove_name

    assert datatrove_name(r) == str(folder / "tokenizer.json")  # the data stage reads the same cached revision
    ids, path = token_ids(r)
    assert path == str(folder) and ids["eos"] is not None  # the ids read from the Hub tokenizer's own config

    missing = load_stage(REPO / "recipes/tiny/pretrain-stage1.yaml",
                         HUB_TOKENIZER[:2] + ["tokenizer.revision=" + "ab" * 20])
    with pytest.raises(RecipeError) as e:
        token_ids(missing)
    assert e.value.field == "tokenizer.name_or_path" and "smollm3-test/tokenizer at revision abab" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_hub_tokenizer_ships_in_hf_and_a_trl_stage_starts_from_a_hub_model(hub, tmp_path):
    """pretrain-stage1 with the Hub tokenizer -> its hf/ folder has the tokenizer; that folder, published as a Hub
    model at a commit, starts mid-training through init.from + revision (from_pretrained, offline)."""
    from tests.nanotron_stages import MID_FAST, RUN, stage

    runs = hub["runs"]
    stage(runs, "pretrain-stage1", *RUN, *HUB_TOKENIZER)
    hf = runs / "tiny" / "pretrain-stage1" / "hf"
    source = runs / "tiny" / "data" / "tokenizer"
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (hf / name).is_file(), sorted(os.listdir(hf))
    from transformers import AutoTokenizer

    ours, theirs = AutoTokenizer.from_pretrained(hf), AutoTokenizer.from_pretrained(source)
    text = "<|im_start|>user\nA Hub tokenizer, shipped.<|im_end|>"
    assert ours(text)["input_ids"] == theirs(text)["input_ids"] and len(ours) == len(theirs)

    model_commit = "2e" * 20
    hub_cache(hub["cache"], "smollm3-test/tiny-base", hf, model_commit)
    out = stage(runs, "midtrain", *MID_FAST, f"init={{from: smollm3-test/tiny-base, revision: {model_commit}}}")
    manifest = (runs / "tiny" / "midtrain" / "manifest.json").read_text()
    assert '"status": "completed"' in manifest, out.stdout[-2000:]
    assert (runs / "tiny" / "midtrain" / "hf" / "tokenizer.json").is_file()
    assert "smollm3-test/tiny-base" in manifest and model_commit in manifest
    assert Path(hub["cache"], "models--smollm3-test--tiny-base").is_dir()
