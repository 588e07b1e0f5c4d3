"""The mixture report: published category shares without data, tokens and epochs with the tiny data."""
from __future__ import annotations

import json
import re

import pytest

from tests.data_fixtures import REPO, cli, read_folder, tiny_data  # noqa: F401

# Category shares of the authors' nanotron configs, normalized (docs: smollm3-recipe.md section 4):
# web = English web + multilingual; StackExchange counts as code.
PUBLISHED = {
    "pretrain-stage1": {"web+multilingual": 84.4, "multilingual": 12.0, "code": 12.9, "math": 2.7},
    "pretrain-stage2": {"web+multilingual": 76.4, "multilingual": 11.7, "code": 14.5, "math": 9.1},
    "pretrain-stage3": {"web+multilingual": 63.4, "multilingual": 13.1, "code": 23.3, "math": 13.1, "reasoning": 0.1},
    "longctx-32k": {"web+multilingual": 51.8, "multilingual": 11.8, "code": 22.8, "math": 15.3, "reasoning": 10.1},
    "longctx-64k": {"web+multilingual": 51.4, "multilingual": 11.0, "code": 22.0, "math": 13.5, "reasoning": 13.1},
}


def parse_markdown(text: str) -> dict:
    """stage -> {"shares": {category: %}, "rows": [[cells]]} from the report's markdown tables."""
    stages, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"## (\S+) \(mixture", line)
        if m:
            cur = stages.setdefault(m.group(1), {"shares": {}, "rows": []})
        elif cur is not None and line.startswith("| ") and not line.startswith(("| source", "| category")):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 2:
                cur["shares"][cells[0]] = float(cells[1])
            else:
                cur["rows"].append(cells)
        elif line.startswith("## All stages"):
            cur = None
    return stages


def test_published_recipe_category_shares_without_data(tmp_path):
    out = tmp_path / "report.md"
    proc = cli("pretrain.data.report", "recipes/smollm3-3b", "-o", out, runs=tmp_path / "runs")
    assert proc.returncode == 0, proc.stderr[-2000:]
    stages = parse_markdown(out.read_text())
    assert list(stages) == list(PUBLISHED)
    for stage, expected in PUBLISHED.items():
        for cat, pct in expected.items():
            assert stages[stage]["shares"][cat] == pytest.approx(pct, abs=0.5), (stage, cat)
        assert all(row[4] == "unknown" and row[6] == "unknown" for row in stages[stage]["rows"])
    assert len(stages["pretrain-stage1"]["rows"]) == 41 and len(stages["longctx-64k"]["rows"]) == 57
    assert not (tmp_path / "runs").exists()


def test_tiny_report_tokens_and_epochs(tiny_data):
    from recipes.derive import plan_row
    from recipes.loader import load_stage

    proc = cli("pretrain.data.report", "recipes/tiny", "--json", runs=tiny_data["runs"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    rep = json.loads(proc.stdout)
    available = {n: len(read_folder(tiny_data["data"] / n)[0]) for n in ("prose", "code", "math", "reasoning")}
    for st in rep["stages"]:
        recipe = load_stage(REPO / "recipes" / "tiny" / f"{st['stage']}.yaml")
        planned = plan_row(recipe, mfu=0.4, peak_tflops=None)["tokens"]
        assert st["tokens"] == planned == recipe.batch.global_batch_tokens * st["steps"]
        assert sum(s["tokens_drawn"] for s in st["sources"]) == pytest.approx(planned)
        for s in st["sources"]:
            assert s["tokens_available"] == available[s["source"]]
            assert s["epochs"] == pytest.approx(s["tokens_drawn"] / available[s["source"]])
    stage1 = rep["stages"][0]
    prose = next(s for s in stage1["sources"] if s["source"] == "prose")
    assert prose["tokens_drawn"] == pytest.approx(0.85 * 80 * 4096)
    assert rep["warnings"] == []  # the recipe's max_epochs_warning (5) is not exceeded


def test_report_warns_about_repeated_sources(tiny_data, tmp_path):
    out = tmp_path / "tiny.md"
    proc = cli("pretrain.data.report", "recipes/tiny", "--max-epochs", "1.5", "-o", out, runs=tiny_data["runs"])
    assert proc.returncode == 0
    assert "warning: pretrain-stage1: prose is repeated" in proc.stderr
    text = out.read_text()
    assert "## Warnings" in text and "(!)" in text
    prose = next(r for r in parse_markdown(text)["pretrain-stage1"]["rows"] if r[0] == "prose")
    assert float(prose[6].split()[0]) > 1.5


def test_report_refuses_bad_arguments(tmp_path):
    proc = cli("pretrain.data.report", "recipes/nope", runs=tmp_path / "runs")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    proc = cli("pretrain.data.report", "recipes/tiny", "--max-epochs", "0", runs=tmp_path / "runs")
    assert proc.returncode == 2 and "--max-epochs" in proc.stderr
