"""The line under the tabs: what this screen is doing, or why the model is not ready.

The model part follows the app's ``model_state``/``model_text`` reactives, so every screen
says the same thing while the model loads in the background or after it failed (with what to
do about it); once the model is ready the line is the screen's own ``activity`` (the tab bar
above keeps showing the model).
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from genlab.tui.widgets import tcss

ICONS = {"loading": ("◌", "yellow"), "ready": ("●", "green"), "failed": ("✖", "red"),
         "busy": ("◍", "yellow")}


class StatusLine(Widget):
    """The model's state while it is not ready, then the screen's activity."""

    DEFAULT_CSS = tcss(__file__)

    activity: reactive[str] = reactive("")
    model_state: reactive[str] = reactive("loading")
    model_text: reactive[str] = reactive("")

    def on_mount(self) -> None:
        app = self.app
        if hasattr(app, "model_state"):
            self.watch(app, "model_state", self._follow_state)
            self.watch(app, "model_text", self._follow_text)

    def _follow_state(self, value: str) -> None:
        self.model_state = value

    def _follow_text(self, value: str) -> None:
        self.model_text = value

    def render(self) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        if self.model_state != "ready":
            icon, colour = ICONS.get(self.model_state, ("?", "white"))
            line.append(f" {icon} ", f"bold {colour}")
            line.append(self.model_text, colour)
            if self.activity:
                line.append("  │  ", "dim")
        else:
            line.append(" ")
        line.append(self.activity)
        return line
