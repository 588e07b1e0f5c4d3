"""A TRL stage's recipe -> TRL 1.16 config (`SFTConfig` for mid-training and SFT, `DPOConfig` for APO).

`FIELDS` is the one table from the recipe's names to TRL's / transformers' (the same meaning unless its
comment says otherwise); gradient accumulation is derived (recipes/derive.py), never typed. On a machine
without CUDA the stage runs in fp32 on the CPU (`use_cpu`); values that need a GPU are refused there rather
than dropped: `bf16` and `use_liger_kernel` (TRL 1.16 still applies Liger's kernels to the model but forces
its fused cross-entropy off: the loss is computed by transformers).

Usage: trl_kwargs(recipe, cuda=False, output_dir=...) -> dict; trl_config(recipe, ...) -> SFTConfig / DPOConfig;
       model_kwargs(recipe, cuda=False) -> from_pretrained's dtype and attn_implementation
"""
from __future__ import annotations

from recipes.derive import derived
from recipes.loader import RecipeError

# recipe field -> TRL / TrainingArguments argument
FIELDS = {
    "lr": "learning_rate",
    "lr_scheduler_type": "lr_scheduler_type",
    "warmup_ratio": "warmup_steps",  # transformers 5 has no warmup_ratio: a float < 1 in warmup_steps is the ratio
    "num_train_epochs": "num_train_epochs",
    "max_length": "max_length",
    "per_device_train_batch_size": "per_device_train_batch_size",
    "max_grad_norm": "max_grad_norm",
    "gradient_checkpointing": "activation_checkpointing",  # transformers 5 name (gradient_checkpointing: deprecated)
    "use_liger_kernel": "use_liger_kernel",
    "bf16": "bf16",
    "save_strategy": "save_strategy",
    "save_total_limit": "save_total_limit",
    "seed": "seed",
    "report_to": "report_to",  # [] -> "none"; TensorBoard logs go to <stage>/tensorboard (TENSORBOARD_LOGGING_DIR)
    "ddp_timeout": "ddp_timeout",
    "dataset_num_proc": "dataset_num_proc",
    "average_tokens_across_devices": "average_tokens_across_devices",
    # gradient_checkpointing_kwargs={"use_reentrant": ...}, under transformers 5's name for it
    "gradient_checkpointing_use_reentrant": "activation_checkpointing_kwargs",
}
SFT_FIELDS = {"packing": "packing", "packing_strategy": "packing_strategy", "padding_free": "padding_free",
              "assistant_only_loss": "assistant_only_loss", "eos_token": "eos_token"}
DPO_FIELDS = {"loss_type": "loss_type", "beta": "beta", "padding_free": "padding_free"}


def trl_kwargs(r, *, cuda: bool, output_dir: str) -> dict:
    """Keyword arguments of the stage's TRL config (see the module doc)."""
    if not cuda:
        for key in ("bf16", "use_liger_kernel"):
            if getattr(r, key):
                raise RecipeError(r.file_of(key), key, "needs a CUDA GPU: set false on this machine (got true)")
    table = {**FIELDS, **(DPO_FIELDS if r.kind == "apo" else SFT_FIELDS)}
    from transformers.integrations import get_available_reporting_integrations

    missing = [name for name in r.report_to if name not in get_available_reporting_integrations()]
    if missing:
        raise RecipeError(r.file_of("report_to"), "report_to", f"{', '.join(missing)} is not installed (pip install "
                          f"{' '.join(missing)}): install it or remove it from report_to (got {r.report_to})")
    if r.gradient_checkpointing_use_reentrant is not None and not r.gradient_checkpointing:
        raise RecipeError(r.file_of("gradient_checkpointing_use_reentrant"), "gradient_checkpointing_use_reentrant",
                          "applies with gradient_checkpointing: true only: set null")
    kw = {trl: getattr(r, field) for field, trl in table.items() if getattr(r, field) is not None}
    if "activation_checkpointing_kwargs" in kw:
        kw["activation_checkpointing_kwargs"] = {"use_reentrant": kw["activation_checkpointing_kwargs"]}
    # every step's loss goes to losses.jsonl; progress is printed by trl_stage
    kw.update(gradient_accumulation_steps=derived(r).grad_accum, output_dir=output_dir,
              max_steps=r.max_steps if r.max_steps is not None else -1, use_cpu=not cuda,
              report_to=list(r.report_to) or "none", logging_steps=1, disable_tqdm=True,
              log_on_each_node=False)  # on several nodes, transformers' own log lines from the main process only
    if r.lr_scheduler_type == "cosine_with_min_lr":
        kw["lr_scheduler_kwargs"] = {"min_lr_rate": r.min_lr_rate}
    elif r.min_lr_rate:
        raise RecipeError(r.file_of("min_lr_rate"), "min_lr_rate", f"applies to cosine_with_min_lr only (got "
                          f"{r.min_lr_rate} with {r.lr_scheduler_type}): set 0")
    if r.save_steps is not None:
        kw["save_steps"] = r.save_steps
    return kw


def model_kwargs(r, *, cuda: bool) -> dict:
    """from_pretrained's dtype and attention for the stage's model: the recipe's `model.dtype` and
    `model.attn_implementation` (the authors: bfloat16, flash_attention_2), refused where they cannot run."""
    import torch

    from pretrain.train_checks import flash_attention_available

    attn = r.model.attn_implementation
    if attn == "llama3_ring_attention":
        raise RecipeError(r.file_of("model.attn_implementation"), "model.attn_implementation", "llama3_ring_attention "
                          "is nanotron's (the long-context stages): a TRL stage takes flash_attention_2 or sdpa")
    if attn == "flash_attention_2" and not flash_attention_available(cuda):
        raise RecipeError(r.file_of("model.attn_implementation"), "model.attn_implementation", "flash_attention_2 "
                          "needs a CUDA GPU and the flash-attn package: set sdpa on this machine")
    return {"dtype": getattr(torch, r.model.dtype), "attn_implementation": attn}


def trl_config(r, *, cuda: bool, output_dir: str):
    from trl import DPOConfig, SFTConfig

    return (DPOConfig if r.kind == "apo" else SFTConfig)(**trl_kwargs(r, cuda=cuda, output_dir=output_dir))
