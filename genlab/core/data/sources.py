"""Reading training documents from files, directories and the hub: the loading half of data.

Owns turning what the user passes as ``--data`` / ``--eval-data`` into a list of ``Document``:

* ``.txt``: plain UTF-8 text; documents are separated by blank lines, or by ``doc_separator``
  (e.g. ``<|endoftext|>`` for TinyStories-style files). Each document is stripped; empty ones
  are dropped. Windows line endings are read as ``\\n``.
* ``.jsonl`` / ``.json`` / ``.csv`` / ``.parquet``: loaded through ``datasets.load_dataset``
  (split ``train``), one document per row, from ``text_field`` (stripped, empty rows dropped),
  from ``prompt_field`` + ``completion_field`` (kept verbatim, rows with an empty completion
  dropped; a missing prompt counts as ""), or from ``messages_field``: an OpenAI-style
  conversation (``[{"role", "content"}]``, the format TRL, LLaMA-Factory and axolotl take),
  used when ``data_format`` is ``messages``, or ``auto`` and the rows have that field;
  conversations without an assistant turn carry no loss and are dropped.
* a directory: every supported file directly inside it (not recursive, hidden files skipped), in
  sorted name order; formats may be mixed as long as the fields match.
* anything else that does not exist locally is tried as a Hugging Face hub dataset name
  (``datasets.load_dataset(name, split="train")``).

Size limits: one document (a ``.txt`` document, a JSONL line, a CSV/Parquet/JSON row's text)
holds at most ``MAX_ROW_BYTES`` (8 MiB); a ``.jsonl`` line over it is refused while the file is
scanned, before anything parses it. The corpus as a whole has no limit: it is tokenised in
memory, so it needs room for its token ids.

Every failure is a ``DataError`` with one line naming the flag, the problem and the fix. The
``datasets`` library is imported lazily, kept quiet (no progress bars, no log lines: the core
never prints) and pointed at a throw-away cache for local files, so nothing lands in the user's
``~/.cache``.
"""

from __future__ import annotations

import codecs
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from huggingface_hub.utils import logging as hub_logging

from genlab.core.data.chat import ChatError, parse_messages
from genlab.core.errors import GenlabError
from genlab.core.io import human_size

TEXT_SUFFIXES = (".txt",)
STRUCTURED_SUFFIXES = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
SUPPORTED_SUFFIXES = (*TEXT_SUFFIXES, *STRUCTURED_SUFFIXES)
_UTF8_CHUNK = 1 << 20
MAX_ROW_BYTES = 8 << 20
"""Largest document or row (8 MiB): tokenising one text that long takes seconds and ~2 GB."""
LINE_SUFFIXES = (".jsonl",)


class DataError(GenlabError, ValueError):
    """Training data cannot be used; the one-line message names the flag, problem and fix."""


@dataclass(frozen=True)
class Document:
    """One training example: a text, or a prompt and its completion.

    In text mode ``prompt`` is None and every token of ``text`` carries loss. In
    prompt/completion mode ``text`` is the completion (the part that carries loss) and
    ``prompt`` the conditioning prefix (no loss). A conversation has ``messages``; its
    assistant turns carry the loss, and ``text`` is those turns joined (for byte counts).
    """

    text: str
    """The scored text: the whole document, or the completion of a prompt/completion pair."""
    prompt: str | None = None
    """The unscored prefix in prompt/completion mode; None in text mode."""
    messages: tuple[tuple[str, str], ...] | None = None
    """``(role, content)`` turns of a conversation, rendered through the chat template."""

    @classmethod
    def conversation(cls, messages: tuple[tuple[str, str], ...]) -> Document:
        """A conversation document (its scored text: the assistant turns)."""
        replies = "".join(content for role, content in messages if role == "assistant")
        return cls(replies, messages=tuple(messages))

    @property
    def is_conversation(self) -> bool:
        """True for a conversation (``messages``)."""
        return self.messages is not None

    @property
    def completion(self) -> str:
        """Alias of ``text`` that reads better in prompt/completion mode."""
        return self.text

    @property
    def is_pair(self) -> bool:
        """True for a prompt/completion document."""
        return self.prompt is not None


@dataclass(frozen=True)
class _Fields:
    flag: str
    text: str
    prompt: str | None
    completion: str | None
    messages: str = "messages"
    data_format: str = "auto"

    @property
    def pair(self) -> bool:
        return self.prompt is not None

    def wants_messages(self, columns: Sequence[str]) -> bool:
        """Read conversations: asked for, or ``auto`` with a messages column (and no pair)."""
        if self.data_format == "messages":
            return True
        return self.data_format == "auto" and not self.pair and self.messages in columns


