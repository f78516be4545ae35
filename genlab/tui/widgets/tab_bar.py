"""The top line of every screen: the screens as tabs (the shown one marked) and the model.

One widget drawing one line of text, so it costs nothing to repaint: each tab carries its
function key (click it, or press the key), the active screen is drawn reversed, and the right
end shows the shared model's state (loading, ready with its size and device, or failed). On a
narrow terminal the model text is shortened first; the tabs always stay whole.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from genlab.tui.bindings import SCREEN_TABS, short_key
from genlab.tui.widgets import tcss
from genlab.tui.widgets.model_follower import MODEL_ICONS, ModelFollower

ICONS = MODEL_ICONS
EXTRA_KEYS = (("f1", "Help", "app.help"), ("ctrl+q", "Quit", "app.quit"))


class TabBar(ModelFollower):
    """Screen tabs on the left, the model's state on the right."""

    DEFAULT_CSS = tcss(__file__)

    def __init__(self, active: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.active = active

    def tabs(self) -> Text:
        """The tabs part (also used by tests and the help screen)."""
        line = Text()
        for key, mode, label in SCREEN_TABS:
            action = Style(meta={"@click": f"app.switch_mode('{mode}')"})
            if mode == self.active:
                line.append(f" {short_key(key)} {label} ", Style(bold=True, reverse=True)
                            + action)
            else:
                line.append(f" {short_key(key)}", Style(bold=True) + action)
                line.append(f" {label} ", Style(dim=True) + action)
        for key, label, action in EXTRA_KEYS:
            line.append(f" {short_key(key)}", Style(bold=True, meta={"@click": action}))
            line.append(f" {label}", Style(dim=True, meta={"@click": action}))
        return line

    def render(self) -> Text:
        line = self.tabs()
        icon, colour = ICONS.get(self.model_state, ("?", "white"))
        room = self.size.width - line.cell_len - 3
        if room > 3:
            model = Text.assemble(("  │ ", "dim"), (f"{icon} ", f"bold {colour}"),
                                  (self.model_text, colour))
            model.truncate(room + 3, overflow="ellipsis")
            line.append_text(model)
        line.no_wrap = True
        line.overflow = "ellipsis"
        return line
