"""A pretraining or long-context stage on nanotron 0.4, run in every torchrun rank.

- pretrain-stage1 starts the run from scratch; pretrain-stage2/3 continue it from the previous stage's last
  checkpoint with the next mixture, keeping optimizer, LR schedule and step count (the published WSD);
- longctx-32k/64k start a new run from the previous stage's weights (new RoPE theta, longer sequences);
- a stage killed halfway resumes from its latest COMPLETE checkpoint: the batches after the resume are the
  ones an uninterrupted run would have seen (pretrain.dataloader), so the loss sequence is identical; it
  resumes only a checkpoint of the same training recipe, checked before launch (pretrain/train_checks.py);
- the nanotron config used is saved as `runs/<recipe>/<stage>/nanotron_config.yaml`, per-step losses in
  `losses.jsonl` (and TensorBoard when installed), the final checkpoint converted to `hf/`.

Usage: make pretrain-stage1 RECIPE=recipes/tiny   (python -m pipeline run recipes/tiny/pretrain-stage1.yaml)
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Optional

# isort: split
import pretrain.nanotron_compat  # noqa: F401  (must come before nanotron)

# isort: split
import torch
from nanotron import distributed as dist

from pretrain.data.mixture import MixtureSampler
from pretrain.dataloader import mixture_batches
from pretrain.nanotron_config import nanotron_config
from pretrain.smollm3_nanotron import SmolLM3Trainer
from pretrain.train_checks import preflight, stage_inputs
from recipes.derive import derived
from recipes.schema import NanotronStage
from rundir import StageRun, stage_dir, trim_step_log
from rundir.checkpoints import checkpoint_files, checksums, mark_complete, marked_checkpoints, prune
from rundir.resume import input_manifests, run_sha256, training_sha256


def up_to_date(r: NanotronStage) -> bool:
    """Completed before with the same recipe and inputs (checked by the launcher and again in every rank)."""
    return StageRun(r, inputs=stage_inputs(r)).up_to_date()


class StageTrainer(SmolLM3Trainer):
    """SmolLM3Trainer that marks complete checkpoints and records per-step losses."""

    PROGRESS_EVERY = 10  # steps between progress lines (rate, ETA) of the logging rank

    def post_init(self):
        self.loss_log = None
        self.writer = None
        self.recipe_hashes: dict = {}
        self.keep_last = None
        self.stage_name = "train"
        self._clock = None  # (time, step) of the first step of this call: the rate is this call's

    def logs_loss(self, model) -> bool:
        """The logging rank: data- and tensor-parallel rank 0 of the pipeline stage that computes the loss (the
        ranks there all hold the same averaged loss). It alone writes losses.jsonl, TensorBoard and progress."""
        pc = self.parallel_context
        return (dist.get_rank(pc.dp_pg) == 0 and dist.get_rank(pc.tp_pg) == 0
                and dist.get_rank(pc.pp_pg) == model.output_pp_rank)

    def _progress(self, loss: float) -> None:
        """`[stage] step k/N loss x, r steps/s, ETA s` every PROGRESS_EVERY steps and at the last (logging rank)."""
        if self._clock is None:
            self._clock = (time.time(), self.iteration_step - 1)
        last, (t0, step0) = self.config.tokens.train_steps, self._clock
        if (self.iteration_step - step0) % self.PROGRESS_EVERY and self.iteration_step != last:
            return
        rate = (self.iteration_step - step0) / max(time.time() - t0, 1e-9)
        print(f"[{self.stage_name}] step {self.iteration_step}/{last} loss {loss:.4f} {rate:.2f} steps/s, "
              f"ETA {(last - self.iteration_step) / rate:.0f}s", flush=True)

    def post_save_checkpoint(self):
        """Once every rank has written the checkpoint, every rank checksums its share of the files (rank 0 lists
        them, once), and rank 0 marks it COMPLETE (with the checksums and the hashes of the recipe that trained
        it) and applies checkpoints.keep_last."""
        world = self.parallel_context.world_pg
        dist.barrier(world)
        rank, size = dist.get_rank(world), dist.get_world_size(world)
        path = Path(self.config.checkpoints.checkpoints_path) / str(self.iteration_step)
        names = [checkpoint_files(path) if rank == 0 else None]
        dist.broadcast_object_list(names, src=dist.get_global_rank(world, 0), group=world)
        shares = [None] * size
        dist.all_gather_object(shares, checksums(path, names[0][rank::size]), group=world)
        if rank == 0:
            files = {name: share[name] for share in shares for name in share}
            mark_complete(path, files=dict(sorted(files.items())), step=self.iteration_step,
                          consumed_train_samples=self.consumed_train_samples, **self.recipe_hashes)
            prune(path.parent, self.keep_last)
        dist.barrier(world)

    def training_step(self, dataloader):
        outputs, loss_avg = super().training_step(dataloader)
        if loss_avg is not None and self.loss_log is not None:
            lr = self.lr_scheduler.get_last_lr()[0]
            self.loss_log.write(json.dumps({"step": self.iteration_step, "loss": float(loss_avg), "lr": lr,
                                            "time": time.time()}) + "\n")
            self.loss_log.flush()
            self._progress(float(loss_avg))
            if self.writer is not None:
                self.writer.add_scalar("train/loss", float(loss_avg), self.iteration_step)
                self.writer.add_scalar("train/lr", lr, self.iteration_step)
        return outputs, loss_avg


def _tensorboard(r: NanotronStage, log_dir: Path):
    """A TensorBoard writer when the recipe's report_to names it (installed: checked by train_checks)."""
    if "tensorboard" not in r.report_to:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(log_dir))