def load_documents(
    source: str,
    *,
    text_field: str = "text",
    prompt_field: str | None = None,
    completion_field: str | None = None,
    doc_separator: str | None = None,
    flag: str = "--data",
    messages_field: str = "messages",
    data_format: str = "auto",
) -> list[Document]:
    """Read every document of a file, a directory of files, or a hub dataset.

    Args:
        source: Path of a .txt/.jsonl/.json/.csv/.parquet file or directory, or a hub name.
        text_field: Column holding the text in structured files (text mode).
        prompt_field: With ``completion_field``: prompt/completion mode, loss on completions.
        completion_field: See ``prompt_field``.
        doc_separator: Separator between documents in .txt files; None = blank lines.
        flag: The flag that named ``source`` (``--data`` or ``--eval-data``), for messages.
        messages_field: Column holding conversations.
        data_format: ``auto``, ``text``, ``prompt-completion`` or ``messages``.

    Returns:
        The documents in file order (files in sorted name order for a directory).

    Raises:
        DataError: Missing path, unreadable or empty data, missing fields, bad format.
    """
    if (prompt_field is None) != (completion_field is None):
        raise DataError("--prompt-field and --completion-field go together: pass both "
                        "(loss on the completion only) or neither (text mode)")
    fields = _Fields(flag, text_field, prompt_field, completion_field, messages_field,
                     data_format)
    path = Path(source).expanduser()
    if path.is_dir():
        docs = [doc for file in _directory_files(path, flag)
                for doc in _load_file(file, fields, doc_separator)]
    elif path.is_file():
        docs = _load_file(path, fields, doc_separator)
    elif _looks_local(source):
        raise DataError(f"{flag} {source}: no such file or directory; pass an existing "
                        f"{_supported()} file, or a directory of them")
    else:
        docs = _load_hub(source, fields)
    if not docs:
        raise DataError(f"{flag} {source}: holds no documents (every one is empty); "
                        "check the file and --text-field / --doc-separator")
    return docs


def _supported() -> str:
    return "/".join(SUPPORTED_SUFFIXES)


def _looks_local(source: str) -> bool:
    """True when ``source`` cannot be a hub dataset name, so "not found" is the answer."""
    if source.startswith((".", "/", "~", "\\")):
        return True
    if Path(source).suffix.lower() in SUPPORTED_SUFFIXES:
        return True
    return source.count("/") > 1 or "\\" in source or not source.strip()


def _directory_files(directory: Path, flag: str) -> list[Path]:
    visible = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    files = [p for p in visible if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES]
    if not files:
        found = ", ".join(p.name for p in visible[:8]) or "nothing"
        raise DataError(f"{flag} {directory}: the directory holds no {_supported()} files "
                        f"(found: {found}); point {flag} at a data file or a folder of them")
    return files


def _load_file(path: Path, fields: _Fields, doc_separator: str | None) -> list[Document]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataError(f"{fields.flag} {path}: unsupported file type {suffix or '(none)'!r}; "
                        f"use one of {', '.join(SUPPORTED_SUFFIXES)}")
    if path.stat().st_size == 0:
        raise DataError(f"{fields.flag} {path}: the file is empty; pass a file with documents")
    if suffix != ".parquet":
        _scan_text(path, fields.flag, MAX_ROW_BYTES if suffix in LINE_SUFFIXES else None)
    if suffix in TEXT_SUFFIXES:
        return _load_text_file(path, fields, doc_separator)
    return _load_structured(path, STRUCTURED_SUFFIXES[suffix], fields)


