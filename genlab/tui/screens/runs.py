"""The Runs screen: every run directory under the runs folder, compared.

Thin wiring: ``core.training.run_dir.list_runs`` feeds the table; marking runs (Space) overlays
their loss curves; Enter opens a run's sample generations. The list refreshes whenever the
screen is shown, and on F5.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

from genlab.core.training import run_dir as runs
from genlab.tui.screens.run_samples import RunSamplesScreen
from genlab.tui.widgets.run_overlay import RunOverlay
from genlab.tui.widgets.run_table import RunTable
from genlab.tui.widgets.status_line import StatusLine


class RunsScreen(Screen):
    """Table of runs above, overlay of the marked runs' curves below."""


    BINDINGS = [Binding("f5,ctrl+r", "refresh_runs", "Refresh", priority=True,
                      tooltip="Re-read the runs folder")]

    def compose(self) -> ComposeResult:
        yield StatusLine()
        yield RunTable()
        yield RunOverlay()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(RunTable).border_title = f"runs in {self.app.runs_dir}"
        self.action_refresh_runs()
        self.query_one(RunOverlay).show_runs([])

    def on_screen_resume(self) -> None:
        self.action_refresh_runs()

    def action_refresh_runs(self) -> None:
        infos = runs.list_runs(self.app.runs_dir)
        table = self.query_one(RunTable)
        table.show_runs(infos)
        self.query_one(RunOverlay).show_runs(table.marked)
        where = self.app.runs_dir
        self.query_one(StatusLine).activity = (
            f"{len(infos)} run{'s' if len(infos) != 1 else ''} in {where} · Space marks, "
            "Enter opens" if infos else f"no runs in {where} yet: train one on F3")

    def on_run_table_selection_changed(self, event: RunTable.SelectionChanged) -> None:
        self.query_one(RunOverlay).show_runs(event.paths)

    def on_run_table_opened(self, event: RunTable.Opened) -> None:
        self.app.push_screen(RunSamplesScreen(event.path))
