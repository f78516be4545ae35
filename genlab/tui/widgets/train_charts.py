"""Live training charts: loss (raw, EMA-smoothed, eval points, best eval), lr, grad norm.

Owns the series of one run and draws them with textual-plotext. Plotext draws on the UI
thread and a chart costs 20-70 ms, so drawing is rationed: new steps only mark the charts
dirty, a timer redraws one dirty chart per tick (a key press never waits behind all three),
and each series is averaged down to about two points per cell of the chart's width.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual_plotext import PlotextPlot

from genlab.core.events import EvalResult, TrainStep
from genlab.tui.widgets import tcss

EMA_BETA = 0.9
REDRAW_S = 0.25
CHARTS = ("loss", "lr", "grad")


class Ema:
    """Bias-corrected exponential moving average (as TensorBoard's smoothing)."""

    def __init__(self, beta: float = EMA_BETA) -> None:
        self.beta, self.value, self.n = beta, 0.0, 0

    def add(self, x: float) -> float:
        self.n += 1
        self.value = self.beta * self.value + (1 - self.beta) * x
        return self.value / (1 - self.beta ** self.n)


def step_ticks(last_step: int, count: int = 5) -> list[int]:
    """About ``count`` round integer steps from 0 to ``last_step`` for the x axis."""
    if last_step <= 0:
        return [0]
    raw = last_step / max(count - 1, 1)
    magnitude = 10 ** max(len(str(int(raw))) - 1, 0)
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return list(range(0, last_step + 1, max(int(step), 1)))


def sci_ticks(values: list[float], count: int = 4) -> tuple[list[float], list[str]]:
    """Evenly spaced y ticks over ``values`` with short labels (``2.0e-04``)."""
    low, high = min(values), max(values)
    if high == low:
        return [low], [f"{low:.1e}"]
    ticks = [low + (high - low) * i / (count - 1) for i in range(count)]
    return ticks, [f"{t:.1e}" for t in ticks]


def thin(xs: list[int], ys: list[float], points: int) -> tuple[list[float], list[float]]:
    """At most ``points`` (x, y) pairs: consecutive buckets averaged, so the shape stays."""
    if len(xs) <= points:
        return list(xs), list(ys)
    size = len(xs) / points
    out_x, out_y = [], []
    for i in range(points):
        lo, hi = int(i * size), max(int((i + 1) * size), int(i * size) + 1)
        out_x.append(sum(xs[lo:hi]) / (hi - lo))
        out_y.append(sum(ys[lo:hi]) / (hi - lo))
    return out_x, out_y


def smooth(values: list[float], beta: float = EMA_BETA) -> list[float]:
    """The EMA curve of ``values``."""
    ema = Ema(beta)
    return [ema.add(v) for v in values]


class TrainCharts(Vertical):
    """Loss on top; learning rate and gradient norm side by side below."""

    DEFAULT_CSS = tcss(__file__)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reset()

    def compose(self) -> ComposeResult:
        yield PlotextPlot(id="loss")
        with Horizontal(id="small-charts"):
            yield PlotextPlot(id="lr")
            yield PlotextPlot(id="grad")

    def on_mount(self) -> None:
        self.set_interval(REDRAW_S, self._redraw_one)
        self.redraw()

    def reset(self, total_steps: int | None = None) -> None:
        """Forget the series (a new run started)."""
        self.total_steps = total_steps
        self.steps: list[int] = []
        self.loss: list[float] = []
        self.loss_ema: list[float] = []
        self.lr: list[float] = []
        self.grad: list[float] = []
        self.eval_steps: list[int] = []
        self.eval_loss: list[float] = []
        self.best: tuple[int, float] | None = None
        self._ema = Ema()
        self._dirty = set(CHARTS)

    def add_step(self, step: TrainStep) -> None:
        self.steps.append(step.step)
        self.loss.append(step.loss)
        self.loss_ema.append(self._ema.add(step.loss))
        self.lr.append(step.lr)
        self.grad.append(step.grad_norm)
        self._dirty.update(CHARTS)

    def add_eval(self, result: EvalResult) -> None:
        self.eval_steps.append(result.step)
        self.eval_loss.append(result.loss)
        if result.is_best or self.best is None or result.loss < self.best[1]:
            self.best = (result.step, result.loss)
        self._dirty.add("loss")

    def _redraw_one(self) -> None:
        """Timer tick: draw the first dirty chart (loss first), if this screen is shown."""
        if self._dirty and self.screen.is_current:
            self.redraw(next(c for c in CHARTS if c in self._dirty))

    def redraw(self, *charts: str) -> None:
        """Draw these charts (default: all) from the series."""
        if not self.is_mounted:
            return
        for chart in charts or CHARTS:
            self._dirty.discard(chart)
            plot = self.query_one(f"#{chart}", PlotextPlot)
            if chart == "loss":
                self._draw_loss(plot)
            elif chart == "lr":
                self._draw_simple(plot, self.lr, "learning rate", "cyan", scientific=True)
            else:
                self._draw_simple(plot, self.grad, "grad norm", "magenta")

    def _xlim(self, plt) -> None:
        last = self.total_steps or (self.steps[-1] if self.steps else 0)
        if last:
            plt.xlim(0, last + max(1, last // 40))  # a margin keeps the last point visible
            plt.xticks(step_ticks(last))

    def _draw_loss(self, plot: PlotextPlot) -> None:
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("loss")
        plt.xlabel("step")
        if self.steps:
            points = max(2 * plot.size.width, 20)
            plt.plot(*thin(self.steps, self.loss, points), color="gray", marker="braille",
                     label="train")
            plt.plot(*thin(self.steps, self.loss_ema, points), color="blue+", marker="braille",
                     label="train EMA")
        if self.eval_steps:
            plt.scatter(self.eval_steps, self.eval_loss, color="orange", marker="o",
                        label="eval")
        if self.best is not None:
            step, loss = self.best
            plt.scatter([step], [loss], color="green+", marker="*",
                        label=f"best eval {loss:.3f} @ {step}")
        self._xlim(plt)
        plot.refresh()

    def _draw_simple(self, plot: PlotextPlot, values: list[float], title: str,
                     colour: str, scientific: bool = False) -> None:
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(title)
        if values:
            plt.plot(*thin(self.steps, values, max(2 * plot.size.width, 20)), color=colour,
                     marker="braille")
            if scientific:
                plt.yticks(*sci_ticks(values))
        self._xlim(plt)
        plot.refresh()
