"""The pipeline's eval stage: score every Hugging Face checkpoint the pipeline produced with lighteval.

Each model-producing stage leaves a complete HF folder at `runs/<recipe>/<stage>/hf`. Pretraining and
long-context checkpoints get the recipe's `base_suite`; post-trained ones (sft, apo, merge) get the
`instruct_suite` once per system prompt (`/think`, `/no_think`); the mid-trained model (pure reasoning, no
dual mode) gets the instruct suite without one. Results go to `runs/<recipe>/eval/<stage>[-<mode>]/`, and
`runs/<recipe>/eval/compare.md` puts every checkpoint side by side with the published SmolLM3 numbers.

Usage: python -m pipeline run recipes/tiny/eval.yaml      (or `make eval`)
"""
from __future__ import annotations

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


def jobs(r: EvalStage, found) -> list[tuple[str, object, str, str | None]]:
    """(label, model folder, suite, system prompt) for each evaluation to run."""
    out = []
    for stage, hf in found:
        if stage in BASE_KINDS:
            out.append((stage, hf, r.base_suite, None))
        elif stage in DUAL_MODE:
            out += [(f"{stage}{p.replace('/', '-')}", hf, r.instruct_suite, p) for p in r.system_prompts]
        else:
            out.append((stage, hf, r.instruct_suite, None))
    return out


def run(r: EvalStage) -> None:
    from eval.compare import compare
    from eval.run import run_eval

    found = checkpoints(r.run)
    with StageRun(r, inputs=[hf.parent for _, hf in found]) as run_:
        if run_.skip:
            return
        if not found:
            print(f"[eval] no completed stage of {r.run} has an hf/ folder yet: nothing to score", flush=True)
            return
        results = []
        for i, (label, hf, suite, prompt) in enumerate(jobs(r, found), 1):
            print(f"[eval] {i}: {label} on suite {suite}" + (f" with system prompt {prompt}" if prompt else ""),
                  flush=True)
            out = run_.dir / label
            scores = run_eval(str(hf), suite, out, max_samples=r.max_samples, system_prompt=prompt,
                              backend=r.backend, context_lengths=r.context_lengths)
            run_.metrics[label] = scores
            results.append((label, out))
        (run_.dir / "compare.md").write_text(compare([str(p) for _, p in results], [lbl for lbl, _ in results]))
        run_.outputs += [lbl for lbl, _ in results] + ["compare.md"]
        print(f"[eval] wrote {run_.dir / 'compare.md'}", flush=True)
