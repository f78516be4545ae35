"""The bottom line of every screen: the keys that act here, as ``F5 Run all  Esc Stop``.

Textual's ``Footer`` rebuilds a widget per key on every focus change (a dozen mounts and a
restyle per Tab press, a visible lag on a busy CPU); this bar is one widget that draws one line
of text and repaints only when the list of keys really changed. Keys come from the screen's
active bindings (those with ``show=True``: the focused widget's first, then the screen's), a
key with several bindings shows its first, and each entry is clickable. When the keys do not
fit the width (the Train screen at 80 columns), the entries close up to one space apart.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from genlab.tui.bindings import short_key
from genlab.tui.widgets import tcss


class KeyBar(Widget):
    """One line of the keys that work on this screen now."""

    DEFAULT_CSS = tcss(__file__)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._entries: tuple[tuple[str, str, bool], ...] = ()

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def entries(self) -> tuple[tuple[str, str, bool], ...]:
        """(key, description, enabled) of every shown binding, one per action."""
        seen: dict[str, tuple[str, str, bool]] = {}
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not binding.show or binding.action in seen:
                continue
            seen[binding.action] = (key, binding.description, active.enabled)
        return tuple(seen.values())

    def _bindings_changed(self, _screen: object) -> None:
        entries = self.entries()
        if entries != self._entries:
            self._entries = entries
            self.refresh()

    def render(self) -> Text:
        line = self._line(gap=" ")
        if line.cell_len > self.size.width > 0:  # too many keys: one space between entries
            line = self._line(gap="")
        return line

    def _line(self, gap: str) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        for key, description, enabled in self._entries:
            click = {"@click": f"app.press_key('{key}')"}
            dim = "" if enabled else " dim"
            line.append(f" {short_key(key)}", Style.parse("bold" + dim) + Style(meta=click))
            line.append(f" {description}{gap}", Style.parse("dim" if enabled else "dim strike")
                        + Style(meta=click))
        return line
