"""Export a pretraining / long-context stage as a config for the SmolLM3 authors' nanotron.

The authors trained with nanotron's `smollm3` branch (`run_train.py --config-file stage1_8T.yaml`). This
writes the same schema (the keys of their configs in huggingface/smollm text/pretraining/smollm3/), so the
five stages run there as a chain, each starting where the previous one stopped:

- `--checkpoints-root ROOT`: stage S saves to `ROOT/S/<step>` (nanotron's layout) and resumes the last
  checkpoint of the stage it starts from (`init_from`), `ROOT/<init_from>/<its last step>`:
  pretrain-stage2 resumes `ROOT/pretrain-stage1/3450000`, longctx-64k `ROOT/longctx-32k/20000`. A stage
  with `init` (a Hugging Face model) resumes `ROOT/S/init_nanotron`, where that model must be converted to
  a nanotron checkpoint; stage 1 of a run starts from scratch (null). Without ROOT, checkpoints go to
  `runs/<run>/S/checkpoints` and `resume_checkpoint_path` stays null (a line on stderr says so). ROOT is a
  folder every node sees (nanotron's `checkpoints_path` is a local path; the authors uploaded with `s3_upload`).
- A stage that starts a new run from another run's checkpoint (longctx-32k from stage 3) never loads the LR
  scheduler: the authors' trainer would also load that run's step (4,720,000) and stop on
  `train_steps > last_train_step`. The optimizer state follows `checkpoints.load_optimizer`.
- `tokens.train_steps` is the stage's last step, so stage 1 stops at 3,450,000 where stage 2 resumes (the
  LR schedule's decay start and length are explicit, so the run's schedule is unchanged).
- `--data-root ROOT`: each source's `dataset_folder` is `ROOT/<upstream_folder>`, the source's folder
  relative to the authors' datasets root `s3://smollm3/datasets/` as the mixture files transcribe it
  (`--data-root s3://smollm3/datasets` gives the authors' folders verbatim); a source without one:
  `ROOT/<source name>`. Without ROOT: `runs/<recipe>/data/<source name>`, the folders `make data` writes.
- `export.lighteval.eval_interval` in the recipe emits the authors' in-training `lighteval` block (slurm
  eval jobs) with its paths under `--eval-root DIR` (default `<checkpoints root>/lighteval`, else
  `runs/<run>/lighteval`); write the lighteval tasks config to `DIR/smollm3_eval.yaml` (the authors'
  is not published).

Usage:
  python -m pretrain.export_nanotron recipes/smollm3-3b/pretrain-stage2.yaml [key=value ...] [-o FILE]
      [--checkpoints-root ROOT] [--data-root ROOT] [--eval-root DIR]
  (the same as `python -m pretrain export-nanotron ...` and `make export-nanotron STAGE=... RECIPE=...`)
Bad input exits with code 2 and one line `file: field: message` on stderr, nothing written.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import yaml

from recipes.cli import OneLineParser, guarded
from recipes.derive import derived
from recipes.loader import RecipeError, display, load_stage
from recipes.schema import NanotronStage
from rundir import stage_dir, write_text_atomic

# The authors' in-training evaluation job (stage1_8T.yaml `lighteval`): one node, dp 4 x tp 2, batch 8, 2 hours.
EVAL_JOB = {"parallelism": {"dp": 4, "pp": 1, "tp": 2, "tp_linear_async_communication": True}, "batch_size": 8}
EVAL_SLURM = {"cpus_per_task": 88, "qos": "normal", "time": "01:59:00"}


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *(p.lstrip("/") for p in parts)])


def _local(path: Path) -> str:
    return str(path.resolve())


def export(recipe_path: str | Path, overrides=(), data_root: Optional[str] = None,
           checkpoints_root: Optional[str] = None, eval_root: Optional[str] = None) -> dict:
    """The stage at `recipe_path` in the authors' schema; `data_stages` lists every stage of its run up to it.
    Notes (a stage left to start from scratch, where to convert `init.from`) go to stderr once it is built."""
    r = load_stage(recipe_path, overrides)
    if not isinstance(r, NanotronStage):
        raise RecipeError(display(recipe_path), "kind", f"must be pretrain or longctx to export (got {r.kind!r})")
    for option, value in (("--checkpoints-root", checkpoints_root), ("--eval-root", eval_root)):
        if value is not None and "://" in value:  # nanotron's checkpoints_path is a Path, lighteval's too
            raise RecipeError(r.file_of(), option, "must be a folder on a file system every node sees, not a URL "
                              f"(the authors saved to local disks and uploaded with s3_upload) (got {value})")
    folder = Path(recipe_path).parent
    # the stages of this run share one nanotron config: the overrides apply to them; a stage of another run
    # that this one starts from is read as its recipe has it (only its last step matters)
    names = list(r.steps.stage_starts)
    run = [r if n == r.stage else load_stage(folder / f"{n}.yaml", overrides) for n in names[:names.index(r.stage) + 1]]
    previous = None
    if r.init_from is not None:
        previous = next((s for s in run if s.stage == r.init_from), None) or load_stage(folder / f"{r.init_from}.yaml")
    notes: list = []
    chain = _chain(r, previous, checkpoints_root, notes)
    if eval_root is None:
        eval_root = _join(checkpoints_root, "lighteval") if checkpoints_root else _local(stage_dir(r.run, "lighteval"))
    config = to_authors_schema(r, run, data_root=data_root, chain=chain, eval_root=eval_root)
    for note in notes:
        print(note, file=sys.stderr)
    return config


def _chain(r: NanotronStage, previous: Optional[NanotronStage], root: Optional[str], notes: list) -> dict:
    """The stage's `checkpoints` paths and what it loads from the checkpoint it starts from."""
    ck, where = r.checkpoints, r.file_of()
    own = _join(root, r.stage) if root else _local(stage_dir(r.run, r.stage) / "checkpoints")
    out = {"checkpoints_path": own, "resume_checkpoint_path": None, "load_optimizer": ck.load_optimizer,
           "load_lr_scheduler": ck.load_lr_scheduler}
    if r.init is not None:
        target = _join(own, "init_nanotron")
        notes.append(f"{where}: {r.stage} starts from init.from {r.init.from_}: convert it to a nanotron checkpoint "
                     + (f"in {target}" if root else "and set checkpoints.resume_checkpoint_path to it"))
        out.update(resume_checkpoint_path=target if root else None, load_optimizer=False, load_lr_scheduler=False)
    elif previous is not None:
        step = derived(previous).last_step
        if root is None:
            notes.append(f"{where}: checkpoints.resume_checkpoint_path left null (no --checkpoints-root): on the "
                         f"authors' nanotron {r.stage} would start from scratch, not from {previous.stage}'s last "
                         f"checkpoint (step {step})")
        else:
            out["resume_checkpoint_path"] = _join(root, previous.stage, str(step))
        if previous.stage not in r.steps.stage_starts:  # a new run: its own step and schedule start at 0
            out["load_lr_scheduler"] = False
    return out


