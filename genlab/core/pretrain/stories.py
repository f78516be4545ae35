"""Story files: documents of a plain-text corpus split on a separator, and joined back.

TinyStories puts a line holding only ``<|endoftext|>`` after each story; ``read_stories`` and
``join_stories`` are inverse, so the held-out stories written into a pretraining directory read
back exactly.
"""

from __future__ import annotations

import re
from pathlib import Path

from genlab.core.configs.pretrain import EOS_TOKEN


def read_stories(path: str | Path, limit: int | None = None, *,
                 separator: str | None = EOS_TOKEN) -> list[str]:
    """Stories of a text file split on ``separator`` (None = blank lines), stripped, non-empty.

    The default reads TinyStories files (a line holding only ``<|endoftext|>`` after each story).
    """
    text = Path(path).read_text(encoding="utf-8").replace("\r\n", "\n")
    pieces = text.split(separator) if separator else re.split(r"\n[ \t]*\n", text)
    stories = [s.strip() for s in pieces]
    stories = [s for s in stories if s]
    return stories if limit is None else stories[:limit]


def join_stories(stories: list[str], separator: str | None = EOS_TOKEN) -> str:
    """The text ``read_stories`` splits back into ``stories`` (separator on its own line)."""
    if not separator:
        return "\n\n".join(stories) + "\n"
    return "".join(f"{s}\n{separator}\n" for s in stories)


