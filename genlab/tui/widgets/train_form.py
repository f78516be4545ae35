"""The training knobs as a form that validates as you type.

Owns turning typed text into a ``TrainConfig``. Each change checks every field on its own
against its knob (type and range from ``genlab.core.configs.knobs``, plus the rules that tie
two fields together), marks every invalid field at once and posts ``TrainForm.Validated``
with all the messages, in the TUI's words (``"lr": must be a number > 0 (got 'abc')``);
nothing runs until the form is valid. Numbers are typed as text, so a letter in a number shows
as an error instead of being dropped. The sample prompts are a small text area, one prompt per
line (Enter starts the next one; ``\n`` inside a line is a newline, as in the document
separator). Focusing a field posts ``TrainForm.FieldFocused`` with one line on what it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import fields as dc_fields

from textual.app import ComposeResult
from textual.containers import Grid, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Select, TextArea

from genlab.core.configs import ConfigError, KnobField, TrainConfig, knob_fields
from genlab.core.configs.knobs import knob_field
from genlab.tui.widgets import tcss
from genlab.tui.wording import config_message


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


ESCAPED = ("\\n", "\n"), ("\\t", "\t")
"""How a newline or tab is typed in a one-line field: as ``\\n`` / ``\\t``."""
PAIRED = {"prompt_field": "completion_field", "completion_field": "prompt_field"}


def unescape(text: str) -> str:
    """``\\n`` and ``\\t`` typed in a field, as the characters they name."""
    for typed, char in ESCAPED:
        text = text.replace(typed, char)
    return text


def escape(text: str) -> str:
    """The typed form of a value holding newlines or tabs."""
    for typed, char in ESCAPED:
        text = text.replace(char, typed)
    return text


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return "\n".join(escape(v) for v in value)
    if isinstance(value, str):
        return escape(value)
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
        """The form was checked: ``error`` (the first of ``errors``) is empty when valid."""

        def __init__(self, error: str, errors: tuple[str, ...] = (),
                     form: TrainForm | None = None) -> None:
            super().__init__()
            self.error = error
            self.errors = errors or ((error,) if error else ())
            self.form = form

        @property
        def control(self) -> TrainForm | None:
            return self.form

    def __init__(self, values: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._values = {**_DEFAULTS, **DEMO_OVERRIDES, **(values or {})}
        self.error = ""
        self.errors: dict[str, str] = {}
        """Field name -> what is wrong with it, for every invalid field."""

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
                    elif field.kind == "prompts":
                        yield TextArea(_text(value), id=field.name, soft_wrap=True,
                                       show_line_numbers=False, compact=True)
                    else:  # type text: a letter in a number is an error, not dropped
                        yield Input(_text(value), id=field.name, select_on_focus=False,
                                    validate_on=())  # we validate

    def read(self) -> TrainConfig:
        """Build the TrainConfig; raises ConfigError naming the (first) bad field."""
        return TrainConfig(**{field.name: _parse(field, self.raw(field.name))
                              for field in ALL_FIELDS})

    def raw(self, name: str) -> str:
        """A field's text as typed (a choice's value; ``on``/``off`` for an on/off field)."""
        widget = self.query_one(f"#{name}")
        if isinstance(widget, Select):
            if isinstance(widget.value, bool):
                return "on" if widget.value else "off"
            return str(widget.value)
        if isinstance(widget, TextArea):
            return widget.text
        return widget.value.strip()

    def raw_values(self) -> dict[str, str]:
        """Every field's text as typed (to clone the form)."""
        return {field.name: self.raw(field.name) for field in ALL_FIELDS}

    def set_value(self, name: str, value: str | bool) -> None:
        """Set a field's text as if typed (an on/off field takes a bool or ``on``/``off``)."""
        widget = self.query_one(f"#{name}")
        if isinstance(widget, TextArea):
            widget.load_text(value)
            return
        if isinstance(widget, Select) and isinstance(value, str) and value in ("on", "off"):
            value = value == "on"
        widget.value = value

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.validate_form()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.validate_form()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self.validate_form()

    def check(self) -> dict[str, str]:
        """Every invalid field with its message (empty when the form builds a TrainConfig)."""
        errors: dict[str, str] = {}
        values: dict[str, object] = {}
        for field in ALL_FIELDS:
            try:
                values[field.name] = value = _parse(field, self.raw(field.name))
                knob_field(TrainConfig, field.name).check(value)
            except ConfigError as err:
                errors[field.name] = config_message(err)
        for name in ("model", "data"):
            if name in values and not values[name]:
                errors.setdefault(name, config_message(ConfigError(
                    name, "", "a data file, directory or hub dataset name" if name == "data"
                    else "a hub id or a local model directory")))
        for name, other in PAIRED.items():
            if values.get(name) is None and values.get(other) is not None:
                errors.setdefault(name, f'"{field_label(name)}": needed with '
                                        f'"{field_label(other)}" (give both, or neither)')
        if not errors:
            try:
                TrainConfig(**values)
            except ConfigError as err:  # a rule that ties fields together
                errors[err.field if err.field in HINTS else ""] = config_message(err)
        return errors

    def validate_form(self) -> bool:
        """Check every field, mark each bad one, post ``Validated``; True when valid."""
        errors = self.check()
        for field in ALL_FIELDS:  # only touch what changes: every restyle costs
            widget = self.query_one(f"#{field.name}")
            bad = field.name in errors
            if widget.has_class("-invalid-setting") != bad:
                widget.set_class(bad, "-invalid-setting")
        self.errors = errors
        messages = tuple(errors.values())
        self.error = messages[0] if messages else ""
        self.post_message(self.Validated(self.error, messages, self))
        return not errors

    def on_descendant_focus(self, event) -> None:
        name = event.widget.id or ""
        if name in HINTS:
            self.post_message(self.FieldFocused(name, HINTS[name]))


def field_label(name: str) -> str:
    """The label a field has on the form."""
    return next((f.label for f in ALL_FIELDS if f.name == name), name.replace("_", " "))


def _parse(field: FormField, raw: str) -> object:
    if field.kind == "choice":
        return raw
    if field.kind == "bool":
        return raw == "on"
    if field.kind in ("str",):
        return unescape(raw)
    if field.kind == "optional_str":
        return unescape(raw) or None
    if field.kind == "prompts":
        return tuple(unescape(p.strip()) for p in raw.splitlines() if p.strip())
    if field.kind == "optional_int" and not raw:
        return None
    try:
        return int(raw) if field.kind in ("int", "optional_int") else float(raw)
    except ValueError:
        kind = "a number" if field.kind == "float" else "an integer"
        raise ConfigError(field.name, raw, kind) from None
