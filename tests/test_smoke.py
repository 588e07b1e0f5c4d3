"""`make smoke` end to end, as a drill (tests/smoke_drill.py): the whole tiny pipeline is killed with SIGKILL at
a random point and run again; it completes, skips exactly what had completed, and ends with the metrics of an
uninterrupted run (tests/golden/smoke_metrics.json). Then the report card: one row per stage with its measured
effect on held-out data, the plots, the manifests with wall time and peak memory."""
import json
import math

import pytest

from recipes.derive import PIPELINE
from tests.smoke_drill import differences, final_metrics


def where(smoke) -> str:
    return (f"drill seed {smoke['seed']} (rerun with SMOLLM3_DRILL_SEED={smoke['seed']}): killed={smoke['killed']} "
            f"after {smoke['at']} s, in {smoke['killed_in']}\n")


def table(text: str, heading: str) -> dict:
    """{first cell: row} of the table under a `## heading` of the report."""
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return {line.split(" | ")[0].strip("| "): line for line in section.splitlines() if line.startswith("| ")}


def manifests(smoke) -> dict:
    run = smoke["runs"] / "tiny"
    return {s: json.loads((run / s / "manifest.json").read_text()) for s in PIPELINE}


@pytest.mark.slow
def test_smoke_killed_at_a_random_point_completes_with_the_uninterrupted_metrics(smoke):
    second = smoke["second"]
    assert second.returncode == 0, where(smoke) + second.stdout[-3000:] + second.stderr[-3000:]
    assert smoke["killed"] or smoke["seed"] < 0, where(smoke) + "the pipeline ended before the kill"
    assert {s: m["status"] for s, m in manifests(smoke).items()} == {s: "completed" for s in PIPELINE}
    done_before = {s for s in PIPELINE if f"[{s}] done in" in smoke["first"]}
    skipped = {s for s in PIPELINE if f"[{s}] up to date" in second.stdout}
    # the rerun skips what had completed (a stage killed after its manifest was written may be skipped too)
    assert done_before <= skipped <= done_before | {smoke["killed_in"]}, where(smoke) + str((done_before, skipped))
    assert "pipeline complete" in second.stdout
    diffs = differences(final_metrics(smoke["runs"] / "tiny"), smoke["golden"]["metrics"])
    assert not diffs, where(smoke) + "\n".join(diffs[:40])


@pytest.mark.slow
def test_every_stage_that_runs_for_a_while_shows_its_progress_with_a_rate_and_an_eta(smoke):
    lines = (smoke["first"] + smoke["second"].stdout).splitlines()
    for stage in PIPELINE:
        if stage in ("data", "merge"):  # seconds long: per-source tokens/s, mergekit's tqdm
            continue
        assert any(line.startswith(f"[{stage}") and "/s" in line and "ETA" in line for line in lines), stage
    assert any(line.startswith("[data] ") and "tokens/s" in line for line in lines)
    assert "[pipeline] 13/13 stages done" in smoke["second"].stdout


@pytest.mark.slow
def test_every_manifest_records_its_wall_time_and_peak_memory(smoke):
    for stage, m in manifests(smoke).items():
        assert m["wall_seconds"] > 0 and m["peak_rss_scope"] == "the stage", stage
        assert 50 < m["peak_rss_mib"] < 24 * 1024, (stage, m["peak_rss_mib"])
    for stage in ("pretrain-stage1", "longctx-64k"):
        assert manifests(smoke)[stage]["processes"] == 2


