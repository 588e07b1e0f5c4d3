"""The released trajectory: your stage checkpoints beside the authors' intermediate checkpoints, matched by tokens.

Usage: python -m eval trajectory RUN_DIR [--suite tiny] [--released-dir DIR_OR_MAP.yaml] [--revisions R,R]
                                 [--repo HuggingFaceTB/SmolLM3-3B-checkpoints] [--out DIR] [--max-samples N]
       (make eval-trajectory RUN=runs/tiny [RELEASED_DIR=...] [SUITE=...])

Yours: RUN_DIR/<stage>/hf of each completed nanotron stage (pretrain-stage1..3, longctx-32k, longctx-64k); tokens
seen = the sum over the stages up to it of (last_step - first_step + 1) x batch.global_batch_tokens, from each
manifest (its metrics and resolved recipe). Released: revisions `stage<k>-step-<N>` of the checkpoints repository,
tokens = N x 2,359,296 (the model card: "nb_tokens = nb_step * GBS", steps counted across stages 1-3). Each of
your checkpoints is matched to the released revision nearest in tokens; both are scored on the same suite
(results under OUT/<label>/, reused when present), and OUT/trajectory.md / .json / .png say, per task, where your
run is ahead of or behind the released one (|delta| within 2 combined standard errors: level).
Released checkpoints come from --released-dir (a folder of HF folders named by revision, as
`hf download REPO --revision R --local-dir DIR/R` writes, or a YAML {revision: folder | {path, tokens}}: what an
air-gapped cluster uses), else the Hub cache (HF_HUB_OFFLINE=1: only what is cached) or the Hub.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO_ID = "HuggingFaceTB/SmolLM3-3B-checkpoints"
GBS_TOKENS = 2_359_296  # the model card's global batch size in tokens
REVISION_RE = re.compile(r"^stage[123]-step-(\d+)$")
NANOTRON_STAGES = ("pretrain-stage1", "pretrain-stage2", "pretrain-stage3", "longctx-32k", "longctx-64k")


class TrajectoryError(ValueError):
    pass


def revision_tokens(revision: str) -> int | None:
    """'stage1-step-40000' -> 40000 x 2,359,296 tokens; None for a name without a pretraining step."""
    m = REVISION_RE.match(revision)
    return int(m.group(1)) * GBS_TOKENS if m else None


def user_checkpoints(run_dir) -> list[dict]:
    """[{label, path, tokens}] of the run's completed nanotron stages that left an hf/ folder, in stage order."""
    out, seen = [], 0
    for stage in NANOTRON_STAGES:
        d = Path(run_dir) / stage
        try:
            m = json.loads((d / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        if m.get("status") != "completed":
            continue
        metrics, batch = m.get("metrics") or {}, (m.get("recipe") or {}).get("batch") or {}
        if not isinstance(metrics.get("last_step"), int) or not batch.get("global_batch_tokens"):
            raise TrajectoryError(f"{d}/manifest.json: no metrics.last_step or recipe.batch.global_batch_tokens")
        seen += (metrics["last_step"] - metrics.get("first_step", 1) + 1) * batch["global_batch_tokens"]
        if (d / "hf" / "config.json").is_file():
            out.append({"label": stage, "path": str(d / "hf"), "tokens": seen})
    return out


def released_from_dir(source) -> list[dict]:
    """[{label, path, tokens}] from a folder of revision-named HF folders or a YAML {revision: folder|{path,
    tokens}} (relative paths are relative to the YAML file)."""
    src = Path(source)
    if src.is_dir():
        entries = {p.name: str(p) for p in sorted(src.iterdir()) if (p / "config.json").is_file()}
        base = src
    elif src.is_file():
        entries, base = yaml.safe_load(src.read_text()) or {}, src.parent
        if not isinstance(entries, dict):
            raise TrajectoryError(f"{src}: want a mapping revision -> folder or {{path, tokens}}")
    else:
        raise TrajectoryError(f"{src}: released checkpoints folder or mapping not found")
    out = []
    for rev, v in entries.items():
        path, tokens = (v.get("path"), v.get("tokens")) if isinstance(v, dict) else (v, None)
        tokens = revision_tokens(rev) if tokens is None else int(tokens)
        path = Path(path) if Path(path).is_absolute() else base / path
        if tokens is None:
            raise TrajectoryError(f"{src}: revision {rev}: no step in its name (stage<k>-step-<N>), give tokens")
        if not (path / "config.json").is_file():
            raise TrajectoryError(f"{src}: revision {rev}: {path} is not an HF model folder")
        out.append({"label": rev, "path": str(path), "tokens": tokens})
    return sorted(out, key=lambda r: r["tokens"])


def hub_revisions(repo: str = REPO_ID) -> list[str]:
    """Revision names of the checkpoints repository: its branches (Hub), or the refs the local cache holds."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        refs = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "refs"
        return sorted(str(p.relative_to(refs)) for p in refs.rglob("*") if p.is_file()) if refs.is_dir() else []
    from huggingface_hub import list_repo_refs

    return [b.name for b in list_repo_refs(repo).branches]


def match(user: list[dict], released: list[dict]) -> list[tuple[dict, dict]]:
    """Each of your checkpoints with the released one nearest in tokens seen (the earlier one on a tie)."""
    if not released:
        return []
    return [(u, min(released, key=lambda r: (abs(r["tokens"] - u["tokens"]), r["tokens"]))) for u in user]


def _primary(scores: dict, stderr: dict) -> dict:
    """{task: (metric, value, stderr)}: each task's first metric, as the report card plots it."""
    out = {}
    for task, metrics in scores.items():
        for m, v in metrics.items():
            if isinstance(v, (int, float)):
                out[task] = (m, float(v), stderr.get(task, {}).get(m))
                break
    return out


def score(ckpt: dict, out_dir: Path, suite: str, max_samples, rescore: bool) -> dict:
    from eval.compare import ResultsError, load_run

    folder = out_dir / ckpt["label"]
    if rescore or not list(folder.glob("results/results_*.json")):
        from eval.run import run_eval

        print(f"[trajectory] scoring {ckpt['label']} ({ckpt['tokens']:,} tokens) on {suite}", flush=True)
        run_eval(ckpt["path"], suite, folder, max_samples=max_samples)
    try:
        run = load_run(folder)
    except ResultsError as e:
        raise TrajectoryError(str(e)) from None
    return _primary(run["scores"], run["stderr"])


def verdict(delta: float, se_a, se_b) -> str:
    if se_a is not None and se_b is not None and abs(delta) <= 2 * (se_a ** 2 + se_b ** 2) ** 0.5:
        return "level"
    return "ahead" if delta > 0 else "behind" if delta < 0 else "level"


def rows(pairs, user_scores: dict, released_scores: dict) -> list[dict]:
    out = []
    for u, r in pairs:
        a, b = user_scores[u["label"]], released_scores[r["label"]]
        for task in sorted(set(a) & set(b)):
            (metric, va, sa), (_, vb, sb) = a[task], b[task]
            out.append({"stage": u["label"], "tokens": u["tokens"], "revision": r["label"],
                        "released_tokens": r["tokens"], "task": task, "metric": metric, "yours": va,
                        "yours_stderr": sa, "released": vb, "released_stderr": sb, "delta": va - vb,
                        "verdict": verdict(va - vb, sa, sb)})
    return out


def _v(x, se):
    return f"{x:.4f}" + ("" if se is None else f" ± {se:.4f}")


def markdown(table: list[dict], suite: str) -> str:
    lines = ["# Your run beside the released SmolLM3 trajectory", "",
             f"Suite `{suite}`; each of your stage checkpoints against the released checkpoint nearest in tokens "
             "seen; ± lighteval's standard error; level = |delta| within 2 combined standard errors.", "",
             "| your stage | tokens seen | released revision | its tokens | task | metric | yours | released | "
             "delta | |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['stage']} | {r['tokens']:,} | {r['revision']} | {r['released_tokens']:,} | "
                     f"{r['task'].replace('|', chr(92) + '|')} | {r['metric']} | {_v(r['yours'], r['yours_stderr'])} | "
                     f"{_v(r['released'], r['released_stderr'])} | {r['delta']:+.4f} | {r['verdict']} |")
    return "\n".join(lines) + "\n"


def plot(user, released, user_scores, released_scores, path: Path) -> None:
    """One panel per task: score against tokens seen, your run (solid) and the released checkpoints (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({t for s in list(user_scores.values()) + list(released_scores.values()) for t in s})
    fig, axes = plt.subplots(1, max(1, len(tasks)), figsize=(4 * max(1, len(tasks)), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for ckpts, scores, style, name in ((user, user_scores, "-o", "yours"),
                                           (released, released_scores, "--s", "released")):
            pts = [(c["tokens"], *scores[c["label"]][task][1:]) for c in ckpts if task in scores.get(c["label"], {})]
            if pts:
                xs, ys, ses = zip(*pts)
                ax.errorbar(xs, ys, yerr=[s or 0 for s in ses], fmt=style, capsize=2, label=name)
        ax.set_xscale("log")
        ax.set_title(task, fontsize=8)
        ax.set_xlabel("tokens seen")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("score")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def trajectory(run_dir, suite: str = "tiny", released_dir=None, revisions=None, repo: str = REPO_ID,
               out_dir=None, max_samples=None, rescore: bool = False) -> dict:
    """Score, match, and write OUT/trajectory.md, .json, .png; returns the JSON written."""
    user = user_checkpoints(run_dir)
    if not user:
        raise TrajectoryError(f"{run_dir}: no completed nanotron stage with an hf/ folder")
    if released_dir:
        released = released_from_dir(released_dir)
    else:
        names = revisions or [r for r in hub_revisions(repo) if revision_tokens(r) is not None]
        released = [{"label": r, "path": None, "tokens": revision_tokens(r)} for r in names
                    if revision_tokens(r) is not None]
    if not released:
        raise TrajectoryError("no released checkpoint to compare with (--released-dir, --revisions, or the Hub)")
    pairs = match(user, released)
    needed = {r["label"]: r for _, r in pairs}.values()
    for r in needed:
        if r["path"] is None:
            from huggingface_hub import snapshot_download

            r["path"] = snapshot_download(repo, revision=r["label"])
    out = Path(out_dir or Path(run_dir) / "trajectory")
    out.mkdir(parents=True, exist_ok=True)
    user_scores = {u["label"]: score(u, out / "yours", suite, max_samples, rescore) for u in user}
    released_scores = {r["label"]: score(r, out / "released", suite, max_samples, rescore) for r in needed}
    table = rows(pairs, user_scores, released_scores)
    data = {"suite": suite, "repo": None if released_dir else repo, "yours": user, "released": list(needed),
            "rows": table}
    (out / "trajectory.json").write_text(json.dumps(data, indent=2))
    (out / "trajectory.md").write_text(markdown(table, suite))
    plot(user, list(needed), user_scores, released_scores, out / "trajectory.png")
    print(f"[trajectory] wrote {out / 'trajectory.md'}, trajectory.json, trajectory.png", flush=True)
    return data
