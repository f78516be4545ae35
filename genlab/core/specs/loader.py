"""The top of spec handling: read a spec (file or mapping), apply ``--set`` overrides and
variables, decide its kind and hand it to the parser of that kind.

``load_spec`` is what ``genlab compare``, ``genlab sweep``, the TUI and the Python API call;
the shared rules live in ``specs.common`` and each kind's meaning in ``specs.compare`` and
``specs.sweep``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from genlab import assets
from genlab.core.errors import GenlabError
from genlab.core.specs.common import (
    DEFAULT_MODEL,
    SpecContext,
    apply_overrides,
    read_spec_file,
    substitute_vars,
    want_choice,
)
from genlab.core.specs.compare import CompareSpec, parse_compare_spec
from genlab.core.specs.sweep import SweepSpec, parse_sweep_spec

SPEC_KINDS = ("compare", "sweep")


class SpecModelError(GenlabError, LookupError):
    """The spec's model does not exist (one line starting ``model:``)."""


def load_spec(spec: str | Path | Mapping[str, Any], *, overrides: Iterable[str] = (),
              model: str | None = None, expect: str | None = None
              ) -> CompareSpec | SweepSpec:
    """Read, override, substitute and validate a spec; returns a CompareSpec or SweepSpec.

    Args:
        spec: A spec file path, or an already-parsed mapping (Python API; ``${spec_dir}`` is
            then the current directory).
        overrides: ``key.path=value`` strings applied before validation (``--set``).
        model: Replaces the spec's ``model`` (``--model``).
        expect: ``compare`` or ``sweep``: the command running it; a spec of the other kind (or
            with keys of the other kind) is an error.

    Raises:
        SpecError: Anything wrong, as one line naming the file and key path.
    """
    if isinstance(spec, Mapping):
        data: dict[str, Any] = _deep_copy(dict(spec))
        ctx = SpecContext("<spec>", Path.cwd())
    else:
        data, ctx = read_spec_file(spec)
    apply_overrides(data, overrides, ctx)
    if model is not None:
        data["model"] = model
    data = substitute_vars(data, ctx)
    if _kind(data, ctx, expect) == "compare":
        return parse_compare_spec(data, ctx)
    return parse_sweep_spec(data, ctx)


def _kind(data: dict[str, Any], ctx: SpecContext, expect: str | None) -> str:
    if "kind" in data:
        kind = want_choice(data["kind"], "kind", ctx, SPEC_KINDS)
    elif "search" in data and "axes" not in data:
        kind = "sweep"
    elif "axes" in data or "paired" in data or "prompts" in data:
        kind = "compare"
    elif expect is not None:
        kind = expect
    else:
        raise ctx.error("kind", "is required (compare or sweep): the spec has neither axes "
                                "nor search")
    if expect is not None and kind != expect:
        raise ctx.error("kind", f"this is a {kind} spec; run it with genlab {kind}")
    return kind


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_deep_copy(v) for v in value]
    return value


def resolve_model(name: str | None) -> str:
    """The model to load for a spec's ``model`` (``default``/None: genlab's shipped model).

    Raises:
        SpecModelError: A local model path that does not exist, or no default model installed;
            one line starting ``model:`` (the spec key), saying what to do.
    """
    try:
        return assets.resolve_model(None if name == DEFAULT_MODEL else name)
    except assets.ModelNotFound as err:
        raise SpecModelError(f"model: {err}; set model: ID|DIR in the spec or pass --model"
                             ) from None
