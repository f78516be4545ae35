"""genlab.core.errors: one line and an exit code for every expected failure, None for bugs."""

from __future__ import annotations

import errno

import pytest

from genlab.core import errors


@pytest.mark.parametrize("code, words, exit_code", [
    (errno.EACCES, "permission denied", errors.BAD_INPUT),
    (errno.EROFS, "read-only", errors.BAD_INPUT),
    (errno.ENOENT, "no such file", errors.BAD_INPUT),
    (errno.ENOSPC, "no space left", errors.FAILED),
    (errno.EDQUOT, "quota", errors.FAILED),
    (errno.EIO, "input/output", errors.FAILED),
])
def test_os_errors_name_the_path_the_problem_and_the_fix(code, words, exit_code):
    line, got = errors.error_line(OSError(code, "x", "/data/run/x.json"))
    assert line.startswith("/data/run/x.json: ") and words in line
    assert f"({errno.errorcode[code]})" in line and got == exit_code


def test_genlab_errors_are_their_first_line_with_their_exit_code():
    class Disk(errors.RunFailure):
        pass

    assert errors.error_line(errors.GenlabError("--lr 0: must be > 0\nmore")) == (
        "--lr 0: must be > 0", errors.BAD_INPUT)
    assert errors.error_line(Disk("stopped")) == ("stopped", errors.FAILED)


def test_out_of_memory_and_library_disk_errors_are_known_and_bugs_are_not():
    assert errors.error_line(MemoryError())[1] == errors.FAILED
    assert errors.error_line(RuntimeError("CUDA out of memory. Tried..."))[1] == errors.FAILED
    line, code = errors.error_line(Exception("I/O error: No space left on device (os error 28)"))
    assert "no space left" in line and code == errors.FAILED
    assert errors.error_line(KeyError("x")) is None
    assert errors.error_line(TypeError("unsupported operand")) is None
