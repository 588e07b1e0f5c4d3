"""Mid-training: RoPE-theta long-context extension (nanotron) and reasoning mid-training (TRL)."""
