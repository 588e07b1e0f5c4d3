"""`make bench`: run every benchmark under bench/ and rewrite bench/results.md with what they printed, their
ratios beside their targets, the machine they ran on (CPU model, cores, memory, Python, torch and library
versions) and the date. What each benchmark measures, and the analysis of earlier runs, is in bench/README.md.

The CPU benchmarks need the tiny data stage (its tokenizer and tokenized sources): it is run first (a few
seconds; skipped when complete). gpu_throughput runs only where CUDA is available, and is listed as not run
otherwise.

Usage: .venv/bin/python bench/run_all.py [--out bench/results.md]
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# name -> (arguments, target): each benchmark with the settings its results are quoted at; `script:variant` runs
# bench/<script>.py again with other arguments
BENCHMARKS = {
    "data_throughput": (["--mb", "16", "--repeat", "3"], "data stage / raw encode_batch >= 0.8"),
    "data_startup": (["--repeat", "7"], "a rank's data startup, 20x / 1x the data <= 1.5"),
    "train_step": (["--repeats", "7", "--block", "4"], "nanotron / transformers <= 1.0"),
    "recompute_memory": (["--micro-batch", "4", "--repeat", "3"], "recompute / no recompute < 1"),
    "trl_step": (["--repeats", "7", "--block", "4"], "TRL / plain <= 1.2; packing efficiency >= 0.95"),
    "trl_step:smollm3": (["--shape", "smollm3", "--repeats", "5", "--block", "2", "--warmup", "2"],
                         "TRL / plain <= 1.2 at SmolLM3-3B's LM-head share"),
    "merge_io": (["--models", "4", "--repeat", "3"], "mergekit / safetensors, no target (measured)"),
    "gpu_throughput": ([], "MFU >= 40% (GPU only)"),
}
LIBRARIES = ("torch", "transformers", "trl", "nanotron", "datatrove", "mergekit", "lighteval", "tokenizers")


def machine() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem = next((int(line.split()[1]) / 2**20 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    libs = ", ".join(f"{name} {version(name)}" for name in LIBRARIES)
    return [f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}", f"- CPU: {cpu}, {os.cpu_count()} cores; memory "
            f"{mem:.1f} GiB; load average before the runs {os.getloadavg()[0]:.2f}",
            f"- Python {platform.python_version()}; {libs}"]


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "bench" / "results.md"))
    a = p.parse_args(argv)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    data = subprocess.run([sys.executable, "-m", "pipeline", "run", "recipes/tiny/data.yaml"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    if data.returncode:
        print(data.stderr[-2000:], file=sys.stderr)
        return data.returncode
    lines = ["# Benchmarks", "", "Written by `make bench` (bench/run_all.py); what each measures and the analysis "
             "of earlier runs: bench/README.md.", "", *machine(), "", "| benchmark | ratios | target | time |",
             "|---|---|---|---:|"]
    sections, t_all = [], time.time()
    for i, (name, (args, target)) in enumerate(BENCHMARKS.items(), 1):
        if name == "gpu_throughput" and not cuda():
            lines.append(f"| {name} | not run: no CUDA GPU on this machine | {target} | |")
            continue
        print(f"[bench] {i}/{len(BENCHMARKS)} {name} ({time.time() - t_all:.0f}s so far)", flush=True)
        t0 = time.time()
        script = name.split(":")[0]
        out = subprocess.run([sys.executable, str(REPO / "bench" / f"{script}.py"), *args], cwd=REPO, env=env,
                             capture_output=True, text=True)
        seconds = time.time() - t0
        ratios = [" ".join(line.split()) for line in out.stdout.splitlines()
                  if re.search(r"\bratio\b|efficiency", line)]
        status = "; ".join(ratios) if out.returncode == 0 else f"FAILED (exit {out.returncode})"
        lines.append(f"| {name} | {status} | {target} | {seconds:.0f} s |")
        text = out.stdout if out.returncode == 0 else out.stdout + out.stderr[-3000:]
        sections += ["", f"## {name}", "", f"`.venv/bin/python bench/{script}.py {' '.join(args)}`", "", "```",
                     text.strip(), "```"]
    Path(a.out).write_text("\n".join(lines + sections) + "\n")
    print(f"[bench] wrote {a.out} in {time.time() - t_all:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
