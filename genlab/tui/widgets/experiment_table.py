"""The results of an experiment as a table that keeps itself sorted by the objective.

Sweeps: one row per trial (its varied values, status, objective, best eval, final train loss,
steps, time), sorted as the report sorts them (``core.reports.summary.sort_rows``: completed
by objective, then pruned, diverged and failed, each flagged), with the running trial last
and its best eval so far. Compares: one row per cell with the report's summary numbers (mean
new tokens, how the samples ended, distinct word bigrams).
"""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from genlab.core.reports.summary import (
    cell_distinct2,
    cell_endings,
    cell_mean_tokens,
    cell_quality,
    sort_rows,
)
from genlab.tui.widgets import tcss

STATUS_STYLE = {"completed": "green", "early-stopped": "green", "running": "yellow",
                "pruned": "yellow", "diverged": "bold red", "failed": "red"}
FLAGS = {"diverged": "× diverged", "pruned": "✂ pruned", "failed": "✖ failed"}
OBJECTIVE_NAMES = {"best_eval_loss": "best eval", "final_eval_loss": "final eval",
                   "final_train_loss": "final train"}


def _num(value: Any, fmt: str = ".3f") -> str:
    return format(value, fmt) if isinstance(value, (int, float)) and math.isfinite(value) \
        else "–"


def _time(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def point_label(params: dict[str, Any]) -> str:
    """``lr=0.001`` / ``rank=8 alpha=16`` / a bundle's label, for legends and rows."""
    parts = []
    for name, value in params.items():
        if isinstance(value, str) and " " in value:
            parts.append(value)  # a bundle's label says it all
        else:
            parts.append(f"{name.split('.')[-1]}={_short(value)}")
    return " ".join(parts)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class ExperimentTable(DataTable):
    """Trials (or cells) of the experiment shown, best first."""

    DEFAULT_CSS = tcss(__file__)

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.order: list[int] = []
        """Trial numbers (cell indexes) in the order shown."""
        self._columns: tuple[str, ...] = ()

    def _set_columns(self, columns: tuple[str, ...]) -> None:
        if columns != self._columns:
            self.clear(columns=True)
            self.add_columns(*columns)
            self._columns = columns

    def show_sweep(self, rows: list[dict[str, Any]], objective: str,
                   running: dict[str, Any] | None = None) -> None:
        """Show the finished ``rows`` sorted, then the ``running`` trial (if any)."""
        name = OBJECTIVE_NAMES.get(objective, objective)
        extra = tuple(n for n in ("best eval", "final train") if n != name)
        columns = ("#", "trial", "settings", "status", name, *extra, "steps", "time")
        self._set_columns(columns)
        self.clear()
        ordered = sort_rows(rows)
        self.order = [r.get("trial", -1) for r in ordered]
        for rank, row in enumerate(ordered, start=1):
            status = row.get("status", "?")
            flag = FLAGS.get(status, status)
            values = {"best eval": _num(row.get("best_eval_loss")),
                      "final train": _num(row.get("final_train_loss"))}
            self.add_row(
                str(rank) if status in ("completed", "early-stopped") else "",
                str(row.get("trial", "")), point_label(row.get("params", {})),
                Text(flag, style=STATUS_STYLE.get(status, "")),
                _num(row.get("objective")), *(values[n] for n in extra),
                f"{row.get('steps', '–')}/{row.get('total_steps') or '?'}",
                _time(row.get("wall_time_s")))
        if running is not None:
            self.order.append(running["trial"])
            so_far = Text(_num(running.get("best_eval")) + " so far", style="italic yellow")
            values = {"best eval": so_far, "final train": "–"}
            self.add_row("", str(running["trial"]), point_label(running["params"]),
                         Text("running", style="yellow"),
                         so_far if name == "best eval" else "–", *(values[n] for n in extra),
                         f"{running.get('step', 0)}/{running.get('total') or '?'}", "…")

    def show_compare(self, rows: list[dict[str, Any]]) -> None:
        """One row per finished cell, in cell order."""
        self._set_columns(("cell", "mean new tokens", "ended by", "distinct bigrams",
                           "log-prob (base)", "perplexity (base)"))
        self.clear()
        ordered = sorted(rows, key=lambda r: r.get("cell", 0))
        self.order = [r.get("cell", -1) for r in ordered]
        for row in ordered:
            self.add_row(row.get("label", ""), cell_mean_tokens(row), cell_endings(row),
                         cell_distinct2(row), *cell_quality(row))
