"""File output that never half-writes: atomic replacement, locked JSONL appends, fresh dirs.

The one place genlab writes files from (every face and core package goes through it):

* ``write_text_atomic`` / ``write_json_atomic`` / ``write_bytes_atomic``: the content goes to
  a temporary file in the destination's own directory (so the final ``os.replace`` is a
  same-filesystem rename, atomic on POSIX and Windows), is flushed and fsynced, then renamed
  over the destination. Any failure (a full disk, Ctrl-C) removes the temporary file and
  leaves the previous complete file. Files get the usual ``0o666 & ~umask`` mode (an existing
  file keeps its own).
* ``append_jsonl``: one strict-JSON object per line, written with one ``write`` under an
  exclusive lock, so several processes can append to one file; ``read_jsonl`` reads every
  complete line back (a line torn by a kill is skipped).
* ``fresh_dir``: ``root/<prefix><YYYYmmdd-HHMMSS>-<label>``, never an existing path.
* ``write_marker`` / ``read_marker`` / ``claim_out_dir``: every directory genlab creates for a
  run (train, pretrain, merge, compare, sweep) carries a marker file ``.genlab.json`` saying
  which kind of output it is. ``claim_out_dir`` is the one rule for an ``--out`` that exists:
  empty, or genlab's output of the same kind, is used; a file is refused; anything else
  (a user's directory, another kind of output) is refused unless ``force``, and then its
  contents are replaced. genlab never deletes or changes files it did not write on its own.
* ``read_bytes_limited`` / ``read_text_limited`` / ``iter_lines_limited``: bounded reads of
  user files: more than ``limit`` bytes (or a line longer than ``max_line``) raises
  ``InputTooLarge`` naming the file and the limit, after reading at most one byte past it.
* ``apply_umask``: the usual ``0o666``/``0o777 & ~umask`` modes on a tree genlab just wrote
  (``mkdtemp`` makes 0700 directories and safetensors writes 0600 files, which other users of a
  shared machine could not read).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from genlab.core.errors import GenlabError, InputTooLarge, os_error_in_chain
from genlab.version import __version__

try:  # POSIX; on Windows O_APPEND alone keeps appends whole
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


MARKER_FILE = ".genlab.json"
"""Marker of a directory genlab created: ``{"kind", "genlab_version", "created"}``."""
OUT_KINDS = ("run", "pretrain", "merge", "compare", "sweep", "lr-find")
"""Kinds of output directory: a training run, a pretraining, a merged model, a compare, a sweep,
a learning-rate range test."""


class OutDirError(GenlabError, ValueError):
    """An output directory cannot be used (one line naming it and the way out)."""


def jsonable(value: Any) -> Any:
    """``value`` with tuples as lists and non-finite floats as None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def to_json_line(record: dict[str, Any]) -> str:
    """``record`` as one strict-JSON line (non-finite floats as null), newline included."""
    return json.dumps(jsonable(record), allow_nan=False, ensure_ascii=False) + "\n"


