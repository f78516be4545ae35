"""Compare specs: the sampling comparisons ``genlab compare`` runs, parsed and expanded.

Owns what a ``kind: compare`` spec means (reference: ``docs/specs.md``): one model (plus named
LoRA adapters), a prompt set, base sampling settings, and axes. ``axes`` are crossed (every
combination, in spec order, the last axis varying fastest); each group under ``paired`` is
zipped (its lists have equal lengths, position i of each list forms one setting) and then
crossed with the rest. ``adapter`` is an axis like the sampling fields (values: ``base`` or an
adapter name); with adapters but no ``adapter`` axis, every setting runs on the base model and
on each adapter, side by side. A cell is one combination; each cell generates ``samples``
samples for every prompt, and sample i has the same seed in every cell (``generation.grid``).
A prompt is a string or an OpenAI-style conversation (``{messages: [...]}``); ``chat``,
``system`` and ``truncate_prompt`` apply to every prompt as in ``genlab sample``, and
``gguf_file`` picks the file when ``model`` is a directory holding several GGUF files.
``threads``, ``quantize`` and ``compile`` say how the model runs (``configs.runtime``; int8
changes the answers, so it is part of what a resumed output directory must match; threads and
compile are not).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from genlab.core.configs import SAMPLING_FIELDS, ConfigError, SamplingParams
from genlab.core.configs.runtime import QUANTIZE
from genlab.core.configs.sampling import TRUNCATE_CHOICES, message_dicts
from genlab.core.configs.training import DEVICE_EXPECTED, DTYPE_NAMES, valid_device
from genlab.core.generation.grid import SHORT_NAMES, format_param
from genlab.core.generation.prompts import (
    Prompt,
    PromptFileError,
    load_prompt_set,
    prompt_from_value,
)
from genlab.core.specs.common import (
    DEFAULT_MODEL,
    SpecContext,
    check_keys,
    config_error,
    describe,
    want_bool,
    want_choice,
    want_int,
    want_list,
    want_mapping,
    want_str,
)

COMPARE_KEYS = ("kind", "name", "description", "vars", "model", "gguf_file", "device", "dtype",
                "adapters", "prompts", "chat", "system", "truncate_prompt", "base", "axes",
                "paired", "samples", "seed", "batch_size", "threads", "quantize", "compile")
PROMPTING_DEFAULTS = {"chat": None, "system": None, "truncate_prompt": "error",
                      "gguf_file": None, "threads": None, "quantize": "none",
                      "compile": False}
"""Keys stored in ``spec.json`` only when set (older output directories keep resuming)."""
BASE_KEYS = SAMPLING_FIELDS
"""``base`` takes every sampling knob (``SamplingParams``' fields), by its field name."""
AXIS_FIELDS = (*SAMPLING_FIELDS, "adapter")
"""An axis may vary any sampling knob (numbers, ``sampler_order``, ``logit_bias``...) or the
adapter."""
BASE_ADAPTER = "base"


@dataclass(frozen=True)
class Axis:
    """One dimension of the comparison.

    Attributes:
        fields: The field it sets: one for a crossed axis, several for a paired group.
        values: One tuple per position, holding a value for each of ``fields``.
    """

    fields: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class CompareCell:
    """One column of the comparison: a combination of axis values.

    Attributes:
        index: Position in ``CompareSpec.cells()`` (display order).
        params: The cell's full sampling settings.
        adapter: The adapter's name, or None for the base model.
        settings: The axis values that define the cell (``{"temperature": 0.7, ...}``).
        label: Compact header, e.g. ``T=0.7 k=40`` (``kind T=0.7`` with adapters).
    """

    index: int
    params: SamplingParams
    adapter: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def key(self) -> str:
        """Canonical identity of the cell (settings and adapter), stable across runs."""
        return json.dumps({"params": self.params.to_dict(), "adapter": self.adapter},
                          sort_keys=True)


@dataclass(frozen=True)
class CompareSpec:
    """A validated compare spec (see the module docstring)."""

    name: str
    prompts: tuple[str, ...]
    base: SamplingParams
    axes: tuple[Axis, ...] = ()
    model: str = DEFAULT_MODEL
    adapters: tuple[tuple[str, str], ...] = ()
    samples: int = 1
    seed: int = 0
    batch_size: int = 16
    device: str = "auto"
    dtype: str = "auto"
    description: str = ""
    source: str = ""
    messages: tuple[tuple[tuple[str, str], ...] | None, ...] = ()
    """Per prompt: its conversation, or None for a text prompt (empty: all text)."""
    chat: bool | None = None
    system: str | None = None
    truncate_prompt: str = "error"
    gguf_file: str | None = None
    threads: int | None = None
    """CPU threads for the model (None: the physical cores)."""
    quantize: str = "none"
    """Weight quantization (``configs.runtime.QUANTIZE``)."""
    compile: bool = False
    """Decode with a ``torch.compile``d step."""

    kind = "compare"

    @property
    def prompt_items(self) -> list[Prompt]:
        """The prompts as ``Prompt`` (texts and conversations), in order."""
        convs = self.messages or (None,) * len(self.prompts)
        return [Prompt(text, conv) for text, conv in zip(self.prompts, convs, strict=True)]

    @property
    def prompting(self) -> dict[str, Any]:
        """``chat``, ``system`` and ``truncate_prompt`` for ``build_rows``."""
        return {"chat": self.chat, "system": self.system,
                "truncate_prompt": self.truncate_prompt}

    def cells(self) -> list[CompareCell]:
        """Every combination of the axes, in order (the last axis varies fastest)."""
        show_adapter = any("adapter" in a.fields for a in self.axes)
        cells = []
        for i, combo in enumerate(itertools.product(*(a.values for a in self.axes))):
            settings: dict[str, Any] = {}
            for axis, values in zip(self.axes, combo, strict=True):
                settings.update(zip(axis.fields, values, strict=True))
            adapter = settings.get("adapter")
            adapter = None if adapter in (None, BASE_ADAPTER) else adapter
            knobs = {k: v for k, v in settings.items() if k != "adapter"}
            params = replace(self.base, **knobs)
            cells.append(CompareCell(i, params, adapter, settings,
                                     cell_label(settings, show_adapter)))
        return cells

    @property
    def rows_per_cell(self) -> int:
        """Generations per cell: prompts x samples."""
        return len(self.prompts) * self.samples

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec as JSON-able data (stored as the output's ``spec.json``)."""
        return {
            "kind": "compare", "name": self.name, "description": self.description,
            "model": self.model, "device": self.device, "dtype": self.dtype,
            "adapters": dict(self.adapters), "prompts": list(self.prompts),
            "base": self.base.to_dict(),
            "axes": [{"fields": list(a.fields), "values": [list(v) for v in a.values]}
                     for a in self.axes],
            "samples": self.samples, "seed": self.seed, "batch_size": self.batch_size,
            "source": self.source, **self._prompting_dict(),
        }

    def _prompting_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k, default in PROMPTING_DEFAULTS.items()
                if getattr(self, k) != default}
        if any(m is not None for m in self.messages):
            data["messages"] = [message_dicts(m) for m in self.messages]
        return data

    def identity(self) -> dict[str, Any]:
        """What must match for a rerun into the same output directory to resume it."""
        data = self.to_dict()
        for key in ("description", "source", "batch_size", "device", "dtype"):
            data.pop(key)
        data.pop("threads", None)
        data.pop("compile", None)
        return data


def cell_label(settings: dict[str, Any], show_adapter: bool) -> str:
    """``kind T=0.7 k=40``: the adapter (when shown) then each axis value, compactly."""
    parts = []
    if show_adapter:
        parts.append(str(settings.get("adapter") or BASE_ADAPTER))
    parts += [f"{SHORT_NAMES.get(k, k)}={format_param(k, v)}" for k, v in settings.items()
              if k != "adapter"]
    return " ".join(parts) or "output"


# ----------------------------------------------------------------------------- parsing


def parse_compare_spec(data: dict[str, Any], ctx: SpecContext) -> CompareSpec:
    """Validate a raw compare mapping (after overrides and variables) into a ``CompareSpec``.

    Raises:
        SpecError: The first problem, naming its key path.
    """
    check_keys(data, "", COMPARE_KEYS, ctx, required=("prompts",))
    name = _name(data, ctx)
    model = DEFAULT_MODEL if data.get("model") in (None, "") else want_str(
        data["model"], "model", ctx)
    adapters = _adapters(data.get("adapters"), ctx)
    items = _prompts(data["prompts"], ctx)
    prompting = _prompting(data, ctx)
    base = _base(data.get("base", {}), ctx)
    axes = _axes(data.get("axes", {}), data.get("paired", []), base, adapters, ctx)
    messages = tuple(p.messages for p in items) if any(p.messages for p in items) else ()
    if messages and prompting["chat"] is False:
        raise ctx.error("chat", "the prompts hold conversations (messages), which need the "
                                "chat template; drop chat: false")
    return CompareSpec(
        name=name, prompts=tuple(p.text for p in items), messages=messages, **prompting,
        base=base, axes=axes, model=model, adapters=adapters,
        samples=want_int(data.get("samples", 1), "samples", ctx, low=1),
        seed=want_int(data.get("seed", 0), "seed", ctx, low=0, high=2**63 - 1),
        batch_size=want_int(data.get("batch_size", 16), "batch_size", ctx, low=1),
        device=_device(data.get("device", "auto"), ctx),
        dtype=want_choice(data.get("dtype", "auto"), "dtype", ctx, DTYPE_NAMES),
        threads=None if data.get("threads") is None else want_int(
            data["threads"], "threads", ctx, low=1),
        quantize=want_choice(data.get("quantize", "none"), "quantize", ctx, QUANTIZE),
        compile=want_bool(data.get("compile", False), "compile", ctx),
        description=str(data.get("description", "") or "").strip(),
        source=ctx.source,
    )


def _device(value: Any, ctx: SpecContext) -> str:
    device = want_str(value, "device", ctx)
    if not valid_device(device):
        raise ctx.error("device", f"expected {DEVICE_EXPECTED}, got {describe(device)}")
    return device


def _name(data: dict[str, Any], ctx: SpecContext) -> str:
    if "name" in data:
        return want_str(data["name"], "name", ctx)
    stem = Path(ctx.source).stem
    return stem if stem and not stem.startswith("<") else "compare"


def _adapters(value: Any, ctx: SpecContext) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    mapping = want_mapping(value, "adapters", ctx)
    out = []
    for name, path in mapping.items():
        if name == BASE_ADAPTER:
            raise ctx.error(f"adapters.{name}", "'base' names the model without adapters; "
                                                "choose another name")
        out.append((name, want_str(path, f"adapters.{name}", ctx)))
    return tuple(out)


def _prompts(value: Any, ctx: SpecContext) -> list[Prompt]:
    if isinstance(value, str):
        try:
            return load_prompt_set(value)
        except PromptFileError as err:
            raise ctx.error("prompts", f"{value}: {err}") from None
    items = want_list(value, "prompts", ctx)
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            out.append(Prompt(want_str(item, f"prompts[{i}]", ctx)))
            continue
        try:
            out.append(prompt_from_value(want_mapping(item, f"prompts[{i}]", ctx)))
        except PromptFileError as err:
            raise ctx.error(f"prompts[{i}]", str(err)) from None
    return out


def _prompting(data: dict[str, Any], ctx: SpecContext) -> dict[str, Any]:
    """``chat``, ``system``, ``truncate_prompt`` and ``gguf_file``, checked."""
    chat = data.get("chat")
    if chat is not None:
        want_bool(chat, "chat", ctx)
    system = data.get("system")
    if system is not None:
        want_str(system, "system", ctx)
        if chat is False:
            raise ctx.error("system", "a system message needs the chat template; drop "
                                      "chat: false")
    gguf = data.get("gguf_file")
    return {"chat": chat, "system": system,
            "truncate_prompt": want_choice(data.get("truncate_prompt", "error"),
                                           "truncate_prompt", ctx, TRUNCATE_CHOICES),
            "gguf_file": None if gguf is None else want_str(gguf, "gguf_file", ctx)}


def _base(value: Any, ctx: SpecContext) -> SamplingParams:
    mapping = want_mapping(value, "base", ctx)
    check_keys(mapping, "base", BASE_KEYS, ctx)
    fields = dict(mapping)
    if "stop" in fields:
        stop = fields["stop"]
        stops = [stop] if isinstance(stop, str) else want_list(stop, "base.stop", ctx)
        for i, s in enumerate(stops):
            if not isinstance(s, str) or not s:
                raise ctx.error(f"base.stop[{i}]", f"expected a non-empty string, got "
                                                   f"{describe(s)}")
        fields["stop"] = tuple(stops)
    if "ignore_eos" in fields:
        want_bool(fields["ignore_eos"], "base.ignore_eos", ctx)
    try:
        return SamplingParams(**fields)
    except ConfigError as err:
        raise config_error(ctx, "base", err) from None


def _axes(crossed: Any, paired: Any, base: SamplingParams,
          adapters: tuple[tuple[str, str], ...], ctx: SpecContext) -> tuple[Axis, ...]:
    crossed = want_mapping(crossed if crossed is not None else {}, "axes", ctx)
    groups = want_list(paired if paired is not None else [], "paired", ctx, nonempty=False)
    check_keys(crossed, "axes", AXIS_FIELDS, ctx)
    names = {n for n, _ in adapters}
    axes: list[Axis] = []
    seen: dict[str, str] = {}
    for field_name, values in crossed.items():
        path = f"axes.{field_name}"
        seen[field_name] = path
        axes.append(Axis((field_name,), tuple(
            (v,) for v in _axis_values(field_name, values, path, base, names, ctx))))
    for g, group in enumerate(groups):
        gpath = f"paired[{g}]"
        group = want_mapping(group, gpath, ctx)
        check_keys(group, gpath, AXIS_FIELDS, ctx)
        if len(group) < 2:
            raise ctx.error(gpath, "a paired group zips two or more axes; put a single axis "
                                   "under axes:")
        columns, first = [], None
        for field_name, values in group.items():
            path = f"{gpath}.{field_name}"
            if field_name in seen:
                raise ctx.error(path, f"{field_name} is already an axis at {seen[field_name]}")
            seen[field_name] = path
            column = _axis_values(field_name, values, path, base, names, ctx, distinct=False)
            if first is not None and len(column) != len(first[1]):
                raise ctx.error(path, f"has {len(column)} values but {first[0]} has "
                                      f"{len(first[1])}; paired axes need equal lengths")
            first = first or (path, column)
            columns.append(column)
        combos = tuple(zip(*columns, strict=True))
        if len(set(map(repr, combos))) != len(combos):  # a column may repeat; a setting not
            raise ctx.error(gpath, "lists the same combination twice")
        axes.append(Axis(tuple(group), combos))
    if adapters and "adapter" not in seen:
        axes.append(Axis(("adapter",), tuple((v,) for v in (BASE_ADAPTER, *names))))
    return tuple(axes)


def _axis_values(field_name: str, values: Any, path: str, base: SamplingParams,
                 adapters: set[str], ctx: SpecContext, distinct: bool = True) -> list[Any]:
    items = want_list(values, path, ctx)
    for i, value in enumerate(items):
        where = f"{path}[{i}]"
        if field_name == "adapter":
            if value != BASE_ADAPTER and value not in adapters:
                known = ", ".join([BASE_ADAPTER, *sorted(adapters)])
                raise ctx.error(where, f"expected an adapter name ({known}), got "
                                       f"{describe(value)}")
            continue
        try:
            replace(base, **{field_name: value})
        except ConfigError as err:
            raise ctx.error(where, f"expected {err.expected}, got {describe(value)}") from None
    if distinct and len(set(map(repr, items))) != len(items):
        raise ctx.error(path, "lists a value twice")
    return items
