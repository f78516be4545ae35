"""The Sample screen: one prompt, 2 to 6 columns of settings, one batched generation.

Thin wiring: the columns own their settings and tokens, the bridge owns the worker. This
screen turns "run these columns" into one ``iter_generate`` call (one request per column),
routes each row's events back to its column, and points the distribution view at whichever
token the user is looking at. A run replaces any run in flight; columns that had not
finished are folded into the new run, so a quick second change never leaves one half-done.
"""

from __future__ import annotations

from collections import defaultdict

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static, TextArea

from genlab.core.configs import ConfigError, GenerationRequest
from genlab.core.events import GenerationFinished, RowFinished, TokenSampled
from genlab.tui.bridge import Bridge
from genlab.tui.widgets.chat_bar import HINT as CHAT_HINT
from genlab.tui.widgets.chat_bar import ChatBar
from genlab.tui.widgets.params_panel import ParamsPanel
from genlab.tui.widgets.sample_column import SampleColumn
from genlab.tui.widgets.status_line import StatusLine
from genlab.tui.widgets.token_dist import TokenDist
from genlab.tui.widgets.token_view import TokenView

GROUP = "generate"
TOP_N = 10
MIN_COLUMNS, MAX_COLUMNS = 2, 6
SHORT_TERMINAL = 40
"""Below this many rows the settings start hidden, so the tokens keep some room."""
DEFAULT_PROMPT = "Once upon a time"
STARTING_COLUMNS = ({"temperature": 0.0}, {"temperature": 0.8}, {"temperature": 1.5})
IDLE_HINT = ("Ctrl+R runs every column as one batch · Ctrl+T inspects tokens (←/→) · Tab "
             "moves between settings; a changed setting re-runs its column · F1 help")


class SampleScreen(Screen):
    """Prompt on top, columns in the middle, the distribution at the bottom."""


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
        self._run_columns: list[SampleColumn] = []
        self._dist_target: tuple[SampleColumn, int] | None = None
        self._numbers = 0
        self._settings_toggled = False

    def compose(self) -> ComposeResult:
        yield StatusLine()
        yield TextArea(DEFAULT_PROMPT, id="prompt", soft_wrap=True, show_line_numbers=False)
        yield ChatBar()
        with Horizontal(id="columns"):
            for values in STARTING_COLUMNS:
                yield self._new_column(values)
        yield Static(IDLE_HINT, id="hint")
        yield TokenDist()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#prompt", TextArea).border_title = "prompt"
        self.set_class(self.app.size.height < SHORT_TERMINAL, "-hide-settings")
        self.watch(self.app, "adapter_names", self._offer_adapters, init=False)
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

    def action_add_column(self) -> None:
        columns = self.columns
        if len(columns) >= MAX_COLUMNS:
            self.notify(f"At most {MAX_COLUMNS} columns.", severity="warning")
            return
        source = self._focused_column() or columns[-1]
        try:
            values = source.panel.read()
            copy = {**values.params.to_dict(), "seed": values.seed}
            copy = {k: copy[k] for k in ("temperature", "top_k", "top_p", "min_p",
                                         "repetition_penalty", "max_new_tokens", "seed")}
        except ConfigError:
            copy = None
        column = self._new_column(copy, source.panel.adapter)
        self.query_one("#columns").mount(column)
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
            column._update_titles()
        self._numbers = len(self.columns)

    def on_resize(self) -> None:
        if not self._settings_toggled:
            self.set_class(self.size.height < SHORT_TERMINAL, "-hide-settings")

    def action_toggle_settings(self) -> None:
        self._settings_toggled = True
        self.toggle_class("-hide-settings")
        if self.has_class("-hide-settings") and self._focused_column() is not None:
            self.action_focus_tokens()  # focus must not stay on a hidden input

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

    # ----------------------------------------------------------------- running

    def action_run_all(self) -> None:
        self._generate(self.columns)

    def action_stop(self) -> None:
        if self.app.bridge.stop(GROUP):
            self._status("stopping…")

    def on_sample_column_rerun_requested(self, event: SampleColumn.RerunRequested) -> None:
        self._generate([event.column])

    def _generate(self, wanted: list[SampleColumn]) -> None:
        app = self.app
        if app.model_state != "ready":
            why = "is still loading" if app.model_state == "loading" else "did not load"
            self.notify(f"The model {why}; generation starts once it is ready.",
                        severity="warning")
            return
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
                self.notify(f"Column {column.number}: {err}", severity="error")
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
        for column in ok:
            column.begin(handle.run_id)
        names = ", ".join(str(c.number) for c in ok)
        self._status(f"generating column{'s' if len(ok) > 1 else ''} {names}…")

    def on_bridge_events_arrived(self, message: Bridge.EventsArrived) -> None:
        if message.run_id != self._run_id:
            return
        pending: dict[int, list[TokenSampled]] = defaultdict(list)
        for event in message.events:
            if isinstance(event, TokenSampled):
                pending[event.row].append(event)
            elif isinstance(event, RowFinished):
                self._deliver(event.row, pending.pop(event.row, []))
                column = self._column_of(event.row)
                if column is not None:
                    column.finish(event)
            elif isinstance(event, GenerationFinished):
                verb = "stopped" if event.cancelled else "generated"
                self._status(f"{verb} {event.new_tokens} tokens in {event.rows} column"
                             f"{'s' if event.rows > 1 else ''} ({event.elapsed_s:.2f} s)")
        for row, tokens in pending.items():
            self._deliver(row, tokens)

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
        for column in self._run_columns:
            if column is not None and column.running:
                column.fail(message.message)
        self.notify(f"Generation failed: {message.message}", severity="error", timeout=10)
        self._status(f"generation failed: {message.message}")

    def on_bridge_finished(self, message: Bridge.Finished) -> None:
        if message.run_id == self._run_id:
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
        dist.show(f"column {column.label}", column.tokens[index], greedy=column.greedy)

    # ------------------------------------------------------------------- hints

    def on_params_panel_field_focused(self, event: ParamsPanel.FieldFocused) -> None:
        self._hint(event.hint)

    def on_descendant_focus(self, event) -> None:
        if isinstance(event.widget, TextArea):
            self._hint("prompt: every column continues this text (or answers it, with chat "
                       "on). Ctrl+R runs them all.")
        elif event.widget.parent is not None and isinstance(event.widget.parent, ChatBar):
            self._hint(CHAT_HINT)
        elif isinstance(event.widget, TokenView):
            self._hint("←/→ move between tokens, Home/End jump; below: the distribution each "
                       "was drawn from. Colour = the token's probability; lp = mean "
                       "log-probability of the column (closer to 0 = more confident).")

    def _hint(self, text: str) -> None:
        self.query_one("#hint", Static).update(text)

    def _status(self, text: str) -> None:
        self.query_one(StatusLine).activity = text
