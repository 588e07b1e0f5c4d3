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

# isort: split
import pretrain.nanotron_compat  # noqa: F401  (makes nanotron importable; CPU runtime without CUDA)

# isort: split
import torch
from nanotron.config import (
    CheckpointsArgs,
    Config,
    ExistingCheckpointInit,
    GeneralArgs,
    LoggingArgs,
    LRSchedulerArgs,
    ModelArgs,
    OptimizerArgs,
    ParallelismArgs,
    RandomInit,
    TokenizerArgs,
    TokensArgs,
)
from nanotron.parallel.tensor_parallel.nn import TensorParallelLinearMode

from recipes.derive import derived
from recipes.schema import NanotronStage
from smollm3.hf_config import SmolLM3Config


def nanotron_config(r: NanotronStage, *, checkpoints_dir: Path, token_ids: dict, resume_from: Optional[Path] = None,
                    init_weights: Optional[Path] = None, tokenizer_path: Optional[str] = None) -> Config:
    p, b, o, s = r.parallelism, r.batch, r.optimizer, r.lr_schedule
    st = derived(r)
    cuda = torch.cuda.is_available()
    return Config(
        general=GeneralArgs(project=r.name, run=r.stage, seed=r.seed),
        parallelism=ParallelismArgs(dp=p.dp, pp=p.pp, tp=p.tp, pp_engine=p.pp_engine,
                                    tp_mode=TensorParallelLinearMode[p.tp_mode.upper()],
                                    tp_linear_async_communication=p.tp_linear_async_communication and cuda),
        model=ModelArgs(model_config=SmolLM3Config.from_recipe(r.model, token_ids, p.recompute_layer),
                        init_method=ExistingCheckpointInit(path=Path(init_weights)) if init_weights
                        else RandomInit(std=r.model.init_std),
                        dtype=getattr(torch, r.model.dtype)),
        tokenizer=TokenizerArgs(tokenizer_name_or_path=tokenizer_path, tokenizer_max_length=b.sequence_length),
        checkpoints=CheckpointsArgs(checkpoints_path=Path(checkpoints_dir), checkpoint_interval=r.checkpoints.interval,
                                    resume_checkpoint_path=Path(resume_from) if resume_from else None,
                                    save_initial_state=False),
        logging=LoggingArgs(log_level="info", log_level_replica="warning",
                            iteration_step_info_interval=r.log_interval),
        tokens=TokensArgs(sequence_length=b.sequence_length, train_steps=st.last_step,
                          micro_batch_size=b.micro_batch_size,
                          batch_accumulation_per_replica=st.grad_accum),
        optimizer=OptimizerArgs(
            zero_stage=p.zero_stage, weight_decay=o.weight_decay, clip_grad=o.clip_grad,
            # nanotron rejects fp32 accumulation buffers on top of fp32 weights
            accumulate_grad_in_fp32=o.accumulate_grad_in_fp32 and r.model.dtype != "float32",
            adam_eps=o.eps, adam_beta1=o.beta1, adam_beta2=o.beta2, torch_adam_is_fused=cuda,
            learning_rate_scheduler=LRSchedulerArgs(
                learning_rate=o.lr, lr_warmup_steps=s.warmup_steps, lr_warmup_style=s.warmup_style,
                lr_decay_style=s.decay_style, lr_decay_starting_step=st.decay_start_step,
                lr_decay_steps=st.decay_steps, min_decay_lr=s.min_lr)),
    )
