"""Ctrl+L: load another model for every screen (a hub id or a local model directory).

A small dialog over the current screen: the field starts with the model now loaded (or the
one that failed), Enter loads what it says, Esc keeps things as they are. The app does the
loading in the background, exactly as at start-up.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class LoadModelScreen(ModalScreen[str | None]):
    """Ask for a model; dismisses with its name, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: str, why: str = "") -> None:
        super().__init__()
        self.current = current
        self.why = why

    def compose(self) -> ComposeResult:
        with Vertical(id="load-model-body"):
            if self.why:
                yield Static(self.why, id="load-model-why")
            yield Static("Model to load: a Hugging Face hub id (cached locally) or a local "
                         "model directory; default = genlab's shipped model. Enter loads it, "
                         "Esc cancels.", id="load-model-help")
            yield Input(self.current, id="load-model-name", select_on_focus=True)

    def on_mount(self) -> None:
        self.query_one("#load-model-body").border_title = "load a model"
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = event.value.strip()
        self.dismiss(name or "default")

    def action_cancel(self) -> None:
        self.dismiss(None)
