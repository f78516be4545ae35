"""Command-line options generated from config knobs: one declaration, every flag.

A config field declared with ``knob()`` (``genlab.core.configs.knobs``) becomes a typer option
here: its flag (``--warmup-ratio``), metavar, help panel, and help text (the field's docstring,
its range and its default). ``knob_command`` adds those options to a command function, so
``genlab train``'s ~45 training flags are not written out by hand and cannot drift from
``TrainConfig``; ``docs/cli.md`` is generated from the same app.

Every generated option defaults to None (= not given), so a command can tell what the user set
(``--resume`` conflicts, defaults owned by the core); ``parse_knob`` turns the raw string into
the field's type with a one-line ``UsageError`` naming the flag.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import typer

from genlab.cli.common import UsageError
from genlab.core.configs.knobs import KnobField, knob_fields

_REF = re.compile(r"``([a-z_][a-z0-9_]*)``")


def cli_text(doc: str, flags: Mapping[str, str] | None = None) -> str:
    """A field docstring for ``--help``: ````field```` references become ``--field``."""
    return _REF.sub(lambda m: (flags or {}).get(m.group(1), "--" + m.group(1).replace("_", "-")),
                    doc)


def default_text(kf: KnobField, default: Any) -> str:
    """How a default reads in ``--help`` (empty when there is nothing useful to say)."""
    if default is None or default == "" or default == ():
        return ""
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, (tuple, list)):
        if all(isinstance(v, str) for v in default):  # strings quoted: "\n", ":"
            return ", ".join(json.dumps(v, ensure_ascii=False) for v in default)
        return ",".join(str(v) for v in default)
    return str(default)


def help_text(kf: KnobField, *, default: Any = None, default_note: str | None = None,
              flags: Mapping[str, str] | None = None, extra: str = "") -> str:
    """``LoRA rank r. Range: an integer >= 1. Default: 8.`` for a knob."""
    parts = [cli_text(kf.doc, flags).rstrip(".") + "."]
    if extra:
        parts.append(extra)
    if kf.kind == "choice":
        parts.append(f"One of: {', '.join(kf.knob.choices)}.")
    elif kf.kind in ("int", "float") and (kf.knob.low is not None or kf.knob.high is not None
                                           or kf.knob.note):
        parts.append(f"Range: {kf.expected()}.")
    shown = default_note if default_note is not None else default_text(kf, default)
    if shown:
        parts.append(f"Default: {shown}.")
    return " ".join(parts)


def knob_option(kf: KnobField, *, panel: str | None = None, default: Any = None,
                default_note: str | None = None, flags: Mapping[str, str] | None = None,
                extra: str = "") -> inspect.Parameter:
    """The typer option of one knob, as a keyword-only ``inspect.Parameter`` (default None)."""
    flag = (flags or {}).get(kf.name, kf.flag)
    k = kf.knob
    shown_default = kf.default if default is None else default
    common = {"show_default": False, "rich_help_panel": panel or k.panel or None,
              "help": help_text(kf, default=shown_default, default_note=default_note,
                                flags=flags, extra=extra)}
    if kf.kind == "bool":
        name = flag.removeprefix("--")
        option = typer.Option(None, f"--{name}/--no-{name}", metavar="", **common)
        annotation: Any = bool | None
    elif k.repeat:
        option = typer.Option(None, flag, *k.aliases, metavar=k.metavar or None, **common)
        annotation = list[str] | None
    else:
        option = typer.Option(None, flag, *k.aliases, metavar=k.metavar or None, **common)
        annotation = str | None
    return inspect.Parameter(kf.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                             annotation=annotation)


def knob_options(config_cls: type, *, include: Iterable[str] | None = None,
                 exclude: Iterable[str] = (), **kwargs: Any) -> list[inspect.Parameter]:
    """Options for the CLI knobs of ``config_cls`` (``include`` picks and orders a subset).

    ``kwargs`` go to ``knob_option`` (``panel``, ``flags``); ``defaults`` (a mapping) and
    ``default_notes`` / ``extras`` (by field) give per-field help overrides.
    """
    defaults: Mapping[str, Any] = kwargs.pop("defaults", {})
    notes: Mapping[str, str] = kwargs.pop("default_notes", {})
    extras: Mapping[str, str] = kwargs.pop("extras", {})
    by_name = {kf.name: kf for kf in knob_fields(config_cls) if kf.knob.cli}
    names = list(include) if include is not None else list(by_name)
    skip = set(exclude)
    return [knob_option(by_name[n], default=defaults.get(n), default_note=notes.get(n),
                        extra=extras.get(n, ""), **kwargs)
            for n in names if n not in skip]


def knob_command(*option_groups: list[inspect.Parameter]) -> Callable[[Callable], Callable]:
    """Add generated options to a command; the function receives them as ``knobs``.

    The decorated function declares its own options as usual plus a first parameter
    ``knobs: dict``; typer sees the generated options followed by the declared ones, and the
    function gets ``knobs`` = {field name: raw value or None}.
    """
    generated = [p for group in option_groups for p in group]
    names = [p.name for p in generated]

    def decorate(func: Callable) -> Callable:
        declared = [p for p in inspect.signature(func).parameters.values() if p.name != "knobs"]

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            knobs = {name: kwargs.pop(name) for name in names}
            return func(knobs, **kwargs)

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in declared]
        command.__signature__ = inspect.Signature(generated + params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in generated + params}
        del command.__wrapped__  # typer must read __signature__, not the wrapped function
        return command

    return decorate


def given(knobs: Mapping[str, Any]) -> dict[str, Any]:
    """The knobs the user gave (not None; an empty repeatable list counts as not given)."""
    return {k: v for k, v in knobs.items() if v is not None and v != []}


def parse_knob(kf: KnobField, raw: Any, flag: str | None = None) -> Any:
    """The field value of a raw flag value; a value of the wrong form is a ``UsageError``."""
    flag = flag or kf.flag
    kind = kf.kind
    if isinstance(raw, bool) or kind in ("str", "choice", "bool") or kf.knob.verbatim:
        return raw
    if kf.knob.repeat:
        return tuple(raw)
    if kind == "int":
        try:
            return int(raw.strip())
        except ValueError:
            raise UsageError(f"{flag} {raw}: must be an integer") from None
    if kind == "float":
        try:
            return float(raw.strip())
        except ValueError:
            raise UsageError(f"{flag} {raw}: must be a number") from None
    return _parse_tuple(kf, raw, flag)


def _parse_tuple(kf: KnobField, raw: str, flag: str) -> tuple[Any, ...]:
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    numbers = [a for a in _tuple_args(kf) if a is float or a is int]
    if not numbers:
        if not items:
            raise UsageError(f"{flag} {raw!r}: must name at least one value, e.g. "
                             f"{kf.knob.metavar or 'A,B'}")
        return items
    try:
        values = tuple(float(item) for item in items)
    except ValueError:
        values = ()
    arity = [a for a in _tuple_args(kf) if a is not Ellipsis]
    if not values or (Ellipsis not in _tuple_args(kf) and len(values) != len(arity)):
        raise UsageError(f"{flag} {raw}: must be {kf.doc.rstrip('.')}")
    return values


def _tuple_args(kf: KnobField) -> tuple[Any, ...]:
    return typing.get_args(kf.base_type)


def parse_knobs(config_cls: type, raw: Mapping[str, Any],
                flags: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse every given knob of ``config_cls`` in ``raw`` (unknown keys are left out)."""
    by_name = {kf.name: kf for kf in knob_fields(config_cls)}
    return {name: parse_knob(by_name[name], value, (flags or {}).get(name))
            for name, value in given(raw).items() if name in by_name}


