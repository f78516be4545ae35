"""The Sample screen: one prompt, 2 to 6 columns of settings, one batched generation.

Thin wiring: the columns own their settings and tokens, the bridge owns the worker. This
screen turns "run these columns" into one ``iter_generate`` call (one request per column),
routes each row's events back to its column, and points the distribution view at whichever
token the user is looking at. A run replaces any run in flight; columns that had not
finished are folded into the new run, so a quick second change never leaves one half-done.

Keys must never wait behind streaming: tokens that arrive are only queued here, and a timer
hands them to the columns every ``FLUSH_S`` (one repaint of every column together instead of
one per batch); hiding the settings sets each panel's display directly (no restyle of the
whole screen); the hint follows whatever is focused when it is drawn, so fast Tab presses
never leave it describing a field that lost focus.
"""

from __future__ import annotations

from collections import defaultdict

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import Static, TextArea

from genlab.core.configs import ConfigError, GenerationRequest
from genlab.core.configs.sampling import SHORT_NAMES
from genlab.core.events import GenerationFinished, RowFinished, TokenSampled
from genlab.tui.bridge import Bridge
from genlab.tui.screens.base import GenlabScreen
from genlab.tui.widgets.chat_bar import HINT as CHAT_HINT
from genlab.tui.widgets.chat_bar import ChatBar
from genlab.tui.widgets.params_panel import HINTS, ParamsPanel
from genlab.tui.widgets.sample_column import SampleColumn
from genlab.tui.widgets.token_dist import TokenDist
from genlab.tui.widgets.token_view import TokenView
from genlab.tui.wording import config_message, model_not_ready

GROUP = "generate"
TOP_N = 10
MIN_COLUMNS, MAX_COLUMNS = 2, 6
SHORT_TERMINAL = 40
"""Below this many rows the settings start hidden, so the tokens keep some room."""
FLUSH_S = 0.1
"""How often streamed tokens are handed to the columns (one repaint for all of them)."""
DEFAULT_PROMPT = "Once upon a time"
STARTING_COLUMNS = ({"temperature": 0.0}, {"temperature": 0.8}, {"temperature": 1.5})
IDLE_HINT = ("Ctrl+R runs every column as one batch · Ctrl+T inspects tokens (←/→) · Tab "
             "moves between settings; a changed setting re-runs its column · F1 help")
PROMPT_HINT = ("prompt: every column continues this text (or answers it, with chat on; Enter is "
               "a newline). Ctrl+R runs them all.")
TOKENS_HINT = ("←/→ step through tokens, Home/End jump; below: the distribution each was drawn "
               "from. Colour = probability; lp = mean log-prob (nearer 0 = surer).")


