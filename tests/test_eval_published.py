"""Published numbers: the yaml files parse, match the reference tables, and feed the comparison table."""

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval import compare as cmp  # noqa: E402
from eval.published import PublishedError, _check_table, load_tables, measure  # noqa: E402

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
    assert "| GSM8k (5-shot) | gsm8k\\|5 extractive_match | 50.00 | 67.63 | -17.63 | exact |" in one
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
