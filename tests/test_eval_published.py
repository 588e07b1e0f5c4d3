"""Published numbers: the yaml files parse, match the reference tables, and feed the comparison table."""

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval import compare as cmp  # noqa: E402
from eval.published import (  # noqa: E402
    PublishedError,
    _check_table,
    figures,
    load_tables,
    measure,
    measure_with_stderr,
)

REFERENCE = Path(__file__).resolve().parent.parent / "eval" / "published" / "model_card_tables.md"


def _md_rows(text: str, heading: str) -> list[list[str]]:
    """Data rows of the first markdown table after `heading` (header and separator dropped)."""
    block = text[text.index(heading):]
    out = []
    for line in block.splitlines()[1:]:
        if line.startswith("|"):
            out.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif out:
            break
    return out[2:]


def _nums(cell: str) -> list:
    cell = re.sub(r"\([^)]*\)", "", cell)  # card remarks such as "(*tool-calling finetune)"
    return [None if p.strip() in ("-", "–", "") else float(p) for p in cell.split("/")]


def test_tables_load_and_have_sources():
    tables = load_tables()
    assert set(tables) == {"base_en", "base_multilingual", "instruct_no_think", "instruct_think"}
    for t in tables.values():
        for b in t["benchmarks"].values():
            assert b["source"].startswith("HuggingFaceTB/SmolLM3-3B model card")
            assert b["values"]["SmolLM3-3B"] is not None
    assert tables["base_en"]["benchmarks"]["hellaswag"]["values"]["SmolLM3-3B"] == 76.15
    assert tables["instruct_think"]["benchmarks"]["aime25"]["values"] == \
        {"SmolLM3-3B": 36.7, "Qwen3-1.7B": 30.7, "Qwen3-4B": 58.8}
    assert len(tables["base_multilingual"]["benchmarks"]) == 5 * 4 + 3 * 3


def test_tables_match_reference():
    text, tables = REFERENCE.read_text(), load_tables()
    checked = 0
    for heading, table in (("**Base, English", "base_en"), ("**Instruct, no extended thinking", "instruct_no_think"),
                           ("**Instruct, extended thinking", "instruct_think")):
        t = tables[table]
        by_row = {b["ref"]["row"]: b for b in t["benchmarks"].values()}
        ref_rows = _md_rows(text, heading)
        assert {r[0] for r in ref_rows} == set(by_row), table
        for r in ref_rows:
            values = _nums(r[1]) if len(r) == 2 else _nums("/".join(r[1:]))
            assert [by_row[r[0]]["values"][m] for m in t["models"]] == values, (table, r[0])
            checked += len(values)
    t = tables["base_multilingual"]
    by_cell = {(b["ref"]["row"], b["ref"]["column"]): b for b in t["benchmarks"].values()}
    ref_rows = _md_rows(text, "**Base, multilingual")
    header_line = text[text.index("| Lang |"):].splitlines()[0]
    columns = [c.strip() for c in header_line.strip().strip("|").split("|")][1:]
    assert len(columns) == 4 and ref_rows
    for r in ref_rows:
        for col, cell in zip(columns, r[1:]):
            if cell in ("–", "-"):
                assert (r[0], col) not in by_cell
                continue
            values = _nums(cell)[:5]  # the card has a stray 6th value in two rows (kept as a note)
            assert [by_cell[(r[0], col)]["values"][m] for m in t["models"]] == values, (r[0], col)
            checked += 5
    assert checked == 17 * 5 + 29 * 5 + 8 * 5 + 8 * 3


def test_bad_table_names_the_field(tmp_path):
    with pytest.raises(PublishedError, match=r"benchmarks\.x\.values\.M"):
        _check_table(tmp_path / "t.yaml", {"models": ["M"], "benchmarks": {
            "x": {"name": "X", "source": "s", "values": {"M": "high"}, "measured_by": {"tasks": [], "metrics": []}}}})


