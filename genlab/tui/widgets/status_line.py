"""One line at the top of every screen: the model's state, then what this screen is doing.

The model part follows the app's ``model_state``/``model_text`` reactives, so every screen
shows the same thing while the model loads in the background; ``activity`` is the screen's own.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from genlab.tui.widgets import tcss

ICONS = {"loading": ("◌", "yellow"), "ready": ("●", "green"), "failed": ("✖", "red"),
         "busy": ("◍", "yellow")}


class StatusLine(Widget):
    """Model state on the left, the screen's activity on the right."""

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
        icon, colour = ICONS.get(self.model_state, ("?", "white"))
        line = Text.assemble((f" {icon} ", f"bold {colour}"), (self.model_text, colour))
        if self.activity:
            line.append("  │  ", "dim")
            line.append(self.activity)
        line.no_wrap = True
        line.overflow = "ellipsis"
        return line
