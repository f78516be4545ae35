"""What every ``genlab`` command shares: the error boundary, the exit-code table, the signals.

* ``GenlabGroup``: the one error boundary of the CLI. Every command runs inside it; an expected
  failure (a ``GenlabError`` from the core, an ``OSError`` such as a read-only or full disk, a
  bad flag that click rejects) becomes ``genlab: error: <one line naming the flag or file and
  the fix>`` on stderr with exit code 2 (bad input) or 1 (a run that could not finish). Anything
  else is a bug: one line saying so plus "run with --debug for the traceback"; ``genlab --debug
  <command>`` (or ``GENLAB_DEBUG=1``) prints the traceback too, and shows the library
  warnings that are hidden otherwise.
* ``UsageError`` / ``fail``: bad input found by a command becomes the same one line.
* ``EXIT_*`` and ``exit_code``: the one table from a run's status to the process exit code
  (0 completed or early-stopped, 1 failed, 2 bad input, 3 diverged, 130 stopped).
* ``StopOnSignals``: the one Ctrl-C/SIGTERM handler. The first signal sets the core's stop
  token (the run ends cleanly at its next step); a second aborts with ``KeyboardInterrupt``.
* ``default_model``: ``--model`` left out means the shipped model, checked before torch loads.

Standard library, typer and the standard-library parts of the core only, so ``genlab --help``
stays light.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer runs on click itself
    from click import exceptions as click_exceptions

from genlab import assets
from genlab.core import errors
from genlab.core.configs.knobs import ConfigError

EXIT_OK = 0
EXIT_FAILED = errors.FAILED
EXIT_USAGE = errors.BAD_INPUT
EXIT_DIVERGED = 3
EXIT_STOPPED = 130
STATUS_EXIT = {"completed": EXIT_OK, "early-stopped": EXIT_OK, "stopped": EXIT_STOPPED,
               "diverged": EXIT_DIVERGED}
"""Exit code of a finished run by its status; anything else (``failed``) is ``EXIT_FAILED``."""


DEBUG_ENV = "GENLAB_DEBUG"
"""Environment variable that turns on ``--debug`` (tracebacks), e.g. for ``genlab tui``."""
DEBUG_HINT = "run with --debug for the traceback"
_state = {"debug": False}


class UsageError(errors.GenlabError):
    """Bad user input; the message is one line naming the problem and the fix."""


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``genlab: error: <message>`` on stderr and exit with ``code``."""
    print(f"genlab: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def debug_enabled() -> bool:
    """True under ``genlab --debug`` or ``GENLAB_DEBUG=1``: errors show their traceback."""
    return _state["debug"] or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def set_debug(on: bool) -> None:
    """Set by the root ``--debug`` flag for the command about to run (it also shows the
    library warnings the boundary hides otherwise)."""
    _state["debug"] = bool(on)
    if on:
        warnings.simplefilter("default")


def config_error_line(err: ConfigError, *, flags: Mapping[str, str] | None = None,
                      typed: Mapping[str, Any] | None = None) -> str:
    """``--top-p 1.5: must be in (0, 1] (1 = off)``: a ``ConfigError`` in CLI words.

    ``typed`` holds the raw flag values, so the message quotes what the user typed.
    """
    flag = (flags or {}).get(err.field, "--" + err.field.replace("_", "-"))
    if err.value in ("", None) and err.field in ("model", "data"):
        return f"{flag} is required: pass {err.expected}"
    raw = (typed or {}).get(err.field)
    if isinstance(raw, str):
        value = raw
    elif isinstance(err.value, (tuple, list)):
        value = ",".join(str(v) for v in err.value)
    else:
        value = str(err.value)
    expected = err.expected
    for name in getattr(err, "related", ()):
        expected = expected.replace(name, (flags or {}).get(name, flag_for(name)))
    return f"{flag} {value}: must be {expected}"


def expected_error(err: BaseException) -> tuple[str, int] | None:
    """``(one line, exit code)`` for an expected failure, None for a bug.

    A ``ConfigError`` speaks in flags; everything else the core's ``errors.error_line`` knows.
    """
    if isinstance(err, ConfigError):
        return config_error_line(err), EXIT_USAGE
    return errors.error_line(err)


def error_report(err: BaseException) -> tuple[str, int]:
    """The one line (without the ``genlab: error:`` prefix) and exit code for ``err``; a bug
    is reported as one too, with the ``--debug`` hint."""
    known = expected_error(err)
    if known is not None:
        return known
    detail = errors.one_line(str(err))
    what = f"{type(err).__name__}: {detail}" if detail else type(err).__name__
    hint = "" if debug_enabled() else f"; {DEBUG_HINT}"
    return f"unexpected {what} (a bug in genlab; please report it){hint}", EXIT_FAILED


def report(err: BaseException) -> int:
    """Print ``err`` as one ``genlab: error:`` line (and its traceback in debug mode)."""
    line, code = error_report(err)
    if debug_enabled():
        traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
    print(f"genlab: error: {line}", file=sys.stderr)
    return code


def _usage_line(err: Any) -> str:
    """A click usage error as one line, with where to read the command's help."""
    message = errors.one_line(err.format_message()) or "bad command line"
    ctx = getattr(err, "ctx", None)
    where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    return f"{message}{where}"


class GenlabGroup(TyperGroup):
    """The root command group: runs every command inside the CLI's one error boundary."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        """Run the command line; expected failures become one line and an exit code."""
        set_debug(False)
        try:
            with warnings.catch_warnings():
                # Library warnings (deprecations, a pickle-protocol note while refusing a
                # pickle) are not the user's business; --debug shows them (set_debug).
                if not debug_enabled():
                    warnings.simplefilter("ignore")
                result = super().main(args, prog_name, complete_var, standalone_mode=False,
                                      **extra)
            code = result if isinstance(result, int) and not isinstance(result, bool) else 0
        except typer.Abort:
            print("genlab: aborted", file=sys.stderr)
            code = EXIT_FAILED
        except click_exceptions.ClickException as err:
            if type(err).__name__ != "NoArgsIsHelpError":  # the help was shown instead
                print(f"genlab: error: {_usage_line(err)}", file=sys.stderr)
            code = err.exit_code
        except KeyboardInterrupt:
            print("genlab: aborted", file=sys.stderr)
            code = EXIT_STOPPED
        except Exception as err:  # noqa: BLE001 - the one boundary: every failure is one line
            code = report(err)
        if standalone_mode:
            sys.exit(code)
        return code


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def exit_code(status: str) -> int:
    """The process exit code for a run's ``status``."""
    return STATUS_EXIT.get(status, EXIT_FAILED)


def flag_for(field: str, overrides: dict[str, str] | None = None) -> str:
    """The CLI flag spelling of a config field: ``top_p`` -> ``--top-p``."""
    if overrides and field in overrides:
        return overrides[field]
    return "--" + field.replace("_", "-")


def unescape(text: str) -> str:
    r"""``\n`` and ``\t`` typed on a command line as the characters they name."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def escape(text: str) -> str:
    r"""The inverse of ``unescape`` for command lines genlab prints: newlines and tabs as
    ``\n`` and ``\t``, so a suggested ``--prompt`` stays on one line."""
    return text.replace("\n", "\\n").replace("\t", "\\t")


def default_model() -> str:
    """The shipped model's directory, for an omitted ``--model`` (``UsageError`` if absent).

    Checked before torch loads, so a missing model is a one-line error like any bad flag.
    """
    try:
        return assets.resolve_model(None)
    except assets.ModelNotFound as err:
        raise UsageError(f"--model is required: {err}") from None


def is_main_process() -> bool:
    """False in the non-zero ranks of ``accelerate launch``/torchrun: only rank 0 renders.

    Reads the launcher's environment (``RANK``, as ``accelerate.PartialState`` does) rather
    than building accelerate state here, so the core keeps full control of its Accelerator.
    """
    return int(os.environ.get("RANK", "0") or 0) == 0


class StopOnSignals:
    """Ctrl-C/SIGTERM -> the core's stop token; a second signal aborts with KeyboardInterrupt.

    Args:
        stop: The stop token the core checks between steps.
        on_first: Called (in the signal handler: keep it tiny) after the first signal.
        signals: Which signals to catch (default: SIGINT and SIGTERM).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stop: Any, on_first: Callable[[], None] | None = None,
                 signals: tuple[int, ...] | None = None) -> None:
        self.stop = stop
        self.on_first = on_first
        self.signals = signals or self.SIGNALS
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self.handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def handle(self, signum: int, frame: Any = None) -> None:
        """First signal: ask the run to stop at the next step. Second: abort now."""
        if self.stop.stopped:
            raise KeyboardInterrupt
        self.stop.stop()
        if self.on_first is not None:
            self.on_first()