def test_measure_averages_supersets_and_directions():
    results = {"arc_cf:easy|0": {"acc_norm": 0.8, "acc": 0.7}, "arc_cf:challenge|0": {"acc_norm": 0.4},
               "flores200:fra_Latn-eng_Latn|5": {"chrf++": 60.0}, "flores200:eng_Latn-fra_Latn|5": {"chrf++": 50.0}}
    value, used = measure(results, {"tasks": ["arc_cf"], "metrics": ["acc_norm", "acc"], "scale": 100})
    assert value == pytest.approx(60.0) and len(used) == 2
    value, _ = measure(results, {"tasks": ["flores200:fra_Latn-eng_Latn", "flores200:eng_Latn-fra_Latn"],
                                 "metrics": ["chrf++"], "scale": 1})
    assert value == pytest.approx(55.0)
    assert measure(results, {"tasks": ["gsm8k"], "metrics": ["extractive_match"]}) == (None, [])


def _results_file(path: Path, results: dict, system_prompt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"config_general": {"model_config": {"system_prompt": system_prompt}},
                                "results": {k: {**v, **{f"{m}_stderr": 0.0 for m in v}} for k, v in results.items()}}))
    return path


def test_compare_single_and_summary(tmp_path):
    a = _results_file(tmp_path / "stage1" / "results" / "results_1.json",
                      {"gsm8k|5": {"extractive_match": 0.5}, "custom_probe|0": {"acc": 0.3}})
    b = _results_file(tmp_path / "stage2" / "results" / "results_2.json", {"gsm8k|5": {"extractive_match": 0.7}})
    one = cmp.compare([a])
    assert "| GSM8k (5-shot) | gsm8k\\|5 extractive_match | 50.00 | 67.63 | -17.63 | exact | ±0.00 | base_en |" in one
    assert "| custom_probe | custom_probe\\|0 acc | 30.00 | – | – | none |" in one
    two = cmp.compare([tmp_path / "stage1", tmp_path / "stage2"])
    assert "| Benchmark | stage1 | stage2 | Published (SmolLM3-3B) |" in two
    assert "| GSM8k (5-shot) | 50.00 | 70.00 | 67.63 |" in two
    assert "| custom_probe | 30.00 | – | – |" in two
    labelled = cmp.compare([a, b], labels=["S1", "S2"], model="Qwen3-4B-Base")
    assert "| GSM8k (5-shot) | 50.00 | 70.00 | 74.14 |" in labelled


def test_compare_picks_think_table_from_system_prompt(tmp_path):
    res = {"aime25|0": {"pass@k:k=1&n=1": 0.3}}
    think = cmp.compare([_results_file(tmp_path / "t" / "results_t.json", res, "/think")])
    no_think = cmp.compare([_results_file(tmp_path / "n" / "results_n.json", res, "/no_think")])
    assert "| 30.00 | 36.70 | -6.70 | exact |" in think
    assert "| 30.00 | 9.30 | +20.70 | exact |" in no_think


@pytest.mark.parametrize("content,field", [("not json", "not a JSON"), ('{"results": 3}', "field 'results'"),
                                           ('{"results": {"t|0": 1}}', "field 'results'")])
def test_bad_results_file(tmp_path, content, field):
    f = tmp_path / "results_bad.json"
    f.write_text(content)
    with pytest.raises(cmp.ResultsError, match=field):
        cmp.compare([f])


# The model card's SmolLM3-3B figures, counted by hand from model_card_tables.md: base English 17 rows, base
# multilingual 5 languages x 4 columns + 3 x 3 (no MLMM Hellaswag for Arabic, Chinese, Russian), 8 + 8 instruct.
N_FIGURES = 17 + (5 * 4 + 3 * 3) + 8 + 8


