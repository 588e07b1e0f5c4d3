"""The pipeline's eval stage: score every Hugging Face checkpoint the pipeline produced with lighteval.

Each model-producing stage leaves a complete HF folder at `runs/<recipe>/<stage>/hf`. Pretraining and
long-context checkpoints get the recipe's `base_suite`; post-trained ones (sft, apo, merge) get the
`instruct_suite` once per system prompt (`/think`, `/no_think`); the mid-trained model (pure reasoning, no
dual mode) gets the instruct suite without one. RULER (eval/ruler.py) runs at `context_lengths`: inside the
suite when it has RULER tasks (tiny), else as a `<stage>-ruler` job (published suites) of the offline suite
`<base_suite>-ruler` where one exists (tiny-ruler), else `ruler`; the lengths listed in `yarn_lengths` are scored
with that suite on a YaRN view of each checkpoint that YaRN x `yarn_factor` stretches that far (`<stage>-yarn`;
the model card's 128k). RULER items are generated once per tokenizer into `runs/<recipe>/eval/data/`. The
manifest's metrics hold, per job and task, every score with lighteval's standard error beside it
(`<metric>_stderr`). Results go to `runs/<recipe>/eval/<stage>[-<mode>]/`, and
`runs/<recipe>/eval/compare.md` puts every checkpoint side by side with the published SmolLM3 numbers.

Usage: python -m pipeline run recipes/tiny/eval.yaml      (or `make eval`)
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from eval.offline_data import OFFLINE_SUITES
from recipes.derive import PIPELINE
from recipes.schema import EvalStage
from rundir import StageRun, read_manifest, stage_dir

BASE_KINDS = ("pretrain-stage1", "pretrain-stage2", "pretrain-stage3", "longctx-32k", "longctx-64k")
DUAL_MODE = ("sft", "apo", "merge")


def checkpoints(recipe_name: str) -> list[tuple[str, object]]:
    """(stage, hf folder) for every completed stage that left one, in pipeline order."""
    found = []
    for stage in PIPELINE:
        d = stage_dir(recipe_name, stage)
        m = read_manifest(d)
        if m and m.get("status") == "completed" and (d / "hf" / "config.json").is_file():
            found.append((stage, d / "hf"))
    return found


@dataclass(frozen=True)
class Job:
    label: str  # the results folder under runs/<recipe>/eval/
    model: Path
    suite: str
    system_prompt: Optional[str]
    context_lengths: tuple  # RULER / passkey lengths of this run
    yarn_from: Optional[Path] = None  # a YaRN view of this trained model (eval.yarn_view), written before the run


def _has_long_context(suite: str) -> bool:
    return suite in OFFLINE_SUITES and bool({"ruler", "passkey"} & set(OFFLINE_SUITES[suite]["tasks"]))


def with_stderr(scores: dict, out: Path) -> dict:
    """{task: {metric: value, metric_stderr: lighteval's standard error}} from the run's newest results file."""
    files = sorted((out / "results").rglob("results_*.json"))
    res = json.loads(files[-1].read_text())["results"] if files else {}
    merged = {}
    for task, metrics in scores.items():
        merged[task] = {}
        for m, v in metrics.items():
            merged[task][m] = v
            if f"{m}_stderr" in res.get(task, {}):
                merged[task][f"{m}_stderr"] = res[task][f"{m}_stderr"]
    return merged


def jobs(r: EvalStage, found, out_dir: Path) -> tuple[list[Job], list[str]]:
    """The evaluations to run, and a note for each YaRN length a checkpoint cannot reach.

    Per checkpoint: its suite (base or instruct, once per system prompt for dual-mode stages) with the
    context lengths not in `yarn_lengths`; the offline RULER suite at those lengths when the suite has no
    RULER (or passkey) task (the published suites); and `<stage>-yarn`, the RULER suite at the `yarn_lengths` that
    YaRN x `yarn_factor` stretches this checkpoint to, on a YaRN view of it."""
    from eval.yarn_view import trained_length

    native = tuple(n for n in r.context_lengths if n not in r.yarn_lengths)
    ruler = f"{r.base_suite}-ruler" if f"{r.base_suite}-ruler" in OFFLINE_SUITES else "ruler"  # tiny: tiny-ruler
    out, notes = [], []
    for stage, hf in found:
        if stage in BASE_KINDS:
            out.append(Job(stage, hf, r.base_suite, None, native))
            suites = [r.base_suite]
        elif stage in DUAL_MODE:
            out += [Job(f"{stage}{p.replace('/', '-')}", hf, r.instruct_suite, p, native) for p in r.system_prompts]
            suites = [r.instruct_suite]
        else:
            out.append(Job(stage, hf, r.instruct_suite, None, native))
            suites = [r.instruct_suite]
        if native and not any(map(_has_long_context, suites)):
            out.append(Job(f"{stage}-ruler", hf, ruler, None, native))
        if r.yarn_lengths:
            length = trained_length(hf)
            reach = int(length * r.yarn_factor)
            lengths = tuple(n for n in r.yarn_lengths if n <= reach)
            if lengths:
                out.append(Job(f"{stage}-yarn", out_dir / f"{stage}-yarn" / "model", ruler, None, lengths, hf))
            short = [n for n in r.yarn_lengths if n > reach]
            if short:
                notes.append(f"{stage}: trained at {length} tokens, YaRN x{r.yarn_factor:g} reaches {reach}: "
                             f"RULER {', '.join(map(str, short))} not scored")
    return out, notes


def run(r: EvalStage) -> None:
    from eval.compare import compare
    from eval.run import run_eval
    from eval.yarn_view import yarn_view

    found = checkpoints(r.run)
    with StageRun(r, inputs=[hf.parent for _, hf in found]) as run_:
        if run_.skip:
            return
        if not found:
            print(f"[eval] no completed stage of {r.run} has an hf/ folder yet: nothing to score", flush=True)
            return
        todo, notes = jobs(r, found, run_.dir)
        for note in notes:
            print(f"[eval] {note}", flush=True)
        results, t0 = [], time.time()
        for i, job in enumerate(todo, 1):
            rate = (i - 1) / max(time.time() - t0, 1e-9)  # evaluations finished per second
            print(f"[eval] {i}/{len(todo)}: {job.label} on suite {job.suite}"
                  + (f" with system prompt {job.system_prompt}" if job.system_prompt else "")
                  + (f", YaRN x{r.yarn_factor:g}" if job.yarn_from else "")
                  + (f", {rate:.2f} evaluations/s, ETA {(len(todo) - i + 1) / rate:.0f}s" if i > 1 else ""),
                  flush=True)
            if job.yarn_from:
                yarn_view(job.yarn_from, r.yarn_factor, job.model)
            out = run_.dir / job.label
            scores = run_eval(str(job.model), job.suite, out, max_samples=r.max_samples,
                              system_prompt=job.system_prompt, backend=r.backend, context_lengths=job.context_lengths,
                              data_dir=run_.dir / "data")
            run_.metrics[job.label] = with_stderr(scores, out)
            results.append((job.label, out))
        run_.metrics["not_scored"] = notes
        (run_.dir / "compare.md").write_text(compare([str(p) for _, p in results], [lbl for lbl, _ in results]))
        run_.outputs += [lbl for lbl, _ in results] + ["compare.md"]
        print(f"[eval] wrote {run_.dir / 'compare.md'}", flush=True)
