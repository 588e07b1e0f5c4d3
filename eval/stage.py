"""The pipeline's eval stage: score every Hugging Face checkpoint the pipeline produced with lighteval.

Each model-producing stage leaves a complete HF folder at `runs/<recipe>/<stage>/hf`. Pretraining and
long-context checkpoints get the recipe's `base_suite`; post-trained ones (sft, apo, merge) get the
`instruct_suite` once per system prompt (`/think`, `/no_think`); the mid-trained model (pure reasoning, no
dual mode) gets the instruct suite without one. RULER (eval/ruler.py) scores the base checkpoints (the model
card reports it for the base model only) at the `context_lengths` each was trained at: inside the suite when it
has RULER tasks (tiny), else as a `<stage>-ruler` job (published suites) of the offline suite `<base_suite>-ruler`
where one exists (tiny-ruler), else `ruler`; the lengths listed in `yarn_lengths` are scored with that suite on a
YaRN view of each base checkpoint that YaRN x `yarn_factor` stretches that far (`<stage>-yarn`; the model card's
128k). RULER items are generated once per tokenizer into `runs/<recipe>/eval/data/`. The
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
    yarn_from: Optional[Path] = None  # a YaRN view of this trained model (smollm3.hf_config), written before the run
    generation: tuple = ()  # (key, value) sampling overrides of the suite's (the recipe's, instruct jobs)


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
    """The evaluations to run, and a note for each context length a checkpoint is not scored at.

    Per checkpoint: its suite (base or instruct, once per system prompt for dual-mode stages). Long context
    (RULER, passkey) is scored on the base checkpoints only, as the model card reports it (base_en.yaml
    alone has RULER rows), and only at the lengths a checkpoint was trained at (`max_position_embeddings`
    of its HF config): a 4k-token checkpoint is not asked a 32k question. Those lengths run inside the suite
    when it has RULER (or passkey) tasks (tiny), else as `<stage>-ruler` (the published suites); the
    `yarn_lengths` within YaRN x `yarn_factor` of the trained length run as `<stage>-yarn` on a YaRN view."""
    from smollm3.hf_config import trained_length

    native = tuple(n for n in r.context_lengths if n not in r.yarn_lengths)
    ruler = f"{r.base_suite}-ruler" if f"{r.base_suite}-ruler" in OFFLINE_SUITES else "ruler"  # tiny: tiny-ruler
    sampling = tuple((k, v) for k in ("temperature", "top_p", "max_new_tokens") if (v := getattr(r, k)) is not None)
    out, notes = [], []
    for stage, hf in found:
        if stage in DUAL_MODE:
            out += [Job(f"{stage}{p.replace('/', '-')}", hf, r.instruct_suite, p, (), generation=sampling)
                    for p in r.system_prompts]
            continue
        if stage not in BASE_KINDS:  # midtrain: reasoning, no dual mode
            out.append(Job(stage, hf, r.instruct_suite, None, (), generation=sampling))
            continue
        length = trained_length(hf)
        fits = tuple(n for n in native if n <= length)
        out.append(Job(stage, hf, r.base_suite, None, fits))
        if fits and not _has_long_context(r.base_suite):
            out.append(Job(f"{stage}-ruler", hf, ruler, None, fits))
        reach = int(length * r.yarn_factor) if r.yarn_lengths else 0
        stretched = tuple(n for n in r.yarn_lengths if n <= reach)
        if stretched:
            out.append(Job(f"{stage}-yarn", out_dir / f"{stage}-yarn" / "model", ruler, None, stretched, hf))
        short = [n for n in native if n > length] + [n for n in r.yarn_lengths if n > reach]
        if short:
            how = f", YaRN x{r.yarn_factor:g} reaches {reach}" if r.yarn_lengths else ""
            notes.append(f"{stage}: trained at {length} tokens{how}: long context {', '.join(map(str, short))} "
                         "not scored")
    return out, notes


def score(job: Job, out: Path, max_samples, backend: str, data_dir: Path, threads: int = 0) -> dict:
    """One evaluation: lighteval's scores of `job` with lighteval's standard errors beside them. With `threads`
    (a worker process of `run`): that many torch threads, and the job's output goes to `out/eval.log`."""
    import os
    import sys

    if threads:
        import torch

        torch.set_num_threads(threads)
        out.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush(), sys.stderr.flush()
        log = os.open(out / "eval.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1), os.dup2(log, 2), os.close(log)
    from eval.run import run_eval

    scores = run_eval(str(job.model), job.suite, out, max_samples=max_samples, system_prompt=job.system_prompt,
                      backend=backend, context_lengths=job.context_lengths, data_dir=data_dir,
                      generation=dict(job.generation))
    return with_stderr(scores, out)


def run(r: EvalStage) -> None:
    """Score every job, `parallel_jobs` at a time (worker processes, each with its share of the cores)."""
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from eval.compare import compare
    from smollm3.hf_config import yarn_view

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
        for job in todo:
            if job.yarn_from:
                yarn_view(job.yarn_from, r.yarn_factor, job.model)
        workers = min(r.parallel_jobs, len(todo))
        print(f"[eval] {len(todo)} evaluations, {workers} at a time", flush=True)
        args = dict(max_samples=r.max_samples, backend=r.backend, data_dir=run_.dir / "data")
        t0, scored = time.time(), {}

        def finished(job: Job, scores: dict) -> None:
            scored[job.label] = scores
            done = len(scored)
            rate = done / max(time.time() - t0, 1e-9)
            print(f"[eval] {done}/{len(todo)}: {job.label} on suite {job.suite}"
                  + (f" with system prompt {job.system_prompt}" if job.system_prompt else "")
                  + (f", YaRN x{r.yarn_factor:g}" if job.yarn_from else "")
                  + f" scored; {rate:.3f} evaluations/s, ETA {(len(todo) - done) / rate:.0f}s", flush=True)

        if workers == 1:
            for job in todo:
                finished(job, score(job, run_.dir / job.label, **args))
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            # longest first (dual-mode, then the other instruct, then base; YaRN views last): no worker idles
            # at the end waiting for a long job the other started last
            order = sorted(todo, key=lambda j: (j.system_prompt is None, j.suite != r.instruct_suite,
                                                j.yarn_from is not None))
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                futures = {pool.submit(score, job, run_.dir / job.label, threads=threads, **args): job
                           for job in order}
                for f in as_completed(futures):
                    job = futures[f]
                    try:
                        finished(job, f.result())
                    except BaseException:
                        print(f"[eval] {job.label} failed: its log is {run_.dir / job.label / 'eval.log'}", flush=True)
                        raise
        run_.metrics.update({j.label: scored[j.label] for j in todo})  # in job order, whatever finished first
        run_.metrics["not_scored"] = notes
        results = [(j.label, run_.dir / j.label) for j in todo]
        (run_.dir / "compare.md").write_text(compare([str(p) for _, p in results], [lbl for lbl, _ in results]))
        run_.outputs += [lbl for lbl, _ in results] + ["compare.md"]
        print(f"[eval] wrote {run_.dir / 'compare.md'}", flush=True)
