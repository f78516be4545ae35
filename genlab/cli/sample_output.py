"""Writers for ``genlab sample`` results: a rich side-by-side table, JSONL, CSV and Markdown.

Owns the output formats and their exact shapes:

* JSONL: one object per generated row with exactly the keys ``prompt``, ``messages`` (the
  conversation sent through the chat template, system message included; null for a raw-text
  row), ``params`` (every sampling parameter by name), ``seed``, ``sample_index``, ``text``
  (the reply only), ``token_ids``, ``finish_reason``, ``adapter`` (null for the base model),
  ``runtime`` (how the model ran: ``device``, ``dtype``, ``quantize``, ``threads``), plus
  ``logprobs`` only when logprobs were requested.
* CSV: one line per row, the parameters flattened into their own columns (lists as JSON).
* Markdown and the terminal table: one table per prompt, one column per setting (the header
  shows the settings that vary), one line per sample index; each cell shows the text with its
  finish reason and token count beneath.

The text formats are built in memory and returned as strings, so the caller can write them
atomically or not at all (Ctrl-C). ``rich`` is imported only inside ``render_tables``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from genlab.core.configs import SAMPLING_FIELDS, SamplingParams, knob_fields
from genlab.core.generation.grid import (
    GridCell,
    GridRow,
    cell_label,
    describe_params,
    sample_record,
)

PARAM_COLUMNS = SAMPLING_FIELDS
_ADVANCED = frozenset(kf.name for kf in knob_fields(SamplingParams) if kf.knob.advanced)
_DEFAULTS = SamplingParams().to_dict()
CSV_COLUMNS = ("prompt", "adapter", *PARAM_COLUMNS, "seed", "sample_index", "finish_reason",
               "num_tokens", "text", "messages")


@dataclass(frozen=True)
class SampleResult:
    """One finished row of the grid.

    Attributes:
        row: The grid row (prompt index, cell, sample index, request with its seed).
        text: Generated text (stop string excluded).
        token_ids: Generated token ids.
        finish_reason: ``length``, ``stop``, ``eos`` or ``cancelled``.
        logprobs: Per-token records when logprobs were requested, else None.
        messages: The conversation sent through the chat template, or None for raw text.
        runtime: ``LoadedModel.runtime`` (device, dtype, quantize, threads), or None.
    """

    row: GridRow
    text: str
    token_ids: tuple[int, ...]
    finish_reason: str
    logprobs: list[dict[str, Any]] | None = None
    messages: list[dict[str, str]] | None = None
    runtime: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSONL object of this row (key set documented in the module docstring)."""
        data = sample_record(self.row, self.text, self.token_ids, self.finish_reason,
                             self.messages)
        if self.runtime is not None:
            data["runtime"] = self.runtime
        if self.logprobs is not None:
            data["logprobs"] = self.logprobs
        return data


def finite_or_none(x: float) -> float | None:
    """``x`` unless it is inf/nan (JSON has no such numbers), else None."""
    return x if math.isfinite(x) else None


def to_jsonl(results: Sequence[SampleResult]) -> str:
    """One JSON object per line (UTF-8 text kept as is, strict JSON: no NaN/Infinity)."""
    return "".join(json.dumps(r.to_json(), ensure_ascii=False, allow_nan=False) + "\n"
                   for r in results)


