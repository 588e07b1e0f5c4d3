"""Dual-mode SFT on TRL: `SFTTrainer` on conversations in both modes (/think, /no_think), rendered by the
smollm3 chat template (posttrain/chat_template.jinja) with each example's `chat_template_kwargs`, loss on
the assistant turns only (the template's generation markers), packed, from the mid-trained model
(huggingface/alignment-handbook recipes/smollm3/sft/sft.yaml @ 925acdf). The shared machinery is
posttrain/trl_stage.py; this stage adds the mode-following figures before and after training (posttrain/modes.py).

Usage: make sft RECIPE=recipes/tiny   (python -m pipeline run recipes/tiny/sft.yaml)
"""
from __future__ import annotations

from posttrain import trl_stage
from posttrain.modes import think_rates


def build_trainer(model, tokenizer, train, heldout, config, callbacks):
    from trl import SFTTrainer

    return SFTTrainer(model=model, args=config, train_dataset=train, eval_dataset=heldout,
                      processing_class=tokenizer, callbacks=callbacks)


def run(recipe, resume: str = "refuse") -> None:
    trl_stage.run(recipe, build_trainer, resume, measure=think_rates)
