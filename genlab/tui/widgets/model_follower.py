"""A one-line widget that mirrors the app's shared model state (loading, ready, failed).

The tab bar and the status line both show the model's state; this base class owns the two
reactives they redraw from and the watch on the app that keeps them in step, so a new state
or a new widget that shows it needs no copy of the wiring.
"""

from __future__ import annotations

from textual.reactive import reactive
from textual.widget import Widget

MODEL_ICONS = {"loading": ("◌", "yellow"), "ready": ("●", "green"), "failed": ("✖", "red")}
"""Icon and colour of each model state."""


class ModelFollower(Widget):
    """Keeps ``model_state``/``model_text`` equal to the app's, when the app has them."""

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
