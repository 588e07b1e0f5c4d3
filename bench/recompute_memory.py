"""Benchmark: peak memory of one training forward + backward with and without activation recompute
(`parallelism.recompute_layer`), at the tiny long-context shape (the tiny longctx-64k stage: 1,024-token
sequences of packed documents from its mixture, the tiny SmolLM3, fp32, tp=1).

Each measurement runs in a fresh process (the peak resident set size of a process only grows): it builds
the model, records its resident memory, runs one forward and backward of `--micro-batch` sequences, and
reports the peak resident memory above that baseline (what activations and gradients cost). Printed as
the ratio with / without recompute. Needs the tiny data (`make data`).

Usage: .venv/bin/python bench/recompute_memory.py [--micro-batch 4] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def measure(recompute: bool, micro_batch: int) -> dict:
    """One forward + backward in this process: peak RSS above the post-build baseline, in MiB."""
    sys.path.insert(0, str(REPO / "tests"))
    import nanotron_harness as H  # a 1-process gloo world, as the tests use
    import torch
    from nanotron.parallel import ParallelContext

    from pretrain.data.mixture import MixtureSampler
    from pretrain.dataloader import micro_batch as make_batch
    from pretrain.smollm3_nanotron import build_smollm3
    from pretrain.train_checks import token_ids
    from recipes.loader import load_stage
    from smollm3.hf_config import SmolLM3Config

    torch.set_num_threads(1)
    recipe = load_stage(REPO / "recipes/tiny/longctx-64k.yaml", ["parallelism.tp=1", "parallelism.dp=1"])
    ids, _ = token_ids(recipe)
    batch = make_batch(MixtureSampler.from_stage(recipe, eos_id=ids["eos"]), 0, micro_batch)
    with H.single_process_world():
        pc = ParallelContext(tensor_parallel_size=1, pipeline_parallel_size=1, data_parallel_size=1)
        config = SmolLM3Config.from_recipe(recipe.model, ids, recompute_layer=recompute)
        model = build_smollm3(config, pc).train()
        init = SimpleNamespace(model=SimpleNamespace(init_method=SimpleNamespace(std=recipe.model.init_std)),
                               general=SimpleNamespace(seed=recipe.seed))
        model.init_model_randomly(init)  # the recipe's initialisation, the same weights in both processes
        baseline = rss_kib()
        loss = model(**batch)["loss"]
        loss.backward()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"recompute": recompute, "tokens": int(batch["input_ids"].numel()), "loss": float(loss),
            "peak_above_model_mib": (peak - baseline) / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--micro-batch", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child == "on", args.micro_batch)))
        return 0
    best = {}
    for _ in range(args.repeat):
        for mode in ("off", "on"):  # alternating, each in a fresh process
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--micro-batch", str(args.micro_batch)],
                                 capture_output=True, text=True, check=True, cwd=REPO)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            key = r["recompute"]
            if key not in best or r["peak_above_model_mib"] < best[key]["peak_above_model_mib"]:
                best[key] = r
    off, on = best[False], best[True]
    assert off["loss"] == on["loss"], (off["loss"], on["loss"])  # the same computation
    print(f"batch: {args.micro_batch} x 1,024 tokens ({off['tokens']:,}), tiny longctx-64k model, fp32, tp=1; "
          f"best of {args.repeat}")
    print(f"peak memory above the model, no recompute : {off['peak_above_model_mib']:8.1f} MiB")
    print(f"peak memory above the model, recompute    : {on['peak_above_model_mib']:8.1f} MiB")
    print(f"ratio recompute / no recompute: {on['peak_above_model_mib'] / off['peak_above_model_mib']:.2f} "
          f"(loss {off['loss']:.4f} in both)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
