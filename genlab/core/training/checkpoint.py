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

from genlab.core.io import apply_umask
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
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(trainable, str(tmp / "trainable.safetensors"))
    if best is not None:
        save_file(best, str(tmp / "best.safetensors"))
    torch.save(optimizer, tmp / "optimizer.pt")
    torch.save(scheduler, tmp / "scheduler.pt")
    if scaler is not None:
        torch.save(scaler, tmp / "scaler.pt")
    torch.save(rng, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps({**state, "best_is_current": best is None},
                                               indent=2) + "\n", encoding="utf-8")
    apply_umask(tmp)  # safetensors writes 0600
    if final.exists():  # same step written again (e.g. eval checkpoint, then stop)
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(run_dir)[:-max(1, keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint directory written by ``save_checkpoint`` (tensors on CPU)."""

    path = Path(path)
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    best_file = path / "best.safetensors"
    scaler_file = path / "scaler.pt"
    return Checkpoint(
        path=path,
        state=state,
        trainable=load_file(str(path / "trainable.safetensors")),
        best=load_file(str(best_file)) if best_file.exists() else None,
        optimizer=torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True),
        scheduler=torch.load(path / "scheduler.pt", map_location="cpu", weights_only=True),
        scaler=(torch.load(scaler_file, map_location="cpu", weights_only=True)
                if scaler_file.exists() else None),
        rng=torch.load(path / "rng.pt", map_location="cpu", weights_only=True),
    )
