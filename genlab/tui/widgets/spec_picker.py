"""The left pane of the Experiments screen: which spec, with which edits, and its plan.

Owns choosing a spec (the lessons list, keyed 1-9, or a path typed below it), the edits
(``KEY=VALUE`` entries, split like a shell would, applied as ``--set`` after a short quiet),
loading the spec with them (``core.specs.loader.load_spec``; a problem is shown in the plan, in
the TUI's words) and showing the plan the screen completes (estimate, output). It posts
``SpecPicker.Chosen`` with the spec (or None) whenever the choice or the edits change, and
``SpecPicker.RunRequested`` on Enter in the list.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from genlab.core.specs.common import SpecError
from genlab.core.specs.loader import load_spec
from genlab.tui.spec_catalog import SpecEntry, find_specs
from genlab.tui.widgets import tcss
from genlab.tui.widgets.plan_view import PlanView
from genlab.tui.wording import tui_message

EDIT_DEBOUNCE_S = 0.4
LESSON_KEYS = 9


class SpecPicker(Vertical):
    """Spec list, path and edit fields, and the plan."""

    DEFAULT_CSS = tcss(__file__)

    class Chosen(Message):
        """The spec (or its edits) changed: ``spec`` is None when it does not load."""

        def __init__(self, path: Path, spec: Any) -> None:
            super().__init__()
            self.path = path
            self.spec = spec

    class RunRequested(Message):
        """Enter on a spec of the list: run it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.entries: list[SpecEntry] = []
        self.path: Path | None = None
        self.spec: Any = None
        self.edits: list[str] = []
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield OptionList(id="specs")
        yield Input(placeholder="open a spec file: PATH ⏎", id="spec-path")
        yield Input(placeholder="edit: KEY=VALUE … (base.max_steps=40)", id="edits")
        with VerticalScroll(id="plan-scroll"):
            yield PlanView(id="plan")

    def on_mount(self) -> None:
        specs = self.query_one("#specs", OptionList)
        specs.border_title = "specs (1-9 run a lesson)"
        self.query_one("#plan-scroll").border_title = "plan"
        self.entries = find_specs()
        specs.add_options([_option(n, e) for n, e in enumerate(self.entries, start=1)])
        if self.entries:
            specs.highlighted = 0
        else:
            self.plan.show_error("No spec files found under prompts/specs; type a spec "
                                 "file's path above.")
        specs.focus()

    @property
    def plan(self) -> PlanView:
        return self.query_one(PlanView)

    def pick(self, n: int) -> bool:
        """Choose lesson ``n`` (1-based) of the list; False when there is none."""
        if not 1 <= n <= len(self.entries):
            return False
        self.query_one("#specs", OptionList).highlighted = n - 1
        self.choose(self.entries[n - 1].path)
        return True

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id and str(self.path) != event.option.id:
            self.choose(Path(event.option.id))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.RunRequested())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "spec-path" and event.value.strip():
            self.choose(Path(event.value.strip()).expanduser())
        elif event.input.id == "edits":
            self._apply_edits()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.input.id == "edits":
            if self._timer is not None:
                self._timer.stop()
            self._timer = self.set_timer(EDIT_DEBOUNCE_S, self._apply_edits)

    def _apply_edits(self) -> None:
        try:
            self.edits = shlex.split(self.query_one("#edits", Input).value)
        except ValueError as err:
            self.plan.show_error(f"edit: {err}")
            return
        if self.path is not None:
            self.choose(self.path, keep_edits=True)

    def choose(self, path: Path, keep_edits: bool = False) -> None:
        """Load ``path`` with the edits (cleared unless ``keep_edits``); post ``Chosen``."""
        self.path = path
        if not keep_edits and self.edits:
            self.edits = []
            self.query_one("#edits", Input).value = ""
        try:
            self.spec = load_spec(path, overrides=self.edits)
        except SpecError as err:
            self.spec = None
            self.plan.show_error(tui_message(str(err)))
        self.post_message(self.Chosen(path, self.spec))

    def load(self, extra: tuple[str, ...] = ()) -> Any:
        """The chosen spec with the edits plus ``extra`` overrides (raises SpecError)."""
        return load_spec(self.path, overrides=[*self.edits, *extra])


def _option(n: int, entry: SpecEntry) -> Option:
    key = f"{n}" if n <= LESSON_KEYS else " "
    line = Text.assemble((f"{key} ", "bold"), (entry.name, "bold"),
                         (f" · {entry.summary}", "dim"))
    return Option(line, id=str(entry.path))
