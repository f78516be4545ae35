"""Resumable training checkpoints: what is saved, how it is written, how it is read back.

A checkpoint is a directory ``<run>/checkpoints/step-XXXXXXXX/`` holding:

* ``trainable.safetensors``: every trainable parameter by name (the LoRA A/B matrices, or every
  weight for full training); frozen base weights are not copied, they come from ``--model``;
* ``best.safetensors``: the best-by-eval trainable weights, only when they differ from the
  current ones (``state.json``'s ``best_is_current`` says which);
* ``optimizer.pt``, ``scheduler.pt`` and ``scaler.pt`` (fp16 only): their ``state_dict()``s;
* ``rng.pt``: python, torch CPU and CUDA generator states, one entry per process, so dropout
  continues exactly where it stopped;
* ``state.json``: step, blocks consumed (data position: epoch and offset follow from it), tokens,
  wall time so far, best eval loss/step, evaluations without improvement, last train loss.

It is written to a hidden temp directory and renamed into place, so a crash mid-write never
leaves a half checkpoint; older checkpoints are deleted afterwards (the latest ``keep`` stay).
A failed write (a full disk) removes the temp directory and raises the ``OSError``; the
previous checkpoint stays the latest. Reading refuses pickles that hold more than tensors
(``weights_only``) with a one-line ``CheckpointError``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from genlab.core.errors import GenlabError
from genlab.core.io import apply_umask, named_os_errors, write_json_atomic
from genlab.core.training.run_dir import CHECKPOINTS_DIR

_PREFIX = "step-"


@dataclass
class Checkpoint:
    """A checkpoint read back from disk (tensors on CPU)."""

    path: Path
    state: dict[str, Any]
    trainable: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor] | None
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any] | None
    rng: list[dict[str, Any]]


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached CPU copies of the trainable parameters by name."""
    return {n: p.detach().to("cpu", copy=True).contiguous()
            for n, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def load_trainable_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy ``tensors`` into the model's trainable parameters (every one must be present)."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(set(params) - set(tensors))
    if missing:
        raise KeyError(f"checkpoint lacks trainable weights: {', '.join(missing[:5])}")
    for name, param in params.items():
        param.copy_(tensors[name].to(param.device, param.dtype))


def capture_rng() -> dict[str, Any]:
    """This process's python, torch and CUDA (current device) RNG states."""
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Restore what ``capture_rng`` returned."""
    random.setstate(_as_tuple(state["python"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _as_tuple(value: Any) -> Any:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list) else value


def checkpoints_root(run_dir: str | Path) -> Path:
    """``run_dir/checkpoints``."""
    return Path(run_dir) / CHECKPOINTS_DIR


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoint directories, oldest first."""
    root = checkpoints_root(run_dir)
    if not root.is_dir():
        return []
    done = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX)
            and (p / "state.json").is_file()]
    return sorted(done, key=lambda p: int(p.name[len(_PREFIX):]))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(
    run_dir: str | Path,
    *,
    state: dict[str, Any],
    trainable: dict[str, torch.Tensor],
    best: dict[str, torch.Tensor] | None,
    optimizer: dict[str, Any],
    scheduler: dict[str, Any],
    scaler: dict[str, Any] | None,
    rng: list[dict[str, Any]],
    keep: int = 1,
) -> Path:
    """Write a checkpoint atomically and prune older ones; returns its directory.

    Args:
        run_dir: The run directory.
        state: JSON-able loop state; must contain ``"step"``.
        trainable: Current trainable weights (``trainable_state``).
        best: Best-by-eval weights when they differ from ``trainable``, else None.
        optimizer: ``optimizer.state_dict()``.
        scheduler: ``scheduler.state_dict()``.
        scaler: Grad scaler ``state_dict()`` or None.
        rng: ``capture_rng()`` of every process, by process index.
        keep: How many of the newest checkpoints to keep (>= 1).
    """

    root = checkpoints_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{_PREFIX}{int(state['step']):08d}"
    tmp = root / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)  # a leftover of a kill mid-write
    tmp.mkdir()
    try:
        _write_files(tmp, state, trainable, best, optimizer, scheduler, scaler, rng)
        apply_umask(tmp)  # safetensors writes 0600
        if final.exists():  # same step written again (e.g. eval checkpoint, then stop):
            aside = root / f".old-{final.name}"  # moved aside, so a checkpoint always exists
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(final, aside)
            os.replace(tmp, final)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:  # a full disk, a kill: the previous checkpoint stays the latest
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(run_dir)[:-max(1, keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _write_files(tmp: Path, state: dict[str, Any], trainable: dict[str, torch.Tensor],
                 best: dict[str, torch.Tensor] | None, optimizer: dict[str, Any],
                 scheduler: dict[str, Any], scaler: dict[str, Any] | None,
                 rng: list[dict[str, Any]]) -> None:
    """Every file of a checkpoint into ``tmp``; a write failure is the ``OSError`` it is."""
    for name, tensors in (("trainable", trainable), ("best", best)):
        if tensors is not None:
            with named_os_errors(tmp / f"{name}.safetensors"):
                save_file(tensors, str(tmp / f"{name}.safetensors"))
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler),
                      ("rng", rng)):
        if obj is not None:
            path = tmp / f"{name}.pt"
            # Into a file object: torch then chains the real OSError to its RuntimeError.
            with named_os_errors(path), open(path, "wb") as f:
                torch.save(obj, f)
    write_json_atomic(tmp / "state.json", {**state, "best_is_current": best is None})


class CheckpointError(GenlabError):
    """A checkpoint file is damaged, or holds a pickle that ``weights_only`` refused."""


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint directory written by ``save_checkpoint`` (tensors on CPU).

    Raises:
        CheckpointError: A file is missing, damaged, or a pickle of more than tensors (it is
            never unpickled: ``weights_only`` loading refuses code).
    """

    path = Path(path)
    best_file = path / "best.safetensors"
    scaler_file = path / "scaler.pt"
    return Checkpoint(
        path=path,
        state=_read(path / "state.json", lambda p: json.loads(p.read_text(encoding="utf-8"))),
        trainable=_read(path / "trainable.safetensors", lambda p: load_file(str(p))),
        best=_read(best_file, lambda p: load_file(str(p))) if best_file.exists() else None,
        optimizer=_read(path / "optimizer.pt", _torch_load),
        scheduler=_read(path / "scheduler.pt", _torch_load),
        scaler=_read(scaler_file, _torch_load) if scaler_file.exists() else None,
        rng=_read(path / "rng.pt", _torch_load),
    )


def _torch_load(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


def _read(path: Path, load: Any) -> Any:
    """``load(path)``; any failure is a ``CheckpointError`` naming the file and the way on."""
    try:
        return load(path)
    except Exception as err:  # noqa: BLE001 - json, safetensors, pickle and OS errors alike
        refused = "weights only load failed" in str(err).lower() or "Unpickling" in type(
            err).__name__
        why = ("is a pickle holding more than tensors, so genlab refused to load it (loading "
               "it could run arbitrary code)") if refused else (
            f"cannot be read ({' '.join(str(err).split())[:120] or type(err).__name__})")
        raise CheckpointError(f"--resume: checkpoint file {path} {why}; delete the "
                              f"checkpoint directory {path.parent} to resume from an earlier "
                              "checkpoint (or start over)") from None
