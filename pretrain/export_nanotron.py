"""Export a pretraining / long-context stage as a config for the SmolLM3 authors' nanotron.

The authors trained with nanotron's `smollm3` branch (`run_train.py --config-file stage1_8T.yaml`). This
writes the same schema (keys of the published `stage1_8T.yaml`), so a user can run the stage with the
authors' code: `model.model_config` (Qwen2Config with `no_rope_layer`, `_use_doc_masking`, `rope_theta`),
`data_stages` (every stage of the run up to this one, with `dataset_folder` / `dataset_weights`),
`parallelism`, `tokens`, `optimizer.learning_rate_scheduler`, `checkpoints`.

Usage:
  python -m pretrain export-nanotron recipes/smollm3-3b/pretrain-stage1.yaml [key=value ...] [-o stage1.yaml]
      [--data-root s3://bucket/datasets]   # where the tokenized source folders live (default: runs/<recipe>/data)
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import yaml

from recipes.derive import derived
from recipes.loader import RecipeError, display, load_recipe, load_stage
from recipes.schema import NanotronStage
from rundir import runs_root


def _data_stage(r: NanotronStage, data_root: str, start: int) -> dict:
    mixture, tok = r.data.mixture, r.tokenizer
    return {
        "name": mixture.upstream_stage_name or r.stage,
        "start_training_step": start,
        "data": {
            "dataset": {
                "dataset_folder": [f"{data_root.rstrip('/')}/{s.name}" for s in mixture.sources],
                "dataset_weights": [s.weight for s in mixture.sources],
                "tokenizer_name": tok.name_or_path,
                "vocab_size": r.model.vocab_size,
                "token_size_in_bytes": 4 if r.model.vocab_size > 65536 else 2,
                "return_positions": r.model.use_doc_masking,
                "pad_samples_to_global_batch_size": False,
                "use_old_brrr_dataloader": False,
            },
            "num_loading_workers": 0,
            "seed": r.data.seed,
        },
    }


def export(recipe_path: str | Path, overrides=(), data_root: Optional[str] = None) -> dict:
    """The stage at `recipe_path` in the authors' schema; `data_stages` lists every stage of its run up to it."""
    r = load_stage(recipe_path, overrides)
    if not isinstance(r, NanotronStage):
        raise RecipeError(display(recipe_path), "kind", f"must be pretrain or longctx to export (got {r.kind!r})")
    stages = load_recipe(Path(recipe_path).parent, overrides)  # the other stages of the same run
    return to_authors_schema(r, [stages[name] for name in r.steps.stage_starts if name in stages],
                             data_root or str(runs_root() / r.name / "data"))


