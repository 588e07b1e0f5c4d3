"""The synth stage (`make synth`): a teacher model answers a prompt set in the recipe's mode (think, as the
SmolLM3 authors had Qwen3-32B do), and the answers become conversations for the SFT mixture
(`dataset: stage:synth`) and, reused by the preference stage, chosen / rejected answers.

- prompts: the recipe's `prompts` datasets (alignment-handbook mixture semantics, posttrain/mixture.py); the
  prompt is the conversation up to its first user turn (a system message before it is kept);
- each prompt has a stable id (its source id, else a hash of its text); `test_fraction` of the ids (by hash)
  form the `test` split, held out from SFT training;
- generation: posttrain/generate.py, batched, the recipe's sampling settings, progress with rate and ETA;
- output: `runs/<run>/synth/data/{train,test}.jsonl`, one record per prompt: prompt_id, messages (prompt and
  the teacher's answer), chat_template_kwargs (enable_thinking from the mode), mode, model, revision,
  teacher_id (the teacher stage's manifest hash, or model@revision), settings. Records are appended and
  flushed batch by batch to `records.jsonl`: a killed run, run again, generates only the prompts that have
  no record yet from the same teacher, settings and mode (resumable), then the splits are written.

Usage: make synth RECIPE=recipes/tiny   (python -m pipeline run recipes/tiny/synth.yaml)
"""
from __future__ import annotations

import hashlib
import json
import os
import zlib
from pathlib import Path

from recipes.loader import RecipeError, display
from rundir import StageRun, input_record


def teacher(r):
    """The teacher: `teacher.from` when set, else the `hf/` folder of the stage `teacher_from` names."""
    from posttrain.trl_stage import find_model

    return find_model(r, r.teacher, r.teacher_from, ("teacher.from", "teacher_from"))


def prompt_of(messages: list[dict]) -> list[dict]:
    """The conversation up to and including its first user turn."""
    for i, m in enumerate(messages):
        if m["role"] == "user":
            return [dict(role=x["role"], content=x["content"]) for x in messages[:i + 1]]
    return []


def prompt_key(prompt: list[dict]) -> str:
    """64 bits of the prompt's SHA-256: about 2e-9 odds of any collision among Tulu 3's 272k prompts (the 32-bit
    crc32 it replaces expected ~9, each silently dropping a prompt)."""
    return hashlib.sha256(json.dumps(prompt, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def prompt_id(example: dict, prompt: list[dict]) -> str:
    """The example's own `id` when it has one, else `p` + the prompt's key."""
    return str(example.get("id") or f"p{prompt_key(prompt)}")


def is_test(pid: str, fraction: float) -> bool:
    return fraction > 0 and zlib.crc32(pid.encode()) % 10_000 < fraction * 10_000


def prompts(r) -> list[tuple[str, list[dict], dict]]:
    """(prompt id, prompt, the example) of each distinct prompt of the recipe's `prompts`: from each example's
    `messages`, or its `chosen` conversation (a preference dataset's)."""
    from posttrain.mixture import mixture

    rows, seen, repeated = [], {}, 0
    for ex in mixture(r, datasets=r.prompts):
        p = prompt_of(ex["messages"] if "messages" in ex else ex["chosen"])  # or a preference dataset's conversation
        if not p:
            continue
        pid = prompt_id(ex, p)
        if pid in seen and seen[pid] != p:  # one dataset id on two different prompts: both kept
            pid = f"{pid}-{prompt_key(p)[:8]}"
        if pid in seen:
            repeated += 1  # the same prompt again: answered once
            continue
        seen[pid] = p
        rows.append((pid, p, ex))
    if not rows:
        raise RecipeError(r.file_of("prompts"), "prompts", "no conversation with a user turn")
    if repeated:
        print(f"[{r.stage}] {repeated} repeated prompts answered once ({len(rows)} distinct)", flush=True)
    return rows


def read_records(path: Path) -> dict:
    """{prompt_id: record} of the complete lines of records.jsonl (a line cut by a kill is dropped)."""
    out = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            out[rec["prompt_id"]] = rec
    return out


def drop_cut_line(path: Path) -> None:
    """A kill can leave the last line of a jsonl file without its newline: cut it off, so that the next append
    starts a line of its own instead of gluing a record onto it."""
    if path.is_file():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)


def write_jsonl(path: Path, rows) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)


