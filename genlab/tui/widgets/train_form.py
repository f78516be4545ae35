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

from genlab.core.configs import OPTIMIZERS, SCHEDULES, ConfigError, TrainConfig
from genlab.tui.widgets import tcss


@dataclass(frozen=True)
class FormField:
    """One form row: TrainConfig field, label, kind (int/float/str/choice/optional) and hint."""

    name: str
    label: str
    kind: str
    hint: str
    choices: tuple[str, ...] = ()


SECTIONS: tuple[tuple[str, tuple[FormField, ...]], ...] = (
    ("Data", (
        FormField("model", "model", "str", "base model: hub id or local directory (default: "
                  "the model the Sample screen loaded)"),
        FormField("data", "data", "str", "training data: .txt/.jsonl/.json/.csv/.parquet file, "
                  "or a directory of them"),
        FormField("doc_separator", "doc sep", "optional_str", "text between documents in .txt "
                  "data, e.g. <|endoftext|> for TinyStories; empty = blank lines"),
        FormField("eval_data", "eval data", "optional_str", "held-out data in the same formats; "
                  "empty = hold out the eval split of the training data"),
        FormField("eval_split", "eval split", "float", "fraction of documents held out for "
                  "evaluation when no eval data is given; in [0, 0.5]"),
        FormField("seq_len", "seq len", "int", "tokens per packed training sequence; longer = "
                  "more context per step, more memory"),
    )),
    ("LoRA", (
        FormField("rank", "rank", "int", "LoRA rank r: size of the low-rank update; higher = "
                  "more capacity and more parameters"),
        FormField("alpha", "alpha", "float", "LoRA alpha: the update is scaled by alpha / rank "
                  "(like a learning-rate multiplier)"),
        FormField("dropout", "dropout", "float", "dropout on the LoRA input; regularises small "
                  "datasets; in [0, 1)"),
    )),
    ("Optimizer", (
        FormField("lr", "lr", "float", "peak learning rate: too low crawls, too high diverges "
                  "(LoRA: ~1e-4 to 1e-3)"),
        FormField("warmup_steps", "warmup", "int", "steps of linear warmup from 0 to the peak "
                  "lr; steadies the first updates"),
        FormField("schedule", "schedule", "choice", "lr after warmup: constant, linear or "
                  "cosine decay, or step (halve every step_size)", SCHEDULES),
        FormField("optimizer", "optimizer", "choice", "adamw (decoupled weight decay), adam, "
                  "or sgd (with momentum)", OPTIMIZERS),
        FormField("momentum", "momentum", "float", "SGD momentum: averages past gradients; "
                  "in [0, 1); used by sgd only"),
        FormField("weight_decay", "weight decay", "float", "pulls weights toward 0 each step; "
                  "a mild regulariser; >= 0"),
        FormField("max_grad_norm", "clip norm", "float", "clip the gradient norm to this; tames "
                  "spikes; 0 = no clipping"),
    )),
    ("Batches", (
        FormField("batch_size", "batch size", "int", "sequences per micro-batch; bigger = "
                  "smoother gradients, more memory"),
        FormField("grad_accum", "grad accum", "int", "micro-batches per optimizer step; "
                  "effective batch = batch size × grad accum"),
        FormField("epochs", "epochs", "float", "passes over the training data (ignored when max "
                  "steps is set)"),
        FormField("max_steps", "max steps", "optional_int", "optimizer steps to run; overrides "
                  "epochs; empty = use epochs"),
    )),
    ("Evaluation", (
        FormField("eval_every", "eval every", "int", "evaluate (and sample) every N steps; "
                  "0 = only at the end"),
        FormField("patience", "patience", "int", "stop after this many evaluations without "
                  "improvement; 0 = off"),
        FormField("sample_prompts", "prompts", "prompts", "prompts generated at each eval, "
                  "separated by |; watch them change as it learns"),
        FormField("name", "run name", "str", "names the run directory "
                  "runs/<timestamp>-<name>"),
    )),
)
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
            raw = self.query_one(f"#{field.name}", Input).value.strip()
            values[field.name] = _parse(field, raw)
        return TrainConfig(**values)

    def set_value(self, name: str, value: str) -> None:
        """Set a field's text as if typed."""
        widget = self.query_one(f"#{name}")
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
