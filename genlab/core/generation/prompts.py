"""Prompt-set files: the formats users hand to ``genlab sample --prompts`` and specs.

Two formats, chosen by the file's extension:

* ``.jsonl`` / ``.ndjson``: one JSON object per line with a string ``"prompt"`` field, or a
  ``"messages"`` list (an OpenAI-style conversation, sent through the model's chat template;
  TRL's conversational ``"prompt": [messages]`` works too). Other fields are ignored, so the
  same file can carry ids or notes; blank lines are skipped.
* anything else (``.txt``): one prompt per line, the line ending removed; blank lines skipped.

``load_prompt_set`` returns ``Prompt`` items (text or conversation); ``load_prompts`` is for
places that take text only (training sample prompts) and refuses conversations.

Every failure raises ``PromptFileError`` with a one-line message that names the line when
there is one; faces prefix their own flag or spec key.

Size limits (each a clear error, checked while reading, so a huge or endless file never fills
memory): a prompt file holds at most ``MAX_FILE_BYTES`` (64 MiB) and ``MAX_PROMPTS`` (100,000)
prompts, and one prompt (a conversation: all its messages together) is at most
``MAX_PROMPT_CHARS`` (1,000,000) characters, far beyond the context of any model genlab runs
(whether a prompt fits the model is checked after tokenisation, where the model is known).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from genlab.core.data.chat import ChatError, parse_messages
from genlab.core.errors import GenlabError, InputTooLarge
from genlab.core.io import read_bytes_limited, read_stream_limited

JSONL_SUFFIXES = (".jsonl", ".ndjson")
MAX_FILE_BYTES = 64 << 20
"""Largest prompt file read (64 MiB)."""
MAX_PROMPTS = 100_000
"""Most prompts in one file."""
MAX_PROMPT_CHARS = 1_000_000
"""Longest prompt, in characters."""
_SHAPES = ('each line must be an object like {"prompt": "Once upon a time"} or {"messages": '
           '[{"role": "user", "content": "Hi"}]}')


class PromptFileError(GenlabError, ValueError):
    """A prompt file is missing, unreadable, empty or malformed (one-line message)."""


@dataclass(frozen=True)
class Prompt:
    """One prompt of a set: a text, or a whole conversation.

    Attributes:
        text: The raw prompt; for a conversation, its last user message (what tables show).
        messages: ``(role, content)`` pairs of a conversation, or None for a text prompt.
    """

    text: str
    messages: tuple[tuple[str, str], ...] | None = None

    @classmethod
    def conversation(cls, messages: tuple[tuple[str, str], ...]) -> Prompt:
        """A conversation prompt, shown by its last user message."""
        users = [content for role, content in messages if role == "user"]
        return cls(users[-1] if users else messages[-1][1], tuple(messages))

    @property
    def shown(self) -> str:
        """How tables title it: the text, with the conversation's length when it has turns."""
        if self.messages is None or len(self.messages) == 1:
            return self.text
        return f"[{len(self.messages)} messages] {self.text}"


def parse_prompt_set(text: str, *, jsonl: bool) -> list[Prompt]:
    """Prompts (texts and conversations) from a file's decoded ``text``.

    Raises:
        PromptFileError: A bad JSONL line (named by number), or no prompt at all.
    """
    prompts = _parse_jsonl(text) if jsonl else [Prompt(line) for line in _parse_lines(text)]
    if not prompts:
        raise PromptFileError("holds no prompts (blank lines are skipped)")
    if len(prompts) > MAX_PROMPTS:
        raise PromptFileError(f"holds {len(prompts):,} prompts, more than genlab's limit of "
                              f"{MAX_PROMPTS:,} per file; split it into smaller files")
    return prompts


def check_prompt_length(prompt: str, where: str = "", *, chars: int | None = None,
                        what: str = "a prompt") -> None:
    """Raise ``PromptFileError`` when ``prompt`` (or ``chars`` characters, for a conversation)
    is over ``MAX_PROMPT_CHARS`` characters."""
    size = len(prompt) if chars is None else chars
    if size > MAX_PROMPT_CHARS:
        head = f"{where}: " if where else ""
        raise PromptFileError(f"{head}{what} of {size:,} characters, more than genlab's "
                              f"limit of {MAX_PROMPT_CHARS:,}; shorten it (no model genlab runs "
                              "has a context that long)")


def parse_prompts(text: str, *, jsonl: bool) -> list[str]:
    """Text prompts from a file's decoded ``text`` (JSONL when ``jsonl``, else one per line).

    Raises:
        PromptFileError: A bad JSONL line (named by number), a conversation, or no prompt.
    """
    return _texts(parse_prompt_set(text, jsonl=jsonl))


def load_prompts(path: str | Path) -> list[str]:
    """Read the text prompts of the file at ``path`` (UTF-8); the format follows the extension.

    Raises:
        PromptFileError: Missing, unreadable, not UTF-8, empty, malformed, or a conversation.
    """
    return _texts(load_prompt_set(path))


def _texts(prompts: list[Prompt]) -> list[str]:
    for number, p in enumerate(prompts, start=1):
        if p.messages is not None:
            raise PromptFileError(f"prompt {number} is a conversation (\"messages\"); only "
                                  "text prompts are taken here")
    return [p.text for p in prompts]


def load_prompt_set(path: str | Path) -> list[Prompt]:
    """Read the prompts (texts and conversations) of the file at ``path``.

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
    return parse_prompt_set(decode_utf8(data), jsonl=path.suffix.lower() in JSONL_SUFFIXES)


def read_prompt_stream(stream: BinaryIO) -> list[Prompt]:
    """Prompts of a text stream (``--prompts -``: stdin), one per line, within the limits."""
    try:
        data = read_stream_limited(stream, MAX_FILE_BYTES, "the input")
    except InputTooLarge as err:
        raise PromptFileError(str(err).removeprefix("the input: ")) from None
    return parse_prompt_set(decode_utf8(data), jsonl=False)


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


def _parse_jsonl(text: str) -> list[Prompt]:
    prompts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise PromptFileError(f"line {number}: invalid JSON ({err.msg} at column "
                                  f"{err.colno})") from None
        try:
            if not isinstance(row, dict):
                raise PromptFileError(f"a JSON {type(row).__name__}, not an object; " +
                                      _SHAPES)
            prompts.append(prompt_from_value(row))
        except PromptFileError as err:
            raise PromptFileError(f"line {number}: {err}") from None
    return prompts


def prompt_from_value(row: Any) -> Prompt:
    """A ``Prompt`` from one JSONL object (or spec entry): a string, ``{"prompt": str}``,
    ``{"messages": [...]}`` or ``{"prompt": [...messages]}``.

    Raises:
        PromptFileError: None of those shapes (one line, without a location).
    """
    if isinstance(row, str):
        row = {"prompt": row}
    if not isinstance(row, dict) or not ("prompt" in row or "messages" in row):
        raise PromptFileError('no "prompt" or "messages" field; ' + _SHAPES)
    value = row["messages"] if "messages" in row else row["prompt"]
    if isinstance(value, list) or "messages" in row:  # "messages" is always a conversation
        try:
            messages = parse_messages(value)
        except ChatError as err:
            raise PromptFileError(str(err)) from None
        check_prompt_length("", chars=sum(len(content) for _, content in messages),
                            what="a conversation")
        return Prompt.conversation(messages)
    if not isinstance(value, str) or not value:
        raise PromptFileError('"prompt" must be a non-empty string')
    check_prompt_length(value)
    return Prompt(value)
