"""Spec files for ``genlab compare`` and ``genlab sweep``: loading, variables, overrides, checks.

This module owns the half of spec handling that both kinds share (the bottom of
``genlab.core.specs``); ``specs.compare`` and ``specs.sweep`` own what each kind means and
``specs.loader`` reads a file and dispatches on its kind. A spec is a YAML mapping
(format reference: ``docs/specs.md``):

* **YAML 1.2 numbers.** ``1e-4`` is a float (plain PyYAML reads it as a string); duplicate keys
  are an error instead of a silent overwrite.
* **Overrides.** ``--set key.path=value`` (value parsed as YAML) replaces or adds one entry
  before anything else is read, so ``--set base.max_steps=5`` or ``--set vars.facts=DIR`` work on
  any spec and are checked like the file itself.
* **Variables.** ``vars: {name: value}`` and the built-in ``${spec_dir}`` (the spec file's
  directory) are substituted into every string as ``${name}``; a string that is exactly
  ``${name}`` takes the variable's type (a number stays a number).
* **Limits.** A spec file is at most 4 MiB and 100,000 values (every use of a YAML alias
  counted, so an alias bomb is refused instead of filling memory).
* **Errors** are ``SpecError``: one line ``<file>: <key.path>: <problem>``, e.g.
  ``lr.yaml: search.lr.low: expected a number, got 'abc'``, with a "did you mean" for unknown
  keys. They are raised before anything runs or is written.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from genlab.core.errors import GenlabError, InputTooLarge
from genlab.core.io import human_size, read_text_limited

DEFAULT_MODEL = "default"
"""The ``model`` value (or its absence) that means genlab's shipped default model."""

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_SPEC_BYTES = 4 << 20
"""Largest spec file read (4 MiB)."""
MAX_SPEC_VALUES = 100_000
"""Most values in a spec (keys' values and list items, every alias use counted)."""


class SpecError(GenlabError, ValueError):
    """A spec is unreadable or invalid; ``str()`` is one line naming the file and key path.

    Attributes:
        source: The spec file as the user named it (or ``<spec>`` for an in-memory mapping).
        key: Dotted key path of the problem (``search.lr.low``); empty for whole-file problems.
        problem: What is wrong and what would be right.
    """

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")


@dataclass(frozen=True)
class SpecContext:
    """Where a spec came from, for error messages and ``${spec_dir}``."""

    source: str
    spec_dir: Path

    def error(self, key: str, problem: str) -> SpecError:
        """A ``SpecError`` for ``key`` in this spec."""
        return SpecError(self.source, key, problem)


# ----------------------------------------------------------------------------- YAML


def _yaml_loader() -> type:

    class Loader(yaml.SafeLoader):
        """SafeLoader with YAML 1.2 floats (``1e-4``) and duplicate-key errors."""

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict:
        loader.flatten_mapping(node)
        seen: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen[key] = loader.construct_object(value_node, deep=deep)
        return seen

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return Loader


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML ``text`` with the spec rules; syntax errors become one-line ``SpecError``."""

    try:
        data = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(source, "", f"{where}not valid YAML ({problem})") from None
    _check_size(data, source)
    return data


def _check_size(data: Any, source: str) -> None:
    """Refuse more than ``MAX_SPEC_VALUES`` values, counting every use of a YAML alias:
    ``&a``/``*a`` nesting ("billion laughs") expands exponentially when the spec is copied."""
    stack, seen = [data], 0
    while stack:
        value = stack.pop()
        seen += 1
        if seen > MAX_SPEC_VALUES:
            raise SpecError(source, "", f"holds more than {MAX_SPEC_VALUES:,} values (counting "
                                        "every use of a YAML alias); write a smaller spec")
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def read_spec_file(path: str | Path) -> tuple[dict[str, Any], SpecContext]:
    """Read a spec file into a raw mapping plus its context; ``SpecError`` when unreadable."""
    source = str(path)
    p = Path(path)
    try:
        text = read_text_limited(p, MAX_SPEC_BYTES, source)
    except FileNotFoundError:
        raise SpecError(source, "", "no such spec file") from None
    except IsADirectoryError:
        raise SpecError(source, "", "is a directory; pass a .yaml spec file") from None
    except InputTooLarge:
        raise SpecError(source, "", f"larger than {human_size(MAX_SPEC_BYTES)}, genlab's limit "
                                    "for a spec file; put long prompt lists in a prompts file "
                                    "(prompts: FILE)") from None
    except UnicodeDecodeError as err:
        raise SpecError(source, "", f"not UTF-8 text (byte {err.start}); save it as UTF-8"
                        ) from None
    except OSError as err:
        raise SpecError(source, "", f"cannot read it ({(err.strerror or str(err)).lower()})"
                        ) from None
    data = parse_yaml(text, source)
    if not isinstance(data, dict):
        raise SpecError(source, "", f"expected a mapping of keys at the top, got "
                                    f"{describe(data)}")
    return data, SpecContext(source, p.resolve().parent)


# ----------------------------------------------------------------------------- overrides


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], ctx: SpecContext) -> None:
    """Apply ``key.path=value`` overrides to ``data`` in place (value parsed as YAML)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise SpecError(ctx.source, "", f"--set {item!r}: expected KEY.PATH=VALUE, e.g. "
                                            "base.max_steps=5")
        value = parse_yaml(raw, f"--set {key}") if raw.strip() else ""
        target = data
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            node = target.get(part)
            if node is None:
                node = target[part] = {}
            if not isinstance(node, dict):
                path = ".".join(parts[: depth + 1])
                raise SpecError(ctx.source, path, f"--set {key}: {path} is "
                                                  f"{describe(node)}, not a mapping")
            target = node
        target[parts[-1]] = value


