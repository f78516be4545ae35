"""The live side of a run directory: what the training loop writes, and when.

``RunFiles`` creates (or reopens) the directory, appends metrics and samples, saves checkpoints,
the final weights and the summary (format: ``training.run_dir``; checkpoint contents:
``training.checkpoint``). In multi-process runs only the main process touches the disk; the
others take part in the collective steps (path broadcast, RNG gather, barriers) and otherwise do
nothing, so every process can call every method.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from accelerate.utils import broadcast_object_list, gather_object

from genlab.core.events import CheckpointSaved
from genlab.core.io import (
    apply_umask,
    clear_dir,
    named_os_errors,
    read_marker,
    replace_dir,
    write_json_atomic,
    write_marker,
)
from genlab.core.modeling.lora import save_adapter
from genlab.core.training import checkpoint as ckpt_mod
from genlab.core.training import run_dir as runs
from genlab.core.training.setup import TrainSetupError

if TYPE_CHECKING:
    from genlab.core.training.setup import TrainingSetup


class RunFiles:
    """Writes one run directory for the training loop (main process only)."""

    def __init__(self, setup: TrainingSetup) -> None:
        self.setup = setup
        self.acc = setup.accelerator
        self.main = self.acc.is_main_process
        self.dir: Path | None = None
        self._metrics: runs.JsonlWriter | None = None
        self._samples: runs.JsonlWriter | None = None

    # --- opening -------------------------------------------------------------------------

    def create(self, out_dir: str | Path | None, replace: bool = False) -> None:
        """Create a new run directory (``out_dir`` or the default), mark it, write
        ``config.json``. ``replace``: ``out_dir``'s contents go first (``--force``)."""
        chosen = [str(out_dir or runs.default_run_dir(self.setup.config))]
        if self.acc.num_processes > 1:  # timestamps differ per process: use the main one's

            broadcast_object_list(chosen)
        self.dir = Path(chosen[0])
        if self.main:
            if replace and self.dir.is_dir():
                clear_dir(self.dir)
            self.dir.mkdir(parents=True, exist_ok=True)
            write_marker(self.dir, runs.RUN_KIND)
            runs.write_config(self.dir, self.setup.config, self.setup.resolved)
        self._open_writers()

    def reopen(self, run_dir: str | Path) -> ckpt_mod.Checkpoint | None:
        """Reopen a run to resume it; returns its latest checkpoint (None: start over).

        Metrics and samples past the checkpoint's step are dropped (they will be redone) and
        the old summary is removed: the run is in progress again.

        Raises:
            TrainSetupError: This launch's global batch differs from the run's.
        """

        self.dir = Path(run_dir)
        stored = runs.read_resolved(self.dir).get("effective_batch")
        if stored is not None and stored != self.setup.global_batch:
            raise TrainSetupError(f"--resume {self.dir}: the run used {stored} sequences per "
                                  f"step, this launch gives {self.setup.global_batch}; resume "
                                  "with the same number of processes")
        latest = ckpt_mod.latest_checkpoint(self.dir)
        checkpoint = ckpt_mod.load_checkpoint(latest) if latest else None
        if self.main:
            if read_marker(self.dir) is None:  # a run of a genlab without markers
                write_marker(self.dir, runs.RUN_KIND)
            (self.dir / runs.SUMMARY_FILE).unlink(missing_ok=True)
            done = checkpoint.state["step"] if checkpoint else 0
            runs.truncate_jsonl(self.dir / runs.METRICS_FILE, done)
            runs.truncate_jsonl(self.dir / runs.SAMPLES_FILE, done)
        self._open_writers()
        return checkpoint

    def _open_writers(self) -> None:
        if self.main:
            self._metrics = runs.JsonlWriter(self.dir / runs.METRICS_FILE)
            self._samples = runs.JsonlWriter(self.dir / runs.SAMPLES_FILE)
        self.acc.wait_for_everyone()

    # --- during the run ------------------------------------------------------------------

    def log_metrics(self, record: dict[str, Any]) -> None:
        """Append one ``metrics.jsonl`` record (flushed)."""
        if self._metrics is not None:
            self._metrics.write(record)

    def log_samples(self, step: int, samples: tuple[dict[str, str], ...]) -> None:
        """Append one ``samples.jsonl`` record per sample."""
        if self._samples is not None:
            for sample in samples:
                self._samples.write({"step": step, **sample})

    def save_checkpoint(self, state: dict[str, Any],
                        best: dict[str, torch.Tensor] | None) -> CheckpointSaved:
        """Write a resumable checkpoint of the current weights, optimizer, schedule and RNG.

        Args:
            state: The loop state (``LoopState`` as a dict, with ``step``).
            best: Best-by-eval weights when they differ from the current ones, else None.
        """
        rng = [ckpt_mod.capture_rng()]
        if self.acc.num_processes > 1:  # dropout streams differ per process: keep each

            rng = gather_object(rng)
        path = ckpt_mod.checkpoints_root(self.dir) / f"step-{state['step']:08d}"
        if self.main:
            scaler = self.acc.scaler.state_dict() if self.acc.scaler is not None else None
            path = ckpt_mod.save_checkpoint(
                self.dir, state=state, trainable=ckpt_mod.trainable_state(self.setup.unwrapped),
                best=best, optimizer=self.setup.optimizer.state_dict(),
                scheduler=self.setup.scheduler.state_dict(), scaler=scaler, rng=rng)
        self.acc.wait_for_everyone()
        return CheckpointSaved(step=state["step"], path=str(path))

    # --- the end -------------------------------------------------------------------------

    def save_weights(self) -> Path:
        """Write ``adapter/`` (LoRA) or ``model/`` + tokenizer (full) atomically; return it."""
        method = self.setup.config.method
        name = runs.ADAPTER_DIR if method == "lora" else runs.MODEL_DIR
        final = self.dir / name
        if self.main:
            tmp = self.dir / f".tmp-{name}"
            shutil.rmtree(tmp, ignore_errors=True)  # a leftover of a kill mid-write
            try:
                with named_os_errors(tmp):
                    if method == "lora":  # PiSSA/OLoRA adapters are converted for the original
                        save_adapter(self.setup.unwrapped, tmp, self.setup.initial_adapter)
                    else:
                        self.setup.unwrapped.save_pretrained(str(tmp))
                        self.setup.tokenizer.save_pretrained(str(tmp))
                apply_umask(tmp)  # safetensors writes 0600; the run's other files follow the umask
                replace_dir(tmp, final)
            except BaseException:  # a full disk: the previous weights (if any) stay
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        self.acc.wait_for_everyone()
        return final

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Write ``summary.json`` atomically."""
        if self.main and self.dir is not None:
            write_json_atomic(self.dir / runs.SUMMARY_FILE, summary)

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint of this run."""
        return ckpt_mod.latest_checkpoint(self.dir) if self.dir is not None else None

    def close(self) -> None:
        """Close the JSONL files."""
        for writer in (self._metrics, self._samples):
            if writer is not None:
                writer.close()
