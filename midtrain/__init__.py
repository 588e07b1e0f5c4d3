"""Mid-training: reasoning mid-training on TRL (midtrain/stage.py, on the shared runner posttrain/trl_stage.py).

The long-context stages (longctx-32k, longctx-64k) are mid-training too, but they are nanotron runs: the
runner points the `longctx` kind at the pretraining stage module (pretrain/train_stage.py), which reads the
larger RoPE theta, the longer sequences and the long-context mixture from the recipe.
"""
