"""Prompt-set files: the formats users hand to ``genlab sample --prompts`` (and later specs).

Two formats, chosen by the file's extension:

* ``.jsonl`` / ``.ndjson``: one JSON object per line with a string ``"prompt"`` field (other
  fields are ignored, so the same file can carry ids or notes); blank lines are skipped.
* anything else (``.txt``): one prompt per line, the line ending removed; blank lines skipped.

Every failure raises ``PromptFileError`` with a one-line message that names the line when
there is one; faces prefix their own flag or spec key.

Size limits (each a clear error, checked while reading, so a huge or endless file never fills
memory): a prompt file holds at most ``MAX_FILE_BYTES`` (64 MiB) and ``MAX_PROMPTS`` (100,000)
prompts, and one prompt is at most ``MAX_PROMPT_CHARS`` (1,000,000) characters, far beyond the
context of any model genlab runs (whether a prompt fits the model is checked after
tokenisation, where the model is known).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

from genlab.core.errors import GenlabError, InputTooLarge
from genlab.core.io import read_bytes_limited, read_stream_limited

JSONL_SUFFIXES = (".jsonl", ".ndjson")
MAX_FILE_BYTES = 64 << 20
"""Largest prompt file read (64 MiB)."""
MAX_PROMPTS = 100_000
"""Most prompts in one file."""
MAX_PROMPT_CHARS = 1_000_000
"""Longest prompt, in characters."""


class PromptFileError(GenlabError, ValueError):
    """A prompt file is missing, unreadable, empty or malformed (one-line message)."""


def parse_prompts(text: str, *, jsonl: bool) -> list[str]:
    """Prompts from a file's decoded ``text`` (JSONL when ``jsonl``, else one per line).

    Raises:
        PromptFileError: A bad JSONL line (named by number), or no prompt at all.
    """
    prompts = _parse_jsonl(text) if jsonl else _parse_lines(text)
    if not prompts:
        raise PromptFileError("holds no prompts (blank lines are skipped)")
    if len(prompts) > MAX_PROMPTS:
        raise PromptFileError(f"holds {len(prompts):,} prompts, more than genlab's limit of "
                              f"{MAX_PROMPTS:,} per file; split it into smaller files")
    return prompts


def check_prompt_length(prompt: str, where: str = "") -> None:
    """Raise ``PromptFileError`` when ``prompt`` is over ``MAX_PROMPT_CHARS`` characters."""
    if len(prompt) > MAX_PROMPT_CHARS:
        head = f"{where}: " if where else ""
        raise PromptFileError(f"{head}a prompt of {len(prompt):,} characters, more than genlab's "
                              f"limit of {MAX_PROMPT_CHARS:,}; shorten it (no model genlab runs "
                              "has a context that long)")


def load_prompts(path: str | Path) -> list[str]:
    """Read the prompt file at ``path`` (UTF-8); the format follows the extension.

    Raises:
        PromptFileError: Missing, unreadable, not UTF-8, empty or malformed.
    """
    path = Path(path)
    try:
        data = read_bytes_limited(path, MAX_FILE_BYTES, "the file")
    except FileNotFoundError:
        raise PromptFileError("no such file") from None
    except IsADirectoryError:
        raise PromptFileError("is a directory, not a prompt file") from None
    except InputTooLarge as err:
        raise PromptFileError(str(err).removeprefix("the file: ")) from None
    except OSError as err:
        raise PromptFileError(f"cannot read it ({err.strerror or type(err).__name__})") from None
    return parse_prompts(decode_utf8(data), jsonl=path.suffix.lower() in JSONL_SUFFIXES)


def read_prompt_stream(stream: BinaryIO) -> list[str]:
    """Prompts of a text stream (``--prompts -``: stdin), one per line, within the limits."""
    try:
        data = read_stream_limited(stream, MAX_FILE_BYTES, "the input")
    except InputTooLarge as err:
        raise PromptFileError(str(err).removeprefix("the input: ")) from None
    return parse_prompts(decode_utf8(data), jsonl=False)


def decode_utf8(data: bytes) -> str:
    """Decode UTF-8 (a leading BOM is dropped) or raise ``PromptFileError`` naming the line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise PromptFileError(f"line {line}: not UTF-8 text (byte {data[err.start]:#04x}); "
                              "save the file as UTF-8") from None


def _parse_lines(text: str) -> list[str]:
    prompts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            check_prompt_length(line, f"line {number}")
            prompts.append(line)
    return prompts


def _parse_jsonl(text: str) -> list[str]:
    prompts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise PromptFileError(f"line {number}: invalid JSON ({err.msg} at column "
                                  f"{err.colno})") from None
        if not isinstance(row, dict) or "prompt" not in row:
            raise PromptFileError(f'line {number}: no "prompt" field; each line must be an '
                                  'object like {"prompt": "Once upon a time"}')
        if not isinstance(row["prompt"], str) or not row["prompt"]:
            raise PromptFileError(f'line {number}: "prompt" must be a non-empty string')
        check_prompt_length(row["prompt"], f"line {number}")
        prompts.append(row["prompt"])
    return prompts
