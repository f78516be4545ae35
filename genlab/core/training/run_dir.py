"""The run-directory format: what a training run leaves on disk, and readers for it.

A run directory is self-contained: it reproduces or resumes the run with nothing else.

```
runs/<YYYYmmdd-HHMMSS>-<name>/
  .genlab.json     the marker: {"kind": "run", "genlab_version", "created"} (genlab.core.io)
  config.json      TrainConfig.to_dict() (paths made absolute, target_modules resolved)
                   plus "resolved": total_steps, warmup_steps, lr, device, mixed precision,
                   genlab version, trainable/total params, data sizes, ...
  metrics.jsonl    one JSON object per line, flushed as written:
                   {"type": "train", "step", "epoch", "loss", "lr", "grad_norm", "update_ratio",
                    "tokens", "tokens_per_s", "elapsed_s"}
                   {"type": "eval", "step", "loss", "perplexity", "bits_per_byte", "is_best"}
  samples.jsonl    {"step", "prompt", "text"} per sample prompt per evaluation
  adapter/         LoRA runs: PEFT save_pretrained output (adapter_config.json +
                   adapter_model.safetensors), loadable by PeftModel.from_pretrained
  model/           full-weight runs: a standard HF model directory with its tokenizer
  checkpoints/     step-XXXXXXXX/: the latest resumable checkpoint (see training.checkpoint)
  summary.json     written once at the end: status, message, steps, tokens, wall time,
                   best eval loss and its step, final train loss, which weights were saved
```

Every JSON file is written atomically (temp file + ``os.replace``); non-finite floats are
stored as ``null`` so every line is strict JSON. A directory without ``summary.json`` is a run in
progress (or one killed without a chance to write it).

A run directory is recognised by its marker. Run directories written before markers existed
(``config.json`` + ``metrics.jsonl``, no marker) are recognised by a ``config.json`` that reads
as a ``TrainConfig`` (``is_legacy_run_dir``): they are listed, resumable, and get their marker
when resumed. Anything else (a user's directory that happens to hold a ``metrics.jsonl``) is
not a run directory, and ``genlab train --out`` refuses it without ``--force``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from genlab.core.configs import TrainConfig
from genlab.core.errors import GenlabError
from genlab.core.io import (
    MARKER_FILE,
    fresh_dir,
    read_jsonl,
    read_marker,
    read_text_limited,
    rewrite_jsonl_atomic,
    to_json_line,
    write_json_atomic,
)

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
SUMMARY_FILE = "summary.json"
ADAPTER_DIR = "adapter"
MODEL_DIR = "model"
CHECKPOINTS_DIR = "checkpoints"
DEFAULT_ROOT = "runs"
RUN_KIND = "run"
"""The marker kind of a training run directory."""
CONFIG_LIMIT = 16 << 20
"""Largest ``config.json``/``summary.json`` read back (16 MiB; real ones are a few KiB)."""


# ----------------------------------------------------------------------------- writing


def default_run_dir(config: TrainConfig, root: str | Path = DEFAULT_ROOT) -> Path:
    """``root/<YYYYmmdd-HHMMSS>-<name or model basename>``; not created, never an existing dir."""
    return fresh_dir(root, config.name or Path(config.model.rstrip("/\\")).name or "run")


def write_config(run_dir: str | Path, config: TrainConfig, resolved: dict[str, Any]) -> None:
    """Write ``config.json``: every TrainConfig field plus a ``"resolved"`` dict of facts."""
    data = config.to_dict()
    data["resolved"] = resolved
    write_json_atomic(Path(run_dir) / CONFIG_FILE, data)


class JsonlWriter:
    """Appends one strict-JSON object per line and flushes it, so readers see it at once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - long-lived handle

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` and flush."""
        self._file.write(to_json_line(record))
        self._file.flush()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if not self._file.closed:
            self._file.close()


def truncate_jsonl(path: str | Path, max_step: int) -> None:
    """Drop records whose ``step`` is above ``max_step`` (used when resuming a checkpoint)."""
    if Path(path).exists():
        rewrite_jsonl_atomic(path, [r for r in read_jsonl(path) if r.get("step", 0) <= max_step])


# ----------------------------------------------------------------------------- reading


def read_metrics(run_dir: str | Path, kind: str | None = None) -> list[dict[str, Any]]:
    """Every metrics record in order; ``kind="train"`` or ``"eval"`` filters by ``type``."""
    path = Path(run_dir) / METRICS_FILE
    records = read_jsonl(path)
    return [r for r in records if kind is None or r.get("type") == kind]


def read_samples(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every sample generation record ({"step", "prompt", "text"}) in order."""
    path = Path(run_dir) / SAMPLES_FILE
    return read_jsonl(path)


def read_summary(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``summary.json``, or None while it runs (or if it was killed)."""
    path = Path(run_dir) / SUMMARY_FILE
    if not path.exists():
        return None
    return json.loads(read_text_limited(path, CONFIG_LIMIT, str(path)))


def read_config_dict(run_dir: str | Path) -> dict[str, Any]:
    """``config.json`` as stored (TrainConfig fields plus the ``"resolved"`` facts)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{run_dir}: no {CONFIG_FILE}; not a genlab run directory")
    return json.loads(read_text_limited(path, CONFIG_LIMIT, str(path)))


def read_config(run_dir: str | Path) -> TrainConfig:
    """The run's TrainConfig, rebuilt from ``config.json``."""
    data = read_config_dict(run_dir)
    data.pop("resolved", None)
    return TrainConfig.from_dict(data)


def read_resolved(run_dir: str | Path) -> dict[str, Any]:
    """The resolved facts stored beside the config (total_steps, lr, device, ...)."""
    return read_config_dict(run_dir).get("resolved", {})


@dataclass
class RunInfo:
    """One run directory as listed by ``list_runs``.

    Attributes:
        path: The run directory.
        name: Its directory name.
        status: ``summary.json``'s status, or ``"running"`` when there is no summary yet.
        config: ``config.json`` as stored (empty if unreadable).
        summary: ``summary.json`` (None while running).
        started: When the run started (``config.json``'s modification time).
        best_so_far: A running run's best eval loss up to now (None otherwise or before its
            first evaluation).
        steps_so_far: A running run's last logged step (None otherwise).
    """

    path: Path
    name: str
    status: str
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    started: float = 0.0
    best_so_far: float | None = None
    steps_so_far: int | None = None


def is_run_dir(path: str | Path) -> bool:
    """True when ``path`` is a genlab run directory: its marker, or a legacy one."""
    return read_marker(path) == RUN_KIND or is_legacy_run_dir(path)


def is_legacy_run_dir(path: str | Path) -> bool:
    """True for a run directory of a genlab without markers: a ``config.json`` whose keys are
    ``TrainConfig`` fields (plus ``resolved``), naming a model and data."""
    config = Path(path) / CONFIG_FILE
    if not config.is_file() or (Path(path) / MARKER_FILE).exists():
        return False
    try:
        data = json.loads(read_text_limited(config, CONFIG_LIMIT, str(config)))
    except (OSError, ValueError, GenlabError):
        return False
    known = {f.name for f in dataclass_fields(TrainConfig)} | {"resolved"}
    return isinstance(data, dict) and {"model", "data"} <= set(data) <= known


def list_runs(root: str | Path = DEFAULT_ROOT, *, nested: bool = False) -> list[RunInfo]:
    """Every run directory directly under ``root``, oldest first (by start time).

    A run's start is when its ``config.json`` was written (names need not be timestamps:
    ``--out`` and a sweep's ``trials/0003`` are not). ``nested`` adds the runs of experiment
    outputs under ``root`` (``<sweep>/trials/<n>`` and ``<sweep>/best``), named
    ``<sweep>/<n>``. A running run (no ``summary.json`` yet) gets ``best_so_far``, its best
    eval loss up to now.
    """
    root = Path(root)
    try:
        paths = [p for p in root.iterdir() if p.is_dir()]
    except OSError:  # absent, a file, or unreadable: nothing to list
        return []
    found: list[tuple[Path, str]] = []
    for path in paths:
        if is_run_dir(path):
            found.append((path, path.name))
        elif nested and (path / "spec.json").is_file():
            for trial in [*_subdirs(path / "trials"), path / "best"]:
                if trial.is_dir() and is_run_dir(trial):
                    found.append((trial, f"{path.name}/{trial.name}"))
    runs = [_run_info(path, name) for path, name in found]
    return sorted(runs, key=lambda info: (info.started, info.name))


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir())
    except OSError:  # absent or unreadable: none
        return []


def _run_info(path: Path, name: str) -> RunInfo:
    try:
        config = read_config_dict(path)
    except (OSError, ValueError, GenlabError):
        config = {}
    try:
        summary = read_summary(path)
    except (OSError, ValueError, GenlabError):
        summary = None
    status = summary.get("status", "unknown") if summary else "running"
    try:
        started = (path / CONFIG_FILE).stat().st_mtime
    except OSError:
        started = 0.0
    best, steps = None, None
    if summary is None:
        try:
            records = read_metrics(path)
        except (OSError, ValueError, GenlabError):  # a damaged metrics file: no progress shown
            records = []
        losses = [r["loss"] for r in records if r.get("type") == "eval"
                  and isinstance(r.get("loss"), (int, float)) and math.isfinite(r["loss"])]
        best = min(losses) if losses else None
        steps = max((r.get("step", 0) for r in records if r.get("type") == "train"),
                    default=None)
    return RunInfo(path, name, status, config, summary, started, best, steps)
