"""Prompt-set files: the formats users hand to ``genlab sample --prompts`` (and later specs).

Two formats, chosen by the file's extension:

* ``.jsonl`` / ``.ndjson``: one JSON object per line with a string ``"prompt"`` field (other
  fields are ignored, so the same file can carry ids or notes); blank lines are skipped.
* anything else (``.txt``): one prompt per line, the line ending removed; blank lines skipped.

Every failure raises ``PromptFileError`` with a one-line message that names the line when
there is one; faces prefix their own flag or spec key. ``tokenize_prompts`` is the one rule for
turning prompts into ids (the decode loop and the scorer share it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

JSONL_SUFFIXES = (".jsonl", ".ndjson")


class PromptFileError(ValueError):
    """A prompt file is missing, unreadable, empty or malformed (one-line message)."""


def parse_prompts(text: str, *, jsonl: bool) -> list[str]:
    """Prompts from a file's decoded ``text`` (JSONL when ``jsonl``, else one per line).

    Raises:
        PromptFileError: A bad JSONL line (named by number), or no prompt at all.
    """
    prompts = _parse_jsonl(text) if jsonl else _parse_lines(text)
    if not prompts:
        raise PromptFileError("holds no prompts (blank lines are skipped)")
    return prompts


def load_prompts(path: str | Path) -> list[str]:
    """Read the prompt file at ``path`` (UTF-8); the format follows the extension.

    Raises:
        PromptFileError: Missing, unreadable, not UTF-8, empty or malformed.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PromptFileError("no such file") from None
    except IsADirectoryError:
        raise PromptFileError("is a directory, not a prompt file") from None
    except OSError as err:
        raise PromptFileError(f"cannot read it ({err.strerror or type(err).__name__})") from None
    return parse_prompts(decode_utf8(data), jsonl=path.suffix.lower() in JSONL_SUFFIXES)


def decode_utf8(data: bytes) -> str:
    """Decode UTF-8 (a leading BOM is dropped) or raise ``PromptFileError`` naming the line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise PromptFileError(f"line {line}: not UTF-8 text (byte {data[err.start]:#04x}); "
                              "save the file as UTF-8") from None


def _parse_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


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
        prompts.append(row["prompt"])
    return prompts


def tokenize_prompts(tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids per prompt; an empty prompt starts from BOS (or EOS when there is no BOS)."""
    start = tokenizer.bos_token_id
    start = tokenizer.eos_token_id if start is None else start
    return [list(ids) or [start] for ids in tokenizer(list(prompts))["input_ids"]]