def _folder(r: NanotronStage, source, data_root: Optional[str]) -> str:
    if data_root is None:
        return _local(stage_dir(r.name, "data") / source.name)
    return _join(data_root, source.upstream_folder or source.name)


def _data_stage(stage: NanotronStage, r: NanotronStage, data_root: Optional[str]) -> dict:
    mixture = stage.data.mixture
    return {
        "data": {
            "dataset": {
                "dataset_folder": [_folder(stage, s, data_root) for s in mixture.sources],
                "dataset_weights": [s.weight for s in mixture.sources],
                "pad_samples_to_global_batch_size": False,
                "return_positions": r.model.use_doc_masking,
                "token_size_in_bytes": 4 if r.model.vocab_size > 65536 else 2,
                "tokenizer_name": r.tokenizer.name_or_path,  # of every data stage: nanotron asserts they agree
                "use_old_brrr_dataloader": False,
                "vocab_size": r.model.vocab_size,
            },
            "num_loading_workers": 0,
            "seed": stage.data.seed,
        },
        "name": mixture.upstream_stage_name or stage.stage,
        "start_training_step": r.steps.stage_starts[stage.stage],
    }


def _lighteval(r: NanotronStage, eval_root: str) -> Optional[dict]:
    le = r.export.lighteval
    if le is None:
        return None
    if le.eval_interval % r.checkpoints.interval:
        field = "export.lighteval.eval_interval"
        raise RecipeError(r.file_of(field), field, f"must be a multiple of checkpoints.interval "
                          f"({r.checkpoints.interval}): evaluations score saved checkpoints (got {le.eval_interval})")
    return {
        "slurm_script_dir": _join(eval_root, "launch-config"),
        "logs_path": _join(eval_root, "logs"),
        "local_checkpoint_dir": _join(eval_root, "evals-ckpt"),
        "nanotron_path": "./",  # the authors' nanotron checkout, where run_train.py is launched from
        "output_dir": _join(eval_root, "results"),
        "s3_save_path": None,  # results stay in output_dir (a bucket here makes each job copy them with s5cmd)
        "upload_to_wandb": False, "wandb_project": None, "wandb_entity": None,
        **EVAL_JOB,
        "eval_config_override": _join(eval_root, "smollm3_eval.yaml"),
        "eval_interval": le.eval_interval,
        "eval_interval_file": None,
        "slurm": {"gpus_per_node": r.cluster.gpus_per_node, "partition": r.cluster.partition,
                  "hf_cache": "~/.cache/huggingface", **EVAL_SLURM, "qos": r.cluster.qos or EVAL_SLURM["qos"],
                  "reservation": None},
    }


