"""The Train form's configs as tabs: ``A`` alone, or ``A lr=0.0002 │ B lr=0.001`` side by side.

One line of text (cheap to repaint): each config's letter and the values that set it apart,
the shown one reversed; click a tab to show that config's form. With one config it says how to
add another (Ctrl+N: compare with...).
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from genlab.tui.widgets import tcss


class ConfigTabs(Widget):
    """Tabs of the configs on the Train form."""

    DEFAULT_CSS = tcss(__file__)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.labels: list[str] = ["A"]
        self.active = 0

    def show(self, labels: list[str], active: int) -> None:
        """Show these tabs with ``active`` marked."""
        if labels != self.labels or active != self.active:
            self.labels, self.active = list(labels), active
            self.refresh()

    def render(self) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        for n, label in enumerate(self.labels):
            click = Style(meta={"@click": f"screen.show_config({n})"})
            style = Style(bold=True, reverse=True) if n == self.active else Style(dim=True)
            if n:
                line.append("│", "dim")
            line.append(f" {label} ", style + click)
        if len(self.labels) == 1:
            line.append("  ^N compare with…", "dim italic")
        return line
