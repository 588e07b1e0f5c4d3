"""The report card of a run: `runs/<run>/report.md` and the PNGs it embeds, made from what the stages already
wrote (manifests, per-step losses, eval results; no second bookkeeping).

Sections: what each stage did (one row per stage, its measured effect, and whether that moved the way the
recipe uses the stage for), the plan, the mixture shares, loss and learning-rate curves of every stage on one
time axis with the stage boundaries marked, the eval scores across checkpoints (plot) and beside the published
SmolLM3 numbers (table), and the manifests (commit, recipe hash, inputs, wall time, peak memory).

Usage: python -m pipeline report recipes/tiny   (make report; `make all` ends with it)
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from recipes.derive import PIPELINE
from rundir import read_manifest, runs_root, stage_dir


def _f(x, digits=3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _moved(ok) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def pretrain_effect(m: dict, before: dict | None) -> tuple[str, bool | None]:
    """Held-out loss per category against the previous pretraining stage (stage 1: against chance, ln V)."""
    x = m.get("metrics", {})
    after = x.get("heldout_loss")
    if not after:
        a, b = x.get("loss_first_steps"), x.get("loss_last_steps")
        return (f"training loss, mean of first / last steps: {_f(a)} -> {_f(b)}; held-out loss "
                f"{x.get('heldout', 'not recorded')}", None)
    if before is None:
        ref = {c: x.get("chance_loss") for c in after}
        what = f"chance (ln V = {_f(x.get('chance_loss'))})"
    else:
        ref = {c: v["loss"] for c, v in before.items()}
        what = "the previous stage"
    drop = {c: ref[c] - v["loss"] for c, v in after.items() if ref.get(c) is not None}
    text = "held-out loss per category " + ", ".join(
        f"{c} {_f(ref[c])} -> {_f(after[c]['loss'])}" for c in drop) + f" (before: {what})"
    ok = bool(drop) and all(d > 0 for d in drop.values())
    if before is not None and all(k in drop for k in ("web", "code", "math")):
        more = min(drop["code"], drop["math"]) > drop["web"]
        text += (f"; code and math fall more than web (-{_f(drop['code'])} / -{_f(drop['math'])} vs "
                 f"-{_f(drop['web'])}): {'yes' if more else 'no'}")
        ok = ok and more
    return text, ok


def longctx_effect(m: dict) -> tuple[str, bool | None]:
    """Held-out loss past the previous model's trained length, before and after the extension."""
    x = m.get("metrics", {})
    past = x.get("heldout_past_previous_length") or {}
    a, b = past.get("before"), past.get("after")
    if not (a and b):
        why = x.get("heldout", "no held-out document is that long")
        return f"held-out loss past the previous length: not measured ({why})", None
    lo, hi = b["positions"]
    short_a, short_b = x.get("heldout_loss_before", {}), x.get("heldout_loss", {})
    text = (f"held-out loss on positions {lo}-{hi - 1} ({b['documents']} documents): {_f(a['loss'])} "
            f"({past.get('from_stage')}) -> {_f(b['loss'])}; first {lo} tokens, per category: "
            + ", ".join(f"{c} {_f(short_a[c]['loss'])} -> {_f(v['loss'])}" for c, v in short_b.items()
                        if c in short_a))
    return text, b["loss"] < a["loss"]


