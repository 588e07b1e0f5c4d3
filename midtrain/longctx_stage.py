"""Long-context extension, the first part of mid-training (longctx-32k, then longctx-64k): a nanotron run that
starts from the previous stage's last checkpoint (weights only, a new optimizer and schedule) with the recipe's
larger RoPE theta (`model.rope_theta`: 1.5M for 32k, 5M for 64k in the published recipe), its longer sequences
(`batch.sequence_length`, with `model.max_position_embeddings`) and its long-context mixture, tensor parallel
where the recipe says so. The 64k stage's hf/ folder may carry a YaRN view (`hf_yarn_factor`), as the model card
runs 128k.

The training itself is the nanotron stage that pretraining runs too (pretrain/train_stage.py: launch checks,
resume from the latest intact checkpoint, one loss log, conversion to hf/, held-out figures); this module is the
stage's entry point, which the runner starts under torchrun in every rank.

Usage: make longctx-32k RECIPE=recipes/tiny   (python -m pipeline run recipes/tiny/longctx-32k.yaml)
"""
from __future__ import annotations

from pretrain import train_stage
from recipes.schema import NanotronStage


def up_to_date(recipe: NanotronStage) -> bool:
    """Completed before with the same recipe and inputs (the launcher's skip decision)."""
    return train_stage.up_to_date(recipe)


def run(recipe: NanotronStage, resume: str = "refuse") -> None:
    """Train the long-context stage in this torchrun rank (every rank runs this)."""
    if recipe.kind != "longctx":
        raise ValueError(f"{recipe.stage}: a {recipe.kind} stage, not a long-context one")
    train_stage.run(recipe, resume)
