"""Errors meant for people: one base class, two exit classes, and one line per expected failure.

The lowest layer of the core (standard library only), so every package can raise these and
every face can print them the same way:

* ``GenlabError`` is the base of every error whose ``str()`` is a one-line message naming the
  flag, key or file and the fix (``ModelLoadError``, ``DataError``, ``ConfigError``,
  ``SpecError``, ``OutDirError``, ...). Its ``exit_code`` says whose problem it is:
  ``BAD_INPUT`` (2: the user's input cannot work; nothing was written) or ``FAILED`` (1: a run
  that started could not finish, e.g. the disk filled up). ``RunFailure`` is the ``FAILED`` kind.
* ``error_line(err)`` turns any *expected* failure into ``(line, exit_code)``: a
  ``GenlabError``, an ``OSError`` (permission, read-only or full disk, missing path: the line
  names the path and the fix), running out of memory. It returns None for anything else: that
  is a bug, and the face says so (the CLI offers ``--debug`` for the traceback).

The CLI's error boundary (``genlab.cli.common``) and the TUI's bridge (``genlab.tui.bridge``)
both call ``error_line``, so a problem reads the same in every face.
"""

from __future__ import annotations

import errno
import re

FAILED = 1
"""Exit code of a run that started but could not finish (disk full, out of memory, a crash)."""
BAD_INPUT = 2
"""Exit code of input that cannot work (bad flag, file, model, spec); nothing was written."""

RUNTIME_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.ENOMEM, errno.EMFILE,
                            errno.ENFILE, errno.EAGAIN, errno.EPIPE})
"""OS errors that are the machine's state, not the user's input: exit ``FAILED``."""

OS_FIXES = {
    errno.EACCES: "permission denied; check the permissions or choose another path",
    errno.EPERM: "operation not permitted; check the permissions or choose another path",
    errno.EROFS: "the file system is read-only; choose a writable path",
    errno.ENOSPC: "no space left on the device; free some space, then run the command again",
    errno.EDQUOT: "the disk quota is used up; free some space, then run the command again",
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EISDIR: "is a directory, not a file",
    errno.EEXIST: "already exists; choose another path",
    errno.ENOTEMPTY: "the directory is not empty; choose another path",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
    errno.ELOOP: "too many symbolic links; check the path",
    errno.EIO: "an input/output error on the device; check the disk",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n)",
    errno.ENFILE: "too many open files on the system",
}
_OS_ERROR_IN_TEXT = re.compile(r"\(os error (\d+)\)")


class GenlabError(Exception):
    """An expected failure; ``str()`` is one line naming the flag or file and the fix.

    Attributes:
        exit_code: ``BAD_INPUT`` (the default) or ``FAILED``.
    """

    exit_code: int = BAD_INPUT


class RunFailure(GenlabError):
    """A run that started could not finish (exit code ``FAILED``); the message says how to go on."""

    exit_code = FAILED


class InputTooLarge(GenlabError):
    """An input file, line or value is over one of genlab's documented size limits."""


def one_line(text: str) -> str:
    """``text`` as one line: its first non-empty line with runs of whitespace collapsed."""
    for line in str(text).splitlines():
        if line.strip():
            return " ".join(line.split())
    return ""


def os_error_line(err: OSError) -> str:
    """``<path>: <what happened> (<ERRNO>); <fix>`` for an ``OSError``."""
    code = err.errno
    name = errno.errorcode.get(code, "") if code is not None else ""
    fix = OS_FIXES.get(code) if code is not None else None
    what = fix or (err.strerror or one_line(str(err)) or type(err).__name__).lower()
    where = err.filename if err.filename is not None else ""
    if err.filename2 is not None:
        where = f"{where} -> {err.filename2}"
    head = f"{where}: " if where != "" else ""
    tag = f" ({name})" if name else ""
    return f"{head}{what}{tag}"


def os_error_from_text(err: BaseException, path: object = None) -> OSError | None:
    """The ``OSError`` a library described in words (``... (os error 28)``), or None.

    Rust-backed libraries (safetensors, tokenizers) report a full disk as a message ending in
    ``(os error 28)`` instead of raising ``OSError``; this recovers it, with ``path``.
    """
    if isinstance(err, OSError):
        return err
    match = _OS_ERROR_IN_TEXT.search(str(err))
    if match is None:
        return None
    code = int(match.group(1))
    import os  # local: only needed on this rare path

    return OSError(code, os.strerror(code), None if path is None else str(path))


def os_error_in_chain(err: BaseException, path: object = None) -> OSError | None:
    """The ``OSError`` behind ``err``: itself, one described in its text, or one in its
    ``__cause__``/``__context__`` chain (torch reports a full disk as a ``RuntimeError`` raised
    while handling the ``OSError``). ``path`` fills in a missing file name."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = os_error_from_text(current, path)
        if found is not None:
            if found.filename is None and path is not None:
                found.filename = str(path)
            return found
        current = current.__cause__ or current.__context__
    return None


def error_line(err: BaseException) -> tuple[str, int] | None:
    """``(one line, exit code)`` for an expected failure; None for a bug.

    Expected: a ``GenlabError``, an ``OSError`` (also one described in words by a library,
    see ``os_error_from_text``), ``MemoryError`` and a device out-of-memory ``RuntimeError``.
    """
    if isinstance(err, GenlabError):
        return one_line(str(err)) or type(err).__name__, err.exit_code
    if isinstance(err, MemoryError) or (
            isinstance(err, RuntimeError) and "out of memory" in str(err).lower()):
        return ("out of memory; try a smaller --batch-size (or shorter inputs), or a smaller "
                "model", FAILED)
    os_err = os_error_from_text(err)
    if os_err is not None:
        code = FAILED if os_err.errno in RUNTIME_ERRNOS else BAD_INPUT
        return os_error_line(os_err), code
    return None
