"""Generations sampled at each evaluation, newest at the bottom, beside the charts.

Owns formatting an ``EvalResult`` (its step, eval loss, whether it is the best so far, and
each prompt's continuation) into a scrolling log, so the learner sees the text change as the
loss falls. The same widget shows a finished run's ``samples.jsonl`` on the Runs screen.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from genlab.core.events import EvalResult
from genlab.tui.widgets import tcss


class EvalSamples(RichLog):
    """A log of sample generations, one block per evaluation."""

    DEFAULT_CSS = tcss(__file__)

    def __init__(self, **kwargs) -> None:
        super().__init__(wrap=True, markup=False, highlight=False, min_width=10, **kwargs)
        self.border_title = "samples at each eval"

    def add_eval(self, result: EvalResult) -> None:
        """Append one evaluation's loss and samples."""
        head = Text.assemble((f"step {result.step}", "bold"),
                             f" · eval loss {result.loss:.3f}")
        if result.is_best:
            head.append("  ★ best", "bold green")
        self.write(head)
        for sample in result.samples:
            self.add_sample(sample.get("prompt", ""), sample.get("text", ""))

    def add_sample(self, prompt: str, text: str) -> None:
        """Append one prompt and its continuation."""
        self.write(Text.assemble((prompt, "dim"), (text, "")))

    def add_note(self, text: str, style: str = "dim italic") -> None:
        """Append a line of commentary (run started, stopped, ...)."""
        self.write(Text(text, style=style))
