"""Atomic file output: a result file is either complete or absent, never half-written.

The text goes to a temporary file in the destination's own directory (so the final
``os.replace`` is a same-filesystem rename, atomic on POSIX and Windows), is flushed and
fsynced, then renamed over the destination. Any failure, Ctrl-C included, removes the
temporary file and leaves an existing destination untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same directory + os.replace)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.chmod(tmp, _target_mode(path))
        with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _target_mode(path: Path) -> int:
    """Keep an existing file's mode; a new file gets 0o666 minus the umask, as open() would."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
