"""A compare spec's cells as columns of text: one per cell, titled by its settings.

Owns laying out the generations of a compare run side by side (the TUI's version of the
report's per-prompt tables): each column is a cell (``T=0.7 k=40``), holding, per prompt, the
prompt dimmed and each sample's text, filled in as each cell finishes. Columns keep a
readable width and scroll sideways when there are many.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import HorizontalScroll
from textual.widgets import Static

from genlab.tui.widgets import tcss


class CellText(Static):
    """One cell's generations."""


class CellColumns(HorizontalScroll):
    """Every cell of the compare run shown, left to right in cell order."""

    DEFAULT_CSS = tcss(__file__)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._labels: list[str] = []

    def compose(self) -> ComposeResult:
        yield from ()

    async def set_cells(self, labels: list[str]) -> None:
        """One empty column per cell (a new run)."""
        self._labels = list(labels)
        await self.remove_children()
        columns = []
        for label in labels:
            column = CellText(Text("waiting…", style="dim italic"))
            column.border_title = label
            columns.append(column)
        await self.mount_all(columns)

    def fill(self, index: int, row: dict[str, Any]) -> None:
        """Show a finished cell's outputs (prompt-major, then sample)."""
        columns = list(self.query(CellText))
        if not 0 <= index < len(columns):
            return
        text = Text()
        last_prompt = None
        for output in row.get("outputs", []):
            if output.get("prompt_index") != last_prompt:
                last_prompt = output.get("prompt_index")
                if text:
                    text.append("\n")
                text.append(str(output.get("prompt", "")), "dim")
            else:
                text.append("\n  ⋯", "dim")
            text.append(str(output.get("text", "")))
        columns[index].update(text)
