"""The dataset mixture of a TRL stage (mid-training, SFT, APO), with alignment-handbook's semantics.

alignment-handbook (`src/alignment/data.py` @ 925acdfe4b2b, which the SmolLM3 recipes ran) reads each dataset's split,
keeps `int(len(split) * weight)` examples of it shuffled with the mixture seed (a weight is the fraction of
a dataset's examples kept, not a sampling probability), then concatenates the parts and shuffles them with
the same seed. TRL passes each example's `chat_template_kwargs` to the chat template.

Every example gets all the `chat_template_kwargs` keys the smollm3 template reads (TEMPLATE_KWARGS; None where
unset, which the template reads as unset, except `enable_thinking`), and its dataset's mode as `enable_thinking`.
The date in the template's header is the recipe's (`chat.today_date`, written into the template itself).

Where a dataset comes from (`datasets[i].dataset`): `builtin:<name>` (conversations this repository
generates, posttrain/builtin_chats.py), `stage:<stage>` (what a stage of this run wrote, e.g. `make synth`),
a local folder (a `save_to_disk` dataset, or jsonl / parquet files), or a Hub id (cluster runs:
`datasets.load_dataset(id, config, split=split)`).

Usage: mixture(recipe) -> datasets.Dataset; mixture(recipe, split="test") for the held-out split
"""
from __future__ import annotations

from pathlib import Path

from recipes.loader import RecipeError, display
from rundir import completed_stage

# The keys of `chat_template_kwargs` the smollm3 template reads (smoltalk2's column has the first four): every
# example gets all of them (None where unset), so that datasets of different sources concatenate.
TEMPLATE_KWARGS = ("custom_instructions", "enable_thinking", "python_tools", "xml_tools")


def load_split(d, split: str, where: str, key: str, run: str = None):
    """One dataset's split as a `datasets.Dataset`."""
    import datasets

    if d.dataset.startswith("builtin:"):
        from posttrain import builtin_chats

        try:
            return builtin_chats.dataset(d.dataset.removeprefix("builtin:"), split)
        except KeyError:
            raise RecipeError(where, f"{key}.dataset", f"unknown builtin dataset or split (got {d.dataset} {split}; "
                              f"known: {', '.join('builtin:' + n for n in builtin_chats.NAMES)})") from None
    if d.dataset.startswith("stage:"):  # what a stage of this run wrote (make synth: runs/<run>/synth/data)
        local = stage_data(d, where, key, run)
    else:
        local = Path(d.dataset)
    if local.exists():
        if (local / "dataset_info.json").is_file() or (local / "dataset_dict.json").is_file():
            loaded = datasets.load_from_disk(str(local))
            return loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        files = sorted(local.glob(f"{split}*.jsonl")) or sorted(local.glob(f"{split}*.parquet"))
        if not files:
            raise RecipeError(where, f"{key}.dataset", f"no {split}*.jsonl or {split}*.parquet in {display(local)}")
        kind = "parquet" if files[0].suffix == ".parquet" else "json"
        return datasets.load_dataset(kind, data_files=[str(f) for f in files], split="train")
    return datasets.load_dataset(d.dataset, d.config, split=split)


def stage_data(d, where: str, key: str, run: str) -> Path:
    """The data folder of a `stage:<name>` dataset; refused unless that stage has completed."""
    return completed_stage(run, d.dataset.removeprefix("stage:"), where, f"{key}.dataset") / "data"


def stage_inputs(recipe, datasets=None, field: str = "datasets") -> list[Path]:
    """The run directories of the stages whose output the mixture reads (`stage:<name>` datasets), each
    checked to have completed (before the reader writes anything)."""
    out = []
    for i, d in enumerate(recipe.datasets if datasets is None else datasets):
        if d.dataset.startswith("stage:"):
            out.append(stage_data(d, recipe.file_of(f"{field}.{i}"), f"{field}.{i}", recipe.run).parent)
    return out


def _template_kwargs(example, mode):
    kw = dict.fromkeys(TEMPLATE_KWARGS)
    kw.update({k: v for k, v in (example.get("chat_template_kwargs") or {}).items() if v is not None})
    if mode is not None:
        kw["enable_thinking"] = mode == "think"
    return {"chat_template_kwargs": kw}


def mixture_parts(recipe, split: str = None, datasets=None, field: str = "datasets") -> list:
    """Each dataset's kept examples (its own split, or `split`), in the order of `datasets` (default: the
    recipe's `datasets`; `field` names the recipe field they come from, for errors)."""
    parts = []
    for i, d in enumerate(recipe.datasets if datasets is None else datasets):
        key = f"{field}.{i}"
        where = recipe.file_of(key)
        ds = load_split(d, split or d.split, where, key, recipe.run)
        missing = [c for c in d.columns if c not in ds.column_names]
        if missing:
            raise RecipeError(where, f"{key}.columns", f"{d.dataset} has no column {', '.join(missing)} "
                              f"(it has {', '.join(ds.column_names)})")
        keep = int(len(ds) * d.weight)
        if keep == 0:
            raise RecipeError(where, f"{key}.weight", f"keeps no example of the {len(ds)} of {d.dataset} "
                              f"(got {d.weight})")
        ds = ds.select_columns(d.columns).shuffle(seed=recipe.dataset_seed).select(range(keep))
        ds = ds.map(_template_kwargs, fn_kwargs={"mode": d.mode})
        parts.append(ds)
    return parts


def mixture(recipe, split: str = None, datasets=None, field: str = None):
    """The stage's training mixture (each dataset's own split), or the `split` of every dataset. `datasets`:
    another list of the recipe than `recipe.datasets` (a synth stage's prompts), `field` its name."""
    import datasets as hf_datasets

    field = field or ("datasets" if datasets is None else "prompts")
    parts = mixture_parts(recipe, split, datasets, field)
    return hf_datasets.concatenate_datasets(parts).shuffle(seed=recipe.dataset_seed)
