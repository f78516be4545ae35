"""Sweep plots as PNG files: overlaid loss curves, objective vs each hyperparameter, heatmap.

Owns the figures of ``genlab.core.reports.report``. Matplotlib runs headless (Agg backend, selected
without touching the global ``pyplot`` state), each function writes one PNG and returns its
path, and nothing here reads run directories: the report passes plain numbers in.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from genlab.core.io import write_bytes_atomic

DPI = 110
BAD = "#d62728"


def save_figure(fig: Figure, path: str | Path) -> None:
    """Save ``fig`` as a PNG atomically (rendered in memory, then written in one go)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_bytes_atomic(path, buf.getvalue())


@dataclass
class Curve:
    """One trial's curves for the overlay plot.

    Attributes:
        label: Legend text (``#3 lr=0.001``).
        train: ``(step, loss)`` per training step.
        eval: ``(step, loss)`` per evaluation.
        status: The trial's status (``diverged`` ends with a red cross).
        rank: 0 for the best objective, larger is worse (colours follow it).
    """

    label: str
    train: list[tuple[int, float]] = field(default_factory=list)
    eval: list[tuple[int, float]] = field(default_factory=list)
    status: str = "completed"
    rank: float = 0.0


def _figure(width: float, height: float, cols: int = 1, bottom: float = 0.6,
            right: float = 0.25) -> tuple[Any, Any]:
    """A figure of ``cols`` axes with fixed margins (in inches): an automatic layout engine
    would cost more than drawing the plot itself."""

    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(left=0.75 / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - 0.45 / height, wspace=0.9 / max(1.0, (width - right) / cols))
    axes = fig.subplots(1, cols, squeeze=False)[0]
    return fig, axes


PALETTE = [colormaps["tab10"](i) for i in range(10)]
"""Qualitative colours: neighbouring ranks must look different, not shade into each other."""
LINE_STYLES = ("-", "--", "-.", ":")
LEGEND_MAX = 16
"""Curves named in the legend (the best ones); the report's table lists every trial."""
LEGEND_WIDTH = 2.6
"""Inches right of the two panels for the legend."""


def curve_style(rank: int) -> dict[str, Any]:
    """Colour and line style of the curve ranked ``rank`` (0 = best): ten colours, then the
    same colours dashed, dash-dotted, dotted. The best curve is drawn thicker."""
    index = int(rank)
    return {"color": PALETTE[index % 10], "linestyle": LINE_STYLES[(index // 10) % 4],
            "linewidth": 2.0 if index == 0 else 1.2, "alpha": 0.9}


def loss_curves(curves: Sequence[Curve], path: str | Path, title: str = "") -> Path:
    """Training loss (left) and eval loss (right) of every trial, overlaid, with a legend."""
    save_figure(loss_curves_figure(curves, title), path)
    return Path(path)


def loss_curves_figure(curves: Sequence[Curve], title: str = "") -> Any:
    """The ``loss_curves`` figure: one style per trial (``curve_style`` of its rank), and one
    legend beside both panels naming the trials best first."""

    fig, (ax_train, ax_eval) = _figure(11 + LEGEND_WIDTH, 4.2, cols=2,
                                       right=LEGEND_WIDTH + 0.1)
    ordered = sorted(curves, key=lambda c: c.rank)
    handles = []
    for c in ordered:
        style = curve_style(round(c.rank))
        line = None
        if c.train:
            (line,) = ax_train.plot(*zip(*c.train, strict=True), label=c.label, **style)
        if c.eval:
            (eval_line,) = ax_eval.plot(*zip(*c.eval, strict=True), marker="o", markersize=3,
                                        label=c.label, **style)
            line = line or eval_line
        if line is not None:
            handles.append(line)
    marks = _mark_off_scale(ordered, ax_train, ax_eval)
    ax_train.set(title="training loss", xlabel="step", ylabel="loss")
    ax_eval.set(title="eval loss", xlabel="step", ylabel="loss")
    for ax in (ax_train, ax_eval):
        ax.grid(alpha=0.3)
    _legend(fig, handles, marks)
    if title:
        fig.suptitle(title)
    return fig


def _mark_off_scale(curves: Sequence[Curve], ax_train: Any, ax_eval: Any) -> list[Any]:
    """Clip explosions at 1.5x the highest start, mark where a curve leaves the plot (red
    triangle) and a diverged run's last step (red cross); returns legend handles for both."""

    firsts = [c.train[0][1] for c in curves if c.train and math.isfinite(c.train[0][1])]
    top = 1.5 * max(firsts) if firsts else math.inf
    marks: dict[str, Any] = {}
    for c in curves:
        for ax, points in ((ax_train, c.train), (ax_eval, c.eval)):
            off = [(x, y) for x, y in points if not y <= top]
            if off:
                (marks["leaves the plot"],) = ax.plot(off[0][0], top, marker="^", color=BAD,
                                                      markersize=8, clip_on=False,
                                                      linestyle="none")
        if c.status == "diverged" and c.train:
            step, loss = c.train[-1]
            (marks["diverged (last step)"],) = ax_train.plot(
                step, min(loss, top), marker="x", color=BAD, markersize=10, mew=2,
                clip_on=False, linestyle="none")
    for ax in (ax_train, ax_eval):
        bottom, current = ax.get_ylim()
        if current > top:
            ax.set_ylim(bottom, top)
    for label, handle in marks.items():
        handle.set_label(label)
    return list(marks.values())


def _legend(fig: Any, handles: list[Any], marks: list[Any]) -> None:
    shown = handles[:LEGEND_MAX]
    title = "trials, best first"
    if len(handles) > LEGEND_MAX:
        title += f"\n({len(handles) - LEGEND_MAX} more in the table)"
    if shown or marks:
        fig.legend(handles=shown + marks, loc="center left", fontsize=7, title=title,
                   title_fontsize=8, frameon=False,
                   bbox_to_anchor=(1 - LEGEND_WIDTH / fig.get_figwidth(), 0.5))


@dataclass
class Axis:
    """One hyperparameter for the scatter plot.

    Attributes:
        name: The parameter.
        values: One value per trial (numbers or labels).
        log: Log-scale x axis.
        order: Category labels in display order (default: numeric order, or first seen).
    """

    name: str
    values: list[Any]
    log: bool = False
    order: list[str] | None = None

    def labels(self) -> list[str]:
        """The distinct values as labels, in display order."""
        seen = list(dict.fromkeys(map(str, self.values)))
        if self.order:
            return [o for o in self.order if o in seen] + [v for v in seen if v not in self.order]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.values):
            return [str(v) for v in sorted(set(self.values))]
        return seen


def objective_scatter(axes: Sequence[Axis], objectives: Sequence[float | None],
                      statuses: Sequence[str], path: str | Path, objective_name: str) -> Path:
    """The objective against each hyperparameter; trials without one sit on the top edge."""
    save_figure(objective_figure(axes, objectives, statuses, objective_name), path)
    return Path(path)


def objective_figure(axes: Sequence[Axis], objectives: Sequence[float | None],
                     statuses: Sequence[str], objective_name: str) -> Any:
    """The ``objective_scatter`` figure."""
    categorical = any(not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                              for v in a.values) for a in axes)
    fig, plots = _figure(max(4.2, 3.8 * len(axes)), 3.8 if categorical else 3.4,
                         cols=max(1, len(axes)), bottom=1.1 if categorical else 0.6)
    finite = [o for o in objectives if o is not None and math.isfinite(o)]
    top = (max(finite) + 0.08 * (max(finite) - min(finite) or 1.0)) if finite else 1.0
    for ax, axis in zip(plots, axes, strict=False):
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                      for v in axis.values)
        labels = axis.labels()
        xs = axis.values if numeric else [labels.index(str(v)) for v in axis.values]
        good = [(x, o) for x, o in zip(xs, objectives, strict=True)
                if o is not None and math.isfinite(o)]
        bad = [(x, s) for x, o, s in zip(xs, objectives, statuses, strict=True)
               if o is None or not math.isfinite(o)]
        if good:
            ax.scatter(*zip(*good, strict=True), s=36, color="#1f77b4", zorder=3,
                       label=objective_name)
        for x, _ in bad:
            ax.scatter([x], [top], marker="x", color=BAD, s=50, zorder=3)
        if axis.log and numeric and all(v > 0 for v in axis.values):
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8, ha="right")
        ax.set(xlabel=axis.name, ylabel=objective_name)
        ax.grid(alpha=0.3)
        _label_inside(ax, bad, top)
    return fig


