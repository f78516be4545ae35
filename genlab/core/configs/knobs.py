"""Knobs: config fields that carry their own type, range, help and face hints, in one place.

A config dataclass declares each user-facing setting once::

    rank: int = knob(8, low=1, panel=LORA, metavar="R", label="rank",
                     intuition="size of the low-rank update; higher = more capacity")
    \"\"\"LoRA rank r.\"\"\"

and everything else is derived from that declaration: the validation in ``__post_init__``
(``validate_knobs``: type and range, with the message ``rank=0: must be an integer >= 1``), the
CLI option (flag, metavar, help panel, help text with the range and the default; see
``genlab.cli.options``), the TUI form field (label and hint) and the command reference in
``docs/cli.md``. So adding a knob is one edit here plus its tests.

The help text is the attribute docstring under the field (read once from the source with
``ast``, as litgpt and jsonargparse do), so the dataclass reads like documentation. Standard
library only: the CLI reads this at ``--help`` time, before torch is imported.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
import textwrap
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from genlab.core.errors import GenlabError

KNOB_KEY = "genlab.knob"


class ConfigError(GenlabError, ValueError):
    """A configuration value is out of range or of the wrong kind.

    Attributes:
        field: Name of the offending field (snake_case, as in the dataclass).
        value: The rejected value.
        expected: Human description of the valid range, e.g. ``"in (0, 1]"``.
    """

    def __init__(self, field: str, value: Any, expected: str,
                 related: tuple[str, ...] = ()) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        self.related = related
        """Other field names that ``expected`` mentions; faces spell them their own way."""
        super().__init__(f"{field}={value!r}: must be {expected}")


@dataclass(frozen=True)
class Knob:
    """What a face needs to know about one config field, besides its type and default.

    Attributes:
        low, high: Bounds of a number (None = unbounded); inclusive unless ``low_open`` /
            ``high_open``.
        choices: The allowed strings of a string field.
        note: Said after the range in parentheses: ``0 = off``, ``e.g. 2e-4 for LoRA``.
        panel: CLI help panel (and TUI form section when ``section`` is empty).
        metavar: CLI placeholder, e.g. ``R`` or ``T[,T...]``.
        flag: CLI spelling when it is not ``--field-name``.
        aliases: Further CLI spellings (``-t``, ``--temp``).
        repeat: A tuple field given as a repeatable flag (``--stop A --stop B``) rather than
            one comma-separated value.
        cli: False keeps the field off the command line (set by the face itself).
        grid: Sampling fields that ``genlab sample`` takes as comma lists (a grid axis).
        label: Short TUI label (default: the field name with spaces).
        short: Shortest label, for column headers (``T`` in ``T=0.7 k=40``).
        intuition: One line for learners (TUI hint bar, docs): what turning it does.
        tui: Shown as a TUI form field.
        section: TUI form section (default: ``panel``).
        advanced: Shown under the TUI's "advanced" fold (the column stays readable).
        verbatim: The CLI hands the flag's text to the config unchanged; the config's own
            parser reads it (a text form such as ``"\\n", ":"`` that commas cannot split).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    note: str = ""
    panel: str = ""
    metavar: str = ""
    flag: str = ""
    aliases: tuple[str, ...] = ()
    repeat: bool = False
    cli: bool = True
    grid: bool = False
    label: str = ""
    short: str = ""
    intuition: str = ""
    tui: bool = False
    section: str = ""
    advanced: bool = False
    verbatim: bool = False


