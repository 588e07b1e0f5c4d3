"""datatrove pipeline blocks of the data stage (module level, so executors pickle them by reference)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter


def doc_text(doc: Document) -> str:
    """What exact deduplication hashes: the whole text."""
    return doc.text


class LengthFilter(BaseFilter):
    """Drop documents shorter than min_chars or longer than max_chars (surrounding whitespace ignored)."""

    name = "📏 Length"

    def __init__(self, min_chars: int = 0, max_chars: Optional[int] = None):
        super().__init__()
        self.min_chars, self.max_chars = min_chars, max_chars

    def filter(self, doc: Document):
        n = len(doc.text.strip())
        if n < self.min_chars:
            return False, "too_short"
        if self.max_chars is not None and n > self.max_chars:
            return False, "too_long"
        return True


class ClearFolder(PipelineStep):
    """Remove a folder before a step writes it (a killed merge leaves partial files behind)."""

    name, type = "🧹 Clear", "📁 - FOLDER"

    def __init__(self, folder: str):
        super().__init__()
        self.folder = str(folder)

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        shutil.rmtree(self.folder, ignore_errors=True)
        return data


class PublishFolder(PipelineStep):
    """Rename a finished folder into place, so that a half-written source never looks built."""

    name, type = "📦 Publish", "📁 - FOLDER"

    def __init__(self, src: str, dst: str):
        super().__init__()
        self.src, self.dst = str(src), str(dst)

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        src, dst = Path(self.src), Path(self.dst)
        if not src.is_dir():
            raise RuntimeError(f"nothing to publish: {src} does not exist")
        old = dst.with_name(f".{dst.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if dst.exists():
            os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
        self.stat_update("published")
