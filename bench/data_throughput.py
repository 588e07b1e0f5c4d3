"""Throughput of the data stage's tokenization step vs the raw tokenizer, same documents, same processes.

  .venv/bin/python bench/data_throughput.py [--mb 12] [--workers 2]

Project step: the data stage's `3_tokenize` pipeline (datatrove JsonlReader > LengthFilter >
DocumentTokenizer with eos and document shuffling, writing .ds / .ds.index), on LocalPipelineExecutor with
`workers` tasks, wall clock of the executor run (process start, reading, writing and shuffling included).
Baseline: `tokenizers.Tokenizer.encode_batch` on the same documents, already in memory, in `workers`
processes (one tokenizer thread each, like the datatrove workers), wall clock from a common start.
Documents: the tiny recipe's builtin corpora, repeated up to --mb megabytes. Tokenizer: the tiny BPE
(trained here on those corpora, 4,096 tokens).

Two measures, each the best of --repeat runs (the two kinds of run alternate):
- CPU throughput: tokens per CPU-second summed over the processes. For the data stage, all the CPU of
  the executor run (its worker processes, its manager and the parent); for the baseline only the
  encode_batch loop. Robust on a shared machine, and strict for the data stage.
- wall-clock throughput: tokens per second of elapsed time (noisy when other jobs share the CPUs).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per process in both measurements


def corpus(mb: float) -> list[str]:
    from pretrain.data import corpora

    base = [d["text"] for n in sorted(corpora.BUILTINS) for d in corpora.documents(n)]
    out, size, rep = [], 0, 0
    while size < mb * 1e6:
        for t in base:
            t = t if rep == 0 else f"{t}\n# copy {rep}\n"
            out.append(t)
            size += len(t)
            if size >= mb * 1e6:
                break
        rep += 1
    return out


def train_tokenizer(texts: list[str], path: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from pretrain.data.tokenizer import SPECIAL_TOKENS

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=4096, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    tok.save(str(path))


def _raw_worker(args):
    tok_file, shard_file, barrier_time = args
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tok_file)
    texts = [json.loads(line)["text"] for line in open(shard_file)]
    while time.time() < barrier_time:  # all workers start together
        time.sleep(0.001)
    n, cpu0 = 0, time.process_time()
    for i in range(0, len(texts), 1000):  # batches of 1000, as the data stage uses
        n += sum(len(e.ids) for e in tok.encode_batch(texts[i:i + 1000]))
    return n, time.time(), time.process_time() - cpu0


def raw(tok_file: str, shards: list[Path]) -> tuple[int, float, float]:
    ctx = mp.get_context("fork")
    with ctx.Pool(len(shards)) as pool:
        start = time.time() + 2.0
        res = pool.map(_raw_worker, [(tok_file, str(s), start) for s in shards])
    return sum(r[0] for r in res), max(r[1] for r in res) - start, sum(r[2] for r in res)


def _cpu() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def project(tok_file: str, folder: Path, work: Path, workers: int) -> tuple[int, float]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.tokens import DocumentTokenizer

    from pretrain.data.blocks import LengthFilter

    pipeline = [JsonlReader(str(folder), glob_pattern="*.jsonl", add_file_path=False), LengthFilter(64, None),
                DocumentTokenizer(str(work / "tokenized"), tokenizer_name_or_path=tok_file,
                                  eos_token="<|end_of_text|>", save_filename="bench", shuffle_documents=True, seed=6,
                                  batch_size=1000)]
    ex = LocalPipelineExecutor(pipeline, tasks=workers, workers=workers, logging_dir=str(work / "logs"),
                               start_method="fork")
    t0, c0 = time.time(), _cpu()
    ex.run()
    dt, cpu = time.time() - t0, _cpu() - c0
    tokens = sum(os.path.getsize(f) // 2 for f in (work / "tokenized").glob("*.ds"))
    return tokens, dt, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=12.0, help="megabytes of text (default 12)")
    ap.add_argument("--workers", type=int, default=2, help="processes in both measurements (default 2)")
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs (default 2)")
    args = ap.parse_args()
    texts = corpus(args.mb)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        tok_file = d / "tokenizer.json"
        train_tokenizer(texts[: len(texts) // 4], tok_file)
        shards = [d / "docs" / f"{i:05d}.jsonl" for i in range(args.workers)]
        shards[0].parent.mkdir()
        files = [open(s, "w") for s in shards]
        for i, t in enumerate(texts):
            files[i % args.workers].write(json.dumps({"text": t, "id": str(i)}) + "\n")
        for f in files:
            f.close()
        print(f"{len(texts):,} documents, {sum(map(len, texts)) / 1e6:.1f} MB, {args.workers} processes", flush=True)
        best = {"raw": [0.0, 0.0], "proj": [0.0, 0.0]}  # [wall tokens/s, cpu tokens/s]
        for r in range(args.repeat):
            order = ("raw", "proj") if r % 2 == 0 else ("proj", "raw")
            for kind in order:
                if kind == "raw":
                    n, wall, cpu = raw(str(tok_file), shards)
                    what = "raw encode_batch"
                else:
                    n, wall, cpu = project(str(tok_file), shards[0].parent, d / f"run{r}", args.workers)
                    what = "data stage (eos included)"
                best[kind] = [max(best[kind][0], n / wall), max(best[kind][1], n / cpu)]
                print(f"run {r + 1}: {what}: {n:,} tokens, {wall:.2f}s wall, {cpu:.2f} CPU-s", flush=True)
        (rw, rc), (pw, pc) = best["raw"], best["proj"]
        print(f"raw tokenizers encode_batch: {rw:,.0f} tokens/s wall, {rc:,.0f} tokens/CPU-s")
        print(f"data stage tokenize step:    {pw:,.0f} tokens/s wall, {pc:,.0f} tokens/CPU-s")
        print(f"ratio (CPU throughput): {pc / rc:.2f}")
        print(f"ratio (wall clock):     {pw / rw:.2f}")


if __name__ == "__main__":
    main()
