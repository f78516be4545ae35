"""Generated tokens, each tinted by its probability, with a cursor to inspect one step.

Owns laying tokens out into lines (wrapping at token boundaries, so each cell maps back to a
token for mouse hit-testing) and the token cursor: ←/→ (Home/End) move it while the view is
focused, a click sets it, hovering previews a token. Both post messages the screen turns into
the distribution view.

Built on the Line API (``render_line``) so that streaming stays cheap however long the text
gets: layout is incremental (a new token appends to the last line), each line's strip is
cached, and only visible lines are drawn. The view scrolls itself (``top``, the first line
shown; the mouse wheel, PageUp/PageDown and the cursor move it, and while it follows the end
new text keeps it at the bottom): a Textual scroll view would re-lay out the whole screen
whenever streaming grows or scrolls it, and repaint a scrollbar widget each time. Its own
position bar is drawn in a one-cell gutter on the right that text never enters.
"""

from __future__ import annotations

import colorsys
import functools
import math
from dataclasses import dataclass, field

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from genlab.core.events import TokenSampled
from genlab.tui.widgets import tcss

COLOUR_STEPS = 200
"""Probabilities are tinted in this many steps (so each colour and style is made once)."""
EOS_MARK = "∎"
"""Drawn for the token that ended a row as end-of-text (the legend explains it)."""
EMPTY_MARK = "·"
"""Drawn for a token with no text of its own yet (a piece of a multi-byte character)."""


def prob_colour(p: float) -> str:
    """Background colour for a token of probability ``p``: red (unlikely) to green (sure)."""
    p = min(max(p, 0.0), 1.0)
    return _colour_step(round(p * COLOUR_STEPS))


@functools.cache
def _colour_step(step: int) -> str:
    hue = 0.36 * math.sqrt(step / COLOUR_STEPS)  # sqrt spreads the common low-prob range
    r, g, b = colorsys.hls_to_rgb(hue, 0.27, 0.65)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


@functools.cache
def _token_style(colour: str) -> Style:
    return Style(bgcolor=colour, color="#f0f0f0")


def display_text(text: str) -> str:
    """How a token's text is drawn: newlines as ⏎, tabs as spaces, empty as a dot."""
    if not text:
        return EMPTY_MARK
    return text.replace("\r", "").replace("\t", "  ")


GUTTER = 1
"""Cells on the right kept for the position bar (text never goes there)."""
WHEEL_LINES = 3


@dataclass
class _Line:
    spans: list[tuple[int, int, int]] = field(default_factory=list)  # (x0, x1, token index)
    pieces: list[tuple[str, int]] = field(default_factory=list)  # (text, token index)
    width: int = 0


