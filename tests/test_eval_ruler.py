"""RULER through lm-evaluation-harness 0.4.13's generators and scorer (eval/ruler.py), offline.

Usage: .venv/bin/python -m pytest tests/test_eval_ruler.py [-m "not slow"]
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from eval import ruler  # noqa: E402
from eval.offline_data import OFFLINE_SUITES, RULER_ALL, ruler_tasks  # noqa: E402

SENTENCE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from tests.eval_fixtures import make_tiny_tokenizer

    return make_tiny_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def items(tokenizer):
    """One item of every RULER task used, at 2048 tokens (every kind fits there)."""
    return {kind: ruler.ruler_items(kind, 2048, 1, tokenizer)[0] for kind in RULER_ALL}


def test_every_kind_scores_right_and_wrong_answers_with_rulers_scorer(items):
    for kind, item in items.items():
        assert item["outputs"] and all(o in item["input"] for o in item["outputs"]), kind  # the needles are in it
        right = " " + ", ".join(item["outputs"]) + "."
        assert ruler.score(right, item["outputs"]) == 1.0, kind
        assert ruler.score(" I cannot find it.", item["outputs"]) == 0.0, kind
    # string_match_all: the share of the answers present, case-insensitive, after stripping control characters
    assert ruler.score("\x01 The numbers are 1234567\n", ["1234567", "7654321"]) == 0.5
    assert ruler.score("uuid ABC-def", ["abc-DEF"]) == 1.0


def test_items_are_rulers_prompts(items):
    niah = items["niah_single_1"]
    assert niah["input"].startswith("A special magic number is hidden within the following text.")
    assert SENTENCE in niah["input"] and niah["input"].endswith("mentioned in the provided text?")
    assert niah["gen_prefix"].startswith("The special magic number for ")
    assert ruler.prompt_of(niah) == niah["input"] + " " + niah["gen_prefix"]
    assert len(items["niah_multivalue"]["outputs"]) == 4 and len(items["cwe"]["outputs"]) == 10
    assert len(items["fwe"]["outputs"]) == 3 and len(items["vt"]["outputs"]) == 5
    assert items["vt"]["input"].count("VAR ") >= 2 * 5  # the one-shot example's chain and the item's


def test_lengths_are_the_requested_lengths_in_the_tokenizer(tokenizer):
    """RULER sizes an item to prompt + answer budget <= L in the given tokenizer, filling the haystack in its own
    steps (repeat haystack below 4096 tokens: 5 sentences): within one step of L."""
    count = lambda s: len(tokenizer(s).input_ids)  # noqa: E731 - RULER counts with tokenizer(text).input_ids
    step = count("\n".join([SENTENCE] * 5)) + 8  # + the digits of the answer RULER's sizing loop appends
    for length in (512, 1024, 2048):
        for item in ruler.ruler_items("niah_single_1", length, 3, tokenizer):
            assert item["max_length"] == length
            assert item["length"] == count(item["input"]) + 128 <= length
            assert length - item["length"] <= step, (length, item["length"], step)
    for kind in ("vt", "cwe", "fwe"):  # their prompt includes the answer prefix (gen_prefix)
        for item in ruler.ruler_items(kind, 2048, 2, tokenizer):
            assert count(ruler.prompt_of(item)) + ruler.ANSWER_TOKENS[kind] <= 2048 + 2, kind
    with pytest.raises(ValueError):
        ruler.ruler_items("vt", 512, 1, tokenizer)


def test_items_are_deterministic_and_written_once(tmp_path, tokenizer):
    a = ruler.write_ruler_data(tmp_path / "a", tokenizer, [512], ["niah_single_2", "fwe"], 2)
    b = ruler.write_ruler_data(tmp_path / "b", tokenizer, [512], ["niah_single_2", "fwe"], 2)
    for x, y in zip(a, b):
        assert (x / "test.jsonl").read_bytes() == (y / "test.jsonl").read_bytes()
    stamp = (a[0] / "test.jsonl").stat().st_mtime_ns
    ruler.write_ruler_data(tmp_path / "a", tokenizer, [512], ["niah_single_2"], 2)
    assert (a[0] / "test.jsonl").stat().st_mtime_ns == stamp  # same tokenizer, n, seed: kept


def test_suites_place_each_kind_where_it_fits():
    assert ruler_tasks("tiny-ruler", (512, 1024, 2048)) == [
        (512, "niah_single_1"), (512, "niah_single_2"), (512, "niah_multivalue"), (512, "fwe"),
        (1024, "niah_single_1"), (1024, "niah_single_2"), (1024, "niah_multivalue"), (1024, "fwe"),
        (2048, "niah_single_1"), (2048, "niah_single_2"), (2048, "niah_multivalue"), (2048, "vt"), (2048, "cwe"),
        (2048, "fwe")]
    assert len(ruler_tasks("ruler", (32768, 65536, 131072))) == 3 * 11
    assert OFFLINE_SUITES["ruler"]["tasks"]["ruler"][2] == 500  # lm-eval's num_samples


def test_tiny_model_end_to_end(tmp_path):
    """run_eval on a random-init model: one item per kind at 512 tokens, scored with RULER's metric (acc)."""
    from eval.run import run_eval
    from tests.eval_fixtures import make_tiny_model

    model = make_tiny_model(tmp_path / "model")
    scores = run_eval(str(model), "tiny-ruler", tmp_path / "out", context_lengths=(512,))
    tasks = {f"ruler_512:{k}|0" for k in ("niah_single_1", "niah_single_2", "niah_multivalue", "fwe")}
    assert tasks <= set(scores) and set(scores) - tasks == {"ruler_512:_average|0"}
    assert all(0.0 <= scores[t]["acc"] <= 1.0 for t in tasks)
    [results] = (tmp_path / "out" / "results").rglob("results_*.json")
    res = json.loads(results.read_text())["results"]
    assert all(res[t]["acc"] == scores[t]["acc"] for t in tasks)  # (no acc_stderr: lighteval needs 2 items)


@pytest.mark.slow
def test_lazy_keys_equal_prepare_niahs_list():
    """AdjNounWords equals the list prepare_niah builds at import (imported here as shipped: ~15 s, ~1 GB)."""
    code = """
import nltk
nltk.download = lambda *a, **k: False
from lm_eval.tasks.ruler import prepare_niah
from eval.ruler import AdjNounWords
lazy = AdjNounWords(prepare_niah.adjs, prepare_niah.nouns)
print(len(lazy) == len(prepare_niah.WORDS), list(lazy) == prepare_niah.WORDS)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["True", "True"]
