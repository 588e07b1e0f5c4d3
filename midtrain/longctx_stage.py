"""Long-context extension stages (longctx-32k, longctx-64k) on nanotron.

Each is a new nanotron run that starts from the previous stage's last weights with a larger RoPE theta
(50k -> 2M -> 5M in the published recipe), longer sequences (4k -> 32k -> 64k) and the long-context
mixture; the training loop, checkpoints, exact resume and HF conversion are those of the pretraining
stages (pretrain.train_stage), which read these differences from the recipe.

Usage: make longctx-32k RECIPE=recipes/tiny   (python -m recipes run recipes/tiny/longctx-32k.yaml)
"""
from pretrain.train_stage import run, up_to_date  # noqa: F401
