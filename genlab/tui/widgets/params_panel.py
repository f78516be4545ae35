"""One column's sampling settings: model choice, the main sampling knobs, the seed, and the
advanced samplers (typical-p, DRY, XTC, mirostat, logit bias, sampler order...) under a
collapsed "advanced" fold, so the column stays readable.

Owns parsing and validating what is typed: every change builds a ``SamplingParams`` (whose
``ConfigError`` is shown inline, on the field it names) and, when everything is valid, posts
``ParamsPanel.Changed``. Focusing a setting posts ``ParamsPanel.FieldFocused`` with one line on
what the knob does, for the screen's hint bar. Every field comes from a knob: adding a knob to
``SamplingParams`` adds its field here.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Collapsible, Input, Label, Select, Static

from genlab.core.configs import ConfigError, GenerationRequest, KnobField, SamplingParams
from genlab.core.configs.knobs import knob_field, knob_fields
from genlab.core.configs.sampling import SHORT_NAMES
from genlab.core.generation.grid import format_param
from genlab.tui.widgets import tcss
from genlab.tui.wording import config_message

BASE = "base"
"""Select value of the base model (attach_adapter refuses this name for adapters)."""


@dataclass(frozen=True)
class Field:
    """One setting: its SamplingParams (or request) field name, label and type (int, float,
    or str for the knobs typed as text: logit bias, DRY breakers, sampler order)."""

    name: str
    label: str
    kind: type
    advanced: bool = False


def _field(kf: KnobField) -> Field:
    kind = {"int": int, "float": float}.get(kf.kind, str)
    return Field(kf.name, kf.label, kind, kf.knob.advanced)


_SEED = knob_field(GenerationRequest, "seed")
_SAMPLING = [kf for kf in knob_fields(SamplingParams)
             if kf.knob.grid or (kf.knob.advanced and kf.kind in ("tuple", "str"))]
_KNOBS = (*(kf for kf in _SAMPLING if not kf.knob.advanced), _SEED,
          *(kf for kf in _SAMPLING if kf.knob.advanced))
FIELDS = tuple(_field(kf) for kf in _KNOBS)
"""Every column setting: the main grid knobs, the seed, then the advanced knobs (folded)."""
MAIN_FIELDS = tuple(f for f in FIELDS if not f.advanced)
ADVANCED_FIELDS = tuple(f for f in FIELDS if f.advanced)

HINTS = {
    "adapter": "model: the base weights, or a LoRA adapter on top of them. Same seed and "
               "settings, so what differs is what the adapter learned.",
    **{kf.name: f"{kf.label}: {kf.knob.intuition}" if kf.knob.advanced else
       f"{kf.name.replace('_', ' ')}: {kf.knob.intuition}" for kf in _KNOBS},
    "advanced": "advanced: every other sampler (typical-p, DRY, XTC, mirostat, logit bias, "
                "sampler order...); Enter opens or closes it. A setting away from its default "
                "joins the column's title.",
}
"""The hint line of each focusable setting, by widget id (the fold's title: its fold's)."""

_KNOB_DEFAULTS = SamplingParams().to_dict()
DEFAULTS = {**{f.name: _KNOB_DEFAULTS[f.name] for f in ADVANCED_FIELDS},
            "temperature": 0.8, "top_k": 0, "top_p": 1.0, "min_p": 0.0,
            "repetition_penalty": 1.0, "max_new_tokens": 48, "seed": 0}


def _format(name: str, value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "" if not value and name == "logit_bias" else format_param(name, value)
    return f"{value:g}" if isinstance(value, float) else str(value)


class ParamsPanel(Vertical):
    """Model choice plus one compact input per setting."""

    DEFAULT_CSS = tcss(__file__)

    class Changed(Message):
        """The settings changed and are all valid."""

        def __init__(self, panel: ParamsPanel) -> None:
            super().__init__()
            self.panel = panel

    class FieldFocused(Message):
        """A setting got focus; ``hint`` says what it does."""

        def __init__(self, panel: ParamsPanel, name: str, hint: str) -> None:
            super().__init__()
            self.panel = panel
            self.name = name
            self.hint = hint

    def __init__(self, values: dict[str, float | int] | None = None,
                 adapter: str | None = None, adapters: tuple[str, ...] = (),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self._values = {**DEFAULTS, **(values or {})}
        self._adapter = adapter or BASE
        self._adapters = adapters
        self._inputs: dict[str, Input] = {}
        self.error: str = ""
        self._room: tuple[int, int] | None = None  # (new tokens that fit, context length)

    def compose(self) -> ComposeResult:
        options = [(BASE, BASE)] + [(n, n) for n in self._adapters]
        value = self._adapter if self._adapter in (BASE, *self._adapters) else BASE
        with Grid(classes="settings"):
            yield Label("model", classes="setting-label")
            yield Select(options, value=value, allow_blank=False, compact=True,
                         id="adapter")
            yield from self._inputs_for(MAIN_FIELDS)
        with Collapsible(title="advanced", collapsed=True, classes="advanced", id="advanced"), \
                Grid(classes="settings advanced-settings"):
            yield from self._inputs_for(ADVANCED_FIELDS)
        yield Static("", classes="error")

    def _inputs_for(self, fields: tuple[Field, ...]) -> ComposeResult:
        for field in fields:
            yield Label(field.label, classes="setting-label")
            # type="text": a letter typed in a number is shown as an error, not dropped
            yield Input(_format(field.name, self._values[field.name]), id=field.name,
                        select_on_focus=False, validate_on=())  # we validate

    # ----------------------------------------------------------------- reading

    def read(self) -> GenerationRequest:
        """The settings as a request (with an empty prompt); raises ConfigError."""
        values: dict[str, object] = {}
        for field in FIELDS:
            raw = self._input(field.name).value
            if field.kind is str:  # the knob's own parser reads its text form
                values[field.name] = raw
                continue
            try:
                values[field.name] = field.kind(raw.strip())
            except ValueError:
                kind = "an integer" if field.kind is int else "a number"
                raise ConfigError(field.name, raw.strip(), kind) from None
        seed = int(values.pop("seed"))  # type: ignore[call-overload]
        params = SamplingParams(**values)  # type: ignore[arg-type]
        if self._room is not None and params.max_new_tokens > self._room[0]:
            room, limit = self._room
            raise ConfigError("max_new_tokens", params.max_new_tokens,
                              f"at most {max(room, 0)} here: the prompt takes {limit - room} "
                              f"of the model's {limit}-token context")
        adapter = self.adapter
        return GenerationRequest("", params, seed=seed, adapter=adapter)

    @property
    def adapter(self) -> str | None:
        """The chosen adapter name, or None for the base model."""
        return None if self._adapter in (BASE, Select.BLANK) else str(self._adapter)

    def summary(self) -> str:
        """`` · t 0.8 · k 40`` for the settings that are not off (seed excluded)."""
        short = {"temperature": "t", "top_k": "k", "top_p": "p", "min_p": "min-p",
                 "repetition_penalty": "rep"}
        off = {"top_k": 0, "top_p": 1.0, "min_p": 0.0, "repetition_penalty": 1.0}
        parts = []
        for name, tag in short.items():
            try:
                value = float(self._input(name).value)
            except (ValueError, NoMatches):  # (not typed yet / not mounted yet)
                continue
            if off.get(name) != value:
                parts.append(f"{tag} {value:g}")
        for field in ADVANCED_FIELDS:  # only what is switched away from its default
            try:
                text = self._input(field.name).value.strip()
            except NoMatches:
                continue
            if text != _format(field.name, DEFAULTS[field.name]) and text:
                parts.append(f"{SHORT_NAMES.get(field.name, field.name)} {text}")
        return "".join(f" · {p}" for p in parts)

    def values(self) -> dict[str, str]:
        """The raw text of every setting (for copying a column)."""
        return {f.name: self._input(f.name).value for f in FIELDS}

    def _input(self, name: str) -> Input:
        widget = self._inputs.get(name)
        if widget is None:
            widget = self._inputs[name] = self.query_one(f"#{name}", Input)
        return widget

    def set_room(self, room: int | None, limit: int | None) -> None:
        """New tokens that fit after the prompt (None: no limit); re-validates on a change."""
        new = None if room is None or limit is None else (room, limit)
        if new != self._room:
            self._room = new
            if self.is_mounted:
                self._validate(announce=False)  # a prompt edit does not re-run columns

    def set_adapters(self, names: tuple[str, ...]) -> None:
        """Offer these adapters (besides base), keeping the current choice if still there."""
        select = self.query_one("#adapter", Select)
        current = select.value
        with self.prevent(Select.Changed):
            select.set_options([(BASE, BASE)] + [(n, n) for n in names])
            select.value = current if current in names else BASE
        self._adapters = names
        self._adapter = str(select.value)

    def set_value(self, name: str, value: str) -> None:
        """Set one setting's text as if typed (validates and posts Changed)."""
        if name == "adapter":
            self.query_one("#adapter", Select).value = value
        else:
            self.query_one(f"#{name}", Input).value = value

    # ------------------------------------------------------------------ events

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._validate()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._adapter = str(event.value) if event.value is not Select.BLANK else BASE
        self._validate()

    def _validate(self, announce: bool = True) -> None:
        try:
            self.read()
            error, bad_field = "", None
        except ConfigError as err:
            error, bad_field = config_message(err), err.field
        for field in FIELDS:  # only touch what changes: every restyle costs
            self._input(field.name).set_class(field.name == bad_field, "-invalid-setting")
        if error != self.error:
            self.error = error
            label = self.query_one(".error", Static)
            label.update(error)
            label.display = bool(error)
        if not error and announce:
            self.post_message(self.Changed(self))

    def on_descendant_focus(self, event) -> None:
        widget = event.widget
        name = widget.id or ""
        if name in HINTS:
            self.post_message(self.FieldFocused(self, name, HINTS[name]))
