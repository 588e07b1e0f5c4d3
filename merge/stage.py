"""The merge stage (`make merge`), as the SmolLM3 blog describes it (no official mergekit file exists):

1. the soup: a uniform `linear` merge of the APO checkpoints (all the kept ones, or `soup_steps`), through
   mergekit's Python API (`MergeConfiguration`, `run_merge`, `MergeOptions`), into `runs/<run>/merge/soup/`;
2. the blend: `linear` with the recipe's weights (published: 0.9 soup, 0.1 mid-training checkpoint), into
   `runs/<run>/merge/hf/`, the model the eval stage scores.

Every input is found and checked before anything is written (merge/inputs.py: complete folders, the same
architecture, shapes, vocabulary and RoPE settings as each other and as the recipe); bad input is one line,
exit 2, and no output folder. Each merge is written into a temporary folder and renamed into place. The
rendered mergekit YAMLs are saved beside the models (`soup.yaml`, `blend.yaml`: rerun them with
`mergekit-yaml`, which may take the tokenizer from another input, see take_tokenizer). Both outputs are
complete HF folders: config, safetensors, the tokenizer with the post-training chat template (taken from the
APO checkpoints, then from the soup), generation config. mergekit 0.1.5 has no SmolLM3 definition: it
infers the layout from the model's weight names (a test checks that every tensor is merged, the tied
embedding once). The manifest records mode following and the passkey figure of the soup, the final model
and the long-context model side by side (merge/figures.py).

Usage: make merge RECIPE=recipes/tiny   (python -m pipeline run recipes/tiny/merge.yaml)
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import yaml

from merge.inputs import check_compatible, find_inputs
from merge.mergekit_config import blend_config, soup_config
from recipes.loader import display
from rundir import StageRun
from smollm3.hf_config import write_hf_config
from smollm3.hf_folder import hf_folder_writer

# The tokenizer and template files mergekit copies from its "donor" model (mergekit.merge._copy_tokenizer).
TOKENIZER_FILES = ("tokenizer_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer.model",
                   "added_tokens.json", "merges.txt", "chat_template.jinja", "generation_config.json",
                   "chat_template.json")


def take_tokenizer(donor: Path, out: Path) -> None:
    """Make out's tokenizer, chat template and generation config exactly the donor's. mergekit 0.1.5 copies them
    from `base_model`, else from the first of `referenced_models()`, which is a set turned into a list: with no
    base model (linear merges) the donor changes with the process' hash seed, and the blend of the soup with the
    mid-trained model sometimes came out with the mid-trained model's ChatML template (no /think, /no_think)."""
    for name in TOKENIZER_FILES:
        src, dst = donor / name, out / name
        if src.is_file():
            shutil.copy(src, dst)
        elif dst.exists():
            dst.unlink()


def finish_config(out: Path) -> None:
    """config.json as every post-trained folder has it (posttrain.trl_stage.save_hf): eos_token_id = the tokenizer's
    eos (<|im_end|>, as alignment-handbook's scripts/sft.py sets model.config.eos_token_id), and transformers 4.x's
    rope_theta / rope_scaling beside rope_parameters (mergekit writes the donor's config through transformers 5)."""
    from transformers import AutoTokenizer

    eos = AutoTokenizer.from_pretrained(str(out)).eos_token_id
    write_hf_config(out, {"eos_token_id": eos} if eos is not None else {})


def run_mergekit(config: dict, out: Path, tokenizer_from: Path) -> float:
    """Merge into `out` (a temporary folder renamed into place) with the tokenizer and template of
    `tokenizer_from`; the seconds it took."""
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    t0 = time.time()
    options = MergeOptions(copy_tokenizer=True, lazy_unpickle=False, write_model_card=True)  # tqdm: rate, ETA
    with hf_folder_writer(out) as tmp:
        run_merge(MergeConfiguration.model_validate(config), str(tmp), options)
        take_tokenizer(Path(tokenizer_from), tmp)
        finish_config(tmp)
    return time.time() - t0


def run(r) -> None:
    from merge.figures import figures

    soup_inputs, others = find_inputs(r)
    check_compatible(r, {**{p.name: p for p in soup_inputs}, **others})
    with StageRun(r, inputs=[soup_inputs[0].parent.parent] + [f.parent for f in others.values()]) as run_:
        if run_.skip:
            return
        soup_dir, final_dir = run_.dir / "soup", run_.dir / "hf"
        configs = {"soup": soup_config(r, soup_inputs), "blend": blend_config(r, {**others, "soup": soup_dir})}
        for name, config in configs.items():
            (run_.dir / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        print(f"[merge] soup: {r.soup_method} over {len(soup_inputs)} checkpoints of {r.soup_from} "
              f"({', '.join(p.name for p in soup_inputs)})", flush=True)
        seconds = {"soup": run_mergekit(configs["soup"], soup_dir, tokenizer_from=soup_inputs[-1])}
        weights = ", ".join(f"{b.weight:g} {b.model}" for b in r.blend)
        print(f"[merge] soup in {display(soup_dir)} ({seconds['soup']:.1f}s); blend: {r.blend_method} {weights}",
              flush=True)
        seconds["blend"] = run_mergekit(configs["blend"], final_dir, tokenizer_from=soup_dir)  # the dual-mode template
        print(f"[merge] final model in {display(final_dir)} ({seconds['blend']:.1f}s)", flush=True)
        measured = {"soup": figures(soup_dir, r.model.max_position_embeddings, "merge soup"),
                    "final": figures(final_dir, r.model.max_position_embeddings, "merge final")}
        measured.update({name: figures(folder, r.model.max_position_embeddings, f"merge {name}")
                         for name, folder in others.items()})
        keys = ("think_rate_think", "think_rate_no_think", "passkey_exact", "passkey_logprob")
        print("[merge] " + " | ".join(["model".ljust(12)] + [k.ljust(19) for k in keys]), flush=True)
        for name, m in measured.items():
            print("[merge] " + " | ".join([name.ljust(12)] + [f"{m[k]:.3f}".ljust(19) for k in keys]), flush=True)
        run_.outputs += ["soup", "hf", "soup.yaml", "blend.yaml"]
        run_.metrics.update(soup_checkpoints=[p.name for p in soup_inputs], merge_seconds=seconds,
                            blend={b.model: b.weight for b in r.blend}, figures=measured)