def knob(default: Any = MISSING, *, factory: Any = MISSING, **meta: Any) -> Any:
    """A dataclass field with ``Knob`` metadata (``meta`` are ``Knob``'s attributes)."""
    metadata = {KNOB_KEY: Knob(**meta)}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class KnobField:
    """One knob of a config class, resolved: name, type, default, help and metadata."""

    name: str
    type: Any
    default: Any
    doc: str
    knob: Knob
    owner: type

    @property
    def optional(self) -> bool:
        """True when None is a valid value (``int | None``)."""
        return type(None) in typing.get_args(self.type)

    @property
    def base_type(self) -> Any:
        """The type without ``| None``: ``int``, ``float``, ``str``, ``bool`` or a tuple type."""
        args = [a for a in typing.get_args(self.type) if a is not type(None)]
        if isinstance(self.type, types.UnionType) or typing.get_origin(self.type) is typing.Union:
            return args[0] if len(args) == 1 else self.type
        return self.type

    @property
    def kind(self) -> str:
        """``int``, ``float``, ``str``, ``bool``, ``choice`` or ``tuple``."""
        base = self.base_type
        if self.knob.choices:
            return "choice"
        if typing.get_origin(base) is tuple or base is tuple:
            return "tuple"
        return {int: "int", float: "float", bool: "bool"}.get(base, "str")

    @property
    def flag(self) -> str:
        """The CLI spelling: ``--warmup-ratio`` for ``warmup_ratio``."""
        return self.knob.flag or "--" + self.name.replace("_", "-")

    @property
    def label(self) -> str:
        """Short label for forms: ``warmup ratio``."""
        return self.knob.label or self.name.replace("_", " ")

    def expected(self) -> str:
        """The valid range in words: ``an integer >= 1``, ``in (0, 1] (1 = off)``."""
        k = self.knob
        if self.kind == "choice":
            text = "one of " + ", ".join(k.choices)
        elif self.kind in ("int", "float"):
            text = _range_words(k, integer=self.kind == "int")
        elif self.kind == "bool":
            text = "true or false"
        else:
            text = "a string" if self.kind == "str" else "a list"
        return f"{text} ({k.note})" if k.note else text

    def check(self, value: Any) -> None:
        """Raise ``ConfigError`` unless ``value`` has the knob's type and range."""
        if value is None and self.optional:
            return
        if not self._valid(value):
            raise ConfigError(self.name, value, self.expected())

    def _valid(self, value: Any) -> bool:
        kind, k = self.kind, self.knob
        if kind == "choice":
            return value in k.choices
        if kind == "bool":
            return isinstance(value, bool)
        if kind == "str":
            return isinstance(value, str)
        if kind == "tuple":
            return isinstance(value, (tuple, list))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if kind == "int" and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if k.low is not None and (value <= k.low if k.low_open else value < k.low):
            return False
        return not (k.high is not None and (value >= k.high if k.high_open else value > k.high))


def _number(x: float) -> str:
    if x == 2**63:
        return "2**63"
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:g}"


def _range_words(k: Knob, *, integer: bool) -> str:
    prefix = "an integer " if integer else ""
    if k.low is not None and k.high is not None:
        left, right = "(" if k.low_open else "[", ")" if k.high_open else "]"
        return f"{prefix}in {left}{_number(k.low)}, {_number(k.high)}{right}"
    if k.low is not None:
        return f"{prefix}{'>' if k.low_open else '>='} {_number(k.low)}"
    if k.high is not None:
        return f"{prefix}{'<' if k.high_open else '<='} {_number(k.high)}"
    return "an integer" if integer else "a number"


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass (the string right under each field), by name."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not hasattr(klass, "__dataclass_fields__"):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body  # the class body
        for node, following in zip(body, body[1:], strict=False):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)):
                docs[node.target.id] = " ".join(following.value.value.split())
    return docs


@functools.cache
def knob_fields(cls: type) -> tuple[KnobField, ...]:
    """Every knob of ``cls`` in declaration order (fields without ``knob()`` are left out)."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    out = []
    for f in fields(cls):
        meta = f.metadata.get(KNOB_KEY)
        if meta is None:
            continue
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else None)
        out.append(KnobField(f.name, hints[f.name], default, docs.get(f.name, ""), meta, cls))
    return tuple(out)


def knob_field(cls: type, name: str) -> KnobField:
    """The knob ``name`` of ``cls`` (``KeyError`` when it has none of that name)."""
    for kf in knob_fields(cls):
        if kf.name == name:
            return kf
    raise KeyError(name)


def validate_knobs(obj: Any) -> None:
    """Check every knob of a dataclass instance; raises ``ConfigError`` for the first bad one."""
    for kf in knob_fields(type(obj)):
        kf.check(getattr(obj, kf.name))
