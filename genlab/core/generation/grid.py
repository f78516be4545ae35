"""Side-by-side grids: the cross product of sampling settings, adapters, prompts and samples.

Owns the one rule every face shares for turning "these knobs, these values" into a flat list
of ``GenerationRequest`` rows, and the deterministic seed of each row. The CLI's
``genlab sample``, a future ``genlab compare`` and the TUI all build their batches here, so
the same command gives the same rows, in the same order, with the same seeds everywhere.

Seeds. A row's seed depends only on the run's base seed and the row's *sample index*, never
on its cell (settings, adapter) or its prompt. Sample ``i`` of every column therefore draws
from the same random stream, so two columns differ only by the knob that separates them
(common random numbers: the whole point of a side-by-side comparison). Sample 0 uses the
base seed itself, so ``--seed 42`` means seed 42 as in any other tool; sample ``i > 0`` uses
the first 63 bits of SHA-256 over ``"genlab-seed:<base>:<i>"``, stable across Python runs,
machines and versions (unlike ``hash()``).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from genlab.core.configs import ConfigError, GenerationRequest, SamplingParams
from genlab.core.configs.sampler_text import (
    canonical_order,
    format_bias,
    format_breakers,
    normalize_logit_bias,
)
from genlab.core.configs.sampling import GRID_FIELDS, SHORT_NAMES
from genlab.core.generation.prompts import Prompt

# GRID_FIELDS and SHORT_NAMES re-exported: the grid vocabulary of every face
__all__ = ["GRID_FIELDS", "SHORT_NAMES", "format_param"]

MAX_SEED = 2**63 - 1


def derive_seed(base_seed: int, sample_index: int) -> int:
    """The seed of sample ``sample_index`` in a run seeded with ``base_seed``.

    Sample 0 keeps ``base_seed``; later samples hash ``(base_seed, sample_index)`` with
    SHA-256 into ``[0, 2**63)``. Cells and prompts do not enter the hash on purpose (see the
    module docstring).

    Raises:
        ConfigError: ``seed`` outside ``[0, 2**63)`` or a negative sample index.
    """
    if isinstance(base_seed, bool) or not isinstance(base_seed, int) \
            or not 0 <= base_seed <= MAX_SEED:
        raise ConfigError("seed", base_seed, "an integer in [0, 2**63)")
    if sample_index < 0:
        raise ConfigError("num_samples", sample_index, "an integer >= 1")
    if sample_index == 0:
        return base_seed
    digest = hashlib.sha256(f"genlab-seed:{base_seed}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & MAX_SEED


def validate_axis(field: str, values: Sequence[Any], base: SamplingParams | None = None) -> None:
    """Check every value of one grid axis on its own, so the error names that value.

    Raises:
        ConfigError: For the first bad value, or when ``field`` is not a grid field or
            ``values`` is empty.
    """
    if field not in GRID_FIELDS:
        raise ConfigError(field, values, "one of " + ", ".join(GRID_FIELDS))
    if not values:
        raise ConfigError(field, values, "at least one value")
    base = base or SamplingParams()
    for value in values:
        replace(base, **{field: value})


def expand_grid(
    axes: Mapping[str, Sequence[Any]], base: SamplingParams | None = None
) -> list[SamplingParams]:
    """Every combination of the axis values, applied on top of ``base``.

    Axes combine in ``GRID_FIELDS`` order with the last field varying fastest (like nested
    loops), so ``{"temperature": [0.7, 1.0], "top_k": [0, 40]}`` gives
    ``T=0.7 k=0, T=0.7 k=40, T=1.0 k=0, T=1.0 k=40``. Fields not in ``axes`` keep ``base``.

    Raises:
        ConfigError: An unknown field, an empty axis or an out-of-range value.
    """
    base = base or SamplingParams()
    for field, values in axes.items():
        validate_axis(field, values, base)
    fields = [f for f in GRID_FIELDS if f in axes]
    return [replace(base, **dict(zip(fields, combo, strict=True)))
            for combo in itertools.product(*(axes[f] for f in fields))]


@dataclass(frozen=True)
class GridCell:
    """One column of a side-by-side comparison: a settings combination on one model.

    Attributes:
        index: Position of the column (0-based, display order).
        params: The column's sampling settings.
        adapter: The LoRA adapter's name, or None for the base model.
    """

    index: int
    params: SamplingParams
    adapter: str | None = None


def build_cells(
    params: Sequence[SamplingParams], adapters: Sequence[str | None] = (None,)
) -> list[GridCell]:
    """Cross settings with models; each setting's adapter columns sit beside its base column."""
    pairs = itertools.product(params, adapters)
    return [GridCell(i, p, a) for i, (p, a) in enumerate(pairs)]


