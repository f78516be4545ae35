"""The Runs screen: every run directory under the runs folder, compared.

Thin wiring: ``core.training.run_dir.list_runs`` feeds the table (the runs folder's own runs,
and the trials of the sweeps in it), newest first; marking runs (Space) overlays their loss
curves; Enter opens a run's sample generations. The list refreshes whenever the screen is
shown, and on F5.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding

from genlab.core.training import run_dir as runs
from genlab.tui.screens.base import GenlabScreen
from genlab.tui.screens.run_samples import RunSamplesScreen
from genlab.tui.widgets.run_overlay import RunOverlay
from genlab.tui.widgets.run_table import RunTable


class RunsScreen(GenlabScreen):
    """Table of runs above, overlay of the marked runs' curves below."""

    TAB = "runs"
    FOCUS_RINGS = (RunTable,)

    BINDINGS = [Binding("f5,ctrl+r", "refresh_runs", "Refresh", priority=True,
                        tooltip="Re-read the runs folder")]

    def compose_body(self) -> ComposeResult:
        yield RunTable()
        yield RunOverlay()

    def on_mount(self) -> None:
        self.query_one(RunTable).border_title = f"runs in {self.app.runs_dir}"
        self.action_refresh_runs()
        self.query_one(RunOverlay).show_runs([])

    def on_screen_resume(self) -> None:
        self.action_refresh_runs()

    def action_refresh_runs(self) -> None:
        infos = runs.list_runs(self.app.runs_dir, nested=True)
        table = self.query_one(RunTable)
        table.show_runs(infos)
        self.query_one(RunOverlay).show_runs(table.marked, self._names())
        where = self.app.runs_dir
        self.status(
            f"{len(infos)} run{'s' if len(infos) != 1 else ''} in {where}, newest first · "
            "Space marks, Enter opens" if infos else
            f"no runs in {where} yet: train one on F3, or run an experiment on F7")

    def on_run_table_selection_changed(self, event: RunTable.SelectionChanged) -> None:
        self.query_one(RunOverlay).show_runs(event.paths, self._names())

    def _names(self) -> dict:
        """Run path -> the name the table shows (``sweep-…/0003`` for a sweep's trial)."""
        return {info.path: info.name for info in self.query_one(RunTable).infos.values()}

    def on_run_table_opened(self, event: RunTable.Opened) -> None:
        self.app.push_screen(RunSamplesScreen(event.path))
