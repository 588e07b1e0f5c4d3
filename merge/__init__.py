"""Model merging with mergekit: a uniform soup of the APO checkpoints, then a linear merge of the soup with a
long-context (mid-training) checkpoint (SmolLM3 blog: weights 0.9 / 0.1). See merge/stage.py."""