@dataclass(frozen=True)
class GridRow:
    """One generation of the grid: where it sits, and the request that produces it.

    Attributes:
        prompt_index: Index into the prompt list.
        cell: The column it belongs to.
        sample_index: 0-based sample number within its cell (``-n`` samples per cell).
        request: The request to hand to the generator (its ``seed`` is derived).
    """

    prompt_index: int
    cell: GridCell
    sample_index: int
    request: GenerationRequest


def build_rows(
    prompts: Sequence[str | Prompt], cells: Sequence[GridCell], num_samples: int = 1,
    seed: int = 0, *, chat: bool | None = None, system: str | None = None,
    truncate_prompt: str = "error",
) -> list[GridRow]:
    """Every (prompt, cell, sample) row, prompt-major, then cell, then sample.

    Row ``i`` of the result is request ``i`` of the batch; the generator's event ``row``
    indexes back into this list. ``chat``, ``system`` and ``truncate_prompt`` apply to every
    row (see ``GenerationRequest``); a ``Prompt`` conversation becomes the row's ``messages``.

    Raises:
        ConfigError: ``num_samples < 1``, a seed outside ``[0, 2**63)`` or a bad prompt option.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ConfigError("num_samples", num_samples, "an integer >= 1")
    seeds = [derive_seed(seed, s) for s in range(num_samples)]
    items = [p if isinstance(p, Prompt) else Prompt(p) for p in prompts]
    return [
        GridRow(p, cell, s, GenerationRequest(
            prompt.text, cell.params, seeds[s], cell.adapter, prompt.messages, chat, system,
            truncate_prompt))
        for p, prompt in enumerate(items)
        for cell in cells
        for s in range(num_samples)
    ]


def sample_record(row: GridRow, text: str, token_ids: Sequence[int], finish_reason: str,
                  messages: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """One generated row as ``genlab sample -f jsonl`` writes it (and ``genlab.sample``
    returns it): ``prompt``, ``messages`` (the conversation sent, or None for raw text),
    ``params``, ``seed``, ``sample_index``, ``text``, ``token_ids``, ``finish_reason``,
    ``adapter``."""
    req = row.request
    return {
        "prompt": req.prompt,
        "messages": messages,
        "params": req.params.to_dict(),
        "seed": req.seed,
        "sample_index": row.sample_index,
        "text": text,
        "token_ids": list(token_ids),
        "finish_reason": finish_reason,
        "adapter": req.adapter,
    }


def varying_fields(params: Sequence[SamplingParams]) -> list[str]:
    """Names of the parameters that differ between at least two of ``params``."""
    if not params:
        return []
    dicts = [p.to_dict() for p in params]
    return [k for k in dicts[0] if any(d[k] != dicts[0][k] for d in dicts[1:])]


def format_value(value: Any) -> str:
    """Compact display of a parameter value: ``0.7``, ``40``, ``1e-05``, ``on``."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(repr(v) for v in value)
    return str(value)


def describe_params(params: SamplingParams, fields: Sequence[str]) -> str:
    """``T=0.7 k=40`` for the given fields of ``params`` (empty string for no fields)."""
    data = params.to_dict()
    return " ".join(f"{SHORT_NAMES.get(f, f)}={format_param(f, data[f])}" for f in fields)


def format_param(name: str, value: Any) -> str:
    """``format_value``, with the text forms of logit bias and DRY breakers."""
    if name == "logit_bias":
        return format_bias(normalize_logit_bias(value))
    if name == "dry_sequence_breakers":
        return format_breakers(tuple(value))
    if name == "sampler_order":  # a spec may give the stages as a list
        return canonical_order(value)
    return format_value(value)


def cell_label(cell: GridCell, fields: Sequence[str], show_adapter: bool) -> str:
    """Column header: the adapter (``base`` or its name) when asked, then the varying fields."""
    parts = []
    if show_adapter:
        parts.append(cell.adapter or "base")
    desc = describe_params(cell.params, fields)
    if desc:
        parts.append(desc)
    return " ".join(parts) or "output"