def test_every_figure_counted_and_measured_by_a_named_task():
    figs = figures()
    assert len(figs) == N_FIGURES == 62
    for table, key, b in figs:
        mb = b["measured_by"]
        assert mb["tasks"] and mb["metrics"] and mb["suite"], (table, key)
        assert isinstance(mb["needs"], list), (table, key)
    by = {(t, k): b["measured_by"] for t, k, b in figs}
    for mode in ("think", "no_think"):
        bfcl = by[(f"instruct_{mode}", "bfcl")]
        assert (bfcl["tasks"], bfcl["metrics"], bfcl["scale"]) == (["bfcl:_average"], ["acc"], 100)
        assert bfcl["suite"] == "bfcl-" + mode.replace("_", "-") and bfcl["needs"] == []
    assert by[("base_en", "humaneval_plus")]["tasks"] == ["humaneval_plus"]
    assert by[("base_en", "mbpp_plus")]["metrics"] == ["pass@1"]
    assert [by[("base_en", f"ruler_{n}")]["tasks"] for n in ("32k", "64k", "128k")] == \
        [["ruler_32768"], ["ruler_65536"], ["ruler_131072"]]


def test_english_base_rows_are_the_authors_custom_tasks():
    """Every English base row (but RULER) names a task of eval/tasks or eval/code_tasks, and its Hub dataset."""
    from eval.code_tasks import DATASETS
    from eval.tasks import build_task_configs

    configs = {c.name.split(":")[0]: c for c in build_task_configs(datasets_dir="")}
    for key, b in load_tables()["base_en"]["benchmarks"].items():
        mb = b["measured_by"]
        if key.startswith("ruler_"):
            continue
        [task] = mb["tasks"]
        assert task in configs or task in DATASETS, task
        if task in configs:
            metrics = {m.metric_name for m in configs[task].metrics}
            assert mb["metrics"][0] in metrics or set(mb["metrics"]) & metrics, (task, metrics)
            assert mb["needs"] == [f"the Hub dataset {configs[task].hf_repo}"], task


def test_stderr_of_a_mean_of_means():
    """arc_cf = mean(easy, challenge): se = sqrt(0.03^2 + 0.04^2) / 2 = 0.025 -> 2.5 points."""
    results = {"arc_cf:easy|0": {"acc_norm": 0.8}, "arc_cf:challenge|0": {"acc_norm": 0.4}}
    stderr = {"arc_cf:easy|0": {"acc_norm": 0.03}, "arc_cf:challenge|0": {"acc_norm": 0.04}}
    value, se, used = measure_with_stderr(results, {"tasks": ["arc_cf"], "metrics": ["acc_norm"]}, stderr)
    assert value == pytest.approx(60.0) and se == pytest.approx(2.5) and len(used) == 2
    assert measure_with_stderr(results, {"tasks": ["arc_cf"], "metrics": ["acc_norm"]})[1] is None


def test_compare_has_a_row_for_every_figure(tmp_path):
    """One row per published figure, measured ones with lighteval's stderr, the others 'not run' with a reason."""
    f = tmp_path / "run" / "results" / "results_1.json"
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"config_general": {"model_config": {"system_prompt": None}}, "results": {
        "gsm8k|5": {"extractive_match": 0.5, "extractive_match_stderr": 0.05},
        "bfcl:simple_python|0": {"acc": 0.5, "acc_stderr": 0.1}, "bfcl:_average|0": {"acc": 0.25, "acc_stderr": 0.02},
        "humaneval|0": {"pass@1": 0.125, "pass@1_stderr": 0.0125}}}))
    (tmp_path / "run" / "eval_run.json").write_text(json.dumps({"suite": "bfcl-think", "system_prompt": "/think"}))
    text = cmp.compare([f])
    table = text[text.index("| Benchmark |"):].splitlines()[2:]
    published = [r for r in table if "| none |" not in r]
    assert len(published) == N_FIGURES and len([r for r in table if "| none |" in r]) == 1  # bfcl:simple_python
    assert "| GSM8k (5-shot) | gsm8k\\|5 extractive_match | 50.00 | 67.63 | -17.63 | exact | ±5.00 |" in text
    assert "| BFCL /think | bfcl:_average\\|0 acc | 25.00 | 88.80 | -63.80 | exact | ±2.00 |" in text
    assert "| HumanEval+ | humaneval\\|0 pass@1 | 12.50 | 30.48 | -17.98 | proxy | ±1.25 |" in text
    assert "| BFCL /no_think |  | – | 92.30 | – | not run | – | instruct_no_think | a /no_think figure: this run's " \
           "system prompt is /think |" in text
    assert "needs a GPU (RULER 128k: 131,072-token prompts)" in text
    assert "needs a judge model" in text and "needs the Hub dataset facebook/belebele (suite smollm3-base)" in text
    assert "62 published figures: 3 measured (2 exact, 1 proxy), 59 not run" in text


