"""What every genlab screen shares: the tab bar, the status line, the key bar, cheap resumes.

A screen subclasses ``GenlabScreen``, names its tab (``TAB``, a mode of the app) and yields its
body from ``compose_body``; the chrome around it is the same everywhere: the tabs and the model
state on top, the screen's activity below them, its keys at the bottom.

Switching screens must feel instant on a busy CPU. Textual restyles the whole screen on every
resume (``ScreenResume(refresh_styles=True)``), which is only needed when the stylesheet
changed while the screen was away; the app's stylesheet never changes after start-up (no theme
switching, every screen's styles load with the app), so a resume here only lays out and
repaints. ``update_styles`` falls back to Textual's behaviour if the CSS did change.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget

from genlab.tui.widgets.key_bar import KeyBar
from genlab.tui.widgets.status_line import StatusLine
from genlab.tui.widgets.tab_bar import TabBar


class GenlabScreen(Screen):
    """A screen with the shared chrome; subclasses set ``TAB`` and write ``compose_body``."""

    TAB = ""
    """The app mode this screen is the tab of."""
    FOCUS_RINGS: tuple[type, ...] = ()
    """Containers whose title lights up while focus is inside them (see ``_move_ring``)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._ring: Widget | None = None
        self._ring_colour = ""

    def on_mount(self) -> None:
        self._ring_colour = self.app.get_css_variables().get("accent", "yellow")
        self.watch(self, "focused", self._move_ring)  # (init: focus may be set already)

    def compose(self) -> ComposeResult:
        yield TabBar(self.TAB)
        yield StatusLine()
        yield from self.compose_body()
        yield KeyBar()

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets, between the status line and the key bar."""
        yield from ()

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        stale = self._css_update_count != self.app._css_update_count
        super()._on_screen_resume(events.ScreenResume(refresh_styles=stale) if
                                  event.refresh_styles else event)

    def _move_ring(self, focused: Widget | None) -> None:
        """Light the title of the ring container holding the focus, unlight the last one.

        A CSS ``:focus-within`` border would say the same, but Textual then restyles the
        whole container (every input of a form) on each focus move, and an inline border
        colour re-lays out the screen; an inline title colour costs one repaint.
        """
        ring = None
        if focused is not None and self.FOCUS_RINGS:
            ring = next((n for n in focused.ancestors_with_self
                         if isinstance(n, self.FOCUS_RINGS)), None)
        if ring is self._ring:
            return
        old, self._ring = self._ring, ring
        if old is not None and old.is_attached:
            old.styles.clear_rule("border_title_color")
            old.styles.clear_rule("border_title_style")
            old.refresh()
        if ring is not None:
            ring.styles.border_title_style = "bold reverse"
            ring.styles.border_title_color = self._ring_colour

    def status(self, text: str) -> None:
        """Say what the screen is doing (the line under the tabs)."""
        self.query_one(StatusLine).activity = text
