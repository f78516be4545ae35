"""The training knobs as a form that validates as you type.

Owns turning typed text into a ``TrainConfig``: each change rebuilds the config, and the
``ConfigError`` it raises (or a number that does not parse) marks the field it names and is
posted as ``TrainForm.Validated`` for the screen to show; nothing runs until the form is
valid. Focusing a field posts ``TrainForm.FieldFocused`` with one line on what it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import fields as dc_fields

from textual.app import ComposeResult
from textual.containers import Grid, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Select

from genlab.core.configs import ConfigError, KnobField, TrainConfig, knob_fields
from genlab.tui.widgets import tcss


@dataclass(frozen=True)
class FormField:
    """One form row: TrainConfig field, label, kind (int/float/str/choice/optional) and hint."""

    name: str
    label: str
    kind: str
    hint: str
    choices: tuple[str, ...] = ()


def form_field(kf: KnobField) -> FormField:
    """The form row of a knob: its label, its input kind and its learner hint."""
    kind = {"int": "int", "float": "float", "choice": "choice", "tuple": "prompts",
            "bool": "bool"}.get(kf.kind, "str")
    if kf.optional and kind in ("int", "str"):
        kind = "optional_" + kind
    hint = kf.knob.intuition or kf.doc
    if kf.kind in ("int", "float") and (kf.knob.low is not None or kf.knob.high is not None):
        hint = f"{hint}; {kf.expected()}"
    return FormField(kf.name, kf.label, kind, hint, kf.knob.choices)


def form_sections(config_cls: type = TrainConfig) -> tuple[tuple[str, tuple[FormField, ...]], ...]:
    """The form's sections: every knob marked ``tui``, grouped by section in declaration order."""
    sections: dict[str, list[FormField]] = {}
    for kf in knob_fields(config_cls):
        if kf.knob.tui:
            sections.setdefault(kf.knob.section or kf.knob.panel, []).append(form_field(kf))
    return tuple((title, tuple(rows)) for title, rows in sections.items())


SECTIONS = form_sections()
ALL_FIELDS = tuple(f for _, section in SECTIONS for f in section)
HINTS = {f.name: f"{f.label}: {f.hint}" for f in ALL_FIELDS}
_DEFAULTS = {f.name: f.default for f in dc_fields(TrainConfig)}
DEMO_OVERRIDES = {"eval_every": 10, "sample_prompts": ("Once upon a time",)}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return " | ".join(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


class TrainForm(VerticalScroll):
    """Labelled inputs for the TrainConfig fields a learner tunes."""

    DEFAULT_CSS = tcss(__file__)

    class FieldFocused(Message):
        """A field got focus; ``hint`` says what it does."""

        def __init__(self, name: str, hint: str) -> None:
            super().__init__()
            self.name = name
            self.hint = hint

    class Validated(Message):
        """The form was checked: ``error`` is empty when it builds a TrainConfig."""

        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, values: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._values = {**_DEFAULTS, **DEMO_OVERRIDES, **(values or {})}
        self.error = ""

    def compose(self) -> ComposeResult:
        for title, section in SECTIONS:
            yield Label(title, classes="section")
            with Grid(classes="rows"):
                for field in section:
                    yield Label(field.label, classes="label")
                    value = self._values.get(field.name)
                    if field.kind == "choice":
                        yield Select([(c, c) for c in field.choices], value=value,
                                     allow_blank=False, compact=True, id=field.name)
                    elif field.kind == "bool":
                        yield Select([("off", False), ("on", True)], value=bool(value),
                                     allow_blank=False, compact=True, id=field.name)
                    else:
                        kind = {"int": "integer", "optional_int": "integer",
                                "float": "number"}.get(field.kind, "text")
                        yield Input(_text(value), id=field.name, type=kind,
                                    select_on_focus=False, validate_on=())  # we validate

    def read(self) -> TrainConfig:
        """Build the TrainConfig; raises ConfigError naming the bad field."""
        values = {}
        for field in ALL_FIELDS:
            if field.kind == "choice":
                values[field.name] = str(self.query_one(f"#{field.name}", Select).value)
                continue
            if field.kind == "bool":
                values[field.name] = bool(self.query_one(f"#{field.name}", Select).value)
                continue
            raw = self.query_one(f"#{field.name}", Input).value.strip()
            values[field.name] = _parse(field, raw)
        return TrainConfig(**values)

    def set_value(self, name: str, value: str | bool) -> None:
        """Set a field's text as if typed (an on/off field takes a bool or ``on``/``off``)."""
        widget = self.query_one(f"#{name}")
        if isinstance(widget, Select) and isinstance(value, str) and value in ("on", "off"):
            value = value == "on"
        widget.value = value

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.validate_form()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.validate_form()

    def validate_form(self) -> bool:
        """Check the form, mark the bad field, post ``Validated``; True when valid."""
        for widget in self.query(".-invalid-setting"):
            widget.remove_class("-invalid-setting")
        try:
            self.read()
            self.error = ""
        except ConfigError as err:
            self.error = str(err)
            if err.field in HINTS:
                self.query_one(f"#{err.field}").add_class("-invalid-setting")
        self.post_message(self.Validated(self.error))
        return not self.error

    def on_descendant_focus(self, event) -> None:
        name = event.widget.id or ""
        if name in HINTS:
            self.post_message(self.FieldFocused(name, HINTS[name]))


def _parse(field: FormField, raw: str) -> object:
    if field.kind in ("str",):
        return raw
    if field.kind == "optional_str":
        return raw or None
    if field.kind == "prompts":
        return tuple(p.strip() for p in raw.split("|") if p.strip())
    if field.kind == "optional_int" and not raw:
        return None
    try:
        return int(raw) if field.kind in ("int", "optional_int") else float(raw)
    except ValueError:
        kind = "a number" if field.kind == "float" else "an integer"
        raise ConfigError(field.name, raw, kind) from None
