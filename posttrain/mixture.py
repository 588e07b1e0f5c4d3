"""The dataset mixture of a TRL stage (mid-training, SFT, APO), with alignment-handbook's semantics.

alignment-handbook (`src/alignment/data.py`, which the SmolLM3 recipes ran) reads each dataset's split,
keeps `int(len(split) * weight)` examples of it shuffled with the mixture seed (a weight is the fraction of
a dataset's examples kept, not a sampling probability), then concatenates the parts and shuffles them with
the same seed. A `mode` (think / no_think) becomes the `chat_template_kwargs` column TRL passes to the chat
template (`enable_thinking`).

Where a dataset comes from (`datasets[i].dataset`): `builtin:<name>` (conversations this repository
generates, posttrain/builtin_chats.py), a local folder (a `save_to_disk` dataset, or jsonl / parquet files),
or a Hub id (cluster runs: `datasets.load_dataset(id, config, split=split)`).

Usage: mixture(recipe) -> datasets.Dataset; mixture(recipe, split="test") for the held-out split
"""
from __future__ import annotations

from pathlib import Path

from recipes.loader import RecipeError, display


def load_split(d, split: str, where: str, key: str):
    """One dataset's split as a `datasets.Dataset`."""
    import datasets

    if d.dataset.startswith("builtin:"):
        from posttrain import builtin_chats

        name = d.dataset.removeprefix("builtin:")
        if name not in builtin_chats.NAMES or split not in builtin_chats.SPLITS:
            raise RecipeError(where, f"{key}.dataset", f"unknown builtin dataset or split (got {d.dataset} "
                              f"{split}; known: {', '.join('builtin:' + n for n in builtin_chats.NAMES)}, splits "
                              f"{', '.join(builtin_chats.SPLITS)})")
        return builtin_chats.dataset(name, split)
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


def mixture(recipe, split: str = None):
    """The stage's training mixture (each dataset's own split), or the `split` of every dataset."""
    import datasets

    parts = []
    for i, d in enumerate(recipe.datasets):
        key = f"datasets.{i}"
        where = recipe.file_of(key)
        ds = load_split(d, split or d.split, where, key)
        missing = [c for c in d.columns if c not in ds.column_names]
        if missing:
            raise RecipeError(where, f"{key}.columns", f"{d.dataset} has no column {', '.join(missing)} "
                              f"(it has {', '.join(ds.column_names)})")
        keep = int(len(ds) * d.weight)
        if keep == 0:
            raise RecipeError(where, f"{key}.weight", f"keeps no example of the {len(ds)} of {d.dataset} "
                              f"(got {d.weight})")
        ds = ds.select_columns(d.columns).shuffle(seed=recipe.dataset_seed).select(range(keep))
        if d.mode is not None:
            ds = ds.add_column("chat_template_kwargs", [{"enable_thinking": d.mode == "think"}] * len(ds))
        parts.append(ds)
    return datasets.concatenate_datasets(parts).shuffle(seed=recipe.dataset_seed)
