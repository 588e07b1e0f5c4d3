"""Text rendering of the planner rows (`python -m recipes plan`)."""
from __future__ import annotations


def _num(x, unit=""):
    if x is None:
        return "-"
    if isinstance(x, float) and x < 1000:
        return f"{x:.3g}{unit}"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.4g}{suffix}{unit}"
    return f"{x}{unit}"


def _int(x):
    return "-" if x is None else f"{x:,}"


def format_plan(rows: list[dict], *, mfu: float, peak: float, gpu: str) -> str:
    cols = [("stage", lambda r: r["stage"]), ("seq", lambda r: _int(r["seq_len"])),
            ("mbs", lambda r: _int(r["micro_batch_size"])), ("accum", lambda r: _int(r["grad_accum"])),
            ("dp/tp/pp/cp", lambda r: "-" if r["dp"] is None else f"{r['dp']}/{r['tp']}/{r['pp']}/{r['cp']}"),
            ("gpus", lambda r: _int(r["gpus"])), ("batch seqs", lambda r: _int(r["global_batch_seqs"])),
            ("batch tokens", lambda r: "-" if r["global_batch_tokens"] is None else f"{r['global_batch_tokens']:,}"),
            ("steps", lambda r: "-" if r["steps"] is None else f"{r['steps']:,}"),
            ("tokens", lambda r: _num(r["tokens"])), ("params", lambda r: _num(r["params"])),
            ("rope theta", lambda r: _num(r["rope_theta"])),
            ("lr", lambda r: "-" if r["lr"] is None else f"{r['lr']:g}"),
            ("FLOPs", lambda r: "-" if r["flops"] is None else f"{r['flops']:.3g}"),
            ("GPU-h", lambda r: "-" if r["gpu_hours"] is None else f"{r['gpu_hours']:,.0f}"),
            ("mem GB/GPU", lambda r: "-" if r["memory_gb_per_gpu"] is None else f"{r['memory_gb_per_gpu']:.1f}")]
    table = [[name for name, _ in cols]] + [[f(r) for _, f in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(f"GPU-hours at MFU {mfu:.0%} of {peak:g} TFLOPS ({gpu}); '-' = set by the data (epochs), not the "
                 f"recipe.")
    for r in rows:
        if r.get("fits_gpu_memory") is False:
            lines.append(f"! {r['stage']}: the estimate, {r['memory_gb_per_gpu']:.1f} GiB per GPU, exceeds "
                         f"cluster.gpu_memory_gb ({r['gpu_memory_gb']:g})")
    disk = [(r["stage"], r["checkpoints"]) for r in rows if r.get("checkpoints")]
    if disk:
        lines.append("Checkpoints on disk (weights in the model dtype + fp32 master weights and Adam moments):")
        for stage, c in disk:
            keep = "every one kept" if c["keep_last"] is None else f"keep_last {c['keep_last']}"
            lines.append(f"  {stage:<16} {c['checkpoints_written']:,} written x {c['checkpoint_gb']:,.1f} GB, {keep}: "
                         f"{c['checkpoints_kept']:,} on disk = {c['checkpoint_disk_gb'] / 1000:,.2f} TB")
        lines.append(f"  all stages       {sum(c['checkpoint_disk_gb'] for _, c in disk) / 1000:,.2f} TB")
    lines.append("Memory per GPU (GiB): weights + grads + optimizer + activations [with recompute]:")
    for r in rows:
        m = r.get("memory")
        if m:
            lines.append(f"  {r['stage']:<16} {m['weights']:.1f} + {m['grads']:.1f} + {m['optimizer']:.1f} + "
                         f"{m['activations']:.1f} [{m['activations_recompute']:.1f}] = {m['total']:.1f} "
                         f"[{m['total_recompute']:.1f}]")
    return "\n".join(lines)
