"""The help screen (F1 or ?): every key binding, read from the classes that define them.

The table is built from the ``BINDINGS`` of the app, screens and widgets, so it cannot drift
from what the keys do; ``docs/tui.md`` carries the same list (a test checks it).
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from genlab.tui.bindings import APP_BINDINGS, key_label
from genlab.tui.screens.experiments import ExperimentsScreen
from genlab.tui.screens.runs import RunsScreen
from genlab.tui.screens.sample import SampleScreen
from genlab.tui.screens.train import TrainScreen
from genlab.tui.widgets.run_table import RunTable
from genlab.tui.widgets.token_view import TokenView

INTRO = ("See what sampling and training hyperparameters do, side by side. Function keys "
         "and Ctrl keys work anywhere, even while you type in a field; Esc, arrows, Space "
         "and Enter act on the focused area (Tab / Shift+Tab move focus).")


class _App:
    """The app's bindings, as a class with ``BINDINGS`` like the screens."""

    BINDINGS = APP_BINDINGS


def binding_sections() -> list[tuple[str, list[tuple[str, str, bool]]]]:
    """(section, [(keys, description, priority)]) for every documented binding."""
    sections = [("Everywhere", [_App]), ("Sample screen (F2)", [SampleScreen, TokenView]),
                ("Train screen (F3)", [TrainScreen]), ("Runs screen (F4)", [RunsScreen, RunTable]),
                ("Experiments screen (F7)", [ExperimentsScreen])]
    out = []
    for title, classes in sections:
        rows: list[tuple[str, str, bool]] = []
        seen: set[str] = set()
        for cls in classes:
            for binding in cls.BINDINGS:
                if not isinstance(binding, Binding) or binding.description in seen:
                    continue
                seen.add(binding.description)
                keys = ",".join(b.key for b in cls.BINDINGS if isinstance(b, Binding)
                                and b.description == binding.description)
                rows.append((key_label(keys), binding.tooltip or binding.description,
                             binding.priority))
        out.append((title, rows))
    return out


def help_markdown() -> str:
    """The bindings as Markdown (the source of the key table in docs/tui.md)."""
    lines = []
    for title, rows in binding_sections():
        lines += [f"### {title}", "", "| Keys | Does |", "| --- | --- |"]
        lines += [f"| {keys} | {description} |" for keys, description, _ in rows]
        lines.append("")
    return "\n".join(lines)


def help_renderable() -> Group:
    """The bindings as compact tables, one per screen."""
    parts: list = [Text("genlab tui", style="bold"), Text(INTRO, style="dim"), Text("")]
    for title, rows in binding_sections():
        table = Table.grid(padding=(0, 2))
        table.add_column(width=16, style="bold")
        table.add_column()
        for keys, description, _ in rows:
            table.add_row(Text(keys, style="bold"), description)
        parts += [Text(title, style="bold underline"), table, Text("")]
    parts.append(Text("Esc or F1 closes this help.", style="dim"))
    return Group(*parts)


class HelpScreen(ModalScreen):
    """Key bindings, over the current screen.

    The app builds it once and shows the same instance each time (composing the tables is the
    costly part), on an opaque background (a see-through one makes Textual blend the screen
    below into every frame).
    """

    BINDINGS = [Binding("escape,q", "dismiss", "Close help")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(help_renderable())

    def action_dismiss(self) -> None:
        self.dismiss()
