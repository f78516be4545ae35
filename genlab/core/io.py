"""File output that never half-writes: atomic replacement, locked JSONL appends, fresh dirs.

The one place genlab writes files from (every face and core package goes through it):

* ``write_text_atomic`` / ``write_json_atomic`` / ``write_bytes_atomic``: the content goes to
  a temporary file in the destination's own directory (so the final ``os.replace`` is a
  same-filesystem rename, atomic on POSIX and Windows), is flushed and fsynced, then renamed
  over the destination. Any failure (a full disk, Ctrl-C) removes the temporary file and
  leaves the previous complete file. Files get the usual ``0o666 & ~umask`` mode (an
  existing file keeps its own).
* ``append_jsonl``: one strict-JSON object per line, written with one ``write`` under an
  exclusive lock, so several processes can append to one file; ``read_jsonl`` reads every
  complete line back (a line torn by a kill is skipped).
* ``fresh_dir``: ``root/<prefix><YYYYmmdd-HHMMSS>-<label>``, never an existing path.
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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

try:  # POSIX; on Windows O_APPEND alone keeps appends whole
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


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
