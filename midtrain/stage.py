"""Reasoning mid-training on TRL: `SFTTrainer` on reasoning conversations, plain ChatML, packed, from the
last long-context model (huggingface/alignment-handbook recipes/smollm3/sft/mid.yaml @ 925acdf). The shared
machinery (input model, config, data, held-out loss, checkpoints, resume, output folder, manifest) is
posttrain/trl_stage.py.

Usage: make midtrain RECIPE=recipes/tiny   (python -m pipeline run recipes/tiny/midtrain.yaml)
"""
from __future__ import annotations

from posttrain import trl_stage


def build_trainer(model, tokenizer, train, heldout, config, callbacks):
    from trl import SFTTrainer

    return SFTTrainer(model=model, args=config, train_dataset=train, eval_dataset=heldout,
                      processing_class=tokenizer, callbacks=callbacks)


def run(recipe, resume: str = "refuse") -> None:
    trl_stage.run(recipe, build_trainer, resume)
