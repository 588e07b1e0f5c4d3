"""`python -m eval`: bad input exits 2 with one stderr line; end to end on a tiny random SmolLM3 (slow)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def run_eval_cli(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "eval", *map(str, args)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-1500:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tests.eval_fixtures import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-smollm3")


def test_missing_model_folder(tmp_path):
    assert_one_line_error(run_eval_cli("run", "--model", tmp_path / "nope", "--suite", "tiny", "--output-dir",
                                       tmp_path),
                          str(tmp_path / "nope"), "not found")


def test_folder_without_config(tmp_path):
    assert_one_line_error(run_eval_cli("run", "--model", tmp_path, "--suite", "tiny", "--output-dir", tmp_path / "o"),
                          "config.json")


def test_hub_id_offline(tmp_path):
    assert_one_line_error(run_eval_cli("run", "--model", "HuggingFaceTB/SmolLM3-3B", "--suite", "tiny",
                                       "--output-dir", tmp_path), "HF_HUB_OFFLINE")


def test_unknown_suite(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    assert_one_line_error(run_eval_cli("run", "--model", tmp_path / "m", "--suite", "nope", "--output-dir", tmp_path),
                          "unknown suite 'nope'", "tiny", "smollm3-base")


def test_bad_args_are_one_line():
    assert_one_line_error(run_eval_cli("run", "--model", "x"), "--suite")
    assert_one_line_error(run_eval_cli("run", "--model", "x", "--suite", "tiny", "--output-dir", "o",
                                       "--context-lengths", "abc"), "--context-lengths")


def test_bad_results_files(tmp_path):
    bad = tmp_path / "results_bad.json"
    bad.write_text('{"config_general": {}}')
    assert_one_line_error(run_eval_cli("compare", bad), str(bad), "results")
    bad.write_text("{")
    assert_one_line_error(run_eval_cli("compare", bad), str(bad), "JSON")
    assert_one_line_error(run_eval_cli("compare", tmp_path / "missing.json"), "missing.json", "not found")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_eval_cli("compare", tmp_path / "empty"), "empty", "no lighteval results")


@pytest.mark.slow
def test_tiny_suite_end_to_end(tiny_model, tmp_path):
    """The tiny suite runs through lighteval on a random-init model; compare reads the real result files."""
    out = tmp_path / "stage-tiny"
    proc = run_eval_cli("run", "--model", tiny_model, "--suite", "tiny", "--output-dir", out,
                        "--system-prompt", "/no_think")
    assert proc.returncode == 0, proc.stderr[-3000:]
    scores = json.loads(proc.stdout[proc.stdout.index("{"):])
    ruler = {f"ruler_512:{k}|0" for k in ("niah_single_1", "niah_single_2", "niah_multivalue", "fwe")}
    assert set(scores) == {"mc_cloze|0", "math_word|5", "humaneval|0", "ruler_512:_average|0"} | ruler
    assert all(0.0 <= v <= 1.0 for metrics in scores.values() for v in metrics.values())
    assert scores["humaneval|0"]["pass@1"] == 0.0 and scores["ruler_512:niah_single_1|0"]["acc"] == 0.0
    mc = scores["mc_cloze|0"]  # 160 cloze items: a random-init model is at chance (0.25)
    assert 0.1 <= mc["acc"] <= 0.4 and 0.1 <= mc["acc_norm"] <= 0.4
    results = list((out / "results").glob("results_*.json"))
    assert len(results) == 1
    details = {p.name.split("_20")[0] for p in (out / "details").rglob("details_*.parquet")}
    assert details == {f"details_{t}" for t in scores if "_average" not in t}  # lighteval's mean of ruler_512:*
    data = json.loads(results[0].read_text())
    assert data["config_general"]["model_config"]["system_prompt"] == "/no_think"
    assert {k: v["acc"] for k, v in data["results"].items() if k == "mc_cloze|0"} == {"mc_cloze|0": mc["acc"]}
    assert sorted(os.listdir(tiny_model)) == sorted(["config.json", "generation_config.json", "model.safetensors",
                                                     "tokenizer.json", "tokenizer_config.json"])  # no cache in there

    # The same real file with one task renamed to a published one, as a second "stage".
    data["results"]["hellaswag_cf|0"] = data["results"].pop("mc_cloze|0")
    renamed = tmp_path / "stage-renamed" / "results_x.json"
    renamed.parent.mkdir()
    renamed.write_text(json.dumps(data))

    md = tmp_path / "compare.md"
    proc = run_eval_cli("compare", out, renamed, "-o", md)
    assert proc.returncode == 0, proc.stderr
    text = md.read_text()
    acc = 100 * mc["acc_norm"]
    assert "| Benchmark | stage-tiny | stage-renamed | Published (SmolLM3-3B) |" in text
    assert f"| HellaSwag | – | {acc:.2f} | 76.15 |" in text
    assert f"| mc_cloze | {100 * mc['acc']:.2f} | – | – |" in text
    assert "| HumanEval+ | humaneval\\|0 pass@1 | 0.00 | 30.48 | -30.48 | proxy |" in text
    assert f"| HellaSwag | hellaswag_cf\\|0 acc_norm | {acc:.2f} | 76.15 | {acc - 76.15:+.2f} | exact |" in text
    shutil.rmtree(out / "details")


def test_published_suite_needs_hub(tiny_model, tmp_path):
    assert_one_line_error(run_eval_cli("run", "--model", tiny_model, "--suite", "smollm3-instruct-think",
                                       "--output-dir", tmp_path), "smollm3-instruct-think", "HF_HUB_OFFLINE")
