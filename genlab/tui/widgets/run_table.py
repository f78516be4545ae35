"""A table of run directories: status, key hyperparameters, best eval loss, time.

Owns turning ``core.training.run_dir.RunInfo`` records into rows and the multi-selection used to
overlay curves: Space marks or unmarks the row under the cursor (posting
``RunTable.SelectionChanged``), Enter opens it (``RunTable.Opened``).
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from genlab.core.training.run_dir import RunInfo
from genlab.tui.widgets import tcss

COLUMNS = ("", "run", "status", "best eval", "train loss", "lr", "steps", "time", "method",
           "rank", "schedule", "batch")
"""What tells runs apart first (a narrow terminal shows the first columns)."""
STATUS_STYLE = {"completed": "green", "early-stopped": "green", "running": "yellow",
                "stopped": "yellow", "diverged": "red", "failed": "red"}


def _num(value: object, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, (int, float)) else "–"


def _duration(seconds: object) -> str:
    if not isinstance(seconds, (int, float)):
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _best(info: RunInfo) -> Text | str:
    """The best eval loss; a running run's best so far, marked as such."""
    if info.summary is not None:
        return _num(info.summary.get("best_eval_loss"), ".3f")
    if info.best_so_far is None:
        return "–"
    return Text(f"{info.best_so_far:.3f} so far", style="italic yellow")


def run_row(info: RunInfo, marked: bool) -> tuple:
    """The table cells of one run."""
    config, summary = info.config, info.summary or {}
    resolved = config.get("resolved", {})
    batch = config.get("batch_size", 0) * config.get("grad_accum", 1) \
        if isinstance(config.get("batch_size"), int) else None
    steps = summary.get("steps", info.steps_so_far)
    total = resolved.get("total_steps") or summary.get("total_steps")
    return (
        "✓" if marked else "",
        info.name,
        Text(info.status, style=STATUS_STYLE.get(info.status, "")),
        _best(info),
        _num(summary.get("final_train_loss"), ".3f"),
        _num(config.get("lr"), ".0e"),
        f"{steps if steps is not None else '–'}/{total or '?'}",
        _duration(summary.get("wall_time_s")),
        str(config.get("method", "–")),
        _num(config.get("rank"), "d"),
        str(config.get("schedule", "–")),
        _num(batch, "d"),
    )


class RunTable(DataTable):
    """Run directories, one per row, keyed by path."""

    DEFAULT_CSS = tcss(__file__)

    BINDINGS = [
        Binding("space", "toggle_mark", "Mark for overlay",
                tooltip="Mark or unmark the run: marked runs' loss curves are overlaid"),
        Binding("enter", "open_run", "Open samples",
                tooltip="Read the run's generations at each evaluation"),
    ]

    class SelectionChanged(Message):
        """The set of marked runs changed."""

        def __init__(self, paths: list[Path]) -> None:
            super().__init__()
            self.paths = paths

    class Opened(Message):
        """Enter was pressed on a run."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.marked: list[Path] = []
        self.infos: dict[str, RunInfo] = {}

    def on_mount(self) -> None:
        self.add_column("", width=1, key="mark")
        self.add_columns(*COLUMNS[1:])

    def show_runs(self, infos: list[RunInfo]) -> None:
        """Replace the rows (``infos`` come oldest first; shown newest first), keeping marks
        and the cursor where possible."""
        cursor_key = self._key_at_cursor()
        self.infos = {str(i.path): i for i in infos}
        self.marked = [p for p in self.marked if str(p) in self.infos]
        self.clear()
        for info in reversed(infos):
            self.add_row(*run_row(info, info.path in self.marked), key=str(info.path))
        if cursor_key in self.infos:
            self.move_cursor(row=self.get_row_index(cursor_key))

    def _key_at_cursor(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def action_toggle_mark(self) -> None:
        key = self._key_at_cursor()
        if key is None:
            return
        path = Path(key)
        if path in self.marked:
            self.marked.remove(path)
        else:
            self.marked.append(path)
        self.update_cell(key, "mark", "✓" if path in self.marked else "")
        self.post_message(self.SelectionChanged(list(self.marked)))

    def action_open_run(self) -> None:
        key = self._key_at_cursor()
        if key is not None:
            self.post_message(self.Opened(Path(key)))
