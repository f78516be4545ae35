"""genlab's Python API: ``genlab.sample``, ``genlab.compare``, ``genlab.sweep``,
``genlab.report`` and ``genlab.lr_find`` (the learning-rate range test).

``genlab.sample`` runs a grid of sampling settings over prompts (or conversations) in memory
and returns the rows ``genlab sample -f jsonl`` writes. The CLI's ``genlab compare`` and
``genlab sweep`` call exactly ``compare``/``sweep``; a notebook gets the same behaviour (same
output directory, same ``results.jsonl``, same report, same resume)::

    import genlab
    rows = genlab.sample("What is the capital of France?", "./qwen2.5-0.5b-instruct",
                         grid={"temperature": [0, 0.7]}, system="Answer in one word.")
    rows[0]["text"], rows[0]["messages"]
    result = genlab.compare("prompts/specs/temperature-top-k.yaml", model="./my-model")
    result.rows[0]["outputs"][0]["text"]
    sweep = genlab.sweep("prompts/specs/learning-rate.yaml", overrides=["trials=2"])
    sweep.best["params"], sweep.report_path

Each function validates the spec (``SpecError``), the output directory (``OutDirError``) and
the model before it writes anything, then drains the core iterator, handing every event to
``on_event`` when given. Heavy modules (torch, optuna, matplotlib) are imported on first call.

``sweep`` logs one line per milestone (start, each trial's start and result, the retrain, the
end) to the ``genlab.sweep`` logger. When logging is not configured and no ``on_event`` is
given, those lines go to stderr for the call, so a script or notebook sees its trials finish;
``logging.getLogger("genlab").setLevel(logging.WARNING)`` silences them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SpecLike = str | Path | Mapping[str, Any]


@dataclass
class CompareResult:
    """What ``compare`` produced.

    Attributes:
        rows: ``results.jsonl`` rows, one per cell, in cell order.
        out_dir: The output directory.
        report_path: ``report.md`` ("" when the run was stopped early).
        html_path: ``report.html`` ("" when the run was stopped early).
        cancelled: True when a stop token ended the run (rerun to finish it).
        spec: The validated ``CompareSpec``.
    """

    rows: list[dict[str, Any]]
    out_dir: Path
    report_path: str = ""
    html_path: str = ""
    cancelled: bool = False
    spec: Any = None


@dataclass
class SweepResult:
    """What ``sweep`` produced.

    Attributes:
        rows: ``results.jsonl`` rows, by trial number (trials that other machines ran
            appear when they share the output directory; the report also reads the study).
        best: The best row (lowest objective), or None.
        out_dir: The output directory.
        report_path: ``report.md`` ("" when no trial finished).
        html_path: ``report.html``.
        storage: The Optuna storage URL of the study.
        counts: Rows per status (``completed``, ``pruned``, ``diverged``, ...).
        stopped: True when a stop token ended the sweep (rerun to finish it).
        best_run_dir: The retrained best run (``<out>/best``) when ``retrain_best``, else the
            best trial's run directory ("" without a best).
        spec: The validated ``SweepSpec``.
    """

    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    out_dir: Path
    report_path: str = ""
    html_path: str = ""
    storage: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    stopped: bool = False
    best_run_dir: str = ""
    spec: Any = None


def sample(prompts: Any, model: str | None = None, *,
           grid: Mapping[str, Sequence[Any]] | None = None, base: Any = None,
           num_samples: int = 1, seed: int = 0, batch_size: int = 16,
           adapters: Mapping[str, str] | None = None, chat: bool | None = None,
           system: str | None = None, truncate_prompt: str = "error", device: str = "auto",
           dtype: str = "auto", gguf_file: str | None = None, loaded: Any = None,
           on_event: Callable[[Any], None] | None = None, stop_token: Any = None,
           threads: int | None = None, quantize: str = "none", compile: bool = False
           ) -> list[dict[str, Any]]:
    """Sample ``model`` under every combination of ``grid`` for every prompt; return the rows.

    Args:
        prompts: A string, an OpenAI-style conversation (a list of ``{"role", "content"}``),
            or a list of prompts, each a string, a conversation, or ``{"prompt": ...}`` /
            ``{"messages": [...]}``.
        model: Hub id, local directory or ``.gguf`` file (or a directory holding one);
            None: the shipped model.
        grid: Sampling field -> values (``{"temperature": [0, 0.7], "top_k": [0, 40]}``);
            the columns are their cross product, as ``genlab sample``'s grid flags.
        base: Settings every column shares: a ``SamplingParams`` or a mapping of its fields.
        num_samples: Samples per setting; sample ``i`` has the same seed in every column.
        seed: Base seed.
        batch_size: Rows per forward pass (bounds the KV cache's memory).
        adapters: Adapter name -> PEFT directory; each setting also runs on each adapter.
        chat: Send prompts through the chat template (None: when the model has one).
        system: System message in front of each conversation (chat only).
        truncate_prompt: ``error`` or ``left`` when a prompt does not fit the context.
        device, dtype, gguf_file, threads, quantize, compile: As for ``genlab sample``
            (``threads`` None: the physical cores; ``quantize``: none, int8 on the CPU,
            8bit/4bit on CUDA; ``compile``: a ``torch.compile``d decode step).
        loaded: An already-loaded model (``genlab.core.modeling.loading.load_model``).
        on_event: Called with every generation event (progress).
        stop_token: A ``genlab.core.events.StopToken``; unfinished rows end ``cancelled``.

    Returns:
        One dict per row, prompt-major, then setting (and adapter), then sample, with the keys
        of ``genlab sample -f jsonl``: ``prompt``, ``messages`` (the conversation sent, or None
        for raw text), ``params``, ``seed``, ``sample_index``, ``text`` (the reply only),
        ``token_ids``, ``finish_reason``, ``adapter``, ``runtime`` (device, dtype, quantize and
        threads the model ran with).

    Raises:
        ConfigError: A grid value or setting out of range.
        ModelLoadError: The model or an adapter cannot be loaded.
        PromptError, ContextLimitError: A prompt the template refuses or that does not fit.
    """
    from genlab.core.configs import SamplingParams
    from genlab.core.configs.sampling import message_dicts
    from genlab.core.events import RowFinished
    from genlab.core.generation.decode import iter_generate
    from genlab.core.generation.grid import build_cells, build_rows, expand_grid, sample_record
    from genlab.core.generation.prompting import sent_messages, uses_chat
    from genlab.core.modeling.loading import load_model

    params = base if isinstance(base, SamplingParams) else SamplingParams(**dict(base or {}))
    cells = build_cells(expand_grid(dict(grid or {}), params), [None, *(adapters or {})])
    rows = build_rows(_prompt_items(prompts), cells, num_samples, seed, chat=chat,
                      system=system, truncate_prompt=truncate_prompt)
    if loaded is None:
        loaded = load_model(model, device=device, dtype=dtype, adapters=dict(adapters or {}),
                            gguf_file=gguf_file, threads=threads, quantize=quantize,
                            compile=compile)
    finished: dict[int, Any] = {}
    for event in iter_generate(loaded, [r.request for r in rows], batch_size=batch_size,
                               stop_token=stop_token):
        if on_event is not None:
            on_event(event)
        if isinstance(event, RowFinished):
            finished[event.row] = event
    out = []
    for i, row in enumerate(rows):
        fin = finished[i]
        chatted = uses_chat(loaded.tokenizer, row.request)
        messages = message_dicts(sent_messages(row.request)) if chatted else None
        record = sample_record(row, fin.text, fin.token_ids, fin.reason, messages)
        runtime = getattr(loaded, "runtime", None)
        out.append({**record, "runtime": runtime} if runtime is not None else record)
    return out


def _prompt_items(prompts: Any) -> list[Any]:
    """``sample``'s ``prompts`` as ``Prompt`` items (see its docstring for the shapes)."""
    from genlab.core.generation.prompts import prompt_from_value

    def is_conversation(value: Any) -> bool:
        return isinstance(value, (list, tuple)) and bool(value) and all(
            isinstance(m, Mapping) and "role" in m for m in value)

    if isinstance(prompts, str) or is_conversation(prompts):
        prompts = [prompts]
    return [prompt_from_value({"messages": list(p)} if is_conversation(p) else p)
            for p in prompts]


def load_spec(spec: SpecLike, *, overrides: Iterable[str] = (), model: str | None = None,
              expect: str | None = None) -> Any:
    """Parse and validate a spec (file path or mapping); see ``core.specs.loader.load_spec``."""
    from genlab.core.specs.loader import load_spec as _load

    if not isinstance(spec, (str, Path, Mapping)) and hasattr(spec, "kind"):
        if expect is not None and spec.kind != expect:
            from genlab.core.specs.common import SpecError

            raise SpecError(spec.source or "<spec>", "kind",
                            f"this is a {spec.kind} spec; run it with genlab {spec.kind}")
        return spec  # already validated
    return _load(spec, overrides=overrides, model=model, expect=expect)


def compare(spec: SpecLike, out_dir: str | Path | None = None, *,
            overrides: Iterable[str] = (), model: str | None = None,
            on_event: Callable[[Any], None] | None = None, stop_token: Any = None,
            force: bool = False) -> CompareResult:
    """Run a compare spec and return its rows and report.

    Args:
        spec: A spec file, a mapping, or a ``CompareSpec``.
        out_dir: Output directory (default ``runs/compare-<timestamp>-<name>``); rerunning into
            the same directory skips finished cells.
        overrides: ``key.path=value`` strings, like ``--set``.
        model: Replaces the spec's ``model``.
        on_event: Called with every core event (progress).
        stop_token: A ``genlab.core.events.StopToken`` that ends the run early.
        force: Replace an ``out_dir`` that holds something else (files genlab did not write,
            another kind of output or another spec's results); without it that is an error.

    Raises:
        SpecError, OutDirError, LookupError, ModelLoadError: Before anything is written.
    """
    from genlab.core.experiments.compare import CompareFinished, iter_compare
    from genlab.core.reports.results import RESULTS_FILE, read_rows

    parsed = load_spec(spec, overrides=overrides, model=model, expect="compare")
    finished = None
    for event in iter_compare(parsed, out_dir, stop_token=stop_token, force=force):
        if on_event is not None:
            on_event(event)
        if isinstance(event, CompareFinished):
            finished = event
    assert finished is not None
    out = Path(finished.out_dir)
    rows = sorted(read_rows(out / RESULTS_FILE), key=lambda r: r.get("cell", 0))
    html_path = str(out / "report.html") if finished.report_path else ""
    return CompareResult(rows, out, finished.report_path, html_path, finished.cancelled, parsed)


def sweep(spec: SpecLike, out_dir: str | Path | None = None, storage: str | None = None,
          workers: int = 1, *, overrides: Iterable[str] = (), model: str | None = None,
          on_event: Callable[[Any], None] | None = None, stop_token: Any = None,
          worker_only: bool = False, force: bool = False) -> SweepResult:
    """Run a sweep spec and return its rows, best trial and report.

    Args:
        spec: A spec file, a mapping, or a ``SweepSpec``.
        out_dir: Output directory (default ``runs/sweep-<timestamp>-<name>``); rerunning into
            the same directory resumes the sweep.
        storage: Optuna storage URL shared by every worker (default
            ``sqlite:///<out>/study.db``); e.g. a PostgreSQL URL for workers on many machines.
        workers: Local worker processes running trials in parallel.
        overrides: ``key.path=value`` strings, like ``--set``.
        model: Replaces the spec's ``model``.
        on_event: Called with every core event (progress: ``TrialProgress`` per step too).
        stop_token: A ``genlab.core.events.StopToken`` that stops the running trials.
        worker_only: Only run trials (another process reports and retrains).
        force: Replace an ``out_dir`` that holds something else (see ``compare``).

    Progress is also logged to the ``genlab.sweep`` logger (see the module docstring).

    Raises:
        SpecError, OutDirError, LookupError: Before anything is written.
    """
    from genlab.core.experiments.events import SweepFinished, SweepStarted
    from genlab.core.experiments.progress_lines import sweep_line
    from genlab.core.experiments.sweep import iter_sweep

    parsed = load_spec(spec, overrides=overrides, model=model, expect="sweep")
    finished = started = None
    log = logging.getLogger("genlab.sweep")
    with _stderr_log_unless_configured(log, on_event is None):
        for event in iter_sweep(parsed, out_dir, storage=storage, workers=workers,
                                stop_token=stop_token, worker_only=worker_only, force=force):
            if on_event is not None:
                on_event(event)
            line = sweep_line(event)
            if line is not None:
                log.log(*line)
            if isinstance(event, SweepStarted):
                started = event
            elif isinstance(event, SweepFinished):
                finished = event
    assert finished is not None and started is not None
    return _sweep_result(parsed, started, finished)


@contextlib.contextmanager
def _stderr_log_unless_configured(log: logging.Logger, wanted: bool) -> Any:
    """While the block runs, send ``log``'s INFO lines to stderr if ``wanted`` and nobody
    configured logging for it (no handler on it or its parents, no level set on ``genlab``)."""
    family = logging.getLogger("genlab")
    if not wanted or log.hasHandlers() or family.level != logging.NOTSET:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("genlab: %(message)s"))
    family.addHandler(handler)
    family.setLevel(logging.INFO)
    try:
        yield
    finally:
        family.removeHandler(handler)
        family.setLevel(logging.NOTSET)


