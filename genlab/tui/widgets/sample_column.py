"""One column of the Sample screen: its settings, its streamed tokens and its statistics.

Owns a column's state between runs: the tokens of its latest run, which run it belongs to,
the live tokens/s and mean log-probability, and the finish reason. A settings change re-runs
the column by itself after ``DEBOUNCE_S`` of quiet (only once it has run at least once, so
typing never starts work by surprise), by posting ``SampleColumn.RerunRequested``.
"""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer

from genlab.core.configs import GenerationRequest
from genlab.core.events import RowFinished, TokenSampled
from genlab.tui.widgets import tcss
from genlab.tui.widgets.params_panel import ParamsPanel
from genlab.tui.widgets.token_view import TokenView

DEBOUNCE_S = 0.4
TITLE_EVERY_S = 0.5


class SampleColumn(Vertical):
    """Settings on top, tokens below, statistics in the bottom border."""

    DEFAULT_CSS = tcss(__file__)

    class SettingsChanged(Message):
        """The column's settings changed (valid or not): titles may need to change."""

        def __init__(self, column: SampleColumn) -> None:
            super().__init__()
            self.column = column

    class RerunRequested(Message):
        """The column's settings changed (and settled): run it again."""

        def __init__(self, column: SampleColumn) -> None:
            super().__init__()
            self.column = column

    def __init__(self, number: int, values: dict | None = None, adapter: str | None = None,
                 adapters: tuple[str, ...] = (), **kwargs) -> None:
        super().__init__(**kwargs)
        self.number = number
        self.tokens: list[TokenSampled] = []
        self.run_id: int | None = None
        self.running = False
        self.has_run = False
        self.reason = ""
        self.elapsed_s: float | None = None
        self._started = 0.0
        self._logprob_sum = 0.0
        self._debounce: Timer | None = None
        self._titled = 0.0
        self._title_parts: list[str] | None = None
        self.eos_index: int | None = None
        """The token that ended the row as end-of-text (drawn as the eos marker)."""
        self.panel = ParamsPanel(values, adapter, adapters)
        self.view = TokenView(self.tokens, "Ctrl+R runs every column")

    def compose(self) -> ComposeResult:
        yield self.panel
        yield self.view

    def on_mount(self) -> None:
        self._update_titles()

    # ------------------------------------------------------------------ request

    def request(self, prompt: str, chat: bool | None = None, system: str | None = None
                ) -> GenerationRequest:
        """This column's request for ``prompt`` (sent as chat or raw text); raises
        ConfigError if a setting is invalid."""
        req = self.panel.read()
        return GenerationRequest(prompt, req.params, seed=req.seed, adapter=req.adapter,
                                 chat=chat, system=system)

    @property
    def label(self) -> str:
        """Short name for titles: the number, then what tells this column from the others
        (``set_title_parts``), or its model and the settings that are not off."""
        if self._title_parts is not None:
            return " · ".join([str(self.number), *self._title_parts])
        return f"{self.number} · {self.panel.adapter or 'base'}{self.panel.summary()}"

    def set_title_parts(self, parts: list[str] | None) -> None:
        """Title the column by these parts (the values that differ between columns)."""
        if parts != self._title_parts:
            self._title_parts = parts
            if self.is_mounted:
                self._update_titles()

    @property
    def greedy(self) -> bool:
        try:
            return self.panel.read().params.greedy
        except ValueError:
            return False

    # ------------------------------------------------------------------ a run

    def begin(self, run_id: int) -> None:
        """A run that includes this column started: clear the old tokens."""
        self.run_id = run_id
        self.running, self.has_run = True, True
        self.reason, self.elapsed_s = "", None
        self.eos_index = None
        self.tokens.clear()
        self._logprob_sum = 0.0
        self._started = time.monotonic()
        self.view.reset()
        self._update_titles()

    def add_tokens(self, tokens: list[TokenSampled]) -> None:
        """Append streamed tokens."""
        self.tokens.extend(tokens)
        self._logprob_sum += sum(t.logprob for t in tokens)
        self.view.tokens_added()
        now = time.monotonic()
        if now - self._titled >= TITLE_EVERY_S:  # the border repaints the column: go easy
            self._update_titles()

    def finish(self, event: RowFinished) -> None:
        """The row ended (length, eos, stop or cancelled)."""
        self.running = False
        self.reason = event.reason
        self.elapsed_s = event.elapsed_s
        if event.reason == "eos" and self.tokens:
            self.eos_index = len(self.tokens) - 1
            self.view.mark_eos(self.eos_index)
        self._update_titles()

    def fail(self, message: str) -> None:
        """The run failed before this column finished."""
        self.running = False
        self.reason = "failed"
        self._update_titles()

    def abandon(self) -> None:
        """The run was replaced by one that does not include this column."""
        if self.running:
            self.running = False
            self.reason = "cancelled"
            self._update_titles()

    def stats(self) -> str:
        """``reason·X tok/s·lp Y`` (short: six columns leave ~20 cells for it)."""
        n = len(self.tokens)
        if not n and not self.running:
            return self.reason
        elapsed = self.elapsed_s if self.elapsed_s is not None else \
            time.monotonic() - self._started
        rate = f"{n / elapsed:.0f} tok/s" if elapsed > 0 else "– tok/s"
        mean = f"lp {self._logprob_sum / n:.2f}" if n else "lp –"
        return "·".join([self.reason or f"{n} tok", rate, mean])

    def _update_titles(self) -> None:
        self._titled = time.monotonic()
        label = self.label
        room = self.outer_size.width - 6  # (corner, line and a space each side)
        if self._title_parts is not None and room > 0 and len(label) > room:
            parts = [p.replace(" ", "") for p in self._title_parts]
            # tighter and tighter: ``6 T1.5 k30``, ``T1.5 k30``, ``T1.5k30`` (what differs
            # between the columns matters most, the number least)
            for label in (" ".join([str(self.number), *parts]), " ".join(parts), "".join(parts)):
                if len(label) <= room:
                    break
        self.border_title = label
        self.border_subtitle = self.stats()

    def on_resize(self) -> None:
        self._update_titles()  # a narrower column may need the compact title

    # ------------------------------------------------------------------ events

    def on_params_panel_changed(self, event: ParamsPanel.Changed) -> None:
        event.stop()
        self.post_message(self.SettingsChanged(self))
        self._update_titles()
        if not self.has_run:
            return
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(DEBOUNCE_S, self._settled)

    def _settled(self) -> None:
        self._debounce = None
        self.post_message(self.RerunRequested(self))