def _label_inside(ax: Any, points: list[tuple[Any, str]], y: float) -> None:
    """Name each point's status above it, on the side that keeps the text inside the figure
    (a label right of the last point ran off the figure's edge)."""
    ax.autoscale_view()  # the data transform below needs the final limits
    for x, status in points:
        frac = ax.transAxes.inverted().transform(ax.transData.transform((x, y)))[0]
        left = frac > 0.5
        ax.annotate(status, (x, y), textcoords="offset points", xytext=(-5 if left else 5, 5),
                    ha="right" if left else "left", fontsize=7, color=BAD)


def heatmap(x: Axis, y: Axis, cells: dict[tuple[str, str], tuple[float | None, str]],
            path: str | Path, objective_name: str) -> Path:
    """The objective over a two-parameter grid (``cells[(x label, y label)] = (value, status)``)."""

    xl, yl = x.labels(), y.labels()
    grid = np.full((len(yl), len(xl)), np.nan)
    for (xv, yv), (value, _) in cells.items():
        if value is not None and math.isfinite(value):
            grid[yl.index(yv), xl.index(xv)] = value
    width = 3.2 + 0.9 * len(xl)
    fig, (ax,) = _figure(width, 1.4 + 0.6 * len(yl))
    fig.subplots_adjust(left=0.9 / width, right=1 - 1.0 / width)  # colorbar label
    image = ax.imshow(grid, cmap="viridis_r", aspect="auto")
    fig.colorbar(image, ax=ax, label=f"{objective_name}\n(lower is better)", fraction=0.12,
                 pad=0.04)
    low, high = image.get_clim()
    for (xv, yv), (value, status) in cells.items():
        if value is not None and math.isfinite(value):
            text = f"{value:.3f}"
            bright = (value - low) / ((high - low) or 1.0) < 0.5  # viridis_r: low is yellow
            color = "black" if bright else "white"
        else:
            text, color = status, BAD
        ax.text(xl.index(xv), yl.index(yv), text, ha="center", va="center", fontsize=8,
                color=color)
    ax.set_xticks(range(len(xl)), xl, fontsize=8)
    ax.set_yticks(range(len(yl)), yl, fontsize=8)
    ax.set(xlabel=x.name, ylabel=y.name)
    save_figure(fig, path)
    return Path(path)
