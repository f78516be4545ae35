"""Search spaces of training sweeps: dimensions, their grid points, and Optuna suggestions.

Owns the ``search:`` part of a sweep spec (reference: ``docs/specs.md``). Each entry is one
dimension:

* ``lr: [1e-4, 1e-3]`` or ``lr: {choices: [...]}``: a categorical choice;
* ``lr: {low: 1e-5, high: 1e-1, log: true}``: a range, log-uniform with ``log``; integer when
  the field is an integer field (``batch_size``, ``rank``, ``model_shape.layers``, ...), else
  float. ``num: N`` gives it N grid points (log-spaced with ``log``) for ``method: grid``;
* ``setup: {choices: [{label: "SGD+momentum", optimizer: sgd, momentum: 0.9}, ...]}``: a
  *bundle*: each choice sets several fields at once (an optimizer with its own lr, a model size
  as depth and width). The dimension's name is free; ``label`` names the choice in reports.

Dimension names are ``TrainConfig`` fields or ``model_shape.<knob>`` (from-scratch models).
The grid is the product of every dimension's points in spec order, the last varying fastest.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genlab.core.specs.common import (
    SpecContext,
    check_keys,
    describe,
    did_you_mean,
    want_bool,
    want_int,
    want_list,
    want_mapping,
    want_number,
    want_str,
)

SHAPE_PREFIX = "model_shape."
SHAPE_KNOBS = ("layers", "hidden", "heads", "kv_heads", "mlp", "context")
DIM_KEYS = ("choices", "low", "high", "log", "num", "type")
BUNDLE_LABEL = "label"
CATEGORICAL_TYPES = (str, int, float, bool)


@dataclass(frozen=True)
class Dim:
    """One dimension of a search space.

    Attributes:
        name: A ``TrainConfig`` field, ``model_shape.<knob>``, or a free name for bundles.
        kind: ``choice``, ``bundle``, ``int`` or ``float``.
        choices: The values (``choice``) or the bundle labels (``bundle``).
        bundles: For bundles: per label, the ``(field, value)`` pairs it sets.
        low: Range start (int/float).
        high: Range end, inclusive.
        log: Sample (and space grid points) log-uniformly.
        num: Grid points of a range; None when the range cannot be gridded.
    """

    name: str
    kind: str
    choices: tuple[Any, ...] = ()
    bundles: tuple[tuple[tuple[str, Any], ...], ...] = ()
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    num: int | None = None

    @property
    def is_range(self) -> bool:
        """True for ``int``/``float`` ranges."""
        return self.kind in ("int", "float")

    def grid_values(self) -> list[Any]:
        """The dimension's grid points (choices, or ``num`` points spanning the range)."""
        if not self.is_range:
            return list(self.choices)
        assert self.num is not None and self.low is not None and self.high is not None
        if self.num == 1:
            points = [float(self.low)]
        elif self.log:
            a, b = math.log(self.low), math.log(self.high)
            points = [math.exp(a + (b - a) * i / (self.num - 1)) for i in range(self.num)]
        else:
            points = [self.low + (self.high - self.low) * i / (self.num - 1)
                      for i in range(self.num)]
        if self.kind == "int":
            return list(dict.fromkeys(round(p) for p in points))
        return [float(f"{p:.6g}") for p in points]

    def suggest(self, trial: Any) -> Any:
        """Ask an Optuna trial for this dimension's value (a label for bundles)."""
        if not self.is_range:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def expand(self, value: Any) -> dict[str, Any]:
        """The config fields one value of this dimension sets."""
        if self.kind != "bundle":
            return {self.name: value}
        return dict(self.bundles[self.choices.index(value)])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (for ``spec.json``)."""
        if self.kind == "bundle":
            return {"name": self.name, "kind": "bundle", "choices": {
                label: dict(items) for label, items in zip(self.choices, self.bundles,
                                                           strict=True)}}
        if self.kind == "choice":
            return {"name": self.name, "kind": "choice", "choices": list(self.choices)}
        return {"name": self.name, "kind": self.kind, "low": self.low, "high": self.high,
                "log": self.log, "num": self.num}


@dataclass(frozen=True)
class SearchSpace:
    """The ordered dimensions of a sweep."""

    dims: tuple[Dim, ...]

    def grid(self) -> list[dict[str, Any]]:
        """Every grid point as ``{dim name: value}``, the last dimension varying fastest."""
        names = [d.name for d in self.dims]
        values = [d.grid_values() for d in self.dims]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]

    def grid_size(self) -> int:
        """Number of grid points."""
        return math.prod(len(d.grid_values()) for d in self.dims)

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Ask an Optuna trial for every dimension, in order."""
        return {d.name: d.suggest(trial) for d in self.dims}

    def expand(self, params: dict[str, Any]) -> dict[str, Any]:
        """Config fields (``model_shape.*`` included, dotted) set by a point of the space."""
        fields: dict[str, Any] = {}
        for dim in self.dims:
            if dim.name in params:
                fields.update(dim.expand(params[dim.name]))
        return fields

    def dim(self, name: str) -> Dim:
        """The dimension called ``name``."""
        return next(d for d in self.dims if d.name == name)

    def to_dict(self) -> list[dict[str, Any]]:
        """JSON-able description."""
        return [d.to_dict() for d in self.dims]


# ----------------------------------------------------------------------------- parsing

Validator = Callable[[dict[str, Any], str], None]
"""Checks config fields (``{field: value}``) and raises ``SpecError`` at the given key path."""