class TokenView(Widget, can_focus=True):
    """The tokens of one column; ``tokens`` is shared with (and appended by) the column."""

    DEFAULT_CSS = tcss(__file__)

    BINDINGS = [
        Binding("left", "move(-1)", "Previous token", show=False,
                tooltip="Previous token, with its distribution below"),
        Binding("right", "move(1)", "Next token", show=False,
                tooltip="Next token, with its distribution below"),
        Binding("home", "jump(0)", "First token", show=False),
        Binding("end", "jump(-1)", "Last token", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False,
                tooltip="Scroll the column's text up a page"),
        Binding("pagedown", "page(1)", "Page down", show=False,
                tooltip="Scroll the column's text down a page"),
    ]

    cursor: reactive[int | None] = reactive(None, init=False)

    class CursorMoved(Message):
        """The cursor moved onto token ``index`` (None: no token selected)."""

        def __init__(self, view: TokenView, index: int | None) -> None:
            super().__init__()
            self.view = view
            self.index = index

    class Hovered(Message):
        """The mouse is over token ``index`` (None when it left every token)."""

        def __init__(self, view: TokenView, index: int | None) -> None:
            super().__init__()
            self.view = view
            self.index = index

    def __init__(self, tokens: list[TokenSampled], placeholder: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.tokens = tokens
        self.placeholder = placeholder
        self._lines: list[_Line] = []
        self._laid = 0
        self._layout_width = -1
        self._hover: int | None = None
        self._strips: dict[int, Strip] = {}
        self._line_of_token: list[int] = []
        self.eos_index: int | None = None
        self.top = 0
        """The first line shown."""
        self.follow = True
        """Keep the end in view as text streams in (until the user scrolls up)."""

    # ---------------------------------------------------------------- layout

    def mark_eos(self, index: int) -> None:
        """Token ``index`` ended the row as end-of-text: draw it as the eos marker."""
        self.eos_index = index
        self._layout_width = -1  # lay out again (once per row: a few hundred tokens)
        self._sync()

    def reset(self) -> None:
        """The token list was cleared: forget the layout (the cursor index is kept)."""
        self._lines, self._laid, self._hover = [], 0, None
        self._line_of_token = []
        self.eos_index = None
        self._strips.clear()
        self.top, self.follow = 0, True
        self._sync()

    def tokens_added(self) -> None:
        """New tokens were appended to ``tokens``: lay them out, redraw from the last line."""
        first = max(len(self._lines) - 1, 0)
        self._layout(self._text_width)
        for y in range(first, len(self._lines)):
            self._strips.pop(y, None)
        top = self.top
        if self.follow and self.cursor is None:
            self.top = self._max_top
        if self.top != top:
            self.refresh()  # the view scrolled: every row changed
        else:  # only the rows from the last line on changed (a repaint of a few rows)
            start = max(first - self.top, 0)
            self.refresh(Region(0, start, self.size.width, len(self._lines) - self.top - start))

    @property
    def _text_width(self) -> int:
        return max(self.size.width - GUTTER, 4)

    @property
    def _max_top(self) -> int:
        return max(0, len(self._lines) - self.size.height)

    def on_resize(self) -> None:
        self._sync()

    def _sync(self) -> None:
        """Lay out the tokens for the current width and keep ``top`` in range."""
        if self.tokens:
            self._layout(self._text_width)
        self.top = self._max_top if self.follow and self.cursor is None else \
            min(self.top, self._max_top)
        self.refresh()

    def _layout(self, width: int) -> list[_Line]:
        width = max(width, 4)
        if width != self._layout_width:
            self._lines, self._laid, self._layout_width = [], 0, width
            self._line_of_token = []
            self._strips.clear()
        if not self._lines:
            self._lines.append(_Line())
        for index in range(self._laid, len(self.tokens)):
            self._line_of_token.append(self._place(index, width))
        self._laid = len(self.tokens)
        return self._lines

    def _place(self, index: int, width: int) -> int:
        """Append token ``index`` to the layout; return the line of its first piece."""
        text = display_text(self.tokens[index].text)
        if index == self.eos_index:
            text = text.rstrip(EMPTY_MARK) + EOS_MARK if text != EMPTY_MARK else EOS_MARK
        parts = text.split("\n")
        first = -1
        for n, part in enumerate(parts):
            if n < len(parts) - 1:
                part += "⏎"
            while part:
                line = self._lines[-1]
                room = width - line.width
                if room <= 0:
                    self._lines.append(_Line())
                    continue
                size = cell_len(part)
                if size > room and line.width > 0 and size <= width:
                    self._lines.append(_Line())  # wrap before the token
                    continue
                chunk = part if size <= room else _fit(part, room)
                if first < 0:
                    first = len(self._lines) - 1
                line.pieces.append((chunk, index))
                line.spans.append((line.width, line.width + cell_len(chunk), index))
                line.width += cell_len(chunk)
                part = part[len(chunk):]
                if part:
                    self._lines.append(_Line())
            if n < len(parts) - 1:
                self._lines.append(_Line())
        return max(first, 0)

    def index_at(self, x: int, y: int) -> int | None:
        """The token drawn at content offset (x, y) of the whole text, if any."""
        if not self.tokens or y < 0 or y >= len(self._lines):
            return None
        for x0, x1, index in self._lines[y].spans:
            if x0 <= x < x1:
                return index
        return None

    def line_of(self, index: int) -> int:
        """The line where token ``index`` starts."""
        if 0 <= index < len(self._line_of_token):
            return self._line_of_token[index]
        return 0

    # ---------------------------------------------------------------- render

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if not self.tokens:
            if y == 0 and self.placeholder:
                text = Segment(self.placeholder[:width], base + Style(dim=True, italic=True))
                return Strip([text]).extend_cell_length(width, base)
            return Strip.blank(width, base)
        line_index = y + self.top
        if line_index >= len(self._lines):
            strip = Strip.blank(width - GUTTER, base)
        else:
            strip = self._strips.get(line_index)
            if strip is None:
                segments = [Segment(chunk, self._style(index))
                            for chunk, index in self._lines[line_index].pieces]
                strip = Strip(segments).extend_cell_length(width - GUTTER, base)
                self._strips[line_index] = strip
        return Strip.join([strip, self._bar(y, base)])

    def _bar(self, y: int, base: Style) -> Strip:
        """Row ``y`` of the position bar (blank when everything fits)."""
        height, total = self.size.height, len(self._lines)
        if total <= height or height <= 0:
            return Strip.blank(GUTTER, base)
        size = max(1, round(height * height / total))
        start = round((height - size) * self.top / max(total - height, 1))
        mark = "▐" if start <= y < start + size else "│"
        return Strip([Segment(mark * GUTTER, base + Style(dim=mark == "│"))])

    def _style(self, index: int) -> Style:
        token = self.tokens[index]
        style = _token_style(prob_colour(math.exp(token.logprob)))
        if index == self.cursor:
            style += Style(reverse=True, bold=True)
        elif index == self._hover:
            style += Style(underline=True, bold=True)
        return style

    def _redraw_token(self, index: int | None) -> None:
        if index is not None and index < len(self._line_of_token):
            line = self.line_of(index)
            for y in (line, line + 1, line + 2):  # a token may span a few lines
                self._strips.pop(y, None)
        self.refresh()

    # ---------------------------------------------------------------- cursor

    def watch_cursor(self, old: int | None, new: int | None) -> None:
        self._redraw_token(old)
        self._redraw_token(new)
        if new is not None:
            self.scroll_visible_line(self.line_of(new))
        self.post_message(self.CursorMoved(self, new))

    def scroll_visible_line(self, y: int) -> None:
        """Scroll so that line ``y`` is in view."""
        height = self.size.height
        if y < self.top:
            self.scroll_to_line(y)
        elif y >= self.top + height:
            self.scroll_to_line(y - height + 1)

    def scroll_to_line(self, top: int) -> None:
        """Show the text from line ``top`` (kept in range); following resumes at the end."""
        self.top = max(0, min(top, self._max_top))
        self.follow = self.top >= self._max_top
        self.refresh()

    def action_page(self, direction: int) -> None:
        self.scroll_to_line(self.top + direction * max(self.size.height - 1, 1))

    def on_focus(self) -> None:
        self._strips.clear()  # the cached lines' padding has the unfocused background
        self.refresh()

    def on_blur(self) -> None:
        self._strips.clear()
        self.refresh()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.scroll_to_line(self.top - WHEEL_LINES)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.scroll_to_line(self.top + WHEEL_LINES)

    def action_move(self, delta: int) -> None:
        if not self.tokens:
            return
        start = self.cursor if self.cursor is not None else (
            -1 if delta > 0 else len(self.tokens))
        self.cursor = min(max(start + delta, 0), len(self.tokens) - 1)

    def action_jump(self, where: int) -> None:
        if self.tokens:
            self.cursor = where % len(self.tokens)

    def _token_under(self, event: events.MouseEvent) -> int | None:
        offset = event.get_content_offset(self)
        if offset is None:
            return None
        return self.index_at(offset.x, offset.y + self.top)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        index = self._token_under(event)
        if index != self._hover:
            old, self._hover = self._hover, index
            self._redraw_token(old)
            self._redraw_token(index)
            self.post_message(self.Hovered(self, index))

    def on_leave(self, event: events.Leave) -> None:
        if self._hover is not None:
            old, self._hover = self._hover, None
            self._redraw_token(old)
            self.post_message(self.Hovered(self, None))

    def on_click(self, event: events.Click) -> None:
        index = self._token_under(event)
        if index is not None:
            self.focus()
            self.cursor = index


def _fit(text: str, cells: int) -> str:
    """The longest start of ``text`` that fits in ``cells`` cells (at least one character)."""
    out = ""
    for char in text:
        if cell_len(out + char) > cells and out:
            break
        out += char
    return out
