"""Loss curves of several runs on one chart, to compare them.

Owns reading each marked run's ``metrics.jsonl`` (through ``core.training.run_dir``) into
``curves.Series`` (EMA-smoothed train loss as a line, eval losses as points, one colour per
run) and drawing them on the chart thread (``ChartView``).
"""

from __future__ import annotations

from pathlib import Path

from genlab.core.training import run_dir as runs
from genlab.tui.widgets import tcss
from genlab.tui.widgets.chart_view import ChartView
from genlab.tui.widgets.curves import Series, loss_builder


class RunOverlay(ChartView):
    """Train (EMA) and eval loss of the marked runs."""

    DEFAULT_CSS = tcss(__file__)

    shown: list[Path] = []
    """The runs drawn now."""

    def show_runs(self, paths: list[Path], names: dict[Path, str] | None = None) -> None:
        """Draw these runs (an empty list shows how to mark some)."""
        self.shown = list(paths)
        series = []
        for path in paths:
            s = Series((names or {}).get(path, path.name))
            for record in runs.read_metrics(path):
                loss = record.get("loss")
                if loss is None:
                    continue
                if record.get("type") == "train":
                    s.add_step(record["step"], loss)
                elif record.get("type") == "eval":
                    s.add_eval(record["step"], loss)
            series.append(s)
        title = ("train loss (EMA lines) and eval loss (points)" if paths else
                 "Space marks runs to overlay their loss curves here")
        self.draw(loss_builder(series, title, overlay=True))