def check_backend(r) -> None:
    from posttrain.generate import vllm_available

    if r.backend == "vllm" and not vllm_available():
        raise RecipeError(r.file_of("backend"), "backend", "vllm is not installed (requirements-gpu.txt): install "
                          "it or set backend=transformers")


def answer_all(r, found, from_stage: bool, todo_all, records_file: Path, label: str,
               template: str = None) -> tuple[dict, int]:
    """Every prompt of `todo_all` answered by the model `found` (find_model's triple; `from_stage`: it is a
    pipeline stage's output) in the recipe's mode and sampling settings: ({prompt_id: record}, how many were
    generated now). Records already in `records_file` from the same model, settings and mode are kept; the
    others are generated and appended batch by batch (flushed: a kill loses at most the batch in flight).
    `template`: a chat template for a model whose tokenizer has none."""
    from posttrain.generate import Sampling, generate_batches

    model, revision, recorded = found
    settings = {"temperature": r.sampling.temperature, "top_p": r.sampling.top_p,
                "max_new_tokens": r.sampling.max_new_tokens, "seed": r.seed, "backend": r.backend}
    # the model's identity: the manifest hash of the stage it comes from (a rebuilt model invalidates the
    # records, a moved run directory does not), else the model id or folder and its revision
    ident = (input_record(recorded)["manifest_sha256"] if from_stage else None) or f"{model}@{revision}"
    done = {k: v for k, v in read_records(records_file).items()
            if v.get("teacher_id") == ident and v.get("settings") == settings and v.get("mode") == r.mode}
    todo = [(pid, p) for pid, p, _ in todo_all if pid not in done]
    # each prompt's place in the whole list: answers are written batch by batch, so what is left after a kill
    # starts at a batch boundary and each batch is sampled with the seed it had in the uninterrupted run
    positions = [i for i, (pid, _, _) in enumerate(todo_all) if pid not in done]
    print(f"[{label}] {len(todo_all)} prompts, {len(done)} already answered by {model}: generating {len(todo)}",
          flush=True)
    kwargs = {"enable_thinking": r.mode == "think"}
    sampling = Sampling(r.sampling.temperature, r.sampling.top_p, r.sampling.max_new_tokens, r.seed)
    drop_cut_line(records_file)
    with open(records_file, "a") as f:
        for start, answers in generate_batches(model, [p for _, p in todo], [kwargs] * len(todo), sampling,
                                               r.batch_size, backend=r.backend, revision=revision, label=label,
                                               template=template, positions=positions,
                                               tensor_parallel_size=r.tensor_parallel_size):
            for (pid, p), answer in zip(todo[start:start + len(answers)], answers):
                rec = {"prompt_id": pid, "messages": p + [{"role": "assistant", "content": answer}],
                       "chat_template_kwargs": kwargs, "mode": r.mode, "model": model, "revision": revision,
                       "teacher_id": ident, "settings": settings}
                done[pid] = rec
                f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
    return done, len(todo)


def run(r) -> None:
    found = teacher(r)
    check_backend(r)
    todo_all = prompts(r)
    with StageRun(r, inputs=[found[2]] if found[2] else []) as run_:
        if run_.skip:
            return
        data = run_.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        done, generated = answer_all(r, found, r.teacher is None, todo_all, run_.dir / "records.jsonl", "synth")
        order = [pid for pid, _, _ in todo_all]
        splits = {"train": [done[p] for p in order if not is_test(p, r.test_fraction)],
                  "test": [done[p] for p in order if is_test(p, r.test_fraction)]}
        for split, rows in splits.items():
            write_jsonl(data / f"{split}.jsonl", rows)
        opened = sum(rec["messages"][-1]["content"].lstrip().startswith("<think>") for rec in done.values())
        closed = sum("</think>" in rec["messages"][-1]["content"] for rec in done.values())
        run_.outputs += ["data/train.jsonl", "data/test.jsonl", "records.jsonl"]
        run_.metrics.update(prompts=len(order), generated=generated, reused=len(order) - generated,
                            train=len(splits["train"]), test=len(splits["test"]), opens_think=opened / len(order),
                            closes_think=closed / len(order), teacher=found[0])
        print(f"[synth] {len(splits['train'])} train / {len(splits['test'])} test conversations in {display(data)}; "
              f"{opened}/{len(order)} open a think block, {closed} close it", flush=True)
