"""Loss curves as data, and the plotext figures drawn from them (one run or several overlaid).

Owns a run's series (``Series``: train loss raw and EMA-smoothed, learning rate, gradient norm,
eval losses, the best eval, where it diverged) and the builders that turn a snapshot of one
or more series into a figure for ``ChartView``: ``loss_builder`` (a single run: raw, EMA, eval
points and the best eval; several: one colour per run, EMA lines labelled with what sets the
runs apart, eval points in the same colour, a diverged run ending in an ``x`` at the top) and
``line_builder`` (lr, grad norm). A diverging run's huge losses would flatten every other
curve, so the y axis stops a little above the healthy runs' highest loss and a diverged curve
runs into that ceiling.

Builders run on the chart thread: they only read the snapshot they were given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

EMA_BETA = 0.9
COLOURS = ("blue+", "orange", "green+", "magenta", "cyan", "red", "yellow", "white",
           "blue", "green")
RICH_COLOURS = {"blue+": "ansi_bright_blue", "orange": "#ff8700", "green+": "ansi_bright_green",
                "magenta": "ansi_magenta", "cyan": "ansi_cyan", "red": "ansi_red",
                "yellow": "ansi_yellow", "white": "ansi_white", "blue": "ansi_blue",
                "green": "ansi_green"}
"""The same colours as markup (the terminal's palette, as plotext's), for a legend drawn
outside the chart."""
LEGEND_MIN_HEIGHT = 14
"""Below this many rows the legend would cover the curves: draw it outside (``legend_text``)."""
CEILING = 1.25
"""The y axis ends this factor above the highest loss of the runs that did not diverge."""


class Ema:
    """Bias-corrected exponential moving average (as TensorBoard's smoothing)."""

    def __init__(self, beta: float = EMA_BETA) -> None:
        self.beta, self.value, self.n = beta, 0.0, 0

    def add(self, x: float) -> float:
        self.n += 1
        self.value = self.beta * self.value + (1 - self.beta) * x
        return self.value / (1 - self.beta ** self.n)


def smooth(values: list[float], beta: float = EMA_BETA) -> list[float]:
    """The EMA curve of ``values``."""
    ema = Ema(beta)
    return [ema.add(v) for v in values]


@dataclass
class Series:
    """One run's curves, appended as its events arrive."""

    label: str = ""
    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    ema: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    best: tuple[int, float] | None = None
    diverged: bool = False
    total_steps: int | None = None
    _ema: Ema = field(default_factory=Ema, repr=False)

    def add_step(self, step: int, loss: float, lr: float | None = None,
                 grad: float | None = None) -> None:
        """A training step (a non-finite loss marks the run diverged, and is not plotted)."""
        if not math.isfinite(loss):
            self.diverged = True
            return
        self.steps.append(step)
        self.loss.append(loss)
        self.ema.append(self._ema.add(loss))
        if lr is not None:
            self.lr.append(lr)
        if grad is not None:
            self.grad.append(grad if math.isfinite(grad) else 0.0)

    def add_eval(self, step: int, loss: float, is_best: bool = False) -> None:
        """An evaluation."""
        if not math.isfinite(loss):
            self.diverged = True
            return
        self.eval_steps.append(step)
        self.eval_loss.append(loss)
        if is_best or self.best is None or loss < self.best[1]:
            self.best = (step, loss)

    def snapshot(self) -> Series:
        """A copy the chart thread can read while events keep arriving."""
        return replace(self, steps=list(self.steps), loss=list(self.loss), ema=list(self.ema),
                       lr=list(self.lr), grad=list(self.grad),
                       eval_steps=list(self.eval_steps), eval_loss=list(self.eval_loss))

    @property
    def last_step(self) -> int:
        return max(self.steps[-1] if self.steps else 0,
                   self.eval_steps[-1] if self.eval_steps else 0)


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


def _xlim(plt: Any, last: int) -> None:
    if last:
        plt.xlim(0, last + max(1, last // 40))  # a margin keeps the last point visible
        plt.xticks(step_ticks(last))


def _ceiling(series: list[Series]) -> float | None:
    """The top of the y axis when a diverged run would otherwise squash the others."""
    healthy = [v for s in series if not s.diverged for v in s.loss + s.eval_loss]
    wild = [v for s in series if s.diverged for v in s.loss + s.eval_loss]
    if not healthy or not wild or max(wild) <= max(healthy) * CEILING:
        return None
    return max(healthy) * CEILING


def legend_text(series: list[Series]) -> str:
    """The overlay's legend as markup (``[bright_blue]■[/] lr=0.001 …``), for a border."""
    return "  ".join(f"[{RICH_COLOURS[COLOURS[n % len(COLOURS)]]}]■[/] {s.label}"
                     + (" ×" if s.diverged else "") for n, s in enumerate(series))


def loss_builder(series: list[Series], title: str = "loss", total_steps: int | None = None,
                 overlay: bool = False, legend: bool = True):
    """A builder of the loss figure of ``series`` (snapshots); see the module docstring.

    ``overlay``: one colour per series even when there is only one (an experiment's trials).
    ``legend``: False leaves the overlay's legend out (the caller shows ``legend_text``).
    """

    def build(plt: Any, width: int) -> None:
        plt.title(title)
        plt.xlabel("step")
        points = max(2 * width, 20)
        if len(series) == 1 and not overlay:
            _single(plt, series[0], points)
        else:
            _overlay(plt, series, points, legend)
        last = total_steps or max((s.total_steps or s.last_step for s in series), default=0)
        _xlim(plt, last)

    return build


def _single(plt: Any, s: Series, points: int) -> None:
    if s.steps:
        plt.plot(*thin(s.steps, s.loss, points), color="gray", marker="braille", label="train")
        plt.plot(*thin(s.steps, s.ema, points), color="blue+", marker="braille",
                 label="train EMA")
    if s.eval_steps:
        plt.scatter(s.eval_steps, s.eval_loss, color="orange", marker="o", label="eval")
    if s.best is not None:
        step, loss = s.best
        plt.scatter([step], [loss], color="green+", marker="*",
                    label=f"best eval {loss:.3f} @ {step}")
    if s.diverged and s.steps:
        plt.scatter([s.steps[-1]], [s.loss[-1]], color="red", marker="x", label="diverged")


def _overlay(plt: Any, series: list[Series], points: int, legend: bool = True) -> None:
    top = _ceiling(series)
    clip = (lambda ys: [min(y, top) for y in ys]) if top is not None else list
    for n, s in enumerate(series):
        colour = COLOURS[n % len(COLOURS)]
        label = (f"{s.label} ×" if s.diverged else s.label) if legend else None
        if s.steps:
            xs, ys = thin(s.steps, s.ema, points)
            plt.plot(xs, clip(ys), color=colour, marker="braille", label=label)
        if s.eval_steps:
            plt.scatter(s.eval_steps, clip(s.eval_loss), color=colour, marker="o")
        if s.diverged:
            x = s.steps[-1] if s.steps else 0
            y = top if top is not None else (s.loss[-1] if s.loss else 0.0)
            plt.scatter([x], [y], color=colour, marker="x")
    if top is not None:
        low = min(v for s in series for v in s.loss + s.eval_loss)
        plt.ylim(low - 0.02 * (top - low), top)


def line_builder(series: list[Series], attr: str, title: str, scientific: bool = False,
                 total_steps: int | None = None):
    """A builder of one per-step quantity (``lr``, ``grad``) of every series."""

    def build(plt: Any, width: int) -> None:
        plt.title(title)
        values_all: list[float] = []
        for n, s in enumerate(series):
            values = getattr(s, attr)
            if not values:
                continue
            colour = ("cyan" if attr == "lr" else "magenta") if len(series) == 1 else \
                COLOURS[n % len(COLOURS)]
            steps = s.steps[-len(values):]
            plt.plot(*thin(steps, values, max(2 * width, 20)), color=colour,
                     marker="braille")
            values_all += values
        if scientific and values_all:
            plt.yticks(*sci_ticks(values_all))
        last = total_steps or max((s.total_steps or s.last_step for s in series), default=0)
        _xlim(plt, last)

    return build
