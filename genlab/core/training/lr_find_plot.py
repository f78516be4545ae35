"""The lr range test's plot: loss against learning rate (log axis), with the suggestions.

``render_lr_find`` returns PNG bytes (``lr_find.lr_find`` writes them atomically). It draws
with matplotlib's object API (``Figure`` + the Agg canvas), so no GUI backend or global pyplot
state is touched, which keeps it safe inside the TUI's worker threads.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from matplotlib.figure import Figure


def render_lr_find(lrs: Sequence[float], losses: Sequence[float], smoothed: Sequence[float],
                   steepest: float | None, min_div10: float | None) -> bytes:
    """The curve as a PNG: raw losses faint, the smoothed loss bold, both suggestions marked."""
    fig = Figure(figsize=(7.0, 4.2), dpi=110)
    ax = fig.add_subplot()
    if lrs:
        ax.plot(lrs, losses, color="#9db4d8", linewidth=0.8, label="loss per step")
        ax.plot(lrs, smoothed, color="#1f4e9c", linewidth=2.0, label="smoothed (zero-phase)")
        _limit_y(ax, smoothed, losses)
    for lr, color, name in ((steepest, "#d1495b", "steepest"), (min_div10, "#2a9d8f",
                                                                "min / 10")):
        if lr is not None:
            ax.axvline(lr, color=color, linestyle="--", linewidth=1.2,
                       label=f"{name}: {lr:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss (nats/token)")
    title = "LR range test"
    if steepest is not None:
        title += f": suggested lr {steepest:.2g}"
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _limit_y(ax, smoothed: Sequence[float], losses: Sequence[float]) -> None:
    """Keep the exploding tail from flattening the interesting part of the curve."""
    finite = [v for v in list(smoothed) + list(losses) if math.isfinite(v)]
    if not finite:
        return
    low = min(finite)
    start = smoothed[0] if smoothed and math.isfinite(smoothed[0]) else max(finite)
    top = max(start, low) + 0.5 * (max(start, low) - low) + 1e-3
    ax.set_ylim(low - 0.05 * (top - low), top)