# ----------------------------------------------------------------------------- variables


def substitute_vars(data: dict[str, Any], ctx: SpecContext) -> dict[str, Any]:
    """``data`` with ``${name}`` replaced by ``vars`` entries and ``${spec_dir}``."""
    raw_vars = data.get("vars", {}) or {}
    if not isinstance(raw_vars, dict):
        raise ctx.error("vars", f"expected a mapping of name: value, got {describe(raw_vars)}")
    known: dict[str, Any] = {"spec_dir": str(ctx.spec_dir)}
    for name, value in raw_vars.items():
        path = f"vars.{name}"
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ctx.error(path, "variable names are letters, digits and _")
        if not isinstance(value, (str, int, float, bool)):
            raise ctx.error(path, f"expected a string or number, got {describe(value)}")
        known[name] = _substitute(value, known, path, ctx)
    out = {k: (_walk(v, known, k, ctx) if k != "vars" else dict(raw_vars))
           for k, v in data.items()}
    return out


def _walk(value: Any, known: dict[str, Any], path: str, ctx: SpecContext) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, known, f"{path}.{k}", ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, known, f"{path}[{i}]", ctx) for i, v in enumerate(value)]
    return _substitute(value, known, path, ctx)


def _substitute(value: Any, known: dict[str, Any], path: str, ctx: SpecContext) -> Any:
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _VAR.fullmatch(value)
    if whole and whole.group(1) in known:
        return known[whole.group(1)]

    def lookup(match: re.Match) -> str:
        name = match.group(1)
        if name not in known:
            raise ctx.error(path, f"unknown variable ${{{name}}}{did_you_mean(name, known)}; "
                                  "define it under vars:")
        return str(known[name])

    return _VAR.sub(lookup, value)


# ----------------------------------------------------------------------------- checks


def describe(value: Any) -> str:
    """How a rejected value is shown: ``'abc'``, ``3``, ``a list``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    return repr(value)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(mapping: Mapping[str, Any], path: str, allowed: Sequence[str],
               ctx: SpecContext, required: Sequence[str] = ()) -> None:
    """Reject unknown keys (with a suggestion) and missing required ones."""
    for key in mapping:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            known = f"; known keys: {', '.join(allowed)}" if len(allowed) <= 16 else ""
            raise ctx.error(where, f"unknown key{did_you_mean(key, allowed)}{known}")
    for key in required:
        if key not in mapping:
            raise ctx.error(f"{path}.{key}" if path else key, "is required")


def want_mapping(value: Any, path: str, ctx: SpecContext) -> dict[str, Any]:
    """``value`` if it is a mapping with string keys, else a ``SpecError``."""
    if not isinstance(value, dict):
        raise ctx.error(path, f"expected a mapping, got {describe(value)}")
    for key in value:
        if not isinstance(key, str):
            raise ctx.error(f"{path}.{key}", "keys must be strings")
    return value


def want_list(value: Any, path: str, ctx: SpecContext, *, nonempty: bool = True) -> list[Any]:
    """``value`` if it is a (non-empty) list."""
    if not isinstance(value, list):
        raise ctx.error(path, f"expected a list, got {describe(value)}")
    if nonempty and not value:
        raise ctx.error(path, "expected at least one value, got an empty list")
    return value


def want_str(value: Any, path: str, ctx: SpecContext, *, nonempty: bool = True) -> str:
    """``value`` if it is a (non-empty) string."""
    if not isinstance(value, str) or (nonempty and not value.strip()):
        raise ctx.error(path, f"expected a non-empty string, got {describe(value)}")
    return value


def want_bool(value: Any, path: str, ctx: SpecContext) -> bool:
    """``value`` if it is true or false."""
    if not isinstance(value, bool):
        raise ctx.error(path, f"expected true or false, got {describe(value)}")
    return value


def want_int(value: Any, path: str, ctx: SpecContext, *, low: int | None = None,
             high: int | None = None) -> int:
    """``value`` if it is an integer in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.error(path, f"expected an integer, got {describe(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (f">= {low}" if high is None else f"<= {high}" if low is None
                  else f"in [{low}, {high}]")
        raise ctx.error(path, f"expected an integer {bounds}, got {value}")
    return value


def want_number(value: Any, path: str, ctx: SpecContext) -> float | int:
    """``value`` if it is a finite int or float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise ctx.error(path, f"expected a number, got {describe(value)}")
    return value


def want_choice(value: Any, path: str, ctx: SpecContext, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices`` (with a suggestion otherwise)."""
    if value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise ctx.error(path, f"expected one of {', '.join(choices)}, got "
                              f"{describe(value)}{hint}")
    return value


def config_error(ctx: SpecContext, prefix: str, err: Any) -> SpecError:
    """Turn a ``ConfigError`` into a ``SpecError`` at ``prefix.<field>``."""
    key = f"{prefix}.{err.field}" if prefix else err.field
    value = err.value
    if isinstance(value, tuple):
        value = list(value)
    expected = err.expected
    for name in getattr(err, "related", ()):
        expected = expected.replace(name, f"{prefix}.{name}" if prefix else name)
    return ctx.error(key, f"expected {expected}, got {describe(value)}")