def to_authors_schema(r: NanotronStage, run_stages: list, *, data_root: Optional[str], chain: dict,
                      eval_root: str) -> dict:
    """The one mapping from a nanotron stage recipe to the authors' nanotron config schema (their key order)."""
    m, p, b, o, s = r.model, r.parallelism, r.batch, r.optimizer, r.lr_schedule
    d = derived(r)
    return {
        "checkpoints": {
            "checkpoint_interval": r.checkpoints.interval,
            "checkpoints_path": chain["checkpoints_path"],
            "checkpoints_path_is_shared_file_system": False,
            "load_lr_scheduler": chain["load_lr_scheduler"],
            "load_optimizer": chain["load_optimizer"],
            "resume_checkpoint_path": chain["resume_checkpoint_path"],
            "save_final_state": True,
            "save_initial_state": False,
        },
        "data_stages": [_data_stage(stage, r, data_root) for stage in run_stages],
        "general": {"benchmark_csv_path": None, "consumed_train_samples": None, "ignore_sanity_checks": True,
                    "project": r.run, "run": r.stage, "seed": r.seed, "step": None},
        "logging": {"iteration_step_info_interval": r.log_interval, "log_level": "info", "log_level_replica": "info"},
        "model": {
            "ddp_bucket_cap_mb": 50,
            "dtype": m.dtype,
            "init_method": {"std": m.init_std},
            "make_vocab_size_divisible_by": 1,
            "model_config": {
                "_attn_implementation": m.attn_implementation,
                "_fused_rms_norm": True, "_fused_rotary_emb": True,
                "_use_doc_masking": m.use_doc_masking,
                "_use_qkv_packed": True,
                **({"ring_attn_heads_k_stride": 1} if m.attn_implementation == "llama3_ring_attention" else {}),
                "attention_bias": m.attention_bias,
                "bos_token_id": r.tokenizer.bos_token_id,
                "eos_token_id": r.tokenizer.eos_token_id,
                "flex_attention_mask": None,
                "hidden_act": m.hidden_act,
                "hidden_size": m.hidden_size,
                "initializer_range": m.init_std,
                "intermediate_size": m.intermediate_size,
                "is_qwen2_config": True,
                "max_position_embeddings": m.max_position_embeddings,
                "moe_config": None,
                "num_attention_heads": m.num_attention_heads,
                "num_hidden_layers": m.num_hidden_layers,
                "num_key_value_heads": m.num_key_value_heads,
                "pad_token_id": r.tokenizer.pad_token_id,
                # transformers' "tensor parallelism rank used during pretraining" (the released config.json
                # has 2): a record, no nanotron module reads it
                "pretraining_tp": p.tp,
                "rms_norm_eps": m.rms_norm_eps,
                "rope_interleaved": False,
                "rope_scaling": None,
                "rope_theta": m.rope_theta,
                "sliding_window_size": None,
                "tie_word_embeddings": m.tie_word_embeddings,
                "use_cache": True,
                "vocab_size": m.vocab_size,
                "z_loss_coefficient": 1.0e-5,
                "z_loss_enabled": False,
                "no_rope_layer": m.no_rope_layer_interval,
            },
        },
        "optimizer": {
            "accumulate_grad_in_fp32": o.accumulate_grad_in_fp32,
            "clip_grad": o.clip_grad,
            "learning_rate_scheduler": {
                "learning_rate": o.lr,
                "lr_decay_starting_step": d.decay_start_step,
                "lr_decay_steps": d.decay_steps,
                "lr_decay_style": s.decay_style,
                "lr_warmup_steps": s.warmup_steps,
                "lr_warmup_style": s.warmup_style,
                "min_decay_lr": s.min_lr,
            },
            "optimizer_factory": {"adam_beta1": o.beta1, "adam_beta2": o.beta2, "adam_eps": o.eps, "name": "adamW",
                                  "torch_adam_is_fused": True},
            "weight_decay": o.weight_decay,
            "weight_decay_exclude_named_params": list(o.weight_decay_exclude),
            "zero_stage": p.zero_stage,
        },
        "parallelism": {
            "context_parallel_size": p.cp, "dp": p.dp, "expert_parallel_size": 1, "moe_layer_recompute": False,
            "pp": p.pp, "pp_engine": p.pp_engine, "recompute_layer": p.recompute_layer, "tp": p.tp,
            "tp_linear_async_communication": p.tp_linear_async_communication, "tp_mode": p.tp_mode.upper(),
            "tp_recompute_allgather": True,
        },
        "profiler": None,
        "s3_upload": None,  # checkpoints stay in checkpoints_path (the authors copied them to s3 with s5cmd)
        "tokenizer": {"tokenizer_max_length": b.sequence_length, "tokenizer_name_or_path": r.tokenizer.name_or_path,
                      "tokenizer_revision": getattr(r.tokenizer, "revision", None)},
        "metrics_logging": {"log_level": 1, "log_detail_interval": 200},
        "tokens": {
            "batch_accumulation_per_replica": d.grad_accum,
            "limit_test_batches": 0, "limit_val_batches": 0, "micro_batch_size": b.micro_batch_size,
            "sequence_length": b.sequence_length, "train_steps": d.last_step, "val_check_interval": 100,
        },
        "lighteval": _lighteval(r, eval_root),
    }