def _sweep_result(spec: Any, started: Any, finished: Any) -> SweepResult:
    import json

    from genlab.core.reports.results import RESULTS_FILE, read_rows

    out = Path(finished.out_dir)
    by_trial: dict[int, dict[str, Any]] = {}
    for row in read_rows(out / RESULTS_FILE):
        by_trial.setdefault(row.get("trial"), row)
    rows = [by_trial[n] for n in sorted(by_trial, key=lambda n: (n is None, n))]
    best_run = ""
    if finished.best is not None:
        best_run = str(out / finished.best.get("run_dir", ""))
        try:
            retrain = json.loads((out / "best.json").read_text(encoding="utf-8")).get("retrain")
        except (OSError, ValueError):
            retrain = None
        if retrain:
            best_run = str(out / retrain.get("run_dir", "best"))
    html_path = str(out / "report.html") if finished.report_path else ""
    return SweepResult(rows, finished.best, out, finished.report_path, html_path,
                       started.storage, dict(finished.counts), finished.stopped, best_run, spec)


def lr_find(config: Any = None, out_dir: str | Path | None = None, *,
            find: Any = None, on_event: Callable[[Any], None] | None = None,
            stop_token: Any = None, force: bool = False, **fields: Any) -> Any:
    """Run the learning-rate range test; returns its ``LrFindFinished`` (suggestions, paths).

    Args:
        config: A ``TrainConfig`` (model, data, LoRA, optimizer, batch), or None to build one
            from ``fields`` (``model`` defaults to the shipped model), e.g.
            ``genlab.lr_find(data="demo/facts/train.jsonl", prompt_field="prompt",
            completion_field="completion", seq_len=64)``.
        out_dir: Directory for lr_find.jsonl and lr_find.png (absent or empty); default
            ``runs/lr-find-<timestamp>-<name>``.
        force: Replace an ``out_dir`` that holds something else (an earlier lr-find result,
            files genlab did not write).
        find: An ``LrFindConfig`` (start_lr, end_lr, num_steps, smoothing, diverge), or a
            mapping of its fields.
        on_event: Called with every event (``LrFindStarted``, ``LrFindStep``, ...).
        stop_token: A ``StopToken`` that ends the sweep early (the curve so far is kept).

    Raises:
        ConfigError, ModelLoadError, DataError, TrainSetupError, OutDirError: Before anything
            is written.
    """
    from genlab.assets import resolve_model
    from genlab.core.configs import LrFindConfig, TrainConfig
    from genlab.core.events import LrFindFinished
    from genlab.core.training.lr_find import iter_lr_find

    if config is None:
        config = TrainConfig(**{"model": resolve_model(None), **fields})
    if isinstance(find, Mapping):
        find = LrFindConfig(**find)
    finished = None
    for event in iter_lr_find(config, find, out_dir=out_dir, stop_token=stop_token, force=force):
        if on_event is not None:
            on_event(event)
        if isinstance(event, LrFindFinished):
            finished = event
    return finished


def report(out_dir: str | Path) -> Path:
    """Regenerate ``report.md`` and ``report.html`` of a compare or sweep output directory."""
    from genlab.core.reports.report import write_report

    return write_report(out_dir)
