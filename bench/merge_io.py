"""Benchmark: wall time of the merge stage's soup (mergekit `run_merge`, a uniform `linear` merge, as
merge/stage.py runs it) against the floor for the same work done with safetensors alone: read every input
file, average the tensors with torch, write one output file.

The inputs are N random SmolLM3 models (transformers `SmolLM3ForCausalLM`, tied embeddings) of a size set by
`--hidden` / `--layers` / `--vocab`, saved as safetensors; both sides run in this process, alternating, best
of `--repeat`. The ratio (mergekit / safetensors) is what mergekit's planning, lazy loading, per-tensor tasks
and model-card / tokenizer writing cost on top of the I/O and the arithmetic.

Usage: .venv/bin/python bench/merge_io.py [--models 4] [--hidden 512] [--layers 8] [--vocab 32000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_models(root: Path, n: int, hidden: int, layers: int, vocab: int) -> list[Path]:
    import torch
    from transformers import SmolLM3Config, SmolLM3ForCausalLM

    config = SmolLM3Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=3 * hidden, num_hidden_layers=layers,
                           num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024,
                           tie_word_embeddings=True, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    out = []
    for i in range(n):
        torch.manual_seed(i)
        folder = root / f"model-{i}"
        SmolLM3ForCausalLM(config).save_pretrained(folder)
        out.append(folder)
    return out


def with_mergekit(models: list[Path], out: Path) -> float:
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    config = {"merge_method": "linear", "parameters": {"normalize": True}, "dtype": "float32",
              "models": [{"model": str(m), "parameters": {"weight": 1.0}} for m in models]}
    t0 = time.perf_counter()
    run_merge(MergeConfiguration.model_validate(config), str(out), MergeOptions(copy_tokenizer=False, quiet=True))
    return time.perf_counter() - t0


def with_safetensors(models: list[Path], out: Path) -> float:
    from safetensors.torch import load_file, save_file

    t0 = time.perf_counter()
    total = None
    for m in models:
        tensors = load_file(m / "model.safetensors")
        total = tensors if total is None else {k: total[k] + v for k, v in tensors.items()}
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: (v / len(models)).contiguous() for k, v in total.items()}, out / "model.safetensors")
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=4)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = make_models(root, a.models, a.hidden, a.layers, a.vocab)
        size = sum(f.stat().st_size for m in models for f in m.glob("*.safetensors")) / 2**20
        times = {"mergekit": [], "safetensors": []}
        for i in range(a.repeat):
            for name, fn in (("mergekit", with_mergekit), ("safetensors", with_safetensors)):
                out = root / f"out-{name}-{i}"
                times[name].append(fn(models, out))
                shutil.rmtree(out)
        best = {k: min(v) for k, v in times.items()}
        print(f"{a.models} models, {size:.0f} MiB of safetensors in total")
        for k, v in best.items():
            print(f"{k:12s} best of {a.repeat}: {v:.3f} s  ({size / v:.0f} MiB/s read)")
        print(f"ratio mergekit / safetensors: {best['mergekit'] / best['safetensors']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
