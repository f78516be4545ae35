"""Run a compare spec: every cell's samples, batched, one ``results.jsonl`` row per cell.

Owns the execution of ``genlab compare`` (the spec itself: ``genlab.core.specs.compare``; the
directory contract: ``genlab.core.reports.results``). ``iter_compare`` loads the model and adapters,
skips the cells already in ``results.jsonl``, runs the rest through ``iter_generate`` in
batches of whole cells (rows come from ``generation.grid.build_rows``, so sample i has the same
seed in every cell), appends each cell's row as soon as all its generations are done, and
writes the report at the end. A stop (or kill) loses at most the cells in flight; rerunning
into the same directory finishes the rest. Every prompt is encoded (chat template, context
check) before the output directory is opened, so a prompt that cannot run writes nothing.

Each output also records ``base_logprob``: the summed log-probability of its tokens under the
base model (``generation.scoring``, one batched forward per finished cell), the report's
quality measure beside distinct bigrams.

Events (``genlab.core.experiments.events``): ``CompareStarted``, then the generator's
``RowFinished`` per generation (for progress) and ``CellFinished`` per cell, then
``CompareFinished``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genlab.core.configs import ConfigError
from genlab.core.configs.sampling import message_dicts
from genlab.core.events import RowFinished, StopToken
from genlab.core.experiments.events import CellFinished, CompareFinished, CompareStarted
from genlab.core.generation.decode import iter_generate
from genlab.core.generation.grid import GridCell, build_rows
from genlab.core.generation.model_call import vocab_size
from genlab.core.generation.prompting import (
    ContextLimitError,
    PromptError,
    encode_requests,
    sent_messages,
    uses_chat,
)
from genlab.core.generation.sampling import resolve_logit_bias
from genlab.core.generation.scoring import score_continuations
from genlab.core.modeling.loading import load_model
from genlab.core.reports.report import write_compare_report
from genlab.core.reports.results import (
    RESULTS_FILE,
    append_row,
    check_out_dir,
    default_out_dir,
    open_out_dir,
    read_rows,
)
from genlab.core.specs.common import SpecError
from genlab.core.specs.compare import CompareCell, CompareSpec
from genlab.core.specs.loader import resolve_model

CompareEvent = CompareStarted | RowFinished | CellFinished | CompareFinished


def prepare_compare(spec: CompareSpec, out_dir: str | Path | None = None, *,
                    force: bool = False) -> tuple[Path, str, str]:
    """Resolve the output directory and model before anything is loaded or written.

    Returns:
        ``(out_dir, model, state)``; ``state`` as ``reports.results.check_out_dir`` says.

    Raises:
        OutDirError: ``out_dir`` holds something else.
        LookupError: No model given and no default model installed.
    """

    out = Path(out_dir) if out_dir is not None else default_out_dir("compare", spec.name)
    state = check_out_dir(out, "compare", spec.identity(), force=force)
    return out, resolve_model(spec.model), state


def iter_compare(spec: CompareSpec, out_dir: str | Path | None = None, *,
                 stop_token: StopToken | None = None, loaded: Any = None,
                 force: bool = False) -> Iterator[CompareEvent]:
    """Run ``spec`` into ``out_dir`` (default ``runs/compare-<timestamp>-<name>``).

    Args:
        spec: The validated spec.
        out_dir: Output directory; an existing one of the same spec is resumed.
        stop_token: Ends the run after the cells in flight are cancelled (their rows are not
            written; a rerun redoes them).
        loaded: An already-loaded model to use instead of loading ``spec.model`` (tests, TUI).
        force: Replace an ``out_dir`` that holds something else (``--force``).

    Raises:
        OutDirError, LookupError, ModelLoadError, PromptError, ContextLimitError: Before
            anything is written.
    """

    start = time.perf_counter()
    out, model, state = prepare_compare(spec, out_dir, force=force)
    if loaded is None:
        loaded = load_model(model, device=spec.device, dtype=spec.dtype,
                            adapters=dict(spec.adapters) or None, gguf_file=spec.gguf_file,
                            threads=spec.threads, quantize=spec.quantize,
                            compile=spec.compile)
    cells = spec.cells()
    first = [GridCell(c.index, c.params, c.adapter) for c in cells]
    _check_prompts(spec, loaded, first)
    _check_logit_bias(spec, loaded, first)
    stop = stop_token or StopToken()
    open_out_dir(out, spec.to_dict(), spec.identity(), state)
    results = out / RESULTS_FILE
    done = {row.get("key") for row in read_rows(results)}
    pending = [c for c in cells if c.key not in done]
    memory = getattr(loaded, "memory_text", None)
    yield CompareStarted(str(out), loaded.describe() + (f" · {memory()}" if memory else ""),
                         len(cells), len(cells) - len(pending),
                         len(pending) * spec.rows_per_cell)
    finished = 0
    for chunk in _chunks(pending, spec.rows_per_cell, spec.batch_size):
        grid_cells = [GridCell(c.index, c.params, c.adapter) for c in chunk]
        rows = build_rows(spec.prompt_items, grid_cells, spec.samples, spec.seed,
                          **spec.prompting)
        by_cell: dict[int, list[tuple[Any, RowFinished]]] = {c.index: [] for c in chunk}
        for event in iter_generate(loaded, [r.request for r in rows], token_events=False,
                                   batch_size=spec.batch_size, stop_token=stop):
            if not isinstance(event, RowFinished):
                continue
            yield event
            if event.reason == "cancelled":
                continue
            grid_row = rows[event.row]
            bucket = by_cell[grid_row.cell.index]
            bucket.append((grid_row, event))
            if len(bucket) == spec.rows_per_cell:
                cell = next(c for c in chunk if c.index == grid_row.cell.index)
                row = cell_row(spec, cell, bucket, loaded.tokenizer,
                               _base_logprobs(loaded, bucket),
                               getattr(loaded, "runtime", None))
                append_row(results, row)
                finished += 1
                yield CellFinished(cell.index, cell.label, row)
        if stop.stopped:
            break
    cancelled = finished < len(pending)
    report = ""
    if not cancelled:

        report = str(write_compare_report(out))
    yield CompareFinished(str(out), finished, len(cells) - len(pending), cancelled, report,
                          time.perf_counter() - start)


def _check_prompts(spec: CompareSpec, loaded: Any, cells: list[GridCell]) -> None:
    """Encode every prompt x cell once (template, context) before anything is written.

    Raises:
        PromptError: Naming the prompt (``prompts[i]``) and what is wrong with it.
    """
    rows = build_rows(spec.prompt_items, cells, 1, spec.seed, **spec.prompting)
    try:
        encode_requests(loaded, [r.request for r in rows])
    except (ContextLimitError, PromptError) as err:
        index = rows[getattr(err, "row", 0) or 0].prompt_index
        raise PromptError(f"prompts[{index}]: {err}") from None


def _check_logit_bias(spec: CompareSpec, loaded: Any, cells: list[GridCell]) -> None:
    """Every cell's ``logit_bias`` tokens must be in this model's vocabulary (checked before
    anything is written).

    Raises:
        SpecError: Naming ``logit_bias``, the entry and the vocabulary's range.
    """
    vocab = vocab_size(loaded)
    for entries in dict.fromkeys(c.params.logit_bias for c in cells if c.params.logit_bias):
        try:
            resolve_logit_bias(loaded.tokenizer, entries, vocab)
        except ConfigError as err:
            raise SpecError(spec.source or "<spec>", "logit_bias",
                            f"expected {err.expected}, got {err.value}") from None


def _chunks(cells: list[CompareCell], rows_per_cell: int, batch_size: int
            ) -> Iterator[list[CompareCell]]:
    """Whole cells per generator call, about ``batch_size`` rows each (at least one cell)."""
    per_chunk = max(1, batch_size // max(1, rows_per_cell))
    for i in range(0, len(cells), per_chunk):
        yield cells[i:i + per_chunk]


def _base_logprobs(loaded: Any, done: list[tuple[Any, RowFinished]]) -> list[float | None]:
    """Each generation's summed log-probability under the base model (compare's quality)."""
    return score_continuations(loaded, [g.request for g, _ in done],
                               [e.token_ids for _, e in done])


def cell_row(spec: CompareSpec, cell: CompareCell, done: list[tuple[Any, RowFinished]],
             tokenizer: Any = None, base_logprobs: list[float | None] | None = None,
             runtime: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``results.jsonl`` row of a finished cell (outputs prompt-major, then sample).

    An output of a chat row also has ``messages``: the conversation sent (system included).
    ``base_logprobs`` (in the order of ``done``) are the summed log-probabilities of each
    output's tokens under the base model; the report turns them into a mean and perplexity.
    ``runtime`` (device, dtype, quantize, threads: ``LoadedModel.runtime``) says how the
    model ran this cell (a resumed run may use other threads).
    """
    scores = dict(zip((id(d) for d in done), base_logprobs or [None] * len(done), strict=True))
    outputs = []
    for pair in sorted(done, key=lambda d: (d[0].prompt_index, d[0].sample_index)):
        grid_row, event = pair
        output = {
            "prompt_index": grid_row.prompt_index,
            "prompt": spec.prompts[grid_row.prompt_index],
            "sample": grid_row.sample_index,
            "seed": grid_row.request.seed,
            "text": event.text,
            "finish_reason": event.reason,
            "new_tokens": len(event.token_ids),
            "base_logprob": scores[id(pair)],
        }
        if tokenizer is not None and uses_chat(tokenizer, grid_row.request):
            output["messages"] = message_dicts(sent_messages(grid_row.request))
        outputs.append(output)
    return {
        "cell": cell.index, "key": cell.key, "label": cell.label, "adapter": cell.adapter,
        "settings": cell.settings, "params": cell.params.to_dict(), "outputs": outputs,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **({"runtime": runtime} if runtime is not None else {}),
    }