def to_csv(results: Sequence[SampleResult]) -> str:
    """RFC 4180 CSV with a header; lists (``stop``, ``logit_bias``...) are JSON, booleans
    true/false."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in results:
        req = r.row.request
        params = req.params.to_dict()
        for name, value in params.items():
            if isinstance(value, list):
                params[name] = json.dumps(value, ensure_ascii=False)
            elif isinstance(value, bool):
                params[name] = "true" if value else "false"
        writer.writerow([req.prompt, req.adapter or "", *(params[c] for c in PARAM_COLUMNS),
                         req.seed, r.row.sample_index, r.finish_reason, len(r.token_ids),
                         r.text, json.dumps(r.messages, ensure_ascii=False) if r.messages
                         else ""])
    return buf.getvalue()


def _grouped(results: Sequence[SampleResult], num_prompts: int, num_samples: int,
             num_cells: int) -> list[list[list[SampleResult | None]]]:
    """results[prompt][sample][cell], None where a row has no result."""
    grid: list[list[list[SampleResult | None]]] = [
        [[None] * num_cells for _ in range(num_samples)] for _ in range(num_prompts)]
    for r in results:
        grid[r.row.prompt_index][r.row.sample_index][r.row.cell.index] = r
    return grid


def _labels(cells: Sequence[GridCell], varying: Sequence[str]) -> list[str]:
    show_adapter = any(c.adapter for c in cells)
    return [cell_label(c, varying, show_adapter) for c in cells]


def fixed_settings(cells: Sequence[GridCell], varying: Sequence[str]) -> str:
    """The settings every column shares, e.g. ``p=1 min-p=0 rep=1 max=64`` (the advanced
    knobs only where they are not at their default)."""
    shared = cells[0].params.to_dict()
    fields = [f for f in PARAM_COLUMNS if f not in varying
              and (f not in ("stop", "ignore_eos") or shared[f])
              and (f not in _ADVANCED or shared[f] != _DEFAULTS[f])]
    return describe_params(cells[0].params, fields)


def _footer(r: SampleResult) -> str:
    return f"{r.finish_reason} · {len(r.token_ids)} tok"


def _md_escape(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", "")
    return text.replace("\n", "<br>")


def to_markdown(results: Sequence[SampleResult], prompts: Sequence[str],
                cells: Sequence[GridCell], varying: Sequence[str], num_samples: int) -> str:
    """A heading, the prompt and one GitHub-flavoured table per prompt."""
    labels = _labels(cells, varying)
    grid = _grouped(results, len(prompts), num_samples, len(cells))
    out = []
    for p, prompt in enumerate(prompts):
        out.append(f"## Prompt {p + 1}\n")
        out.append("> " + _md_escape(prompt) + "\n")
        fixed = fixed_settings(cells, varying)
        if fixed:
            out.append(f"All columns: `{fixed}`\n")
        out.append("| sample | seed | " + " | ".join(_md_escape(x) for x in labels) + " |")
        out.append("|---:|---:|" + "---|" * len(labels))
        for s, line in enumerate(grid[p]):
            seed = next((r.row.request.seed for r in line if r is not None), "")
            cells_md = [_md_escape(r.text) + f"<br>*{_footer(r)}*" if r else "" for r in line]
            out.append(f"| {s} | {seed} | " + " | ".join(cells_md) + " |")
        out.append("")
    return "\n".join(out)


def _fit_title_and_caption(console: Any, table: Any, title: Any, caption: str) -> None:
    """Widen a narrow table (its text columns only) so that its title and caption fit on one
    line each, as far as the console allows: rich wraps both to the table's width."""
    from rich.measure import Measurement

    natural = Measurement.get(console, console.options, table).maximum
    wanted = max(len(title.plain.splitlines()[0]) if title.plain else 0, len(caption)) + 2
    if natural < wanted:
        table.width = min(wanted, console.width)
        table.expand = True  # the extra width goes to the ratio (text) columns


def render_tables(console: Any, results: Sequence[SampleResult], prompts: Sequence[str],
                  cells: Sequence[GridCell], varying: Sequence[str], num_samples: int,
                  seed: int = 0) -> None:
    """Print one rich table per prompt on ``console`` (a ``rich.console.Console``).

    Rows are sample indices; the caption gives the shared settings and the base seed (sample
    ``i`` has the same seed in every column, so columns differ only by their settings).
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    labels = _labels(cells, varying)
    grid = _grouped(results, len(prompts), num_samples, len(cells))
    fixed = fixed_settings(cells, varying)
    for p, prompt in enumerate(prompts):
        title = Text(f"Prompt {p + 1}: ", style="bold") + Text(prompt)
        caption = ((f"all columns: {fixed} · " if fixed else "") + f"seed {seed}"
                   + (" · each # shares its seed across columns" if num_samples > 1 else ""))
        table = Table(title=title, caption=caption, box=box.ROUNDED, show_lines=True,
                      expand=False, title_justify="left")
        table.add_column("#", justify="right", style="dim", no_wrap=True)
        for label in labels:
            table.add_column(label, overflow="fold", ratio=1, min_width=12)
        for s, line in enumerate(grid[p]):
            head = Text(str(s))
            cols = [Text(r.text) + Text("\n" + _footer(r), style="dim italic") if r
                    else Text("—", style="dim") for r in line]
            table.add_row(head, *cols)
        _fit_title_and_caption(console, table, title, caption)
        console.print(table)
        console.print()
