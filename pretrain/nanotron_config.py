"""A validated pretrain / long-context stage recipe -> nanotron 0.4's Config (built with its own dataclasses).

The stage trains until its last step (`tokens.train_steps`), while the LR schedule is the whole run's:
warmup, then decay from `lr_decay_starting_step` over `lr_decay_steps`, both given explicitly so that the
stage boundary does not move them. Stages 2 and 3 resume the run from the previous stage's last
checkpoint (`checkpoints.resume_checkpoint_path`: weights, optimizer, schedule and step); a long-context
stage starts a new run from the previous stage's weights (`model.init_method.path`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pretrain.nanotron_compat  # noqa: F401  (makes nanotron importable; CPU runtime without CUDA)
import torch
from nanotron.config import (CheckpointsArgs, Config, ExistingCheckpointInit, GeneralArgs, LoggingArgs,
                             LRSchedulerArgs, ModelArgs, OptimizerArgs, ParallelismArgs, RandomInit, TokenizerArgs,
                             TokensArgs)
from nanotron.parallel.tensor_parallel.nn import TensorParallelLinearMode

from pretrain.smollm3_config import SmolLM3Config
from recipes.derive import derived, nanotron_steps
from recipes.schema import NanotronStage

TP_MODES = {"all_reduce": TensorParallelLinearMode.ALL_REDUCE, "reduce_scatter": TensorParallelLinearMode.REDUCE_SCATTER}


def model_config(r: NanotronStage, token_ids: dict) -> SmolLM3Config:
    m = r.model
    return SmolLM3Config(
        bos_token_id=token_ids.get("bos"), eos_token_id=token_ids.get("eos"), pad_token_id=token_ids.get("pad"),
        hidden_act=m.hidden_act, hidden_size=m.hidden_size, intermediate_size=m.intermediate_size,
        num_hidden_layers=m.num_hidden_layers, num_attention_heads=m.num_attention_heads,
        num_key_value_heads=m.num_key_value_heads, vocab_size=m.vocab_size,
        max_position_embeddings=m.max_position_embeddings, rope_theta=m.rope_theta,
        no_rope_layer_interval=m.no_rope_layer_interval, rms_norm_eps=m.rms_norm_eps,
        tie_word_embeddings=m.tie_word_embeddings, initializer_range=m.init_std, use_doc_masking=m.use_doc_masking)


def nanotron_config(r: NanotronStage, *, checkpoints_dir: Path, token_ids: dict, resume_from: Optional[Path] = None,
                    init_weights: Optional[Path] = None, tokenizer_path: Optional[str] = None) -> Config:
    p, b, o, s = r.parallelism, r.batch, r.optimizer, r.lr_schedule
    st = nanotron_steps(r)
    cuda = torch.cuda.is_available()
    return Config(
        general=GeneralArgs(project=r.name, run=r.stage, seed=r.seed),
        parallelism=ParallelismArgs(dp=p.dp, pp=p.pp, tp=p.tp, pp_engine=p.pp_engine, tp_mode=TP_MODES[p.tp_mode],
                                    tp_linear_async_communication=p.tp_linear_async_communication and cuda),
        model=ModelArgs(model_config=model_config(r, token_ids),
                        init_method=ExistingCheckpointInit(path=Path(init_weights)) if init_weights
                        else RandomInit(std=r.model.init_std),
                        dtype=getattr(torch, r.model.dtype)),
        tokenizer=TokenizerArgs(tokenizer_name_or_path=tokenizer_path, tokenizer_max_length=b.sequence_length),
        checkpoints=CheckpointsArgs(checkpoints_path=Path(checkpoints_dir), checkpoint_interval=r.checkpoints.interval,
                                    resume_checkpoint_path=Path(resume_from) if resume_from else None,
                                    save_initial_state=False),
        logging=LoggingArgs(log_level="info", log_level_replica="warning",
                            iteration_step_info_interval=r.log_interval),
        tokens=TokensArgs(sequence_length=b.sequence_length, train_steps=st["last_step"],
                          micro_batch_size=b.micro_batch_size,
                          batch_accumulation_per_replica=derived(r)["grad_accum"]),
        optimizer=OptimizerArgs(
            zero_stage=p.zero_stage, weight_decay=o.weight_decay, clip_grad=o.clip_grad,
            # nanotron rejects fp32 accumulation buffers on top of fp32 weights
            accumulate_grad_in_fp32=o.accumulate_grad_in_fp32 and r.model.dtype != "float32",
            adam_eps=o.eps, adam_beta1=o.beta1, adam_beta2=o.beta2, torch_adam_is_fused=cuda,
            learning_rate_scheduler=LRSchedulerArgs(
                learning_rate=o.lr, lr_warmup_steps=s.warmup_steps, lr_warmup_style=s.warmup_style,
                lr_decay_style=s.decay_style, lr_decay_starting_step=st["decay_start_step"],
                lr_decay_steps=st["decay_steps"], min_decay_lr=s.min_lr)),
    )
