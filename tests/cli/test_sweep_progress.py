"""``genlab sweep``'s renderer: finished-trial lines are plain text, on a terminal or off one.

A bar redrawn under a printed line used to be rendered with that print's settings, so a
string column leaked its markup: ``[progress.description]trial 0 lr=1e-05 ━━━━ 100/100``.
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from genlab.cli.sweep_progress import SweepProgress
from genlab.core.experiments.events import (
    SweepFinished,
    SweepStarted,
    TrialFinished,
    TrialProgress,
    TrialStarted,
)

MARKUP = re.compile(r"\[/?(progress\.|bold|dim|green|red|yellow|cyan|magenta)")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def render(terminal: bool) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=terminal, width=120, color_system=None)
    row = {"params": {"lr": 1e-5}, "steps": 100, "total_steps": 100, "wall_time_s": 12.5}
    with SweepProgress(console) as view:
        view.handle(SweepStarted("/tmp/out", "sqlite://", "lr", "grid", 2, 0, 1, "tiny"))
        for number in (0, 1):
            view.handle(TrialStarted(number, {"lr": 1e-5}, f"/tmp/out/trials/{number:04d}"))
            for step in range(1, 101, 33):
                view.handle(TrialProgress(number, step, 100, loss=4.5))
            view.handle(TrialProgress(number, 100, 100, eval_loss=4.4892))
            view.handle(TrialFinished(number, "completed", 4.4892, row))
        view.handle(SweepFinished("/tmp/out", 2, {"completed": 2}, None, False, "", 30.0))
    return ANSI.sub("", buffer.getvalue())


@pytest.mark.parametrize("terminal", [False, True], ids=["plain", "terminal"])
def test_finished_trial_lines_have_no_markup(terminal):
    out = render(terminal)
    assert "trial 0   completed       4.4892  lr=1e-05  [100/100 steps, 12.5s]" in out
    assert "trial 1   completed" in out
    assert not MARKUP.search(out), out


def test_plain_output_is_only_the_permanent_lines():
    lines = [line for line in render(False).splitlines() if line.strip()]
    assert [line.split()[0] for line in lines] == ["sweep", "trial", "trial", "2"]