def effects(run: str, manifests: dict) -> list[tuple[str, str, str]]:
    """(stage, measured effect, moved as expected?) for every completed stage."""
    rows, before = [], None
    for stage, m in manifests.items():
        x = m.get("metrics", {})
        kind = m.get("kind")
        if kind == "pretrain":
            text, ok = pretrain_effect(m, before)
            before = x.get("heldout_loss")
            rows.append((stage, text, _moved(ok)))
        elif kind == "longctx":
            text, ok = longctx_effect(m)
            rows.append((stage, text, _moved(ok)))
        elif kind in ("midtrain", "sft", "apo"):
            a, b = x.get("heldout_loss_before"), x.get("heldout_loss_after")
            text = f"held-out loss {_f(a)} -> {_f(b)}"
            ok = None if a is None else b < a
            if kind == "sft":
                rate = {k: _f(x.get(f"think_rate_{k}"), 2) for k in ("think_before", "no_think_before",
                                                                      "think_after", "no_think_after")}
                text += (f"; think-block rate, think / no-think mode: {rate['think_before']} / "
                         f"{rate['no_think_before']} before, {rate['think_after']} / {rate['no_think_after']} after")
                think, no_think = x.get("think_rate_think_after"), x.get("think_rate_no_think_after")
                ok = None if think is None or no_think is None else think > 0.5 > no_think
            if kind == "apo":
                text += (f"; held-out preference accuracy (per token) {_f(x.get('preference_accuracy_before'))} -> "
                         f"{_f(x.get('preference_accuracy_after'))} (summed: "
                         f"{_f(x.get('preference_accuracy_summed_before'))} -> "
                         f"{_f(x.get('preference_accuracy_summed_after'))})")
                a, b = x.get("preference_accuracy_before"), x.get("preference_accuracy_after")
                ok = None if a is None or b is None else b > a
            rows.append((stage, text, _moved(ok)))
        elif kind == "synth":
            rows.append((stage, f"{x.get('prompts')} prompts answered; {_f(x.get('opens_think'), 2)} open a think "
                         "block (the teacher's reasoning traces are what SFT learns think mode from)",
                         _moved(None if x.get("opens_think") is None else x["opens_think"] > 0)))
        elif kind == "prefs":
            rows.append((stage, f"{x.get('kept')} pairs kept of {x.get('pairs')}; checkable answers right: strong "
                         f"{_f(x.get('strong_right'), 2)}, weak {_f(x.get('weak_right'), 2)}",
                         _moved(None if x.get("strong_right") is None else x["strong_right"] > x["weak_right"])))
        elif kind == "merge":
            f = x.get("figures", {})
            soup, final = f.get("soup", {}), f.get("final", {})
            rows.append((stage, f"passkey mean log p, soup -> final: {_f(soup.get('passkey_logprob'), 2)} -> "
                         f"{_f(final.get('passkey_logprob'), 2)}; think-block rate (think / no-think) soup "
                         f"{_f(soup.get('think_rate_think'), 2)} / {_f(soup.get('think_rate_no_think'), 2)}, final "
                         f"{_f(final.get('think_rate_think'), 2)} / {_f(final.get('think_rate_no_think'), 2)}",
                         _moved(None if not soup else final["passkey_logprob"] > soup["passkey_logprob"])))
        elif kind == "eval":
            text, ok = eval_effect(x)
            rows.append((stage, text, _moved(ok)))
    return rows


def eval_effect(metrics: dict) -> tuple[str, bool | None]:
    """Each task's headline score, first scored checkpoint -> last, with lighteval's standard errors; moved
    when the change exceeds twice the larger standard error (else said plainly: within noise)."""
    jobs = [k for k, v in metrics.items() if isinstance(v, dict) and v]
    if len(jobs) < 2:
        return "fewer than two checkpoints scored", None
    first, last = metrics[jobs[0]], metrics[jobs[-1]]
    parts, moved = [], []
    for task in [t for t in first if t in last]:
        metric = next((m for m in first[task] if f"{m}_stderr" in first[task] and m in last[task]), None)
        if metric is None:
            continue
        a, b = first[task][metric], last[task][metric]
        noise = 2 * max(first[task][f"{metric}_stderr"], last[task].get(f"{metric}_stderr", 0.0))
        moved.append(abs(b - a) > noise)
        parts.append(f"{task.split('|')[0]} {metric} {a:.3f} -> {b:.3f} "
                     f"({'moved' if moved[-1] else 'within 2 standard errors'})")
    if not parts:
        return "no score with a standard error", None
    return f"{jobs[0]} -> {jobs[-1]}: " + "; ".join(parts), any(moved)


def curves(run: str, manifests: dict) -> dict:
    """{stage: [(time, loss, lr)]} from each training stage's per-step log (losses.jsonl)."""
    out = {}
    for stage in manifests:
        d = stage_dir(run, stage)
        f = d / "losses.jsonl"
        if f.is_file():
            rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
            out[stage] = [(r.get("time"), r["loss"], r.get("lr")) for r in rows if r.get("time") is not None]
    return out