class SampleScreen(GenlabScreen):
    """Prompt on top, columns in the middle, the distribution at the bottom."""

    TAB = "sample"
    FOCUS_RINGS = (SampleColumn,)
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]

    BINDINGS = [
        Binding("f5,ctrl+r", "run_all", "Run all", priority=True,
                tooltip="Run every column as one batched generation"),
        Binding("escape", "stop", "Stop",
                tooltip="Stop generating (unfinished columns end as cancelled)"),
        Binding("ctrl+n", "add_column", "Add column", priority=True,
                tooltip="Add a column: a copy of the focused one (at most 6)"),
        Binding("ctrl+b", "remove_column", "Drop column", priority=True,
                tooltip="Remove the focused column, or the last (at least 2)"),
        Binding("ctrl+t", "focus_tokens", "Tokens", priority=True,
                tooltip="Inspect tokens: focus the next column's text"),
        Binding("ctrl+s", "toggle_settings", "Settings", priority=True,
                tooltip="Hide or show the columns' settings (hidden at first on short "
                        "terminals; column titles keep the values that differ)"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._run_id: int | None = None
        self._run_columns: list[SampleColumn | None] = []
        self._dist_target: tuple[SampleColumn, int] | None = None
        self._numbers = 0
        self._settings_toggled = False
        self.settings_hidden = False
        self._pending: dict[int, list[TokenSampled]] = defaultdict(list)
        self._flusher: Timer | None = None

    def compose_body(self) -> ComposeResult:
        yield TextArea(DEFAULT_PROMPT, id="prompt", soft_wrap=True, show_line_numbers=False)
        yield ChatBar()
        with Horizontal(id="columns"):
            for values in STARTING_COLUMNS:
                yield self._new_column(values)
        yield Static(IDLE_HINT, id="hint")
        yield TokenDist()

    def on_mount(self) -> None:
        self.query_one("#prompt", TextArea).border_title = "prompt"
        self._show_settings(self.app.size.height >= SHORT_TERMINAL)
        self.watch(self.app, "adapter_names", self._offer_adapters, init=False)
        self.watch(self, "focused", self._follow_focus, init=False)
        self._flusher = self.set_interval(FLUSH_S, self._flush, pause=True)
        self._retitle()
        self.watch(self.app, "model_state", self._model_changed)

    # ----------------------------------------------------------------- prompt format

    def _model_changed(self, state: str) -> None:
        if state != "ready" or self.app.loaded is None:
            return
        template, context = self.app.source.prompt_info(self.app.loaded)
        self.query_one(ChatBar).set_model(template, context)
        self._update_room()

    def on_chat_bar_changed(self, event: ChatBar.Changed) -> None:
        self._update_room()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.id == "prompt":
            self._update_room()

    def _update_room(self) -> None:
        """Give every column the new tokens that fit after the prompt (the context check)."""
        app = self.app
        if getattr(app, "model_state", "") != "ready" or app.loaded is None:
            return
        bar = self.query_one(ChatBar)
        probe = GenerationRequest(self.query_one("#prompt", TextArea).text, chat=bar.chat,
                                  system=bar.system)
        try:
            room = app.source.max_new_room(app.loaded, probe)
        except ValueError:  # a template that refuses the prompt: generation will say why
            room = None
        limit = app.source.prompt_info(app.loaded)[1]
        for column in self.columns:
            column.panel.set_room(room, limit)

    # ----------------------------------------------------------------- columns

    @property
    def columns(self) -> list[SampleColumn]:
        return list(self.query(SampleColumn))

    def _new_column(self, values: dict | None = None, adapter: str | None = None
                    ) -> SampleColumn:
        self._numbers += 1
        adapters = tuple(getattr(self.app, "adapter_names", ()))
        return SampleColumn(self._numbers, values, adapter, adapters)

    def _focused_column(self) -> SampleColumn | None:
        node = self.focused
        while node is not None and not isinstance(node, SampleColumn):
            node = node.parent
        return node

    async def action_add_column(self) -> None:
        columns = [c for c in self.columns if c.panel.is_mounted]
        if len(self.columns) >= MAX_COLUMNS:
            self.notify(f"At most {MAX_COLUMNS} columns.", severity="warning")
            return
        focused = self._focused_column()
        source = focused if focused in columns else columns[-1]
        try:
            values = source.panel.read()
            copy = {**values.params.to_dict(), "seed": values.seed}
            copy = {k: copy[k] for k in ("temperature", "top_k", "top_p", "min_p",
                                         "repetition_penalty", "max_new_tokens", "seed")}
        except ConfigError:
            copy = None
        column = self._new_column(copy, source.panel.adapter)
        await self.query_one("#columns").mount(column)
        column.panel.display = not self.settings_hidden
        self._renumber()
        self.call_after_refresh(self._update_room)
        self._hint(f"Added column {column.number}, a copy of column {source.number}: change "
                   "one setting to see what it does.")

    async def action_remove_column(self) -> None:
        columns = self.columns
        if len(columns) <= MIN_COLUMNS:
            self.notify(f"At least {MIN_COLUMNS} columns.", severity="warning")
            return
        column = self._focused_column() or columns[-1]
        if self._dist_target and self._dist_target[0] is column:
            self._dist_target = None
            self.query_one(TokenDist).show("", None)
        if column in self._run_columns:
            self._run_columns = [c if c is not column else None for c in self._run_columns]
        await column.remove()
        self._renumber()

    def _renumber(self) -> None:
        for n, column in enumerate(self.columns, start=1):
            column.number = n
        self._numbers = len(self.columns)
        self._retitle()

    def _retitle(self) -> None:
        """Title each column by the settings that differ between the columns.

        Six columns on 80 cells leave ~12 cells a title: what tells them apart goes first.
        """
        columns = [c for c in self.columns if c.panel.is_mounted]
        values = [{"adapter": c.panel.adapter or "base", **c.panel.values()} for c in columns]
        differ = [k for k in (values[0] if values else {}) if len({v[k] for v in values}) > 1]
        for column, vals in zip(columns, values, strict=True):
            parts = [vals[name] if name == "adapter" else
                     f"{SHORT_NAMES.get(name, name)} {vals[name]}" for name in differ]
            column.set_title_parts(parts if differ else None)

    def on_resize(self) -> None:
        if not self._settings_toggled:
            self._show_settings(self.size.height >= SHORT_TERMINAL)

    def action_toggle_settings(self) -> None:
        self._settings_toggled = True
        self._show_settings(self.settings_hidden)
        if self.settings_hidden and self._focused_column() is not None \
                and not isinstance(self.focused, TokenView):
            self.action_focus_tokens()  # focus must not stay on a hidden input

    def _show_settings(self, show: bool) -> None:
        self.settings_hidden = not show
        for column in self.columns:
            if column.panel.display != show:
                column.panel.display = show

    def action_focus_tokens(self) -> None:
        """Focus the next column's tokens (←/→ then walk them, showing each distribution)."""
        columns = self.columns
        current = self._focused_column()
        at = columns.index(current) if current in columns else -1
        if isinstance(self.focused, TokenView):
            at += 1
        view = columns[max(at, 0) % len(columns)].view
        view.focus()
        if view.cursor is None and view.tokens:
            view.cursor = 0

    def _offer_adapters(self, names: tuple[str, ...]) -> None:
        for column in self.columns:
            column.panel.set_adapters(tuple(names))
        self._retitle()

    # ----------------------------------------------------------------- running

    def action_run_all(self) -> None:
        self._generate(self.columns)

    def action_stop(self) -> None:
        if self.app.bridge.stop(GROUP):
            self.status("stopping…")

    def on_sample_column_rerun_requested(self, event: SampleColumn.RerunRequested) -> None:
        self._generate([event.column])

    def on_sample_column_settings_changed(self, event: SampleColumn.SettingsChanged) -> None:
        self._retitle()

    def _generate(self, wanted: list[SampleColumn]) -> None:
        app = self.app
        if app.model_state != "ready":
            self.notify(model_not_ready(app.model_state, app.model_text),
                        severity="warning", timeout=8)
            return
        self._flush()
        unfinished = [c for c in self.columns if c.running and c not in wanted]
        columns = [c for c in self.columns if c in wanted or c in unfinished]
        prompt = self.query_one("#prompt", TextArea).text
        bar = self.query_one(ChatBar)
        requests, ok = [], []
        for column in columns:
            try:
                requests.append(column.request(prompt, bar.chat, bar.system))
                ok.append(column)
            except ConfigError as err:
                column.abandon()
                self.notify(f"Column {column.number}: {config_message(err)}", severity="error")
        if not ok:
            return
        loaded, source = app.loaded, app.source
        handle = app.bridge.stream(
            self, GROUP,
            lambda stop: source.iter_generate(loaded, requests, top_n=TOP_N, stop_token=stop),
            uses_model=True)
        for column in self._run_columns:
            if column is not None and column not in ok:
                column.abandon()
        self._run_id, self._run_columns = handle.run_id, ok
        self._pending.clear()
        for column in ok:
            column.begin(handle.run_id)
        names = ", ".join(str(c.number) for c in ok)
        self.status(f"generating column{'s' if len(ok) > 1 else ''} {names}…")
        if self._flusher is not None:
            self._flusher.resume()

    def on_bridge_events_arrived(self, message: Bridge.EventsArrived) -> None:
        if message.run_id != self._run_id:
            return
        for event in message.events:
            if isinstance(event, TokenSampled):
                self._pending[event.row].append(event)
            elif isinstance(event, RowFinished):
                self._deliver(event.row, self._pending.pop(event.row, []))
                column = self._column_of(event.row)
                if column is not None:
                    column.finish(event)
            elif isinstance(event, GenerationFinished):
                self._flush()
                verb = "stopped" if event.cancelled else "generated"
                self.status(f"{verb} {event.new_tokens} tokens in {event.rows} column"
                            f"{'s' if event.rows > 1 else ''} ({event.elapsed_s:.2f} s)")

    def _flush(self) -> None:
        """Timer tick: hand the queued tokens to their columns (one repaint for all)."""
        pending, self._pending = self._pending, defaultdict(list)
        for row, tokens in pending.items():
            self._deliver(row, tokens)
        if self._flusher is not None and not self.app.bridge.running(GROUP) and not pending:
            self._flusher.pause()

    def _column_of(self, row: int) -> SampleColumn | None:
        return self._run_columns[row] if row < len(self._run_columns) else None

    def _deliver(self, row: int, tokens: list[TokenSampled]) -> None:
        column = self._column_of(row)
        if column is None or not tokens:
            return
        column.add_tokens(tokens)
        target = self._dist_target
        if target and target[0] is column and target[1] < len(column.tokens):
            self._show_dist(column, target[1])

    def on_bridge_failed(self, message: Bridge.Failed) -> None:
        if message.run_id != self._run_id:
            return
        self._flush()
        for column in self._run_columns:
            if column is not None and column.running:
                column.fail(message.message)
        self.notify(f"Generation failed: {message.message}", severity="error", timeout=10)
        self.status(f"generation failed: {message.message}")

    def on_bridge_finished(self, message: Bridge.Finished) -> None:
        if message.run_id == self._run_id:
            self._flush()
            for column in self._run_columns:
                if column is not None:
                    column.abandon()

    # ------------------------------------------------------------ distribution

    def on_token_view_cursor_moved(self, event: TokenView.CursorMoved) -> None:
        column = self._owner(event.view)
        if column is not None and event.index is not None:
            self._dist_target = (column, event.index)
            self._show_dist(column, event.index)

    def on_token_view_hovered(self, event: TokenView.Hovered) -> None:
        column = self._owner(event.view)
        if column is None:
            return
        if event.index is not None:
            self._show_dist(column, event.index)
        elif self._dist_target is not None:
            self._show_dist(*self._dist_target)

    def _owner(self, view: TokenView) -> SampleColumn | None:
        return next((c for c in self.columns if c.view is view), None)

    def _show_dist(self, column: SampleColumn, index: int) -> None:
        dist = self.query_one(TokenDist)
        if index >= len(column.tokens):
            dist.show(f"column {column.label}", None)
            return
        dist.show(f"column {column.label}", column.tokens[index], greedy=column.greedy,
                  eos=column.eos_index == index)

    # ------------------------------------------------------------------- hints

    def _follow_focus(self, focused) -> None:
        """The hint describes what has focus now (looked up, not carried by a message)."""
        if isinstance(focused, TextArea):
            self._hint(PROMPT_HINT)
        elif isinstance(focused, TokenView):
            self._hint(TOKENS_HINT)
        elif focused is not None and isinstance(focused.parent, ChatBar):
            self._hint(CHAT_HINT)
        elif focused is not None and any(isinstance(n, ParamsPanel) for n in focused.ancestors):
            key = focused.id or getattr(focused.parent, "id", None)  # the fold's title: the fold
            if key in HINTS:
                self._hint(HINTS[key])

    def _hint(self, text: str) -> None:
        self.query_one("#hint", Static).update(text)