def write(config: dict, out: Optional[str]) -> str:
    text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    if out:
        write_text_atomic(out, text)
    return text


def add_arguments(ap) -> None:
    ap.add_argument("recipe", help="a pretrain or longctx stage file, e.g. recipes/smollm3-3b/pretrain-stage2.yaml")
    ap.add_argument("overrides", nargs="*", help="key=value recipe overrides")
    ap.add_argument("-o", "--output", default=None, help="file to write (default: stdout)")
    ap.add_argument("--checkpoints-root", default=None, metavar="ROOT",
                    help="stage S saves to ROOT/S and resumes ROOT/<init_from>/<its last step> (default: "
                         "runs/<run>/S/checkpoints, resume_checkpoint_path null)")
    ap.add_argument("--data-root", default=None, metavar="ROOT",
                    help="root of the authors' tokenized folders: dataset_folder is ROOT/<upstream_folder> "
                         "(s3://smollm3/datasets gives theirs; default: runs/<recipe>/data/<source>)")
    ap.add_argument("--eval-root", default=None, metavar="DIR",
                    help="shared folder of the lighteval block's paths (default: <checkpoints root>/lighteval)")


def command(args) -> int:
    config = export(args.recipe, args.overrides, args.data_root, args.checkpoints_root, args.eval_root)
    text = write(config, args.output)
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text, end="")
    return 0


def main(argv=None) -> int:
    ap = OneLineParser(prog="python -m pretrain.export_nanotron", description=__doc__.split("\n")[0])
    add_arguments(ap)
    return guarded(command, ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