def run(r: NanotronStage, resume_mode: str = "refuse") -> None:
    """Train the stage in this torchrun rank (every rank runs this). The launcher has already run
    `train_checks.preflight` and applied --fresh; the checks are repeated here (reading only), so a rank
    started another way (Slurm, torchrun by hand) never trains what the recipe does not say."""
    world_rank = int(os.environ.get("RANK", "0"))
    if resume_mode != "fresh" and up_to_date(r):
        if world_rank == 0:
            print(f"[{r.stage}] up to date ({stage_dir(r.run, r.stage)}/manifest.json): skipped", flush=True)
        return
    sdir = stage_dir(r.run, r.stage)
    start, ids, tokenizer_path = preflight(r, "continue" if resume_mode == "continue" else "refuse")
    resume, init_weights, inputs = start.resume, start.init_weights, start.inputs
    d = derived(r)
    config = nanotron_config(r, checkpoints_dir=sdir / "checkpoints", token_ids=ids, resume_from=resume,
                             init_weights=init_weights, tokenizer_path=tokenizer_path)
    sdir.mkdir(parents=True, exist_ok=True)
    # Every rank builds the same config from the recipe and the checkpoints on disk, and gives nanotron its
    # own copy (a file left by an earlier, killed run must never be read); rank 0 keeps the record.
    config_path = sdir / f".nanotron_config.rank{world_rank}.yaml"
    config.save_as_yaml(config_path)
    if world_rank == 0:
        tmp = sdir / f".nanotron_config.{os.getpid()}.yaml"
        config.save_as_yaml(tmp)
        tmp.replace(sdir / "nanotron_config.yaml")
    sampler = MixtureSampler.from_stage(r, eos_id=ids["eos"])
    manifest = StageRun(r, inputs=inputs) if world_rank == 0 else None
    if manifest is not None:
        manifest.__enter__()
        manifest.manifest.update(training_sha256=training_sha256(r), run_sha256=run_sha256(r),
                                 resumed_from=str(resume) if resume else None,
                                 initialized_from=str(init_weights) if init_weights else None,
                                 continued_from=start.continued_from,
                                 processes=int(os.environ.get("WORLD_SIZE", "1")))
    if resume is not None and int(resume.name) >= d.last_step:  # trained, killed before it was converted
        if manifest is not None and start.continued_from:
            print(f"[{r.stage}] --continue: checkpoint {resume.name} is the stage's last step, so nothing is left "
                  "to train under the changed recipe; converting it, recorded as a continuation", flush=True)
        if manifest is not None:
            with_manifest(manifest, lambda: finish(r, sdir, manifest, tokenizer_path, sampler))
        return
    try:
        trainer = StageTrainer(str(config_path))
        config_path.unlink()
        trainer.recipe_hashes = {"training_sha256": training_sha256(r), "run_sha256": run_sha256(r),
                                 "inputs": input_manifests(inputs)}
        trainer.keep_last = r.checkpoints.keep_last
        trainer.stage_name = r.stage
        model = trainer.unwrapped_model
        samples_before_stage = (d.first_step - 1) * d.global_batch_seqs if r.kind == "pretrain" else 0
        first_sample = trainer.consumed_train_samples - samples_before_stage
        loader = mixture_batches(sampler, start_sample=first_sample, micro_batch_size=r.batch.micro_batch_size,
                                 grad_accum=d.grad_accum, parallel_context=trainer.parallel_context,
                                 input_pp_rank=model.input_pp_rank, output_pp_rank=model.output_pp_rank)
        if trainer.iteration_step < d.last_step:
            if trainer.logs_loss(model):  # the one rank that writes losses.jsonl (and TensorBoard)
                trim_step_log(sdir / "losses.jsonl", trainer.iteration_step)  # the steps after it: logged again
                trainer.loss_log = open(sdir / "losses.jsonl", "a")
                trainer.writer = _tensorboard(r, sdir / "tensorboard")
            try:
                trainer.train(loader)
            finally:
                if trainer.loss_log is not None:
                    trainer.loss_log.close()
            if trainer.iteration_step % r.checkpoints.interval:
                trainer.save_checkpoint()
        dist.barrier(trainer.parallel_context.world_pg)
        if manifest is not None:
            finish(r, sdir, manifest, tokenizer_path, sampler)
    except BaseException as e:
        if manifest is not None:
            manifest.__exit__(type(e), e, None)
        raise
    if manifest is not None:
        manifest.__exit__(None, None, None)