def parse_search(value: Any, ctx: SpecContext, field_kinds: dict[str, str],
                 validate: Validator, *, grid: bool) -> SearchSpace:
    """Parse ``search:`` into a ``SearchSpace``.

    Args:
        value: The raw ``search`` mapping.
        ctx: For errors.
        field_kinds: Searchable field name -> ``int``, ``float``, ``str``, ``bool``, ``other``.
        validate: Checks a set of config fields, e.g. by building a ``TrainConfig``.
        grid: ``method: grid``: every range needs ``num``.
    """
    mapping = want_mapping(value, "search", ctx)
    if not mapping:
        raise ctx.error("search", "expected at least one dimension, got an empty mapping")
    dims = []
    for name, spec in mapping.items():
        path = f"search.{name}"
        if isinstance(spec, list):
            spec = {"choices": spec}
        spec = want_mapping(spec, path, ctx)
        check_keys(spec, path, DIM_KEYS, ctx)
        choices = spec.get("choices")
        is_bundle = isinstance(choices, list) and choices and all(
            isinstance(c, dict) for c in choices)
        if is_bundle:
            dims.append(_bundle(name, spec, path, ctx, field_kinds, validate))
            continue
        if name not in field_kinds:

            raise ctx.error(path, f"not a searchable field{did_you_mean(name, field_kinds)}; "
                                  "use a TrainConfig field, model_shape.<knob>, or a bundle "
                                  "(choices that are mappings)")
        if "choices" in spec:
            dims.append(_choice(name, spec, path, ctx, validate))
        else:
            dims.append(_range(name, spec, path, ctx, field_kinds[name], validate, grid))
    return SearchSpace(tuple(dims))


def _choice(name: str, spec: dict[str, Any], path: str, ctx: SpecContext,
            validate: Validator) -> Dim:
    extra = [k for k in spec if k != "choices"]
    if extra:
        raise ctx.error(f"{path}.{extra[0]}", "not allowed with choices (a range uses low/high)")
    items = want_list(spec["choices"], f"{path}.choices", ctx)
    for i, item in enumerate(items):
        where = f"{path}.choices[{i}]"
        if not isinstance(item, CATEGORICAL_TYPES):
            raise ctx.error(where, f"expected a number, string or boolean, got {describe(item)}")
        validate({name: item}, where)
    if len(set(map(repr, items))) != len(items):
        raise ctx.error(f"{path}.choices", "lists a value twice")
    return Dim(name, "choice", choices=tuple(items))


def _range(name: str, spec: dict[str, Any], path: str, ctx: SpecContext, kind: str,
           validate: Validator, grid: bool) -> Dim:
    if kind not in ("int", "float"):
        raise ctx.error(path, f"{name} is not numeric; give choices: [...] instead of a range")
    for key in ("low", "high"):
        if key not in spec:
            raise ctx.error(f"{path}.{key}", "is required for a range (or give choices)")
    if "type" in spec:
        kind = want_str(spec["type"], f"{path}.type", ctx)
        if kind not in ("int", "float"):
            raise ctx.error(f"{path}.type", f"expected int or float, got {describe(kind)}")
    low = want_number(spec["low"], f"{path}.low", ctx)
    high = want_number(spec["high"], f"{path}.high", ctx)
    if kind == "int":
        low = want_int(low, f"{path}.low", ctx)
        high = want_int(high, f"{path}.high", ctx)
    log = want_bool(spec.get("log", False), f"{path}.log", ctx)
    if not low < high:
        raise ctx.error(f"{path}.high", f"expected a number above low={low}, got {high}")
    if log and low <= 0:
        raise ctx.error(f"{path}.low", f"expected > 0 for a log range, got {low}")
    validate({name: low}, f"{path}.low")
    validate({name: high}, f"{path}.high")
    num = None
    if "num" in spec:
        num = want_int(spec["num"], f"{path}.num", ctx, low=1)
    elif grid:
        raise ctx.error(f"{path}.num", "is required for a range in method: grid (how many "
                                       "points), or give choices")
    return Dim(name, kind, low=float(low) if kind == "float" else low,
               high=float(high) if kind == "float" else high, log=log, num=num)


def _bundle(name: str, spec: dict[str, Any], path: str, ctx: SpecContext,
            field_kinds: dict[str, str], validate: Validator) -> Dim:
    extra = [k for k in spec if k != "choices"]
    if extra:
        raise ctx.error(f"{path}.{extra[0]}", "not allowed in a bundle (only choices)")
    labels, bundles = [], []
    for i, item in enumerate(spec["choices"]):
        where = f"{path}.choices[{i}]"
        fields = {k: v for k, v in item.items() if k != BUNDLE_LABEL}
        if not fields:
            raise ctx.error(where, "expected at least one field to set")
        for key in fields:
            if key not in field_kinds:

                raise ctx.error(f"{where}.{key}", f"not a searchable field"
                                                  f"{did_you_mean(key, field_kinds)}")
        validate(fields, where)
        label = item.get(BUNDLE_LABEL)
        label = (want_str(label, f"{where}.{BUNDLE_LABEL}", ctx) if label is not None else
                 " ".join(f"{k.removeprefix(SHAPE_PREFIX)}={v}" for k, v in fields.items()))
        if label in labels:
            raise ctx.error(f"{where}.{BUNDLE_LABEL}", f"{label!r} is used twice; labels "
                                                       "must be unique")
        labels.append(label)
        bundles.append(tuple(fields.items()))
    return Dim(name, "bundle", choices=tuple(labels), bundles=tuple(bundles))
