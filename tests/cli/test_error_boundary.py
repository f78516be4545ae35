"""The CLI's one error boundary (``genlab.cli.common.GenlabGroup``): what reaches the user."""

from __future__ import annotations

import errno
import warnings

import pytest
import typer
from typer.testing import CliRunner

from genlab.cli import app, common

runner = CliRunner()


@pytest.fixture
def broken_report(monkeypatch):
    """``genlab report`` made to raise ``error`` (a stand-in for any command's failure)."""
    def install(error: BaseException) -> None:
        def fail(out_dir):
            raise error
        monkeypatch.setattr("genlab.api.report", fail)
    return install


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_bug_is_one_line_that_offers_debug(broken_report, tmp_path):
    broken_report(KeyError("oops"))
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 1
    assert lines(result.stderr) == ["genlab: error: unexpected KeyError: 'oops' (a bug in "
                                    "genlab; please report it); run with --debug for the "
                                    "traceback"]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(broken_report, tmp_path, monkeypatch, how):
    broken_report(KeyError("oops"))
    if how == "env":
        monkeypatch.setenv(common.DEBUG_ENV, "1")
    argv = ["--debug", "report", str(tmp_path)] if how == "flag" else ["report", str(tmp_path)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "in fail" in result.stderr and "raise error" in result.stderr
    assert lines(result.stderr)[-1].startswith("genlab: error: unexpected KeyError")
    assert "--debug" not in lines(result.stderr)[-1]  # it is on already


def test_debug_does_not_leak_into_the_next_command(broken_report, tmp_path):
    broken_report(KeyError("oops"))
    runner.invoke(app, ["--debug", "report", str(tmp_path)])
    assert "Traceback" not in runner.invoke(app, ["report", str(tmp_path)]).stderr


@pytest.mark.parametrize("error, code, words", [
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/out"), 2,
     "/mnt/ro/out: the file system is read-only; choose a writable path (EROFS)"),
    (OSError(errno.ENOSPC, "No space left on device", "/data/x"), 1,
     "/data/x: no space left on the device"),
    (MemoryError(), 1, "out of memory"),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), 1, "out of memory"),
    (common.UsageError("--flag x: must be y"), 2, "--flag x: must be y"),
])
def test_expected_failures_are_one_line_with_their_exit_code(broken_report, tmp_path, error,
                                                             code, words):
    broken_report(error)
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == code
    out = lines(result.stderr)
    assert len(out) == 1 and out[0].startswith("genlab: error: ") and words in out[0], out


def test_config_errors_speak_in_flags():
    from genlab.core.configs import ConfigError

    assert common.error_report(ConfigError("top_p", 1.5, "in (0, 1]")) == (
        "--top-p 1.5: must be in (0, 1]", 2)
    err = ConfigError("completion_field", "a", "given together with prompt_field",
                      related=("prompt_field",))
    assert common.error_report(err)[0] == ("--completion-field a: must be given together with "
                                           "--prompt-field")


def test_usage_errors_are_one_line_and_name_the_help():
    result = runner.invoke(app, ["sample", "--top-q", "1"])
    assert result.exit_code == 2
    out = lines(result.stderr)
    assert len(out) == 1 and out[0].startswith("genlab: error: No such option: --top-q")
    assert out[0].endswith("(see genlab sample --help)")


def test_exit_codes_of_commands_pass_through(broken_report, tmp_path):
    assert runner.invoke(app, ["--version"]).exit_code == 0
    assert runner.invoke(app, ["sample", "--help"]).exit_code == 0
    broken_report(typer.Exit(3))  # e.g. a diverged run: its own code, nothing printed
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 3 and result.stderr == ""


def test_sample_prints_no_library_warnings(tiny_llama):
    """Every sample run used to print transformers' FutureWarning about past_key_values."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(app, ["sample", "--model", str(tiny_llama), "--prompt", "Once",
                                     "--max-new-tokens", "3", "--format", "jsonl", "--quiet"])
    assert result.exit_code == 0, result.output
    noisy = [w for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))
             and "past_key_values" in str(w.message)]
    assert noisy == [] and result.stderr == ""
