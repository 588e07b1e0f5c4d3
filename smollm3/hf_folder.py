"""The one writer of Hugging Face model folders: every stage that produces one (nanotron -> HF conversion, the TRL
stages, the merge, the eval stage's YaRN views) writes it into a temporary folder beside its destination, which
the main process then renames into place. A reader sees the old folder or the complete new one, never half of
one; a failed write leaves nothing that looks finished.

The side-effect rule of multi-process stages: only the main process (rundir.is_main_process) creates, renames
and deletes; the others write nothing of their own and wait at `wait` (a barrier) before the folder is handed to
them and after it is in place. A library that gathers sharded weights (Trainer.save_model under DeepSpeed ZeRO-3)
is called by every process with the same temporary path, and writes from its main process itself.

Usage:
    with hf_folder_writer(out) as tmp:            # one process
        model.save_pretrained(tmp); tokenizer.save_pretrained(tmp)
    with hf_folder_writer(out, wait=accelerator.wait_for_everyone) as tmp:   # every process of a job
        trainer.save_model(tmp)
        if is_main_process(): tokenizer.save_pretrained(tmp)
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator, Optional

from rundir import is_main_process


def temporary_path(out) -> Path:
    """Where the folder for `out` is written: beside it, the same path in every process."""
    out = Path(out)
    return out.with_name(f".{out.name}.tmp")


def replace_folder(tmp: Path, out: Path) -> None:
    """Put `tmp` at `out` (an older `out` set aside first, then deleted)."""
    os.chmod(tmp, 0o755)
    if out.exists() or out.is_symlink():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


@contextlib.contextmanager
def hf_folder_writer(out, wait: Optional[Callable[[], None]] = None) -> Iterator[Path]:
    """Yield the temporary folder to write `out` into (see the module doc); on success the main process renames
    it into place, on an exception it is removed."""
    out = Path(out)
    tmp, main = temporary_path(out), is_main_process()
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    if wait is not None:
        wait()
    try:
        yield tmp
    except BaseException:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    if wait is not None:
        wait()  # every process has written its part
    if main:
        replace_folder(tmp, out)
    if wait is not None:
        wait()  # the folder is in place for every process
