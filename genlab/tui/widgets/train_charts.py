"""Live training charts: loss (raw, EMA-smoothed, eval points, best eval), lr, grad norm.

Owns the series of the runs on the Train screen: one run, or several run side by side (the
form's configs A, B, C), each a ``curves.Series`` keyed by its run. Drawing happens on the
chart thread (``ChartView``): new steps only mark the charts dirty, and a timer asks every
dirty chart for a new figure ``REDRAW_S`` apart, from a snapshot of the series, so a key press
never waits behind a chart. On a small terminal (``-compact``) only the loss chart is shown.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical

from genlab.core.events import EvalResult, TrainStep
from genlab.tui.widgets import tcss
from genlab.tui.widgets.chart_view import ChartView
from genlab.tui.widgets.curves import (  # re-exported: the Runs overlay uses them too
    EMA_BETA,
    Ema,
    Series,
    line_builder,
    loss_builder,
    sci_ticks,
    smooth,
    step_ticks,
    thin,
)

__all__ = ["EMA_BETA", "Ema", "TrainCharts", "sci_ticks", "smooth", "step_ticks", "thin"]

REDRAW_S = 0.25
CHARTS = ("loss", "lr", "grad")
MAIN = ""
"""Key of the run when only one runs."""


class TrainCharts(Vertical):
    """Loss on top; learning rate and gradient norm side by side below."""

    DEFAULT_CSS = tcss(__file__)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reset()

    def compose(self) -> ComposeResult:
        yield ChartView(id="loss")
        with Horizontal(id="small-charts"):
            yield ChartView(id="lr")
            yield ChartView(id="grad")

    def on_mount(self) -> None:
        self.set_interval(REDRAW_S, self._redraw_dirty)
        self.redraw()

    def reset(self, total_steps: int | None = None, labels: dict[str, str] | None = None
              ) -> None:
        """Forget the series (a new run started); ``labels``: run key -> legend (several)."""
        self.total_steps = total_steps
        self.series: dict[str, Series] = {key: Series(label) for key, label in
                                          (labels or {MAIN: ""}).items()}
        self._dirty = set(CHARTS)

    # --- the first run's series, by the names the single-run screen always used
    @property
    def main(self) -> Series:
        return next(iter(self.series.values()))

    @property
    def steps(self) -> list[int]:
        return self.main.steps

    @property
    def loss(self) -> list[float]:
        return self.main.loss

    @property
    def loss_ema(self) -> list[float]:
        return self.main.ema

    @property
    def eval_steps(self) -> list[int]:
        return self.main.eval_steps

    @property
    def eval_loss(self) -> list[float]:
        return self.main.eval_loss

    @property
    def best(self) -> tuple[int, float] | None:
        return self.main.best

    def add_step(self, step: TrainStep, run: str = MAIN) -> None:
        self._series(run).add_step(step.step, step.loss, step.lr, step.grad_norm)
        self._dirty.update(CHARTS)

    def add_eval(self, result: EvalResult, run: str = MAIN) -> None:
        self._series(run).add_eval(result.step, result.loss, result.is_best)
        self._dirty.add("loss")

    def reset_run(self, run: str) -> None:
        """Start ``run``'s series afresh (a trial that runs again after a stop)."""
        self.series[run] = Series(run)
        self._dirty.update(CHARTS)

    def add_point(self, run: str, step: int, loss: float, lr: float | None = None,
                  grad: float | None = None) -> None:
        """A training step of ``run`` given as numbers (a sweep trial's progress)."""
        self._series(run).add_step(step, loss, lr, grad)
        self._dirty.update(CHARTS)

    def add_eval_point(self, run: str, step: int, loss: float) -> None:
        """An evaluation of ``run`` given as numbers."""
        self._series(run).add_eval(step, loss)
        self._dirty.add("loss")

    def set_total(self, run: str, total_steps: int) -> None:
        """A run said how many steps it will take."""
        self._series(run).total_steps = total_steps
        self.total_steps = max(self.total_steps or 0, total_steps)

    def _series(self, run: str) -> Series:
        if run not in self.series:
            self.series[run] = Series(run)
        return self.series[run]

    def _redraw_dirty(self) -> None:
        """Timer tick: ask for the dirty charts' figures, if this screen is shown."""
        if self._dirty and self.screen.is_current:
            self.redraw(*self._dirty)

    def redraw(self, *charts: str) -> None:
        """Draw these charts (default: all) from a snapshot of the series."""
        if not self.is_mounted:
            return
        series = [s.snapshot() for s in self.series.values()]
        total = self.total_steps
        builders = {
            "loss": lambda: loss_builder(series, "loss", total),
            "lr": lambda: line_builder(series, "lr", "learning rate", True, total),
            "grad": lambda: line_builder(series, "grad", "grad norm", False, total),
        }
        for chart in charts or CHARTS:
            self._dirty.discard(chart)
            self.query_one(f"#{chart}", ChartView).draw(builders[chart]())
