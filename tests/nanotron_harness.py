"""Helpers for the nanotron SmolLM3 tests: tiny configs, nanotron YAMLs, a loss-recording trainer, and a
torchrun entry point that runs several parallel layouts in one 2-process world.

Usage (what the tests do): torchrun --nproc_per_node=2 tests/nanotron_harness.py JOBS.json
JOBS.json: {"out": DIR, "jobs": [{"name":..., "tp":..., "dp":..., "pp":..., "tp_mode":..., "init": CKPT,
"steps":..., "mbs":...}, ...]}; each rank writes DIR/<name>.rank<r>.json with its recorded losses.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# isort: split
import pretrain.nanotron_compat  # noqa: E402,F401

# isort: split
import torch  # noqa: E402
from nanotron.config import (  # noqa: E402
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

from pretrain.smollm3_nanotron import SmolLM3Trainer  # noqa: E402
from pretrain.synthetic_batches import synthetic_batches  # noqa: E402
from smollm3.hf_config import SmolLM3Config  # noqa: E402

SEQ = 32
VOCAB = 256
SEED = 1234
REPO = Path(__file__).resolve().parents[1]
WORLD_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def single_process_world():
    """A 1-process gloo world in this process (nanotron reads RANK / WORLD_SIZE / LOCAL_RANK from the
    environment whenever it builds process groups); environment and process group undone on exit."""
    import torch.distributed as tdist

    saved = {k: os.environ.get(k) for k in WORLD_ENV}
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="localhost", MASTER_PORT=str(free_port()))
    try:
        yield
    finally:
        if tdist.is_initialized():
            tdist.destroy_process_group()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def torchrun(script_args, timeout=600) -> subprocess.CompletedProcess:
    """Run a 2-process torchrun on this machine (CPU, gloo), one thread per process."""
    env = {k: v for k, v in os.environ.items() if k not in WORLD_ENV}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=localhost",
           f"--master_port={free_port()}", *map(str, script_args)]  # fmt: skip
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def tiny_config(**overrides) -> SmolLM3Config:
    base = dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=8, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=VOCAB, max_position_embeddings=SEQ, rope_theta=50000.0, no_rope_layer_interval=4,
        bos_token_id=1, eos_token_id=2, pad_token_id=None,
    )  # fmt: skip
    base.update(overrides)
    return SmolLM3Config(**base)


def write_config(path: Path, *, ckpt_dir: Path, tp=1, dp=1, pp=1, tp_mode="ALL_REDUCE", init=None, steps=2,
                 mbs=4, lr=3e-3, weight_decay=0.1, save_initial_state=False, dtype="float32",
                 accumulate_grad_in_fp32=False, zero_stage=0, schedule=None, model=None) -> Path:  # fmt: skip
    """A nanotron YAML for the tiny model, written through nanotron's own config dataclasses. `schedule`
    overrides LRSchedulerArgs fields (default: constant lr); `model` overrides tiny_config fields."""
    lr_args = dict(learning_rate=lr, lr_warmup_steps=steps, lr_warmup_style="constant", lr_decay_style="linear")
    lr_args.update(schedule or {})
    config = Config(
        general=GeneralArgs(project="smollm3-tests", run="tiny", seed=SEED),
        parallelism=ParallelismArgs(dp=dp, pp=pp, tp=tp, pp_engine="1f1b", tp_mode=tp_mode,
                                    tp_linear_async_communication=False),
        model=ModelArgs(
            model_config=tiny_config(**(model or {})),
            init_method=ExistingCheckpointInit(path=Path(init)) if init else RandomInit(std=0.02),
            dtype=getattr(torch, dtype),
        ),
        tokenizer=TokenizerArgs(),
        checkpoints=CheckpointsArgs(checkpoints_path=ckpt_dir, checkpoint_interval=10_000,
                                    save_initial_state=save_initial_state),
        logging=LoggingArgs(log_level="warning", log_level_replica="warning", iteration_step_info_interval=1),
        tokens=TokensArgs(sequence_length=SEQ, train_steps=steps, micro_batch_size=mbs,
                          batch_accumulation_per_replica=1),
        optimizer=OptimizerArgs(
            zero_stage=zero_stage, weight_decay=weight_decay, clip_grad=1.0,
            accumulate_grad_in_fp32=accumulate_grad_in_fp32,
            adam_eps=1e-8, adam_beta1=0.9, adam_beta2=0.95, torch_adam_is_fused=False,
            learning_rate_scheduler=LRSchedulerArgs(**lr_args),
        ),
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    config.save_as_yaml(path)
    return path


class RecordingTrainer(SmolLM3Trainer):
    """SmolLM3Trainer that keeps the dp-averaged loss of every step (on the output pipeline rank)."""

    def post_init(self):
        self.losses = []
        self.lrs = []

    def training_step(self, dataloader):
        outputs, loss_avg = super().training_step(dataloader)
        if loss_avg is not None:
            self.losses.append(float(loss_avg))
            self.lrs.append(self.optimizer.get_base_optimizer().param_groups[0]["lr"])
        return outputs, loss_avg


def train(config_path: Path, data_seed: int = 0) -> RecordingTrainer:
    trainer = RecordingTrainer(str(config_path))
    model = trainer.unwrapped_model
    batches = synthetic_batches(
        micro_batch_size=trainer.micro_batch_size, sequence_length=SEQ, vocab_size=VOCAB,
        parallel_context=trainer.parallel_context, input_pp_rank=model.input_pp_rank,
        output_pp_rank=model.output_pp_rank, seed=data_seed,
    )  # fmt: skip
    trainer.train(batches)
    return trainer


def param_group_summary(trainer) -> list:
    """[(weight_decay, [names...]), ...] of the base AdamW."""
    optimizer = trainer.optimizer
    id_to_name = optimizer.id_to_name
    return [
        (group["weight_decay"], sorted(id_to_name[id(p)] for p in group["params"]))
        for group in optimizer.get_base_optimizer().param_groups
    ]


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    out = Path(spec["out"])
    rank = int(os.environ["RANK"])
    for job in spec["jobs"]:
        name = job.pop("name")
        config = write_config(out / name / f"config.rank{rank}.yaml", ckpt_dir=out / name / "checkpoints", **job)
        trainer = train(config)
        result = {"losses": trainer.losses, "param_groups": param_group_summary(trainer)}
        (out / f"{name}.rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