def _scan_text(path: Path, flag: str, max_line: int | None) -> None:
    """One streaming pass: a DataError naming the byte offset of the first invalid UTF-8
    sequence, or the first line longer than ``max_line`` bytes (None: no line limit)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line, run = 0, 1, 0  # run: bytes of the current line so far
    with _open_data(path, flag) as fh:
        while True:
            chunk = fh.read(_UTF8_CHUNK)
            pending = len(decoder.getstate()[0])  # bytes of a split character from last chunk
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                at = offset - pending + err.start
                raise DataError(f"{flag} {path}: not UTF-8 text (invalid byte "
                                f"0x{err.object[err.start]:02x} at byte offset {max(at, 0)}); "
                                "re-save the file as UTF-8") from None
            if not chunk:
                return
            if max_line is not None:
                line, run = _check_lines(chunk, line, run, max_line, f"{flag} {path}")
            offset += len(chunk)


def _check_lines(chunk: bytes, line: int, run: int, max_line: int, where: str
                 ) -> tuple[int, int]:
    """Track line lengths over chunks; returns the (line number, bytes so far) carried on."""
    pieces = chunk.split(b"\n")
    for i, piece in enumerate(pieces):
        run += len(piece)
        if run > max_line:
            raise DataError(f"{where}: line {line} is longer than {human_size(max_line)}, "
                            "genlab's limit for one row; split that row into smaller ones")
        if i < len(pieces) - 1:
            line, run = line + 1, 0
    return line, run


def _open_data(path: Path, flag: str) -> Any:
    """``path`` opened for binary reading; an unreadable file is a one-line DataError."""
    try:
        return path.open("rb")
    except OSError as err:
        raise DataError(f"{flag} {path}: cannot read it ({(err.strerror or str(err)).lower()});"
                        " check its permissions") from None


def _load_text_file(path: Path, fields: _Fields, doc_separator: str | None) -> list[Document]:
    if fields.data_format == "messages":
        raise DataError(f"--data-format messages: {path} is plain text; conversations come as "
                        f".jsonl/.json/.parquet rows with a {fields.messages!r} list")
    if fields.pair:
        raise DataError(f"--prompt-field {fields.prompt}: {path} is plain text, which has no "
                        "fields; use .jsonl/.json/.csv/.parquet rows for prompt/completion data")
    with _open_data(path, fields.flag) as fh:
        text = fh.read().decode("utf-8").replace("\r\n", "\n")
    pieces = text.split(doc_separator) if doc_separator else _split_blank_lines(text)
    docs = [Document(doc) for doc in (p.strip() for p in pieces) if doc]
    for number, doc in enumerate(docs, start=1):
        if len(doc.text) > MAX_ROW_BYTES:
            raise DataError(f"{fields.flag} {path}: document {number} holds "
                            f"{len(doc.text):,} characters, more than genlab's limit of "
                            f"{human_size(MAX_ROW_BYTES)} for one document; split it (blank "
                            "lines, or --doc-separator, separate documents)")
    return docs


def _split_blank_lines(text: str) -> list[str]:
    """Split on lines that are empty or whitespace-only (one or more in a row)."""
    docs: list[str] = []
    current: list[str] = []
    for line in text.split("\n"):
        if line.strip():
            current.append(line)
        elif current:
            docs.append("\n".join(current))
            current = []
    if current:
        docs.append("\n".join(current))
    return docs


def _load_structured(path: Path, builder: str, fields: _Fields) -> list[Document]:
    datasets = _quiet_datasets()
    try:
        with tempfile.TemporaryDirectory(prefix="genlab-datasets-") as cache:
            table = datasets.load_dataset(builder, data_files=str(path), split="train",
                                          cache_dir=cache, keep_in_memory=True)
            return _rows_to_documents(table, fields, str(path))
    except DataError:
        raise
    except Exception as err:  # datasets wraps parser errors in several exception types
        raise DataError(_parse_failure(path, builder, fields.flag, err)) from err


def _parse_failure(path: Path, builder: str, flag: str, err: Exception) -> str:
    """A one-line message for a file ``datasets`` could not parse; names the bad JSON line."""
    if path.suffix.lower() == ".jsonl" or builder == "json":
        bad = _first_bad_json_line(path)
        if bad is not None:
            line, why = bad
            return (f"{flag} {path}: line {line} is not valid JSON ({why}); fix that line "
                    "(JSON Lines needs one object per line)")
    cause = err.__cause__ or err.__context__ or err
    return (f"{flag} {path}: cannot read it as {builder.upper()} ({_first_line(cause)}); "
            "check the file format")


def _first_bad_json_line(path: Path) -> tuple[int, str] | None:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json" and text.lstrip().startswith(("[", "{")):
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            return err.lineno, err.msg
        if text.lstrip().startswith("["):
            return None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            return number, err.msg
        if not isinstance(value, dict):
            return number, f"a JSON {type(value).__name__}, not an object"
    return None


def _rows_to_documents(table: Any, fields: _Fields, where: str) -> list[Document]:
    """Documents from a ``datasets.Dataset`` after checking that the fields exist."""
    columns = list(table.column_names)
    names = ", ".join(columns) or "none"
    if fields.wants_messages(columns):
        return _conversations(table, fields, where, names)
    if fields.pair:
        for flag, name in (("--prompt-field", fields.prompt), ("--completion-field",
                                                               fields.completion)):
            if name not in columns:
                raise DataError(f"{flag} {name}: {where} has no {name!r} field (its fields: "
                                f"{names}); pass {flag} with one of them")
        prompts = _strings(table[fields.prompt], "--prompt-field", fields.prompt, where)
        completions = _strings(table[fields.completion], "--completion-field",
                               fields.completion, where, required=True)
        return [Document(c, prompt=p) for p, c in zip(prompts, completions, strict=True) if c]
    if fields.text not in columns:
        raise DataError(f"--text-field {fields.text}: {where} has no {fields.text!r} field "
                        f"(its fields: {names}); pass --text-field with one of them, or "
                        "--prompt-field and --completion-field")
    texts = _strings(table[fields.text], "--text-field", fields.text, where)
    return [Document(t) for t in (t.strip() for t in texts) if t]


def _conversations(table: Any, fields: _Fields, where: str, names: str) -> list[Document]:
    """Conversation documents from the messages column; rows without a reply are dropped."""
    flag = "--messages-field"
    if fields.messages not in table.column_names:
        raise DataError(f"{flag} {fields.messages}: {where} has no {fields.messages!r} field "
                        f"(its fields: {names}); pass {flag} with the column holding each "
                        "row's list of {role, content} messages")
    docs = []
    for row, value in enumerate(table[fields.messages], start=1):
        try:
            pairs = parse_messages(_plain_messages(value))
        except ChatError as err:
            raise DataError(f"{flag} {fields.messages}: row {row} of {where}: {err}") from None
        size = sum(len(content) for _, content in pairs)
        if size > MAX_ROW_BYTES:
            raise DataError(f"{flag} {fields.messages}: row {row} of {where} holds {size:,} "
                            f"characters of messages, more than genlab's limit of "
                            f"{human_size(MAX_ROW_BYTES)} for one row; split it")
        if any(role == "assistant" and content for role, content in pairs):
            docs.append(Document.conversation(pairs))
    return docs


def _plain_messages(value: Any) -> Any:
    """datasets gives a list of dicts (JSON) or a list of structs; keep role and content."""
    if isinstance(value, list):
        return [{"role": m.get("role"), "content": m.get("content") or ""}
                if isinstance(m, dict) else m for m in value]
    return value


def _strings(column: Sequence[Any], flag: str, name: str, where: str,
             required: bool = False) -> list[str]:
    """The column as strings (None -> "", or an error when ``required``); any other
    non-string value, or a text over ``MAX_ROW_BYTES``, is an error."""
    values = list(column)
    for row, value in enumerate(values, start=1):
        if value is None and required:
            raise DataError(f"{flag} {name}: row {row} of {where} has no {name!r} value; give "
                            f"every row one (rows whose {name!r} is \"\" are skipped)")
        if value is not None and not isinstance(value, str):
            raise DataError(f"{flag} {name}: row {row} of {where} holds a "
                            f"{type(value).__name__}, not text; point {flag} at a text field")
        if value is not None and len(value) > MAX_ROW_BYTES:
            raise DataError(f"{flag} {name}: row {row} of {where} holds {len(value):,} "
                            f"characters, more than genlab's limit of "
                            f"{human_size(MAX_ROW_BYTES)} for one row; split it")
    return [v or "" for v in values]


def _load_hub(name: str, fields: _Fields) -> list[Document]:
    offline = any(os.environ.get(var, "") not in ("", "0", "false", "False")
                  for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    datasets = _quiet_datasets()
    try:
        table = datasets.load_dataset(name, split="train")
    except Exception as err:  # connection, not-found and builder errors all mean "can't load"
        if offline:
            raise DataError(f"{fields.flag} {name}: not a local path, and the Hugging Face hub "
                            "is offline (HF_HUB_OFFLINE=1) with no cached copy; pass a local "
                            "file or directory") from err
        raise DataError(f"{fields.flag} {name}: not a local path, and loading it from the "
                        f"Hugging Face hub failed ({_first_line(err)}); check the path or the "
                        "dataset name and your network") from err
    return _rows_to_documents(table, fields, f"hub dataset {name}")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:160] if text else type(err).__name__


def _quiet_datasets() -> Any:

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    hub_logging.set_verbosity_error()  # its network retries log warnings on stderr
    return datasets