@pytest.mark.slow
def test_held_out_loss_falls_per_category_and_past_each_previous_context_length(smoke):
    """What the README claims for the tiny run: every category's held-out loss falls in each pretraining stage,
    code and math (upsampled in stages 2-3) fall more than web there, and each long-context stage lowers the
    held-out loss on positions the previous model was not trained on."""
    m = {s: v["metrics"] for s, v in manifests(smoke).items()}
    prev = {c: math.log(4096) for c in ("web", "code", "math", "reasoning")}
    for stage in ("pretrain-stage1", "pretrain-stage2", "pretrain-stage3"):
        now = {c: v["loss"] for c, v in m[stage]["heldout_loss"].items()}
        assert set(now) == set(prev) and all(now[c] < prev[c] for c in now), (stage, prev, now)
        if stage != "pretrain-stage1":
            drop = {c: prev[c] - now[c] for c in now}
            assert min(drop["code"], drop["math"]) > drop["web"], (stage, drop)
        prev = now
    for stage, positions in (("longctx-32k", [256, 512]), ("longctx-64k", [512, 1024])):
        past = m[stage]["heldout_past_previous_length"]
        assert past["after"]["positions"] == past["before"]["positions"] == positions
        assert past["after"]["documents"] == 8 and past["after"]["tokens"] == 8 * (positions[1] - positions[0])
        assert past["after"]["loss"] < past["before"]["loss"], (stage, past)


@pytest.mark.slow
def test_the_report_card_has_a_measured_row_per_stage_plots_and_manifests(smoke):
    assert smoke["report"].returncode == 0, smoke["report"].stderr[-3000:]
    run = smoke["runs"] / "tiny"
    text = (run / "report.md").read_text()
    m = {s: v["metrics"] for s, v in manifests(smoke).items()}
    rows, manifest_rows = table(text, "What each stage did"), table(text, "Manifests")
    s1 = m["pretrain-stage1"]["heldout_loss"]
    assert f"web {math.log(4096):.3f} -> {s1['web']['loss']:.3f}" in rows["pretrain-stage1"]
    s3, s2 = m["pretrain-stage3"]["heldout_loss"], m["pretrain-stage2"]["heldout_loss"]
    assert f"code {s2['code']['loss']:.3f} -> {s3['code']['loss']:.3f}" in rows["pretrain-stage3"]
    past = m["longctx-64k"]["heldout_past_previous_length"]
    assert (f"positions 512-1023 (8 documents): {past['before']['loss']:.3f} (longctx-32k) -> "
            f"{past['after']['loss']:.3f}") in rows["longctx-64k"]
    sft = m["sft"]
    assert (f"| sft | held-out loss {sft['heldout_loss_before']:.3f} -> {sft['heldout_loss_after']:.3f}; "
            "think-block rate, think / no-think mode: ") in text
    assert f"(per token) {m['apo']['preference_accuracy_before']:.3f} -> " in rows["apo"]
    assert f"{m['merge']['figures']['final']['passkey_logprob']:.2f}" in rows["merge"]
    # the eval row: mc_cloze acc, first checkpoint -> last, judged against twice lighteval's standard error
    first, last = m["eval"]["pretrain-stage1"]["mc_cloze|0"], m["eval"]["merge-no_think"]["mc_cloze|0"]
    noise = 2 * max(first["acc_stderr"], last["acc_stderr"])
    verdict = "moved" if abs(last["acc"] - first["acc"]) > noise else "within 2 standard errors"
    assert rows["eval"].startswith("| eval | pretrain-stage1 -> merge-no_think: "), rows["eval"]
    assert f"mc_cloze acc {first['acc']:.3f} -> {last['acc']:.3f} ({verdict})" in rows["eval"], rows["eval"]
    for stage in ("pretrain-stage1", "pretrain-stage2", "pretrain-stage3", "longctx-32k", "longctx-64k", "midtrain",
                  "sft", "apo", "merge", "eval"):
        assert rows[stage].endswith(("| yes |", "| **no** |")), rows[stage]  # a measured figure, judged
    for needle in ("![loss](report_loss.png)", "![lr](report_lr.png)", "![eval](report_eval.png)", "## The plan",
                   "## Mixture shares", "## Evaluation beside the published SmolLM3 numbers", "## Manifests"):
        assert needle in text, needle
    for stage, manifest in manifests(smoke).items():
        assert f"| {manifest['peak_rss_mib']:,.0f} MiB" in manifest_rows[stage], manifest_rows[stage]
    for png in ("report_loss.png", "report_lr.png", "report_eval.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
