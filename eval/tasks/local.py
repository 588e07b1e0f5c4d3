"""Local copies of the eval datasets, for clusters without the Hub: $SMOLLM3_EVAL_DATASETS (no lighteval import).

Usage: SMOLLM3_EVAL_DATASETS=/data/hub python -m eval run --model M --suite smollm3-base --output-dir out
       from eval.tasks.local import dataset_source; path, revision = dataset_source("allenai/ai2_arc", "210d026...")

The folder holds one copy per Hub dataset, in the Hub repository's own layout, at <root>/<owner>/<name>/: what
`hf download --repo-type dataset <owner>/<name> --revision <rev> --local-dir <root>/<owner>/<name>` writes (the
README.md whose `configs:` name the data files of each config and split, and those files). A task whose copy
exists reads it, without a revision (the copy is the revision); the others read the Hub.
"""

from __future__ import annotations

import os
from pathlib import Path

DATASETS_ENV = "SMOLLM3_EVAL_DATASETS"


def datasets_root(datasets_dir=None) -> Path | None:
    """The folder of local dataset copies: the argument, else $SMOLLM3_EVAL_DATASETS, else None ("" = none)."""
    root = datasets_dir if datasets_dir is not None else os.environ.get(DATASETS_ENV)
    return Path(root).expanduser() if root else None


def dataset_source(hf_repo: str, revision: str | None, datasets_dir=None) -> tuple[str, str | None]:
    """(path or Hub id, revision) that lighteval's load_dataset gets: <root>/<hf_repo> when that folder exists."""
    root = datasets_root(datasets_dir)
    if root is not None and (root / hf_repo).is_dir():
        return str((root / hf_repo).resolve()), None
    return hf_repo, revision
