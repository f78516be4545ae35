"""The ``--threads`` / ``--quantize`` options of the commands that run a model, and their parsing.

Generated from ``RuntimeConfig``'s knobs (``genlab.core.configs.runtime``), so ``genlab
sample``, ``tui``, ``compare`` and ``merge`` spell, explain and check them alike; training
commands take ``threads`` from ``TrainConfig`` instead. Standard library and typer only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from genlab.cli.common import UsageError, config_error_line
from genlab.cli.options import knob_options, parse_knobs
from genlab.core.configs import ConfigError
from genlab.core.configs.runtime import THREADS_DEFAULT, RuntimeConfig

RUNTIME_FIELDS = ("threads", "quantize", "compile")


def runtime_options(include: Iterable[str] = RUNTIME_FIELDS, *, panel: str | None = None,
                    threads_default: str = THREADS_DEFAULT) -> list[Any]:
    """The typer options of ``RuntimeConfig``'s knobs named in ``include``."""
    return knob_options(RuntimeConfig, include=tuple(include), panel=panel,
                        default_notes={"threads": threads_default})


def parse_runtime(knobs: Mapping[str, Any]) -> RuntimeConfig:
    """The ``RuntimeConfig`` of the raw flag values in ``knobs``; a bad one is a ``UsageError``."""
    raw = {name: knobs.get(name) for name in RUNTIME_FIELDS}
    try:
        return RuntimeConfig(**parse_knobs(RuntimeConfig, raw))
    except ConfigError as err:
        raise UsageError(config_error_line(err, typed=raw)) from None


def spec_overrides(knobs: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``--set``-style overrides (``threads=2``, ``compile=true``) for the runtime flags a
    spec command got."""
    runtime = parse_runtime(knobs)
    out = []
    for name in RUNTIME_FIELDS:
        if knobs.get(name) is not None:
            value = getattr(runtime, name)
            out.append(f"{prefix}{name}={str(value).lower() if isinstance(value, bool) else value}")
    return out
