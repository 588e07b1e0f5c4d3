"""What the interleaved step benchmarks (train_step.py, trl_step.py) print: per round the median step time of
each side and their ratio, then each side's median over every round and the median ratio with its spread.

Usage: from rounds import report; report(rounds, ("transformers + AdamW", "nanotron (this repo)"), target=1.0)
"""
from __future__ import annotations

import statistics


def report(rounds: list, names: tuple, target: float, ratio_name: str) -> float:
    """`rounds`: [(baseline CPU seconds per step, measured CPU seconds per step)]; returns the median ratio."""
    ratios = []
    for r, (base, measured) in enumerate(rounds, 1):
        ratios.append(statistics.median(measured) / statistics.median(base))
        print(f"round {r}: {names[0]} {statistics.median(base) * 1e3:6.1f} ms, {names[1]} "
              f"{statistics.median(measured) * 1e3:6.1f} ms CPU per step: {ratios[-1]:.2f}")
    width = max(map(len, names))
    for name, side in zip(names, (0, 1)):
        print(f"{name:<{width}} : {statistics.median([t for rnd in rounds for t in rnd[side]]) * 1e3:8.1f} ms CPU "
              "per step (median)")
    print(f"ratio {ratio_name}, median of {len(ratios)} rounds: {statistics.median(ratios):.2f} "
          f"(spread {min(ratios):.2f}-{max(ratios):.2f}; target <= {target})")
    return statistics.median(ratios)
