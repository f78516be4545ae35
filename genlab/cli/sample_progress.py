"""Progress on stderr for ``genlab sample``; never on stdout, silent for short quiet runs.

On a terminal it is a transient rich bar counting finished rows, with generated tokens and
tokens/s beside it. When stderr is not a terminal (logs, CI) it prints a plain line every
``interval_s`` once the run has lasted that long, so short runs stay silent and long ones
show they are alive. ``--quiet`` turns both off. ``rich`` is imported only for the bar.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class RunProgress:
    """Counts generated tokens and finished rows and shows them on ``stream``.

    Use as a context manager; call ``token()`` per sampled token and ``row()`` per finished
    row.
    """

    def __init__(self, total_rows: int, *, enabled: bool = True, stream: TextIO | None = None,
                 interval_s: float = 10.0, label: str = "sampling") -> None:
        self.total_rows = total_rows
        self.tokens = 0
        self.rows = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interval_s = interval_s
        self.label = label
        self._tty = enabled and _isatty(self.stream)
        self._start = time.monotonic()
        self._next_line = self._start + interval_s
        self._bar: Any = None
        self._task: Any = None
        self._last_refresh = 0.0

    def __enter__(self) -> RunProgress:
        self._start = time.monotonic()
        self._next_line = self._start + self.interval_s
        if self._tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("rows · {task.fields[tokens]} tokens · {task.fields[rate]}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream), transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total_rows, tokens=0,
                                            rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def token(self) -> None:
        """One more token was generated."""
        self.tokens += 1
        self._maybe_show()

    def row(self) -> None:
        """One more row finished."""
        self.rows += 1
        self._maybe_show(force=self._bar is not None)

    def _maybe_show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self._bar is not None:
            if force or now - self._last_refresh > 0.1:
                self._last_refresh = now
                elapsed = max(now - self._start, 1e-9)
                self._bar.update(self._task, completed=self.rows, tokens=self.tokens,
                                 rate=f"{self.tokens / elapsed:.0f} tok/s")
        elif now >= self._next_line:
            self._next_line = now + self.interval_s
            elapsed = now - self._start
            self.stream.write(f"genlab: {self.label}: {self.rows}/{self.total_rows} rows, "
                              f"{self.tokens} tokens, {elapsed:.0f} s\n")
            self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
