"""The sources a data stage builds: the union of its mixtures' sources, and one datatrove reader per source.

A mixture source names its data in one of three ways (recipes/schema.py `Source`):
  dataset: a Hugging Face dataset id (+ subset / split / text_key), read with datatrove's
           HuggingFaceDatasetReader in streaming mode (a local dataset folder works the same way, offline);
  path:    a local folder (or file) of jsonl / parquet documents, read with JsonlReader / ParquetReader;
  builtin: a corpus this repository generates (pretrain/data/corpora.py), written as jsonl shards first.
The same source name may appear in several mixtures (with different weights); it must name the same data.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from recipes.loader import RecipeError, display
from rundir import stage_dir

RESERVED = {"tokenizer", "manifest.json"}
JSONL_GLOBS = ("*.jsonl", "*.jsonl.gz", "*.jsonl.zst", "*.json.gz")
PARQUET_GLOBS = ("*.parquet",)


@dataclass
class SourceSpec:
    """One source to build, with where it was declared (for error messages)."""

    name: str
    category: str
    kind: str  # dataset | path | builtin
    dataset: Optional[str] = None
    subset: Optional[str] = None
    split: str = "train"
    text_key: str = "text"
    path: Optional[str] = None  # resolved local path (path sources)
    builtin: Optional[str] = None
    license: Optional[str] = None
    file: str = ""  # mixture file that declared it
    key: str = ""  # the field that declared it, e.g. sources.3
    mixtures: list = field(default_factory=list)
    stamp: Optional[str] = None  # path sources: hash of their files' names, sizes and modification times

    def identity(self) -> dict:
        """What determines the documents of this source (a change means a rebuild)."""
        return {"kind": self.kind, "dataset": self.dataset, "subset": self.subset, "split": self.split,
                "text_key": self.text_key, "path": self.path, "builtin": self.builtin, "stamp": self.stamp}


# ------------------------------------------------------------------------------------------- folders
def data_dir(recipe_name: str) -> Path:
    """runs/<recipe>/data: where the data stage writes (SMOLLM3_RUNS moves runs/)."""
    return stage_dir(recipe_name, "data")


def source_folder(recipe_name: str, source: str) -> Path:
    """The tokenized folder of one source: runs/<recipe>/data/<source>/ (.ds, .ds.index, .ds.metadata)."""
    return data_dir(recipe_name) / source


# ------------------------------------------------------------------------------------------- sources
def stage_sources(recipe, *, allow_unpublished: bool = False) -> list[SourceSpec]:
    """The union of the sources of the stage's mixtures, checked (no writes). Raises RecipeError."""
    from pretrain.data.corpora import BUILTINS

    out: dict[str, SourceSpec] = {}
    for mixture in recipe.mixtures:
        mname, where = mixture.name, mixture._file
        for i, s in enumerate(mixture.sources):
            fld = f"sources.{i}"
            if s.name in RESERVED or s.name.startswith((".", "_")) or "/" in s.name:
                raise RecipeError(where, f"{fld}.name", f"reserved or unsafe source name (got {s.name!r})")
            if s.builtin:
                if s.builtin not in BUILTINS:
                    raise RecipeError(where, f"{fld}.builtin", f"unknown builtin corpus (got {s.builtin!r}; known: "
                                                               f"{', '.join(sorted(BUILTINS))})")
                spec = SourceSpec(s.name, s.category, "builtin", builtin=s.builtin, text_key="text")
            elif s.path:
                p = Path(s.path)  # made absolute by the loader (relative paths are the mixture file's)
                if not p.exists():
                    raise RecipeError(where, f"{fld}.path", f"missing source: local data path does not exist "
                                                            f"(got {s.path})")
                if not list_data_files(p):
                    raise RecipeError(where, f"{fld}.path", f"missing source: no .jsonl or .parquet files in "
                                                            f"{display(p)}")
                spec = SourceSpec(s.name, s.category, "path", path=str(p), text_key=s.text_key, stamp=files_stamp(p))
            elif s.dataset:
                spec = SourceSpec(s.name, s.category, "dataset", dataset=s.dataset, subset=s.subset, split=s.split,
                                  text_key=s.text_key)
            else:
                if allow_unpublished:
                    spec = SourceSpec(s.name, s.category, "unpublished")
                else:
                    raise RecipeError(where, f"{fld}.dataset", f"missing source: {s.name!r} is not published "
                                                               "(dataset: null); give `path:` to a local copy")
            spec.license, spec.file, spec.key = s.license, where, fld
            if s.name in out:
                prev = out[s.name]
                if prev.identity() != spec.identity():
                    raise RecipeError(where, fld, f"source {s.name!r} names different data than in {prev.file} "
                                                  f"({prev.key}): {prev.identity()} vs {spec.identity()}")
                prev.mixtures.append(mname)
                continue
            spec.mixtures = [mname]
            out[s.name] = spec
    return list(out.values())


def files_stamp(p: Path) -> str:
    """Changes when a file of a local source is added, removed or modified."""
    h = hashlib.sha256()
    for f in list_data_files(p):
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def list_data_files(p: Path) -> list[Path]:
    p = Path(p)
    if p.is_file():
        return [p] if any(p.match(g) for g in JSONL_GLOBS + PARQUET_GLOBS) else []
    return sorted(f for g in JSONL_GLOBS + PARQUET_GLOBS for f in p.rglob(g) if f.is_file())


# ------------------------------------------------------------------------------------------- readers
def make_reader(spec: SourceSpec, corpus_dir: Optional[Path] = None, *, doc_progress: bool = False):
    """The datatrove reader of one source (the same factory for the tiny and the published recipe)."""
    from datatrove.pipeline.readers import HuggingFaceDatasetReader, JsonlReader, ParquetReader

    meta = {"source": spec.name, "category": spec.category}
    if spec.kind == "builtin":
        return JsonlReader(str(corpus_dir), glob_pattern="*.jsonl", text_key="text", id_key="id",
                           default_metadata=meta, doc_progress=doc_progress, add_file_path=False)
    if spec.kind == "path":
        p = Path(spec.path)
        folder, files = (p.parent, [p.name]) if p.is_file() else (p, None)
        found = list_data_files(p)
        parquet = [f for f in found if f.suffix == ".parquet"]
        jsonl = [f for f in found if f not in parquet]
        if parquet and jsonl:
            raise RecipeError(spec.file, f"{spec.key}.path", f"mixes jsonl and parquet files (got {display(p)})")
        cls, pattern = (ParquetReader, "**/*.parquet") if parquet else (JsonlReader, None)
        if files:
            pattern = files[0]
        elif cls is JsonlReader:
            pattern = "**/*.json*"
        return cls(str(folder), glob_pattern=pattern, text_key=spec.text_key, default_metadata=meta,
                   doc_progress=doc_progress)
    if spec.kind == "dataset":
        options = {"split": spec.split}
        if spec.subset:
            options["name"] = spec.subset
        return HuggingFaceDatasetReader(spec.dataset, dataset_options=options, streaming=True,
                                        text_key=spec.text_key, default_metadata=meta, doc_progress=doc_progress)
    raise RecipeError(spec.file, spec.key, f"source {spec.name!r} has no data to read")