@contextlib.contextmanager
def named_os_errors(path: str | Path) -> Iterator[None]:
    """Re-raise a write failure inside as the ``OSError`` it is, naming ``path``.

    Libraries report a full or read-only disk in their own words: torch raises a
    ``RuntimeError`` while handling the ``OSError``, safetensors says ``(os error 28)``. Inside
    this block any of those comes out as the ``OSError`` (``errors.error_line`` then names the
    file and the fix); other exceptions pass unchanged.
    """
    try:
        yield
    except OSError as err:
        if err.filename is None:
            err.filename = str(path)
        raise
    except Exception as err:
        found = os_error_in_chain(err, path)
        if found is None:
            raise
        raise found from err


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same directory + os.replace)."""
    write_bytes_atomic(path, text.encode(encoding))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory + os.replace)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.chmod(tmp, _target_mode(path))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented strict JSON to ``path``, atomically."""
    write_text_atomic(path, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")


def rewrite_jsonl_atomic(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace a JSONL file by ``records``, atomically."""
    write_text_atomic(path, "".join(to_json_line(r) for r in records))


def _target_mode(path: Path) -> int:
    """Keep an existing file's mode; a new file gets 0o666 minus the umask, as open() would."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def apply_umask(root: str | Path) -> None:
    """Give ``root`` (a file or a tree genlab has just written) the modes ``open()`` and
    ``mkdir()`` would: files ``0o666 & ~umask``, directories ``0o777 & ~umask``.

    For output written by libraries that do not follow the umask (``tempfile.mkdtemp``: 0700;
    safetensors: 0600 files), so a shared machine's other users can read adapters and models.
    Symlinks are left alone.
    """
    umask = current_umask()
    root = Path(root)
    paths = [root, *root.rglob("*")] if root.is_dir() else [root]
    for path in paths:
        if path.is_symlink():
            continue
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one line, in one write under an exclusive lock (multi-process safe)."""
    data = to_json_line(record).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)  # closing releases the lock


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every complete JSON-object line of ``path`` ([] when it is absent).

    A last line without its newline (a write cut short by a kill) and lines that do not parse
    are skipped.
    """
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def truncate_torn_line(path: str | Path) -> None:
    """Cut a JSONL file back to its last complete line (after a kill mid-append)."""
    path = Path(path)
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def fresh_dir(root: str | Path, label: str, prefix: str = "") -> Path:
    """``root/<prefix><YYYYmmdd-HHMMSS>-<label>`` (label made path-safe), never existing.

    Not created: the caller creates it once everything is validated.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "run"
    base = Path(root) / f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}-{safe}"
    candidate, n = base, 2
    while candidate.exists():
        candidate = base.with_name(f"{base.name}-{n}")
        n += 1
    return candidate


# ----------------------------------------------------------------------------- bounded reads


def human_size(n: int) -> str:
    """``16 MiB``, ``512 KiB``, ``100 bytes``: a byte count as people say it."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def read_bytes_limited(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``; ``InputTooLarge`` when it holds more than ``limit`` bytes.

    ``what`` names the input in the message (``--prompts big.txt``). At most ``limit + 1``
    bytes are read, whatever the file's size.
    """
    with open(path, "rb") as f:
        return read_stream_limited(f, limit, what)


def read_stream_limited(stream: BinaryIO, limit: int, what: str) -> bytes:
    """At most ``limit`` bytes from ``stream`` (stdin, a file); more is ``InputTooLarge``."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise InputTooLarge(f"{what}: more than {human_size(limit)}, genlab's limit for this "
                            "input; split it into smaller files")
    return data


def read_text_limited(path: str | Path, limit: int, what: str, encoding: str = "utf-8-sig"
                      ) -> str:
    """``read_bytes_limited`` decoded (a UTF-8 BOM is dropped); ``UnicodeDecodeError`` as usual."""
    return read_bytes_limited(path, limit, what).decode(encoding)


def iter_lines_limited(path: str | Path, max_line: int, what: str) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` of ``path`` (bytes, ending kept), each at most ``max_line`` bytes.

    A longer line raises ``InputTooLarge`` naming its number, after reading ``max_line + 1``
    bytes of it: a file that is one endless line never fills memory.
    """
    with open(path, "rb") as f:
        number = 0
        while True:
            line = f.readline(max_line + 1)
            if not line:
                return
            number += 1
            if len(line) > max_line and not (len(line) == max_line + 1 and line.endswith(b"\n")):
                raise InputTooLarge(f"{what}: line {number} is longer than "
                                    f"{human_size(max_line)}, genlab's limit for one line; "
                                    "split it into shorter lines")
            yield number, line


# ----------------------------------------------------------------------------- output dirs


def write_marker(directory: str | Path, kind: str) -> None:
    """Mark ``directory`` (which must exist) as genlab's output of ``kind``."""
    if kind not in OUT_KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    write_json_atomic(Path(directory) / MARKER_FILE, {
        "kind": kind, "genlab_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def read_marker(directory: str | Path) -> str | None:
    """The kind in ``directory``'s marker, or None (no marker, or one that does not read)."""
    path = Path(directory) / MARKER_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        return None
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if kind in OUT_KINDS else None


def claim_out_dir(path: str | Path, kind: str, *, force: bool = False,
                  is_legacy: Any = None, flag: str = "--out") -> str:
    """Decide what may happen to an output directory before anything is written to it.

    Args:
        path: The directory the user named (or a default one).
        kind: The kind of output about to be written (one of ``OUT_KINDS``).
        force: The user passed ``--force``: a directory genlab did not write (or another kind
            of output) may be replaced.
        is_legacy: ``f(path) -> bool`` recognising this kind's output from before markers
            existed (e.g. a run directory's ``config.json`` written by genlab).
        flag: How the user named it, for messages.

    Returns:
        ``"new"`` (absent), ``"empty"``, ``"same"`` (genlab's output of this kind: resume or
        replace it, as the command does) or ``"replace"`` (``force``: clear it first, with
        ``clear_dir``).

    Raises:
        OutDirError: A file, or a directory genlab did not write (or of another kind) without
            ``force``.
    """
    out = Path(path)
    if not out.exists():
        return "new"
    if not out.is_dir():
        raise OutDirError(f"{flag} {path}: is a file, not a directory; choose a directory path")
    if not any(out.iterdir()):
        return "empty"
    found = read_marker(out)
    if found == kind or (found is None and is_legacy is not None and is_legacy(out)):
        return "same"
    if force:
        return "replace"
    if found is not None:
        raise OutDirError(f"{flag} {path}: holds a genlab {found} output, not a {kind}; choose "
                          "another directory, or pass --force to replace it")
    raise OutDirError(f"{flag} {path}: exists and holds files genlab did not write; choose a "
                      "new or empty directory, or pass --force to replace its contents")


def replace_dir(new: str | Path, out: str | Path) -> None:
    """Rename the complete directory ``new`` to ``out``; an existing ``out`` is moved aside
    first and deleted only once ``new`` is in place (a crash leaves one or the other whole)."""
    import shutil  # local: only the replacing writers need it

    new, out = Path(new), Path(out)
    if not out.exists():
        os.replace(new, out)
        return
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def clear_dir(path: str | Path) -> None:
    """Remove everything inside ``path`` (kept itself); for ``claim_out_dir``'s ``replace``."""
    import shutil  # local: the only recursive delete, used only on --force

    for entry in Path(path).iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
