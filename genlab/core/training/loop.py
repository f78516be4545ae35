"""The optimizer-step loop behind ``genlab.core.training.train.iter_train``.

This module owns what happens between ``RunStarted`` and ``RunFinished``: the step-0 baseline
evaluation, one optimizer step (its arithmetic is ``training.step``; here: the divergence
check, the update/param ratio, the event), reading step metrics back from the device every
``sync_every`` steps, evaluation and early stopping (and the plateau schedule's eval losses),
checkpoints, stop requests, and the end of a run (final eval, restoring the best weights,
summary). The semantics are documented in
``genlab.core.training.train``; the disk side is ``genlab.core.training.run_writer.RunFiles``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from genlab.core.events import (
    CheckpointSaved,
    EvalResult,
    RunFinished,
    RunStarted,
    RunStatus,
    StopToken,
    TrainStep,
)
from genlab.core.training import checkpoint as ckpt_mod
from genlab.core.training.evaluation import evaluate, generate_samples
from genlab.core.training.optimizers import UpdateTracker
from genlab.core.training.run_writer import RunFiles
from genlab.core.training.setup import TrainingSetup
from genlab.core.training.step import BlockOrder, PendingStep, StepRunner

__all__ = ["BlockOrder", "LoopState", "TrainEvent", "TrainLoop"]

TrainEvent = RunStarted | TrainStep | EvalResult | CheckpointSaved | RunFinished


@dataclass
class LoopState:
    """What a checkpoint restores besides weights, optimizer, schedule and RNG."""

    step: int = 0
    consumed: int = 0
    tokens: int = 0
    wall_time_s: float = 0.0
    best_loss: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    last_loss: float | None = None
    last_eval_step: int | None = None
    last_checkpoint_step: int | None = None
    has_best_weights: bool = False


class TrainLoop:
    """One run: its setup, files, state, and the phases of the loop."""

    def __init__(self, setup: TrainingSetup, stop_token: StopToken) -> None:
        self.setup = setup
        self.config = setup.config
        self.acc = setup.accelerator
        self.stop_token = stop_token
        self.files = RunFiles(setup)
        self.state = LoopState()
        self.order = BlockOrder(len(setup.data.train), self.config.seed)
        self.runner = StepRunner(setup)
        self.pending: list[PendingStep] = []
        self.trainable = setup.trainable
        self.tracker = UpdateTracker(self.trainable)
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.resumed = False
        self.finished = False
        self.wall_before = 0.0
        self.t0 = time.perf_counter()  # start of this segment; reset when the loop starts

    # --- opening -------------------------------------------------------------------------

    def open(self, out_dir: str | Path | None, resume_from: str | Path | None, *,
             replace: bool = False) -> None:
        """Create the run directory (``replace``: clear it first), or reopen it and restore
        its latest checkpoint."""
        if resume_from is None:
            self.files.create(out_dir, replace=replace)
            return
        checkpoint = self.files.reopen(resume_from)
        if checkpoint is not None:
            self._restore(checkpoint)

    def _restore(self, checkpoint: ckpt_mod.Checkpoint) -> None:
        ckpt_mod.load_trainable_state(self.setup.unwrapped, checkpoint.trainable)
        self.setup.optimizer.load_state_dict(checkpoint.optimizer)
        self.setup.scheduler.load_state_dict(checkpoint.scheduler)
        if self.acc.scaler is not None and checkpoint.scaler is not None:
            self.acc.scaler.load_state_dict(checkpoint.scaler)
        known = {f.name for f in fields(LoopState)}
        self.state = LoopState(**{k: v for k, v in checkpoint.state.items() if k in known})
        if self.state.has_best_weights:
            self.best_weights = checkpoint.best if checkpoint.best is not None else dict(
                checkpoint.trainable)
        self.wall_before = self.state.wall_time_s
        self.resumed = True
        # Last: nothing below may draw random numbers before the first resumed step.
        rng = checkpoint.rng
        ckpt_mod.restore_rng(rng[min(self.acc.process_index, len(rng) - 1)])

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> Iterator[TrainEvent]:
        """Yield the run's events, from ``RunStarted`` to ``RunFinished``."""
        self.t0 = time.perf_counter()
        yield self._started()
        if self._baseline_due():  # step 0: every curve starts at the base model's loss
            yield self._evaluate()
        total = self.setup.total_steps
        status: RunStatus = "completed"
        message = f"trained {total} steps"
        while self.state.step < total:
            # phase 1: one optimizer step (or a divergence, which is not applied)
            outcome = self._train_step()
            if isinstance(outcome, str):
                status, message = "diverged", outcome
                break
            step = self.state.step
            # phase 2: read the metrics back (every step on CPU, every sync_every on a GPU;
            # a stop request of a single process is a plain flag, so it forces a read)
            if not (step >= total or step % self.setup.sync_every == 0 or self._eval_due(step)
                    or self._checkpoint_due(step)
                    or (self.acc.num_processes == 1 and self.stop_token.stopped)):
                continue
            events, problem = self._read_back()
            yield from events
            if problem:
                status, message = "diverged", problem
                break
            # phase 3: evaluation, samples, early stopping
            if self._eval_due(step):
                yield self._evaluate()
                if self.config.patience and self.state.bad_evals >= self.config.patience:
                    status, message = "early-stopped", self._early_stop_message()
                    break
            # phase 4: periodic checkpoint (not after the last step: the run ends there)
            if step < total and self._checkpoint_due(step):
                yield self._checkpoint()
            # phase 5: a stop request, honoured at the step boundary (a read point)
            if step < total and self._stop_requested():
                status = "stopped"
                message = (f"stopped at step {step} of {total}; resume with "
                           f"--resume {self.files.dir}")
                break
        yield from self._finish(status, message)

    def _baseline_due(self) -> bool:
        cfg = self.config
        return (cfg.eval_at_start and cfg.eval_every > 0 and self.has_eval
                and self.state.step == 0 and self.state.last_eval_step is None)

    def _started(self) -> RunStarted:
        r = self.setup.resolved
        return RunStarted(
            run_dir=str(self.files.dir), total_steps=self.setup.total_steps,
            start_step=self.state.step, resumed=self.resumed, method=self.config.method,
            trainable_params=r["trainable_params"], total_params=r["total_params"],
            device=r["device"], dtype=r["dtype"], num_processes=r["num_processes"],
            effective_batch=self.setup.global_batch, lr=self.config.scaled_lr,
            warmup_steps=self.setup.warmup_steps, train_blocks=r["train_blocks"],
            eval_blocks=r["eval_blocks"], train_tokens=r["train_tokens"],
            target_modules=tuple(self.config.target_modules or ()),
            config=self.config.to_dict(), model=self.setup.model_text,
        )

    def _train_step(self) -> PendingStep | str:
        """Forward/backward every micro-batch, clip, apply the update, queue the step.

        With ``sync_every == 1`` the loss and gradient norm are read at once and a non-finite
        step is not applied (returns the divergence message). Otherwise nothing is read: the
        device skips a non-finite update itself and ``_read_back`` reports it later.
        """
        setup, st = self.setup, self.state
        started_at = time.perf_counter()
        indices = self.order.take(st.consumed, setup.global_batch)
        step_tokens, loss_tokens = self.runner.counts(indices)
        nats = self.runner.forward_backward(indices, loss_tokens)
        lr = float(setup.scheduler.get_last_lr()[0])
        grad_norm = self.runner.clip()
        self.tracker.before_step()
        if setup.sync_every == 1:
            nats, grad_norm = float(nats), float(grad_norm)
            problem = self._divergence(nats / loss_tokens, grad_norm, lr, st.step + 1)
            if problem:
                setup.optimizer.zero_grad(set_to_none=True)
                return problem
            setup.optimizer.step()
        else:
            self.runner.apply_unless_nonfinite(nats, grad_norm)
        if not self.acc.optimizer_step_was_skipped:  # fp16 overflow: the scaler skipped it
            setup.scheduler.step()
        setup.optimizer.zero_grad(set_to_none=True)
        ratio = self.tracker.ratio_tensor()
        pending = PendingStep(step=st.step + 1, lr=lr, nats=nats, grad_norm=grad_norm,
                              ratio=float(ratio) if setup.sync_every == 1 else ratio,
                              loss_tokens=loss_tokens, step_tokens=step_tokens,
                              consumed_before=st.consumed, tokens_before=st.tokens,
                              started_at=started_at)
        self.pending.append(pending)
        st.step += 1
        st.consumed += setup.global_batch
        st.tokens += step_tokens
        return pending

    def _read_back(self) -> tuple[list[TrainStep], str]:
        """The queued steps as events (one host sync for all); stops at a non-finite one,
        rewinding the state to the last good step, and returns its divergence message."""
        pending, self.pending = self.pending, []
        if not pending:
            return [], ""
        values = [(p.nats, p.grad_norm, p.ratio) for p in pending]
        if isinstance(values[0][0], torch.Tensor):
            values = torch.stack([torch.stack([v.double() for v in row])
                                  for row in values]).tolist()
        now, events = time.perf_counter(), []
        seconds = (now - pending[0].started_at) / len(pending)  # per step, over the burst
        for i, (p, (nats, grad_norm, ratio)) in enumerate(zip(pending, values, strict=True)):
            loss = nats / p.loss_tokens
            problem = self._divergence(loss, grad_norm, p.lr, p.step)
            if problem:
                st = self.state
                st.step, st.consumed, st.tokens = p.step - 1, p.consumed_before, p.tokens_before
                return events, problem
            event = TrainStep(
                step=p.step, epoch=(p.consumed_before + self.setup.global_batch)
                / len(self.setup.data.train), loss=loss, lr=p.lr, grad_norm=grad_norm,
                update_ratio=ratio, tokens=p.tokens_before + p.step_tokens,
                tokens_per_s=p.step_tokens / max(1e-9, seconds),
                elapsed_s=pending[0].started_at + (i + 1) * seconds - self.t0)
            self.state.last_loss = loss
            self.files.log_metrics({"type": "train", **asdict(event)})
            events.append(event)
        return events, ""

    def _divergence(self, loss: float, grad_norm: float, lr: float, step: int) -> str:
        suggestion = f"try a lower --lr, e.g. {self.config.lr / 10:.3g}"
        if not math.isfinite(loss):
            return f"loss became {loss} at step {step} (lr {lr:.3g}); {suggestion}"
        if not math.isfinite(grad_norm) and self.acc.scaler is None:
            return f"gradient norm became {grad_norm} at step {step} (lr {lr:.3g}); {suggestion}"
        return ""

    @property
    def has_eval(self) -> bool:
        """True when the run has eval data."""
        return self.setup.data.eval is not None and len(self.setup.data.eval) > 0

    def _eval_due(self, step: int) -> bool:
        every = self.config.eval_every
        return self.has_eval and every > 0 and step % every == 0

    def _checkpoint_due(self, step: int) -> bool:
        every = self.config.save_every or self.config.eval_every
        return every > 0 and step % every == 0

    def _stop_requested(self) -> bool:
        flag = self.stop_token.stopped
        if self.acc.num_processes > 1:  # every process must agree on the step to stop at
            t = torch.tensor(float(flag), device=self.acc.device)
            flag = bool(self.acc.reduce(t, "sum") > 0)
        return flag

    def _evaluate(self) -> EvalResult:
        """Evaluate, track the best weights, generate samples, log."""
        stats = evaluate(self.setup)
        st = self.state
        best = math.inf if st.best_loss is None else st.best_loss
        improved = stats.loss < best - self.config.min_delta
        if improved:
            st.best_loss, st.best_step, st.bad_evals = stats.loss, st.step, 0
            if self.config.patience > 0:  # only early stopping restores the best weights
                self.best_weights = ckpt_mod.trainable_state(self.setup.unwrapped)
                st.has_best_weights = True
        else:
            st.bad_evals += 1
        st.last_eval_step = st.step
        self.setup.scheduler.observe(stats.loss)  # the plateau schedule's input
        samples = generate_samples(self.setup)
        event = EvalResult(step=st.step, loss=stats.loss, perplexity=stats.perplexity,
                           bits_per_byte=stats.bits_per_byte, is_best=improved, samples=samples)
        record = asdict(event)
        record.pop("samples")
        self.files.log_metrics({"type": "eval", **record})
        self.files.log_samples(st.step, samples)
        return event

    def _early_stop_message(self) -> str:
        st = self.state
        return (f"eval loss did not improve by more than {self.config.min_delta} for "
                f"{self.config.patience} evaluations; best {st.best_loss:.4f} at step "
                f"{st.best_step}")

    # --- checkpoints and the end ---------------------------------------------------------

    def _checkpoint(self) -> CheckpointSaved:
        st = self.state
        st.wall_time_s = self._wall_time()
        st.last_checkpoint_step = st.step
        best = self.best_weights if st.best_step != st.step else None
        return self.files.save_checkpoint(asdict(st), best)

    def _finish(self, status: RunStatus, message: str) -> Iterator[TrainEvent]:
        """Final evaluation or checkpoint, final weights, summary, ``RunFinished``."""
        st = self.state
        if status == "completed" and self.has_eval and st.last_eval_step != st.step:
            yield self._evaluate()
        if status == "stopped" and st.last_checkpoint_step != st.step:
            yield self._checkpoint()
        weights_step = st.step
        if self.best_weights is not None:
            ckpt_mod.load_trainable_state(self.setup.unwrapped, self.best_weights)
            weights_step = st.best_step
        output = self.files.save_weights()
        summary = self._summary(status, message, output, weights_step)
        self.files.write_summary(summary)
        self.finished = True
        yield RunFinished(
            status=status, run_dir=str(self.files.dir), steps=st.step, tokens=st.tokens,
            wall_time_s=summary["wall_time_s"], best_eval_loss=st.best_loss,
            best_step=st.best_step, message=message, final_train_loss=st.last_loss,
            output_dir=str(output), weights_step=weights_step,
        )

    def _summary(self, status: str, message: str, output: Path | None,
                 weights_step: int | None) -> dict[str, Any]:
        st = self.state
        latest = self.files.latest_checkpoint()
        return {
            "status": status, "message": message, "steps": st.step,
            "total_steps": self.setup.total_steps, "tokens": st.tokens,
            "wall_time_s": self._wall_time(),
            "best_eval_loss": st.best_loss, "best_step": st.best_step,
            "final_train_loss": st.last_loss,
            "output_dir": str(output) if output else "",
            "weights": "best" if self.best_weights is not None else "last",
            "weights_step": weights_step,
            "latest_checkpoint": str(latest) if latest else "",
        }

    def _wall_time(self) -> float:
        """Training wall time over every segment of the run (resumes included)."""
        return self.wall_before + time.perf_counter() - self.t0

    def record_interruption(self, err: BaseException) -> None:
        """Mark the run ``failed`` (an exception) or ``stopped`` (Ctrl-C, iterator closed)."""
        if self.finished or self.files.dir is None:
            return
        latest = self.files.latest_checkpoint()
        resume = (f"resume continues from {latest.name}" if latest
                  else "no checkpoint yet: resume starts over")
        if isinstance(err, Exception):
            status = "failed"
            first = str(err).splitlines()[0] if str(err) else ""
            message = f"{type(err).__name__} at step {self.state.step}: {first}"[:300]
        else:
            status = "stopped"
            message = f"interrupted at step {self.state.step}; {resume}"
        # Best effort: when the disk is full or the directory read-only this write fails too,
        # and the error to report is the first one.
        with contextlib.suppress(Exception):
            self.files.write_summary(self._summary(status, message, None, None))

    def close(self) -> None:
        """Close the run's files."""
        self.files.close()
