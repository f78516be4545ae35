"""What every ``genlab`` command shares: one-line errors, the exit-code table, the signal handler.

* ``UsageError`` / ``fail``: bad input becomes ``genlab: error: <one line>`` on stderr and an
  exit code, never a traceback.
* ``EXIT_*`` and ``exit_code``: the one table from a run's status to the process exit code
  (0 completed or early-stopped, 1 failed, 2 bad input, 3 diverged, 130 stopped).
* ``StopOnSignals``: the one Ctrl-C/SIGTERM handler. The first signal sets the core's stop
  token (the run ends cleanly at its next step); a second aborts with ``KeyboardInterrupt``.
* ``default_model``: ``--model`` left out means the shipped model, checked before torch loads.

Standard library and typer only, so ``genlab --help`` stays light.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, NoReturn

import typer

from genlab import assets

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_STOPPED = 130
STATUS_EXIT = {"completed": EXIT_OK, "early-stopped": EXIT_OK, "stopped": EXIT_STOPPED,
               "diverged": EXIT_DIVERGED}
"""Exit code of a finished run by its status; anything else (``failed``) is ``EXIT_FAILED``."""


class UsageError(Exception):
    """Bad user input; the message is one line naming the problem and the fix."""


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``genlab: error: <message>`` on stderr and exit with ``code``."""
    print(f"genlab: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


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