def plot(series: dict, index: int, ylabel: str, path: Path, log: bool = False) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = min(p[0][0] for p in series.values() if p)
    fig, ax = plt.subplots(figsize=(11, 4))
    for stage, points in series.items():
        xs = [(p[0] - t0) / 60 for p in points if p[index] is not None]
        ys = [p[index] for p in points if p[index] is not None]
        if xs:
            ax.plot(xs, ys, label=stage, linewidth=1.2)
            ax.axvline(xs[0], color="grey", linewidth=0.5, linestyle=":")
    ax.set_xlabel("minutes since the first logged step")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_eval(scores: dict, path: Path) -> bool:
    """One line per task (its first metric) across the scored checkpoints, in pipeline order; False when there
    is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [k for k, v in scores.items() if isinstance(v, dict) and v]
    tasks = sorted({t for k in labels for t in scores[k]})
    if not labels or not tasks:
        return False
    fig, ax = plt.subplots(figsize=(11, 4))
    for task in tasks:
        metric = next(iter(next(scores[k][task] for k in labels if task in scores[k])))
        ys = [scores[k][task].get(metric) if task in scores[k] else None for k in labels]
        ax.plot(range(len(labels)), [float("nan") if y is None else y for y in ys], marker="o", linewidth=1,
                label=f"{task.split('|')[0]} {metric}")
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("score")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def eval_table(run: str, manifest: dict) -> str | None:
    """Every published figure beside each checkpoint's score ± lighteval's standard error: eval.compare over the
    results folders the eval stage lists in its outputs (so an older compare.md, written before stderr was
    reported, does not stand in); that compare.md when the folders are gone; None when there is neither."""
    from eval.compare import ResultsError, compare

    d = stage_dir(run, "eval")
    labels = [o for o in manifest.get("outputs", []) if o != "compare.md" and (d / o).is_dir()]
    try:
        if labels:
            return compare([str(d / lbl) for lbl in labels], labels)
    except ResultsError:
        pass
    return (d / "compare.md").read_text() if (d / "compare.md").is_file() else None


def _wall(m: dict) -> str:
    if m.get("wall_seconds") is not None:
        return f"{m['wall_seconds']:.0f} s"
    try:
        fmt = "%Y-%m-%dT%H:%M:%S%z"
        return f"{(datetime.strptime(m['ended_at'], fmt) - datetime.strptime(m['started_at'], fmt)).seconds} s"
    except (KeyError, TypeError, ValueError):
        return "n/a"


def _peak(m: dict) -> str:
    if m.get("peak_rss_mib") is None:
        return "n/a"
    n = m.get("processes")
    return f"{m['peak_rss_mib']:,.0f} MiB" + (f" (rank 0 of {n})" if n and n > 1 else "")


def report(directory, overrides=()) -> Path:
    from pretrain.data.report import build_report, to_markdown
    from recipes.derive import plan_row
    from recipes.loader import load_recipe
    from recipes.plan_table import format_plan

    recipes = load_recipe(Path(directory), overrides)
    run = next(iter(recipes.values())).run
    manifests = {s: m for s in PIPELINE if s in recipes and (m := read_manifest(stage_dir(run, s)))
                 and m.get("status") == "completed"}
    out = runs_root() / run / "report.md"
    lines = [f"# Report card: {run}", "", f"Made {datetime.now():%Y-%m-%d %H:%M} from `runs/{run}/`; "
             f"{len(manifests)} of {len(recipes)} stages completed.", "", "## What each stage did", "",
             "| stage | measured effect | moved as expected |", "|---|---|---|"]
    lines += [f"| {s} | {text} | {ok} |" for s, text, ok in effects(run, manifests)]
    series = curves(run, manifests)
    if series:
        plot(series, 1, "training loss", out.with_name("report_loss.png"))
        plot(series, 2, "learning rate", out.with_name("report_lr.png"), log=True)
        lines += ["", "## Loss and learning rate, every stage", "", "Dotted lines: where each stage starts.", "",
                  "![loss](report_loss.png)", "", "![lr](report_lr.png)"]
    rows = [plan_row(r, mfu=0.4, peak_tflops=None) for r in recipes.values()]
    gpu = next(iter(recipes.values())).cluster
    lines += ["", "## The plan", "", "```", format_plan(rows, mfu=0.4, peak=gpu.peak_tflops, gpu=gpu.gpu), "```"]
    if "data" in manifests:
        lines += ["", "## Mixture shares", "", to_markdown(build_report(directory, overrides))]
    table = eval_table(run, manifests.get("eval")) if "eval" in manifests else None
    if table:
        lines += ["", "## Evaluation beside the published SmolLM3 numbers", ""]
        if plot_eval(manifests["eval"].get("metrics", {}), out.with_name("report_eval.png")):
            lines += ["Every scored checkpoint, one line per task:", "", "![eval](report_eval.png)", ""]
        lines.append(table)
    lines += ["", "## Manifests", "", "| stage | commit | recipe sha256 | inputs | wall time | peak memory |",
              "|---|---|---|---|---|---|"]
    for s, m in manifests.items():
        git = m.get("git") or {}
        commit = (git.get("commit") or "n/a")[:10] + (" (dirty)" if git.get("dirty") else "")
        inputs = ", ".join(f"{i.get('stage') or Path(i['path']).name}@{(i.get('manifest_sha256') or '')[:8]}"
                           for i in m.get("inputs", []))
        lines.append(f"| {s} | {commit} | {m.get('recipe_sha256', '')[:12]} | {inputs or '-'} | {_wall(m)} "
                     f"| {_peak(m)} |")
    lines += ["", "Peak memory: the resident high-water mark of the process that ran the stage, reset at its start "
              "(nanotron stages: rank 0 of their processes; the data stage: without its datatrove workers)."]
    out.write_text("\n".join(lines) + "\n")
    print(f"[report] wrote {out}", flush=True)
    return out
