"""Loss curves of several runs on one chart, to compare them.

Owns reading each marked run's ``metrics.jsonl`` (through ``core.training.run_dir``) and drawing
its EMA-smoothed train loss as a line and its eval losses as points, one colour per run.
"""

from __future__ import annotations

from pathlib import Path

from textual_plotext import PlotextPlot

from genlab.core.training import run_dir as runs
from genlab.tui.widgets import tcss
from genlab.tui.widgets.train_charts import smooth, step_ticks

COLOURS = ("blue+", "orange", "green+", "magenta", "cyan", "red", "yellow", "white")


class RunOverlay(PlotextPlot):
    """Train (EMA) and eval loss of the marked runs."""

    DEFAULT_CSS = tcss(__file__)

    shown: list[Path] = []
    """The runs drawn now."""

    def show_runs(self, paths: list[Path]) -> None:
        """Draw these runs (an empty list shows how to mark some)."""
        self.shown = list(paths)
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.xlabel("step")
        if not paths:
            plt.title("Space marks runs to overlay their loss curves here")
        else:
            plt.title("train loss (EMA lines) and eval loss (points)")
        last = 0
        for n, path in enumerate(paths):
            colour = COLOURS[n % len(COLOURS)]
            train = [r for r in runs.read_metrics(path, "train") if r.get("loss") is not None]
            evals = [r for r in runs.read_metrics(path, "eval") if r.get("loss") is not None]
            last = max([last] + [r["step"] for r in train + evals])
            if train:
                plt.plot([r["step"] for r in train], smooth([r["loss"] for r in train]),
                         color=colour, marker="braille", label=path.name)
            if evals:
                plt.scatter([r["step"] for r in evals], [r["loss"] for r in evals],
                            color=colour, marker="o")
        if last:
            plt.xlim(0, last + max(1, last // 40))
            plt.xticks(step_ticks(last))
        self.refresh()
