"""Mid-training: long-context extension on nanotron (longctx_stage.py: longctx-32k, longctx-64k, a RoPE theta
and sequence-length change over pretraining's nanotron stage) and reasoning mid-training on TRL (stage.py, on the
shared runner posttrain/trl_stage.py)."""
