"""Sweep specs: the training sweeps ``genlab sweep`` runs, parsed and validated.

Owns what a ``kind: sweep`` spec means (reference: ``docs/specs.md``): a base ``TrainConfig``
(``base:``, TrainConfig field names, plus ``model_shape`` for from-scratch models), a search
space (``specs.search_space``), a method (``grid``, ``random`` or ``bayes`` = Optuna TPE),
a trial budget, the objective (minimised), an optional pruner, and whether to retrain the best
configuration in full afterwards (``retrain_best`` with ``retrain_overrides``).

A from-scratch model: ``base.model_shape`` (and/or ``model_shape.<knob>`` search dimensions)
with ``method: full`` builds a fresh Llama of that shape for every trial
(``genlab.core.pretrain.pipeline.build_model``) on the tokenizer of the spec's ``model``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from genlab.core.configs import ConfigError, ModelShape, TrainConfig
from genlab.core.generation.prompts import PromptFileError, load_prompts
from genlab.core.specs.common import (
    DEFAULT_MODEL,
    SpecContext,
    check_keys,
    describe,
    want_bool,
    want_choice,
    want_int,
    want_mapping,
    want_str,
)
from genlab.core.specs.search_space import SHAPE_KNOBS, SHAPE_PREFIX, SearchSpace, parse_search

SWEEP_KEYS = ("kind", "name", "description", "vars", "model", "base", "search", "method",
              "trials", "objective", "pruner", "retrain_best", "retrain_overrides", "seed")
METHODS = ("grid", "random", "bayes")
OBJECTIVES = ("best_eval_loss", "final_eval_loss", "final_train_loss")
PRUNERS = ("none", "median")
PRUNER_KEYS = ("type", "startup_trials", "warmup_steps")
NOT_IN_BASE = {"model": "set the model with the top-level model: key",
               "name": "trial runs are named by the sweep"}
SWEEP_DEFAULTS = {"save_every": 10**9}
"""Base settings a sweep changes unless the spec sets them: trials write no periodic
checkpoints (a killed trial is re-run, not resumed)."""
PLACEHOLDER_MODEL = "<model>"


@dataclass(frozen=True)
class PrunerSpec:
    """When to stop hopeless trials (Optuna's ``MedianPruner``).

    Attributes:
        kind: ``median`` or ``none``.
        startup_trials: Trials that finish before any is pruned.
        warmup_steps: Training steps before a trial can be pruned.
    """

    kind: str = "none"
    startup_trials: int = 2
    warmup_steps: int = 0


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec (see the module docstring)."""

    name: str
    base: dict[str, Any]
    search: SearchSpace
    method: str = "random"
    trials: int = 1
    objective: str = "best_eval_loss"
    pruner: PrunerSpec = field(default_factory=PrunerSpec)
    retrain_best: bool = False
    retrain_overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    model: str = DEFAULT_MODEL
    model_shape: dict[str, int] | None = None
    description: str = ""
    source: str = ""

    kind = "sweep"
    direction = "minimize"

    def trial_fields(self, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int] | None]:
        """TrainConfig fields (without ``model``) and the model shape for a point of the space."""
        expanded = self.search.expand(params)
        train = {**self.base, **{k: v for k, v in expanded.items()
                                 if not k.startswith(SHAPE_PREFIX)}}
        shape_knobs = {k.removeprefix(SHAPE_PREFIX): v for k, v in expanded.items()
                       if k.startswith(SHAPE_PREFIX)}
        shape = None
        if self.model_shape is not None or shape_knobs:
            shape = {**(self.model_shape or {}), **shape_knobs}
        return train, shape

    def train_config(self, params: dict[str, Any], model: str, name: str,
                     overrides: dict[str, Any] | None = None) -> TrainConfig:
        """The TrainConfig of a trial (``model``: the model dir it trains)."""
        train, _ = self.trial_fields(params)
        return TrainConfig(model=model, name=name, **{**train, **(overrides or {})})

    @property
    def budget(self) -> int:
        """Trials the sweep runs (``trials``; for grids at most the grid size)."""
        return self.trials

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec as JSON-able data (stored as the output's ``spec.json``)."""
        base = {k: list(v) if isinstance(v, tuple) else v for k, v in self.base.items()}
        return {
            "kind": "sweep", "name": self.name, "description": self.description,
            "model": self.model, "base": base, "model_shape": self.model_shape,
            "search": self.search.to_dict(), "method": self.method, "trials": self.trials,
            "objective": self.objective, "direction": self.direction,
            "pruner": {"type": self.pruner.kind, "startup_trials": self.pruner.startup_trials,
                       "warmup_steps": self.pruner.warmup_steps},
            "retrain_best": self.retrain_best, "retrain_overrides": self.retrain_overrides,
            "seed": self.seed, "source": self.source,
        }

    def identity(self) -> dict[str, Any]:
        """What must match for a rerun into the same output directory to resume it
        (the budget, pruner and retrain settings may change: ``--set trials=20`` extends)."""
        data = self.to_dict()
        for key in ("description", "source", "trials", "pruner", "retrain_best",
                    "retrain_overrides"):
            data.pop(key)
        return data


# ----------------------------------------------------------------------------- parsing


def field_kinds() -> dict[str, str]:
    """Searchable names -> ``int``/``float``/``str``/``bool``/``other``."""
    kinds = {}
    for f in fields(TrainConfig):
        if f.name in NOT_IN_BASE:
            continue
        t = str(f.type)
        kinds[f.name] = ("bool" if t == "bool" else "int" if t.startswith("int")
                         else "float" if t.startswith("float") else "str"
                         if t.startswith("str") else "other")
    kinds.update({f"{SHAPE_PREFIX}{k}": "int" for k in SHAPE_KNOBS})
    return kinds


def parse_sweep_spec(data: dict[str, Any], ctx: SpecContext) -> SweepSpec:
    """Validate a raw sweep mapping (after overrides and variables) into a ``SweepSpec``.

    Raises:
        SpecError: The first problem, naming its key path.
    """
    check_keys(data, "", SWEEP_KEYS, ctx, required=("base", "search"))
    name = want_str(data["name"], "name", ctx) if "name" in data else (
        Path(ctx.source).stem if not ctx.source.startswith("<") else "sweep")
    model = DEFAULT_MODEL if data.get("model") in (None, "") else want_str(
        data["model"], "model", ctx)
    method = want_choice(data.get("method", "random"), "method", ctx, METHODS)
    base, shape = _base(data["base"], ctx)

    def validate(values: dict[str, Any], path: str) -> None:
        _validate_fields(base, shape, values, path, ctx)

    search = parse_search(data["search"], ctx, field_kinds(), validate, grid=method == "grid")
    trials = _trials(data, method, search, ctx)
    objective = want_choice(data.get("objective", "best_eval_loss"), "objective", ctx,
                            OBJECTIVES)
    if "eval" in objective and not base.get("eval_data") and base.get("eval_split", 0.1) == 0:
        raise ctx.error("objective", f"{objective} needs eval data; set base.eval_data or "
                                     "base.eval_split > 0, or use final_train_loss")
    overrides = want_mapping(data.get("retrain_overrides", {}) or {}, "retrain_overrides", ctx)
    check_keys(overrides, "retrain_overrides", [k for k in field_kinds()
                                                if not k.startswith(SHAPE_PREFIX)], ctx)
    _validate_fields(base, shape, overrides, "retrain_overrides", ctx, nest=True)
    uses_shape = shape is not None or any(d.name.startswith(SHAPE_PREFIX) or any(
        k.startswith(SHAPE_PREFIX) for b in d.bundles for k, _ in b) for d in search.dims)
    if uses_shape and base.get("method", "lora") != "full":
        raise ctx.error("base.method", "a from-scratch model (model_shape) trains every weight; "
                                       "set base.method: full")
    return SweepSpec(
        name=name, base=base, search=search, method=method, trials=trials,
        objective=objective, pruner=_pruner(data.get("pruner"), ctx),
        retrain_best=want_bool(data.get("retrain_best", False), "retrain_best", ctx),
        retrain_overrides=dict(overrides),
        seed=want_int(data.get("seed", 0), "seed", ctx, low=0, high=2**32 - 1),
        model=model, model_shape=shape,
        description=str(data.get("description", "") or "").strip(), source=ctx.source,
    )


def _base(value: Any, ctx: SpecContext) -> tuple[dict[str, Any], dict[str, int] | None]:
    mapping = dict(want_mapping(value, "base", ctx))
    allowed = [k for k in field_kinds() if not k.startswith(SHAPE_PREFIX)] + ["model_shape"]
    for key, why in NOT_IN_BASE.items():
        if key in mapping:
            raise ctx.error(f"base.{key}", f"not allowed here; {why}")
    check_keys(mapping, "base", allowed, ctx, required=("data",))
    shape = None
    if "model_shape" in mapping:
        knobs = want_mapping(mapping.pop("model_shape"), "base.model_shape", ctx)
        check_keys(knobs, "base.model_shape", SHAPE_KNOBS, ctx)
        shape = {k: want_int(v, f"base.model_shape.{k}", ctx, low=1) for k, v in knobs.items()}
    if isinstance(mapping.get("sample_prompts"), str):

        try:
            mapping["sample_prompts"] = load_prompts(mapping["sample_prompts"])
        except PromptFileError as err:
            raise ctx.error("base.sample_prompts", f"{mapping['sample_prompts']}: {err}") from None
    for key in ("data", "eval_data"):
        _check_local_path(mapping.get(key), f"base.{key}", ctx)
    base = {**SWEEP_DEFAULTS, **mapping}
    _validate_fields(base, shape, {}, "base", ctx, nest=True)
    return base, shape


def _check_local_path(value: Any, path: str, ctx: SpecContext) -> None:
    """A path-looking data value must exist (hub dataset names have no suffix or ./ prefix)."""
    if not isinstance(value, str) or not value:
        return
    looks_local = value.startswith((".", "/", "~")) or Path(value).suffix.lower() in (
        ".txt", ".jsonl", ".json", ".csv", ".parquet")
    if looks_local and not Path(value).expanduser().exists():
        raise ctx.error(path, f"no such file or directory: {value}")


def _validate_fields(base: dict[str, Any], shape: dict[str, int] | None,
                     values: dict[str, Any], path: str, ctx: SpecContext,
                     nest: bool = False) -> None:
    """Build the TrainConfig (and ModelShape) ``base`` + ``values`` make; errors at ``path``."""
    train = {k: v for k, v in values.items() if not k.startswith(SHAPE_PREFIX)}
    knobs = {k.removeprefix(SHAPE_PREFIX): v for k, v in values.items()
             if k.startswith(SHAPE_PREFIX)}

    def where(field_name: str) -> str:
        if nest or len(values) > 1:
            return f"{path}.{field_name}"
        return path

    for key, value in train.items():
        if isinstance(value, list):
            train[key] = tuple(value)
    try:
        config = TrainConfig(model=PLACEHOLDER_MODEL, **{**base, **train})
    except ConfigError as err:
        given = err.field in values or (nest and err.field in base)
        key = where(err.field) if given else f"{path} (with base.{err.field})"
        value = err.value if not isinstance(err.value, tuple) else list(err.value)
        expected = err.expected
        for name in getattr(err, "related", ()):  # other fields the message names
            expected = expected.replace(name, f"base.{name}")
        raise ctx.error(key, f"expected {expected}, got {describe(value)}") from None
    except TypeError as err:  # an unexpected keyword: reported by check_keys normally
        raise ctx.error(path, str(err)) from None
    if shape is None and not knobs:
        return

    merged = {**(shape or {}), **{k: v for k, v in knobs.items()}}
    for key, value in merged.items():
        if isinstance(value, bool) or not isinstance(value, int):
            full = f"{SHAPE_PREFIX}{key}"
            raise ctx.error(where(full) if full in values else f"base.model_shape.{key}",
                            f"expected an integer, got {describe(value)}")
    try:
        model_shape = ModelShape(**merged)
    except ConfigError as err:
        full = f"{SHAPE_PREFIX}{err.field}"
        key = where(full) if full in values else (
            f"base.model_shape.{err.field}" if path == "base" else f"{path} (model_shape)")
        raise ctx.error(key, f"expected {err.expected}, got {describe(err.value)}") from None
    if config.seq_len > model_shape.context:
        raise ctx.error(f"{path}" if path != "base" else "base.seq_len",
                        f"seq_len {config.seq_len} is longer than the model's context "
                        f"{model_shape.context}; lower seq_len or raise model_shape.context")


def _trials(data: dict[str, Any], method: str, search: SearchSpace, ctx: SpecContext) -> int:
    if method == "grid":
        size = search.grid_size()
        trials = want_int(data.get("trials", size), "trials", ctx, low=1)
        if trials > size:
            raise ctx.error("trials", f"expected at most the grid's {size} points, got {trials}")
        return trials
    if "trials" not in data:
        raise ctx.error("trials", f"is required for method: {method} (how many trials to run)")
    return want_int(data["trials"], "trials", ctx, low=1)


def _pruner(value: Any, ctx: SpecContext) -> PrunerSpec:
    if value is None or value == "none":
        return PrunerSpec()
    if isinstance(value, str):
        value = {"type": value}
    mapping = want_mapping(value, "pruner", ctx)
    check_keys(mapping, "pruner", PRUNER_KEYS, ctx, required=("type",))
    return PrunerSpec(
        kind=want_choice(mapping["type"], "pruner.type", ctx, PRUNERS),
        startup_trials=want_int(mapping.get("startup_trials", 2), "pruner.startup_trials", ctx,
                                low=0),
        warmup_steps=want_int(mapping.get("warmup_steps", 0), "pruner.warmup_steps", ctx,
                              low=0),
    )
