"""The runner every TRL stage shares (mid-training now; SFT and APO reuse it): from a resolved recipe to a
trained, complete Hugging Face folder in `runs/<run>/<stage>/hf/`.

- the input model: the `hf/` folder of the stage `init_from` names (completed, per its manifest), or a
  local HF folder; the tokenizer gets the stage's chat template and eos token;
- the TRL config from posttrain/trl_config.py (one table), the data from posttrain/mixture.py;
- held-out loss before and after training, on data kept out of training (each dataset's `test` split for
  the tiny recipe's builtin conversations and a synth stage's output; otherwise a slice carved off the
  shuffled mixture);
- progress with rate and ETA, `losses.jsonl` (step, loss, lr), and the recipe's `report_to`
  (TensorBoard under `tensorboard/`);
- TRL checkpoints under `checkpoints/`, each marked COMPLETE (checksums, training-recipe hash) once written:
  a stage killed and run again resumes the latest intact one (`resume_from_checkpoint`), and only under the
  same training recipe (rundir.resume), else it refuses unless --continue / --fresh;
- the output written to a temporary folder, then renamed into place; the manifest.

Usage: posttrain.trl_stage.run(recipe, build_trainer, resume="refuse") from a stage module.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from recipes.loader import RecipeError, display
from rundir import completed_stage, is_hf_folder, is_main_process, set_aside, stage_dir
from rundir.checkpoints import intact_checkpoints, latest_intact, mark_complete
from rundir.resume import check_checkpoint, input_manifests, training_sha256

HELD_OUT = (0.005, 1000)  # a carved-off held-out slice: this fraction of the mixture, at most this many
DPO_LOGGED = ("rewards/margins", "rewards/accuracies")  # DPOTrainer's per-step figures kept in losses.jsonl


def find_model(r, model, stage, keys=("init.from", "init_from")):
    """(what from_pretrained loads, its revision, the input recorded in the manifest) for a model the recipe
    names: `model` (an Init: a local HF folder, or a Hub id on a cluster) when set, else the `hf/` folder of
    the pipeline stage `stage`. `keys` name the two recipe fields in errors. Checked before anything is written."""
    model_key, stage_key = keys
    if model is not None:
        local = Path(model.from_)
        if not local.exists():  # a Hub id: downloaded by from_pretrained (cluster runs)
            return model.from_, model.revision, None
        folder, key, recorded = local, model_key, local
    else:
        recorded = completed_stage(r.run, stage, display(stage_dir(r.run, stage)), stage_key,
                                   f", or name a model with {model_key}")
        folder, key = recorded / "hf", stage_key
    if not is_hf_folder(folder):
        raise RecipeError(display(folder), key, "not a complete Hugging Face model folder (config.json and "
                          "safetensors weights)")
    return str(folder), None, recorded


def input_model(r):
    """The model a TRL stage starts from: `init.from` when set, else the output of the stage `init_from` names."""
    return find_model(r, r.init, r.init_from)


def stage_tokenizer(r, model_dir: str, revision):
    """The input model's tokenizer with the stage's chat template and eos token, refused (before anything is
    written) when it lacks a special token the template writes or has more tokens than the model."""
    from transformers import AutoConfig, AutoTokenizer

    from posttrain.chat_template import check_tokens, template_for

    tokenizer = AutoTokenizer.from_pretrained(model_dir, revision=revision)
    template = template_for(r)
    if template is not None:
        tokenizer.chat_template = template
    if r.eos_token:
        tokenizer.eos_token = r.eos_token
    where = model_dir if r.init is not None else display(Path(model_dir))
    kind = r.chat_template if r.chat_template != "inherit" else (
        "smollm3" if "<think>" in (tokenizer.chat_template or "") else "chatml")
    key = "init.from" if r.init is not None else "init_from"
    check_tokens(tokenizer, kind, where, key)
    vocab = AutoConfig.from_pretrained(model_dir, revision=revision).vocab_size
    if len(tokenizer) > vocab:
        raise RecipeError(where, key, f"the tokenizer has {len(tokenizer)} tokens, more than the model's vocabulary "
                          f"({vocab})")
    return tokenizer


def resume_point(r, ckpt_dir: Path, mode: str, inputs):
    """(checkpoint to resume or None, continued_from or None): the latest intact checkpoint, under the rule
    of rundir.resume.check_checkpoint (same training recipe and inputs, else refuse unless --continue)."""
    latest, damaged = latest_intact(ckpt_dir)  # verifies newest first, up to the one resumed
    for p, why in damaged if is_main_process() else ():
        print(f"[{r.stage}] warning: checkpoint {display(p)} is damaged ({why}): not resumed", flush=True)
    if latest is None:
        return None, None
    return latest, check_checkpoint(r, latest, ckpt_dir.parent, mode, inputs)


def held_out(r, train):
    """(training data, held-out data) with no example in both."""
    from posttrain.mixture import mixture

    if all(d.dataset.startswith(("builtin:", "stage:")) for d in r.datasets):  # these have a test split
        return train, mixture(r, split="test")
    n = max(1, min(HELD_OUT[1], int(len(train) * HELD_OUT[0])))
    return train.select(range(n, len(train))), train.select(range(n))


def packing_efficiency(dataset, max_length: int):
    """Real tokens / packed slots (rows x max_length) of a packed training set, or None when not packed."""
    if "input_ids" not in dataset.column_names:
        return None
    lengths = [len(x) for x in dataset["input_ids"]]
    return sum(lengths) / (len(lengths) * max_length) if lengths else None


def save_hf(trainer, tokenizer, out: Path) -> None:
    """A complete HF folder (config, safetensors, tokenizer with the chat template, generation config) through
    the one HF-folder writer: every process calls Trainer.save_model (under ZeRO-3 it gathers the shards and
    writes from the main process), the main process adds the rest and renames the folder into place."""
    from smollm3.hf_config import write_hf_config
    from smollm3.hf_folder import hf_folder_writer

    # eos = the template's end of turn (<|im_end|>) in config and generation config, as alignment-handbook's
    # scripts/sft.py does (huggingface/alignment-handbook@925acdfe4b2b4e38c3dabd1851bc418f0b656351, lines 136-137)
    trainer.model.generation_config.eos_token_id = tokenizer.eos_token_id
    trainer.model.config.eos_token_id = tokenizer.eos_token_id
    with hf_folder_writer(out, wait=trainer.accelerator.wait_for_everyone) as tmp:
        trainer.save_model(str(tmp))
        if trainer.accelerator.is_main_process:
            write_hf_config(tmp)  # also transformers 4.x's rope_theta / rope_scaling
            tokenizer.save_pretrained(str(tmp))
            trainer.model.generation_config.save_pretrained(str(tmp))


def measured(measure, trainer, model, tokenizer, heldout, when: str) -> dict:
    """`measure(model, tokenizer, heldout)`'s figures as `<name>_<when>`, computed by the main process alone
    while the others wait (its figures are what the manifest records). Under DeepSpeed ZeRO-3 every process
    holds a slice of each parameter: they are gathered whole for the measurement (deepspeed.zero.
    GatheredParameters, entered by every process)."""
    import contextlib

    from transformers.integrations import is_deepspeed_zero3_enabled

    if measure is None:
        return {}
    whole = contextlib.nullcontext()
    if is_deepspeed_zero3_enabled():
        import deepspeed

        whole = deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None)
    with whole:
        figures = measure(model, tokenizer, heldout) if trainer.accelerator.is_main_process else {}
        trainer.accelerator.wait_for_everyone()
    return {f"{k}_{when}": v for k, v in figures.items()}


def callbacks(r, sdir: Path, inputs):
    """Progress (rate, ETA) and losses.jsonl from the main process, and a COMPLETE marker (checksums,
    training-recipe hash, input manifests) on every saved checkpoint once every process has written its part."""
    from transformers import TrainerCallback

    sha, consumed = training_sha256(r), input_manifests(inputs)

    class StageCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self.t0, self.step0 = time.time(), state.global_step

        def on_log(self, args, state, control, logs=None, **kw):  # called in every process
            if not logs or "loss" not in logs or not state.is_world_process_zero:
                return
            extra = {k: logs[k] for k in DPO_LOGGED if k in logs}  # APO: reward margin and accuracy per step
            with open(sdir / "losses.jsonl", "a") as f:
                f.write(json.dumps({"step": state.global_step, "loss": logs["loss"],
                                    "lr": logs.get("learning_rate"), "time": time.time(), **extra}) + "\n")
            done = state.global_step - self.step0
            rate = done / max(time.time() - self.t0, 1e-9)
            eta = (state.max_steps - state.global_step) / rate if rate else math.inf
            print(f"[{r.stage}] step {state.global_step}/{state.max_steps} loss {logs['loss']:.4f} "
                  f"{rate:.2f} steps/s, ETA {eta:.0f}s", flush=True)

        def on_save(self, args, state, control, **kw):
            from accelerate import PartialState

            PartialState().wait_for_everyone()  # each process writes its own files (rng_state_<rank>.pth)
            if state.is_world_process_zero:
                path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if path.is_dir():
                    mark_complete(path, step=state.global_step, training_sha256=sha, inputs=consumed)

    return [StageCallback()]


def run(r, build_trainer, resume: str = "refuse", measure=None) -> None:
    """Train a TRL stage (see the module doc). `build_trainer(model, tokenizer, train, eval, config, callbacks)`
    returns the TRL trainer (SFTTrainer, DPOTrainer). `measure(model, tokenizer, heldout) -> dict`, when given,
    runs before and after training; its figures go to the metrics as `<name>_before` / `<name>_after`."""
    import torch

    from posttrain.mixture import mixture
    from posttrain.trl_config import model_kwargs, trl_config
    from rundir import StageRun, trim_step_log

    cuda = torch.cuda.is_available()
    sdir = stage_dir(r.run, r.stage)
    model_dir, revision, recorded = input_model(r)  # everything that can be refused is checked before any write
    tokenizer = stage_tokenizer(r, model_dir, revision)
    config = trl_config(r, cuda=cuda, output_dir=str(sdir / "checkpoints"))
    load_kwargs = model_kwargs(r, cuda=cuda)
    from posttrain.mixture import stage_inputs

    inputs = ([recorded] if recorded is not None else []) + stage_inputs(r)
    if resume == "fresh":
        set_aside(sdir)
    run_ = StageRun(r, inputs=inputs)
    if not run_.up_to_date():
        checkpoint, continued = resume_point(r, sdir / "checkpoints", resume, inputs)  # may refuse: before any write
    with run_:
        if run_.skip:
            return
        run_.manifest.update(training_sha256=training_sha256(r), resumed_from=str(checkpoint) if checkpoint else None,
                             continued_from=continued, init_model=model_dir, init_revision=revision)
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(model_dir, revision=revision, **load_kwargs)
        train, heldout = held_out(r, mixture(r))
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(sdir / "tensorboard")  # read by transformers' callback
        trainer = build_trainer(model, tokenizer, train, heldout, config, callbacks(r, sdir, inputs))
        main = is_main_process()  # only it writes (manifest, losses.jsonl, hf/) and prints; the others wait
        before = trainer.evaluate()["eval_loss"]  # every process scores its share of the held-out data
        if main:
            procs = trainer.accelerator.num_processes
            print(f"[{r.stage}] {len(train):,} training / {len(heldout):,} held-out examples ({procs} process"
                  f"{'es' * (procs > 1)}); held-out loss before {before:.4f}", flush=True)
            trim_step_log(sdir / "losses.jsonl", int(checkpoint.name.rsplit("-", 1)[1]) if checkpoint else 0)
        figures = measured(measure, trainer, model, tokenizer, heldout, "before")
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        evaluated = trainer.evaluate()
        after = evaluated["eval_loss"]
        figures.update({f"heldout_{k.replace('/', '_')}_after": evaluated[f"eval_{k}"] for k in DPO_LOGGED
                        if f"eval_{k}" in evaluated})
        figures.update(measured(measure, trainer, trainer.model, tokenizer, heldout, "after"))
        efficiency = packing_efficiency(trainer.train_dataset, r.max_length)
        save_hf(trainer, tokenizer, sdir / "hf")
        if not main:
            return
        run_.outputs += ["hf", "checkpoints", "losses.jsonl"] + ["tensorboard"] * ("tensorboard" in r.report_to)
        kept = [p.name for p in intact_checkpoints(sdir / "checkpoints")[0]]
        run_.metrics.update(heldout_loss_before=before, heldout_loss_after=after, steps=trainer.state.global_step,
                            checkpoints=kept,
                            train_loss=result.training_loss, packing_efficiency=efficiency,
                            packing_strategy=r.packing_strategy if r.packing else None,
                            examples_train=len(train), examples_heldout=len(heldout),
                            processes=trainer.accelerator.num_processes, **figures)
        moved = "falls" if after < before else "does NOT fall"
        print(f"[{r.stage}] held-out loss {before:.4f} -> {after:.4f} ({moved}); packing efficiency "
              f"{efficiency if efficiency is None else f'{efficiency:.3f}'}; HF model in {display(sdir / 'hf')}",
              flush=True)
