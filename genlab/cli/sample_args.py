"""Turn ``genlab sample``'s raw flag strings into a validated ``SamplePlan``.

Owns every check that can run before the model loads (the fast-failure rule): list parsing
for the grid flags, ranges (through ``SamplingParams``' own validation, so the CLI and the
core never disagree), prompt files, adapter specs, device and dtype spellings, output format
and path. Each failure is a ``UsageError`` whose one-line message names the flag, the value
and the valid range; the command turns it into ``genlab: error: ...`` and exit code 2.

Imports only the standard library and the torch-free parts of the core, and is itself
imported inside the command function, so ``genlab --help`` stays light.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.cli.common import UsageError, flag_for
from genlab.core.configs import ConfigError, SamplingParams, knob_fields
from genlab.core.configs.runtime import RuntimeConfig
from genlab.core.generation.grid import (
    GRID_FIELDS,
    GridCell,
    GridRow,
    build_cells,
    build_rows,
    expand_grid,
    validate_axis,
    varying_fields,
)
from genlab.core.generation.prompts import (
    Prompt,
    PromptFileError,
    check_prompt_length,
    load_prompt_set,
    read_prompt_stream,
)

FORMATS = ("table", "jsonl", "csv", "markdown")
SUFFIX_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".md": "markdown",
                  ".markdown": "markdown", ".txt": "table"}
DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
DTYPES = ("auto", "float32", "bfloat16", "float16", "fp32", "bf16", "fp16")
INT_FIELDS = frozenset(kf.name for kf in knob_fields(SamplingParams) if kf.kind == "int")
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


@dataclass(frozen=True)
class SamplePlan:
    """Everything ``genlab sample`` will do, resolved and checked, before any model loads.

    Attributes:
        model: Hub id or local directory of the model.
        device: Device spelling for ``load_model`` (``auto``, ``cpu``, ``cuda:1``...).
        dtype: Dtype spelling for ``load_model``.
        adapters: Adapter name -> directory, in the order given.
        prompts: The prompts (texts or conversations), ``--prompt`` values first, then the
            file's.
        cells: The columns: settings x (base, adapters...).
        rows: Every (prompt, cell, sample) request, in batch order.
        varying: Sampling fields that differ between columns (shown in headers).
        seed: Base seed (sample 0's seed).
        num_samples: Samples per cell.
        batch_size: Rows per forward pass.
        logprobs: Alternatives per token to record, or None to record no logprobs.
        output_format: One of ``FORMATS``.
        out: Output file, or None for stdout.
        gguf_file: The GGUF file to load inside a directory holding several.
        chat: ``--chat``/``--no-chat`` (None: chat when the model has a template).
        system: ``--system`` text, or None.
        truncate_prompt: ``error`` or ``left``.
        runtime: ``--threads`` and ``--quantize``.
    """

    model: str
    device: str
    dtype: str
    prompts: list[Prompt]
    cells: list[GridCell]
    rows: list[GridRow]
    varying: list[str]
    seed: int
    num_samples: int
    batch_size: int
    output_format: str
    adapters: dict[str, str] = field(default_factory=dict)
    logprobs: int | None = None
    out: Path | None = None
    gguf_file: str | None = None
    chat: bool | None = None
    system: str | None = None
    truncate_prompt: str = "error"
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    @property
    def prompt_texts(self) -> list[str]:
        """How each prompt is titled in tables."""
        return [p.shown for p in self.prompts]


def config_error_message(err: ConfigError, shown_value: str | None = None) -> str:
    """``--top-p 1.5: must be in (0, 1] (1 = off)`` from a core ``ConfigError``."""
    value = shown_value if shown_value is not None else _show(err.value)
    return f"{flag_for(err.field)} {value}: must be {err.expected}"


def _show(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def parse_number_list(field: str, raw: str) -> list[float] | list[int]:
    """Parse ``"0.7"`` or ``"0.5,0.7,1.0"`` for grid field ``field`` and check each value."""
    flag = flag_for(field)
    items = [item.strip() for item in raw.split(",")]
    kind = "an integer" if field in INT_FIELDS else "a number"
    example = "0,40" if field in INT_FIELDS else "0.7,1.0"
    values: list = []
    for item in items:
        if not item:
            raise UsageError(f"{flag} {raw}: empty list item; give one value or a "
                             f"comma-separated list like {example}")
        try:
            value = int(item) if field in INT_FIELDS else float(item)
        except ValueError:
            raise UsageError(f"{flag} {raw}: {item!r} is not {kind}; give one value or a "
                             f"comma-separated list like {example}") from None
        try:
            validate_axis(field, [value])
        except ConfigError as err:
            raise UsageError(config_error_message(err, item)) from None
        values.append(value)
    return values


def parse_int(flag: str, raw: str, minimum: int, what: str) -> int:
    """An integer flag value >= ``minimum``; ``what`` describes the range in the message."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise UsageError(f"{flag} {raw}: not an integer; must be {what}") from None
    if value < minimum:
        raise UsageError(f"{flag} {raw}: must be {what}")
    return value


def unescape(text: str) -> str:
    r"""Expand ``\n``, ``\t``, ``\r`` and ``\\`` (so ``--stop '\n'`` means a newline)."""
    return re.sub(r"\\([ntr\\])", lambda m: ESCAPES[m.group(1)], text)


def parse_adapters(specs: list[str]) -> dict[str, str]:
    """``NAME=DIR`` specs -> {name: dir}; each dir must hold a PEFT ``adapter_config.json``."""
    adapters: dict[str, str] = {}
    for spec in specs:
        name, sep, directory = spec.partition("=")
        name, directory = name.strip(), directory.strip()
        if not sep or not name or not directory:
            raise UsageError(f"--adapter {spec}: expected NAME=DIR, e.g. "
                             "--adapter kind=runs/lora-kind/adapter")
        if name == "base":
            raise UsageError(f"--adapter {spec}: 'base' names the model without adapters; "
                             "pick another name")
        if name in adapters:
            raise UsageError(f"--adapter {spec}: the name {name!r} is given twice; give each "
                             "adapter its own name")
        path = Path(directory).expanduser()
        if not path.is_dir():
            raise UsageError(f"--adapter {spec}: no such directory")
        if not (path / "adapter_config.json").is_file():
            raise UsageError(f"--adapter {spec}: no adapter_config.json in {directory}; pass a "
                             "directory written by genlab train or PEFT save_pretrained")
        adapters[name] = str(path)
    return adapters


def collect_prompts(prompt_args: list[str], prompts_file: str | None) -> list[Prompt]:
    """``--prompt`` values then the prompts of ``--prompts FILE`` (``-`` reads stdin)."""
    texts = [unescape(p) for p in prompt_args]
    for p in texts:
        if not p.strip():
            raise UsageError("--prompt '': a prompt must not be empty")
        try:
            check_prompt_length(p)
        except PromptFileError as err:
            raise UsageError(f"--prompt: {err}") from None
    prompts = [Prompt(p) for p in texts]
    if prompts_file is not None:
        try:
            if prompts_file == "-":
                prompts += read_prompt_stream(sys.stdin.buffer)
            else:
                prompts += load_prompt_set(prompts_file)
        except PromptFileError as err:
            raise UsageError(f"--prompts {prompts_file}: {err}") from None
    if not prompts:
        raise UsageError("no prompt given; pass --prompt TEXT (repeatable) or "
                         "--prompts FILE (.txt one per line, or .jsonl with a \"prompt\" or "
                         "\"messages\" field)")
    return prompts


def resolve_format(fmt: str | None, out: str | None) -> str:
    """The output format: ``--format``, else guessed from ``--out``'s extension, else table."""
    if fmt is not None:
        fmt = fmt.strip().lower()
        if fmt == "md":
            fmt = "markdown"
        if fmt not in FORMATS:
            raise UsageError(f"--format {fmt}: unknown format; choose one of "
                             + ", ".join(FORMATS))
        return fmt
    if out is None:
        return "table"
    suffix = Path(out).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        raise UsageError(f"--out {out}: cannot tell the format from the extension; pass "
                         "--format " + "|".join(FORMATS))
    return SUFFIX_FORMATS[suffix]


def check_out_path(out: str, force: bool = False) -> Path:
    """The ``--out`` path, once its directory exists and is writable; an existing file only
    with ``force`` (genlab never replaces a file it cannot tell it wrote)."""
    path = Path(out).expanduser()
    if path.is_dir():
        raise UsageError(f"--out {out}: is a directory; give a file name")
    if path.exists() and not force:
        raise UsageError(f"--out {out}: already exists; pass --force to replace it, or choose "
                         "another file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--out {out}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"--out {out}: directory {parent} is not writable")
    return path


def check_device(device: str) -> str:
    """``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N`` (availability is checked at load)."""
    device = device.strip().lower()
    if not DEVICE_RE.match(device):
        raise UsageError(f"--device {device}: must be auto, cpu, cuda, cuda:N or mps")
    return device


def check_dtype(dtype: str) -> str:
    """One of ``DTYPES`` (aliases fp32/bf16/fp16 allowed)."""
    dtype = dtype.strip().lower()
    if dtype not in DTYPES:
        raise UsageError(f"--dtype {dtype}: must be auto, float32, bfloat16 or float16")
    return dtype


def parse_prompting(chat: bool | None, system: str | None, truncate: str | None
                    ) -> dict[str, object]:
    """``chat``, ``system`` and ``truncate_prompt`` of every row, checked."""
    if system is not None and not system.strip():
        raise UsageError("--system '': give a system message, or leave --system out")
    if chat is False and system is not None:
        raise UsageError("--system: a system message needs the chat template; drop --no-chat")
    if system is not None:
        try:
            check_prompt_length(system, what="a system message")
        except PromptFileError as err:
            raise UsageError(f"--system: {err}") from None
    truncate = (truncate or "error").strip().lower()
    if truncate not in ("error", "left"):
        raise UsageError(f"--truncate-prompt {truncate}: must be error or left")
    return {"chat": chat, "system": unescape(system) if system is not None else None,
            "truncate_prompt": truncate}


def build_base_params(shared: dict[str, Any]) -> SamplingParams:
    """Settings shared by every column: stop strings, ignore-eos, logit bias, sampler order,
    DRY breakers (raw flag values; None = not given)."""
    stop = shared.get("stop") or []
    if any(not s for s in stop):
        raise UsageError("--stop '': a stop string must not be empty")
    values: dict[str, Any] = {"stop": tuple(unescape(s) for s in stop),
                              "ignore_eos": bool(shared.get("ignore_eos"))}
    if shared.get("logit_bias"):
        values["logit_bias"] = [_bias_entry(e) for e in shared["logit_bias"]]
    for name in ("sampler_order", "dry_sequence_breakers"):
        if shared.get(name) is not None:
            values[name] = shared[name]
    try:
        return SamplingParams(**values)
    except ConfigError as err:
        shown = None
        if err.field == "logit_bias":
            shown = _bad_bias_entry(values["logit_bias"])
        elif err.field in shared and isinstance(shared[err.field], str):
            shown = shared[err.field]
        raise UsageError(config_error_message(err, shown)) from None


def _bad_bias_entry(entries: list[str]) -> str:
    """The first ``--logit-bias`` value that does not parse (all of them if each does)."""
    from genlab.core.configs.sampler_text import parse_bias_entry

    for entry in entries:
        try:
            parse_bias_entry(entry)
        except ValueError:
            return entry
    return " ".join(entries)


def _bias_entry(entry: str) -> str:
    r"""A ``--logit-bias`` value with ``\n``-style escapes expanded in a bare (unquoted) token."""
    token, sep, bias = entry.rpartition("=")
    if not sep or token.strip().startswith('"'):
        return entry
    return f"{unescape(token)}={bias}"


def build_grid(
    axes_raw: dict[str, str | None], base: SamplingParams, adapters: dict[str, str],
    prompts: list[Prompt], num_samples: int, seed: int, prompting: dict | None = None,
) -> tuple[list[GridCell], list[GridRow], list[str]]:
    """Cells, rows and varying fields from the raw grid flag strings (None = default).

    ``prompting`` holds ``chat``, ``system`` and ``truncate_prompt`` for every row.
    """
    axes = {f: parse_number_list(f, raw) for f, raw in axes_raw.items() if raw is not None}
    unknown = set(axes) - set(GRID_FIELDS)
    if unknown:
        raise UsageError(f"unknown grid field(s): {', '.join(sorted(unknown))}")
    try:
        params = expand_grid(axes, base)
        cells = build_cells(params, [None, *adapters])
        rows = build_rows(prompts, cells, num_samples, seed, **(prompting or {}))
    except ConfigError as err:
        raise UsageError(config_error_message(err)) from None
    return cells, rows, varying_fields(params)