def with_manifest(manifest: StageRun, fn) -> None:
    """Run fn, then close the stage manifest as completed (or failed, re-raising)."""
    try:
        fn()
    except BaseException as e:
        manifest.__exit__(type(e), e, None)
        raise
    manifest.__exit__(None, None, None)


def losses(sdir: Path) -> list[dict]:
    """Per-step losses of a stage (losses.jsonl, the logging rank's), one entry per step, last write wins."""
    f, by_step = sdir / "losses.jsonl", {}
    for line in f.read_text().splitlines() if f.is_file() else []:
        if line.strip():
            e = json.loads(line)
            by_step[e["step"]] = e
    return [by_step[k] for k in sorted(by_step)]


def hf_loss(hf_dir: Path, sampler, n_samples: int = 8) -> float:
    """Mean next-token loss of the converted transformers model on the stage's first training samples."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    rows = torch.stack([torch.from_numpy(sampler.sample(i).astype("int64")) for i in range(n_samples)])
    with torch.no_grad():
        return float(model(input_ids=rows[:, :-1], labels=rows[:, :-1]).loss)


def finish(r: NanotronStage, sdir: Path, manifest: StageRun, tokenizer_path: Optional[str], sampler) -> None:
    """Rank 0: convert the last checkpoint to a Hugging Face folder and record headline metrics."""
    import math

    from pretrain.convert import convert
    from pretrain.heldout_loss import stage_figures

    last = marked_checkpoints(sdir / "checkpoints")[-1]
    convert(last, sdir / "hf", tokenizer=Path(tokenizer_path) if tokenizer_path else None, overwrite=True,
            yarn_factor=r.hf_yarn_factor)
    manifest.metrics.update(hf_loss_on_training_samples=hf_loss(sdir / "hf", sampler),
                            chance_loss=math.log(r.model.vocab_size), **stage_figures(r, sdir / "hf"))
    steps = losses(sdir)
    d = derived(r)
    mine = [e["loss"] for e in steps if e["step"] >= d.first_step]
    k = max(1, min(5, len(mine) // 2))
    manifest.outputs += ["checkpoints", "hf", "nanotron_config.yaml"]
    manifest.metrics.update(last_checkpoint=str(last), steps=len(mine), mixture=r.data.mixture.name,
                            first_step=d.first_step, last_step=d.last_step,
                            loss_first_steps=sum(mine[:k]) / k if mine else None,
                            loss_last_steps=sum(mine[-k:]) / k if mine else None)
    m = manifest.metrics
    if mine:
        print(f"[{r.stage}] mean loss of the first / last {k} steps: {m['loss_first_steps']:.3f} -> "
              f"{m['loss_last_steps']:.3f} ({len(mine)} steps)", flush=True)
    print(f"[{r.stage}] HF model in {sdir / 'hf'}: loss {m['hf_loss_on_training_samples']:.3f} on training samples "
          f"(chance {m['chance_loss']:.3f})", flush=True)
    if "heldout_loss" in m:
        print(f"[{r.stage}] held-out loss: " + ", ".join(f"{c} {v['loss']:.3f}" for c, v in m["heldout_loss"].items()),
              flush=True)
    past = m.get("heldout_past_previous_length") or {}
    if past.get("after"):
        a, b = past["before"], past["after"]
        print(f"[{r.stage}] held-out loss on positions {b['positions'][0]}-{b['positions'][1] - 1}: "
              f"{a['loss']:.3f} ({past['from_stage']}) -> {b['loss']:.3f}", flush=True)
