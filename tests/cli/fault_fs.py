"""File-system faults for tests: unreadable files, read-only directories, a full disk.

Unix permissions do not stop root (CAP_DAC_OVERRIDE), and CI machines often run tests as root.
So ``denied`` uses the real thing where it works (``chmod`` as a normal user) and, as root,
makes the process's own file functions fail exactly as the kernel would (``PermissionError``
with ``EACCES`` and the path) for the given paths. ``full_disk`` mounts a small tmpfs where the
machine allows it (a real ``ENOSPC`` from the kernel) and says when it cannot.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _under(path: object, roots: list[Path]) -> bool:
    try:
        resolved = Path(os.fsdecode(path)).absolute()
    except TypeError:
        return False
    return any(resolved == r or r in resolved.parents for r in roots)


def _refuse(path: object) -> PermissionError:
    return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))


@contextlib.contextmanager
def denied(*, unreadable: tuple[Path, ...] = (), read_only: tuple[Path, ...] = ()
           ) -> Iterator[None]:
    """Make ``unreadable`` files unreadable and ``read_only`` directories unwritable."""
    if not IS_ROOT:
        modes = {p: p.stat().st_mode for p in (*unreadable, *read_only)}
        for p in unreadable:
            p.chmod(0)
        for p in read_only:
            p.chmod(0o555)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    monkeypatch = pytest.MonkeyPatch()
    no_read = [p.absolute() for p in unreadable]
    no_write = [p.absolute() for p in read_only]
    real_open, real_os_open = builtins.open, os.open

    def checked_open(file, mode="r", *args, **kwargs):
        writing = any(c in mode for c in "wax+")
        if isinstance(file, (str, bytes, os.PathLike)) and (
                _under(file, no_read) or (writing and _under(file, no_write))):
            raise _refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def checked_os_open(path, flags, *args, **kwargs):
        if _under(path, no_read) or (flags & _WRITE_FLAGS and _under(path, no_write)):
            raise _refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guard(real):
        def wrapper(*paths, **kwargs):
            for p in paths[:2]:
                if isinstance(p, (str, bytes, os.PathLike)) and _under(p, no_write):
                    raise _refuse(p)
            return real(*paths, **kwargs)
        return wrapper

    real_access = os.access

    def checked_access(path, mode, *args, **kwargs):
        if mode & os.W_OK and _under(path, no_write):
            return False
        if mode & os.R_OK and _under(path, no_read):
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", checked_open)
    monkeypatch.setattr(io, "open", checked_open)
    monkeypatch.setattr(os, "open", checked_os_open)
    monkeypatch.setattr(os, "access", checked_access)
    for name in ("mkdir", "replace", "rename", "unlink", "remove", "rmdir"):
        monkeypatch.setattr(os, name, guard(getattr(os, name)))
    try:
        yield
    finally:
        monkeypatch.undo()


def can_mount() -> bool:
    """True when this process may mount a tmpfs (root with CAP_SYS_ADMIN, e.g. most CI VMs)."""
    if not IS_ROOT or shutil.which("mount") is None:
        return False
    probe = Path(tempfile.mkdtemp(prefix="genlab-mount-probe-"))
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], capture_output=True)
        return ok
    finally:
        probe.rmdir()


@contextlib.contextmanager
def full_disk(size: str = "4m") -> Iterator[Path]:
    """A directory on a real tmpfs of ``size`` (skips the test when mounting is not allowed)."""
    if not can_mount():
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN); the "
                    "monkeypatched ENOSPC tests cover the same code")
    where = Path(tempfile.mkdtemp(prefix="genlab-tmpfs-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                   check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
        with contextlib.suppress(OSError):
            where.rmdir()


def fill(directory: Path) -> None:
    """Write a filler file into ``directory`` until its file system is full."""
    fd = os.open(directory / ".filler", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 16, 1 << 10, 1):  # big chunks, then smaller, so nothing fits
            chunk = b"\0" * size
            try:
                while True:
                    os.write(fd, chunk)
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