def test_make_eval_compare_all_rows(tmp_path):
    """`make eval-compare RESULTS=...` on two real-layout runs: the summary has all 62 rows, stderr columns."""
    import subprocess

    for name, acc in (("stage1", 0.25), ("stage2", 0.5)):
        _results_file(tmp_path / name / "results" / f"results_{name}.json", {"mc_cloze|0": {"acc": acc}})
    repo = Path(__file__).resolve().parent.parent
    out = tmp_path / "compare.md"
    proc = subprocess.run(["make", "-s", "-o", ".venv/.installed", "eval-compare",
                           f"RESULTS={tmp_path / 'stage1'} {tmp_path / 'stage2'}", f"OUT={out}"],
                          cwd=repo, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    summary = text[text.index("## Summary"):text.index("## stage1")]
    rows = [r for r in summary.splitlines() if r.startswith("| ") and not r.startswith("| Benchmark")]
    assert len(rows) == N_FIGURES + 1
    assert "| Benchmark | stage1 | stage2 | Published (SmolLM3-3B) | ± stage1 | ± stage2 | Not run because |" in text
    assert "| mc_cloze | 25.00 | 50.00 | – | ±0.00 | ±0.00 |" in text


def _metric_names(config) -> set:
    out = set()
    for m in config.metrics:
        names = m.metric_name if isinstance(m.metric_name, list) else [m.metric_name]
        out.update(n for n in names if isinstance(n, str))
    return out


@pytest.mark.slow
def test_every_figure_names_tasks_that_exist_with_their_metric_and_dataset():
    """Each measured_by task (but the RULER placeholders) resolves to a task of eval/tasks, eval/code_tasks,
    eval/bfcl or lighteval 0.13 (scanned offline, ~25 s); the first listed metric it produces is in the list, and
    `needs` names the task's Hub dataset."""
    from eval import tasks
    from eval.bfcl import CATEGORIES
    from eval.code_tasks import DATASETS
    from eval.specs import builtin_task_configs, resolve

    custom = {c.name: c for c in getattr(tasks, "all_task_configs", tasks.build_task_configs)("")}
    builtin = builtin_task_configs(True, True)[0]
    for table, key, b in figures():
        mb = b["measured_by"]
        if key.startswith("ruler_"):
            assert mb["tasks"] == [f"ruler_{ {'32k': 32768, '64k': 65536, '128k': 131072}[key[6:]] }"]
            continue
        for task in mb["tasks"]:
            if task == "bfcl:_average":  # lighteval's mean of the bfcl:<category> tasks' acc
                assert len(CATEGORIES) == 4 and mb["metrics"] == ["acc"]
                continue
            if task in DATASETS:
                assert mb["metrics"] == ["pass@1"]
                continue
            names = resolve(task, custom) or resolve(task, builtin)
            assert names, (table, key, task)
            config = custom.get(names[0]) or builtin[names[0]]
            assert set(mb["metrics"]) & _metric_names(config), (table, key, task, _metric_names(config))
            assert f"the Hub dataset {config.hf_repo}" in mb["needs"], (table, key, config.hf_repo)
