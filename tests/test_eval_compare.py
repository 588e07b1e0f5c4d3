"""make eval-compare on a run's eval folder (every published figure, ± stderr), the report card's eval table,
make eval DRY_RUN=1 (every spec of a published suite with vllm and its model_args), python -m eval suites."""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

N_FIGURES = 17 + (5 * 4 + 3 * 3) + 8 + 8  # the model card's SmolLM3-3B figures (tests/test_eval_published.py)
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _make(*args, env=None, timeout=300):
    """make with the install stamp taken as up to date (-o): the targets' own commands only."""
    return subprocess.run(["make", "-s", "-o", ".venv/.installed", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=str(REPO), **OFFLINE, **(env or {})))


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    """A real lighteval results folder: the mc suite (75 cloze items) on a random-init model (~10 s)."""
    from eval.run import run_eval
    from tests.eval_fixtures import make_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    run_eval(str(make_tiny_model(root / "model")), "mc", root / "out", save_details=False)
    return root / "out"


@pytest.mark.slow
def test_make_eval_compare_on_a_run_and_the_report_table(tiny_results, tmp_path):
    """runs/tiny/eval as the eval stage leaves it (one folder per label, its manifest's outputs): all 62 figures."""
    runs = tmp_path / "runs"
    ev = runs / "tiny" / "eval"
    labels = ["pretrain-stage1", "sft-think", "sft-no_think"]
    for label in labels:
        shutil.copytree(tiny_results, ev / label)
        meta = json.loads((ev / label / "eval_run.json").read_text())
        meta["system_prompt"] = {"sft-think": "/think", "sft-no_think": "/no_think"}.get(label)
        (ev / label / "eval_run.json").write_text(json.dumps(meta))
    (ev / "manifest.json").write_text(json.dumps({"stage": "eval", "status": "completed",
                                                  "outputs": labels + ["compare.md"], "metrics": {}}))
    proc = _make("eval-compare", "RECIPE=recipes/tiny", env={"SMOLLM3_RUNS": str(runs)})
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    summary = text[text.index("## Summary"):text.index("## pretrain-stage1")]
    rows = [r for r in summary.splitlines() if r.startswith("| ") and not r.startswith("| Benchmark")]
    published = [r for r in rows if not r.startswith("| mc_cloze")]
    assert len(published) == N_FIGURES and len(rows) == N_FIGURES + 1  # + mc_cloze, which has no published figure
    assert "| Benchmark | pretrain-stage1 | sft-think | sft-no_think | Published (SmolLM3-3B) | ± pretrain-stage1 |" \
        in text
    results = json.loads(next((tiny_results / "results").glob("results_*.json")).read_text())["results"]
    acc, se = 100 * results["mc_cloze|0"]["acc"], 100 * results["mc_cloze|0"]["acc_stderr"]
    assert f"| mc_cloze | {acc:.2f} | {acc:.2f} | {acc:.2f} | – | ±{se:.2f} | ±{se:.2f} | ±{se:.2f} |" in text
    # the /no_think figures: a reason per mode, the two other runs named with theirs
    bfcl = next(r for r in published if r.startswith("| BFCL /no_think"))
    assert "pretrain-stage1: a /no_think figure: this run's system prompt is none" in bfcl
    assert "sft-no_think: task not in this run's results (suite bfcl-no-think: bfcl:_average)" in bfcl
    assert "62 published figures: 0 measured (0 exact, 0 proxy), 62 not run (needs Hub datasets: 47, needs the " \
        "other /think or /no_think mode: 8, needs a GPU: 3, needs EvalPlus's data files: 2, needs a judge model: 1, " \
        "task not in the results: 1)" in text

    os.environ["SMOLLM3_RUNS"] = str(runs)  # the report card reads the same folders
    try:
        from pipeline.report import eval_table

        table = eval_table("tiny", json.loads((ev / "manifest.json").read_text()))
    finally:
        del os.environ["SMOLLM3_RUNS"]
    assert f"| mc_cloze | {acc:.2f} | {acc:.2f} | {acc:.2f} | – | ±{se:.2f} |" in table


@pytest.mark.slow
def test_make_eval_dry_run_prints_every_spec_with_vllm():
    from eval.specs import published_suites

    cmd = _make("-n", "eval", "MODEL=HuggingFaceTB/SmolLM3-3B-Base", "SUITE=smollm3-base", "DRY_RUN=1")
    assert cmd.returncode == 0, cmd.stderr
    line = cmd.stdout.replace("\\\n", " ").strip().splitlines()[-1]
    assert "--backend vllm" in line and line.endswith("--dry-run")
    proc = subprocess.run(shlex.split(line), cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO), **OFFLINE))  # a Hub id, offline: nothing loads
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = proc.stdout.strip().splitlines()[1:]
    suite = published_suites()["smollm3-base"]
    assert [p.split()[0] for p in printed] == [str(s) for s in suite["specs"]]
    args = "model_args=" + json.dumps(suite["model_args"], sort_keys=True)
    for spec, p in zip(suite["specs"], printed):
        assert f"lighteval={spec.task}|{spec.fewshot}" in p and "backend=vllm" in p and args in p, p
    assert '"tensor_parallel_size": 2' in args


@pytest.mark.slow
def test_suites_lists_each_published_spec_runnable_or_why(tmp_path):
    from eval.specs import published_suites

    sys.path.insert(0, str(REPO / "tests" / "fixtures" / "eval_datasets"))
    from hub_layout import write_hub_layout

    env = dict(os.environ, PYTHONPATH=str(REPO), **OFFLINE, SMOLLM3_EVAL_DATASETS=str(write_hub_layout(tmp_path)))
    proc = subprocess.run([sys.executable, "-m", "eval", "suites"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout[proc.stdout.index("On this machine"):].splitlines()
    assert lines[0].startswith("On this machine (GPU: ") and lines[0].endswith("Hub: no):")
    status = {tuple(ln.split(": ", 1)[0].split()): ln.split(": ", 1)[1] for ln in lines[1:]}
    suites = published_suites()
    assert set(status) == {(n, str(s)) for n in ("smollm3-base", "smollm3-instruct") for s in suites[n]["specs"]}
    assert status[("smollm3-base", "custom|hellaswag_cf|0|1")] == "runnable"  # its fixture copy is local
    assert status[("smollm3-base", "lighteval|belebele_fra_Latn_cf|0|1")] == \
        "needs the Hub dataset facebook/belebele (HF_HUB_OFFLINE is set)"
    assert "HUMANEVAL_OVERRIDE_PATH" in status[("smollm3-base", "custom|humaneval_plus|0|0")]
    assert all(v == "runnable" or v.startswith(("needs", "HF_HUB_OFFLINE", "missing", "custom")) or "judge" in v
               for v in status.values()), status
