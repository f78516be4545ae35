"""The line under the tabs: what this screen is doing, or why the model is not ready.

The model part follows the app's ``model_state``/``model_text`` reactives, so every screen
says the same thing while the model loads in the background or after it failed (with what to
do about it); once the model is ready the line is the screen's own ``activity`` (the tab bar
above keeps showing the model).
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from genlab.tui.widgets import tcss
from genlab.tui.widgets.model_follower import MODEL_ICONS, ModelFollower

ICONS = {**MODEL_ICONS, "busy": ("◍", "yellow")}


class StatusLine(ModelFollower):
    """The model's state while it is not ready, then the screen's activity."""

    DEFAULT_CSS = tcss(__file__)

    activity: reactive[str] = reactive("")

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