def to_authors_schema(r: NanotronStage, run_stages: list, data_root: str) -> dict:
    """The one mapping from a nanotron stage recipe to the authors' nanotron config schema."""
    m, p, b, o, s = r.model, r.parallelism, r.batch, r.optimizer, r.lr_schedule
    d = derived(r)
    stages = []
    for other in run_stages:  # every stage of the run up to this one
        stages.append(_data_stage(other, data_root, r.steps.stage_starts[other.stage]))
        if other.stage == r.stage:
            break
    return {
        "checkpoints": {
            "checkpoint_interval": r.checkpoints.interval,
            "checkpoints_path": str(runs_root() / r.name / r.stage / "checkpoints"),
            "checkpoints_path_is_shared_file_system": False,
            "load_lr_scheduler": r.checkpoints.load_lr_scheduler,
            "load_optimizer": r.checkpoints.load_optimizer,
            "resume_checkpoint_path": None,
            "save_final_state": True,
            "save_initial_state": False,
        },
        "data_stages": stages,
        "general": {"benchmark_csv_path": None, "consumed_train_samples": None, "ignore_sanity_checks": True,
                    "project": f"{r.name}", "run": r.stage, "seed": r.seed, "step": None},
        "logging": {"iteration_step_info_interval": r.log_interval, "log_level": "info", "log_level_replica": "info"},
        "model": {
            "ddp_bucket_cap_mb": 50,
            "dtype": m.dtype,
            "init_method": {"std": m.init_std},
            "make_vocab_size_divisible_by": 1,
            "model_config": {
                "_attn_implementation": m.attn_implementation,
                "_fused_rms_norm": True, "_fused_rotary_emb": True, "_use_qkv_packed": True,
                "_use_doc_masking": m.use_doc_masking,
                "attention_bias": m.attention_bias,
                "bos_token_id": r.tokenizer.bos_token_id,
                "eos_token_id": r.tokenizer.eos_token_id,
                "pad_token_id": r.tokenizer.pad_token_id,
                "hidden_act": m.hidden_act,
                "hidden_size": m.hidden_size,
                "initializer_range": m.init_std,
                "intermediate_size": m.intermediate_size,
                "is_qwen2_config": True,
                "max_position_embeddings": m.max_position_embeddings,
                "no_rope_layer": m.no_rope_layer_interval,
                "num_attention_heads": m.num_attention_heads,
                "num_hidden_layers": m.num_hidden_layers,
                "num_key_value_heads": m.num_key_value_heads,
                "rms_norm_eps": m.rms_norm_eps,
                "rope_interleaved": False,
                "rope_scaling": None,
                "rope_theta": m.rope_theta,
                "sliding_window_size": None,
                "tie_word_embeddings": m.tie_word_embeddings,
                "vocab_size": m.vocab_size,
                "z_loss_enabled": False,
                "z_loss_coefficient": 1.0e-5,
                **({"ring_attn_heads_k_stride": 1} if m.attn_implementation == "llama3_ring_attention" else {}),
            },
        },
        "optimizer": {
            "accumulate_grad_in_fp32": o.accumulate_grad_in_fp32,
            "clip_grad": o.clip_grad,
            "learning_rate_scheduler": {
                "learning_rate": o.lr,
                "lr_warmup_steps": s.warmup_steps,
                "lr_warmup_style": s.warmup_style,
                "lr_decay_starting_step": d.decay_start_step,
                "lr_decay_steps": d.decay_steps,
                "lr_decay_style": s.decay_style,
                "min_decay_lr": s.min_lr,
            },
            "optimizer_factory": {"name": "adamW", "adam_beta1": o.beta1, "adam_beta2": o.beta2,
                                  "adam_eps": o.eps, "torch_adam_is_fused": True},
            "weight_decay": o.weight_decay,
            "weight_decay_exclude_named_params": list(o.weight_decay_exclude),
            "zero_stage": p.zero_stage,
        },
        "parallelism": {
            "dp": p.dp, "tp": p.tp, "pp": p.pp, "context_parallel_size": p.cp, "expert_parallel_size": 1,
            "moe_layer_recompute": False, "pp_engine": p.pp_engine, "recompute_layer": p.recompute_layer,
            "tp_linear_async_communication": p.tp_linear_async_communication, "tp_mode": p.tp_mode.upper(),
            "tp_recompute_allgather": True,
        },
        "profiler": None,
        "s3_upload": None,
        "lighteval": None,
        "metrics_logging": {"log_detail_interval": 200, "log_level": 1},
        "tokenizer": {"tokenizer_max_length": b.sequence_length, "tokenizer_name_or_path": r.tokenizer.name_or_path,
                      "tokenizer_revision": None},
        "tokens": {
            "batch_accumulation_per_replica": d.grad_accum,
            "limit_test_batches": 0, "limit_val_batches": 0, "micro_batch_size": b.micro_batch_size,
            "sequence_length": b.sequence_length, "train_steps": r.steps.train_steps, "val_check_interval": 100,
        },
    }


def write(config: dict, out: Optional[str]) -> str:
    text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    if out:
        tmp = Path(out).with_name(f".{Path(out).name}.tmp")
        tmp.write_text(text)
        tmp.replace(out)
    return text
