"""The optimizer-step loop behind ``genlab.core.training.train.iter_train``.

This module owns what happens between ``RunStarted`` and ``RunFinished``: the data order, one
optimizer step (micro-batches, token-weighted loss, grad norm, divergence check, update/param
ratio), evaluation and early stopping, checkpoints, stop requests, and the end of a run (final
eval, restoring the best weights, summary). The semantics are documented in
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
from genlab.core.training.evaluation import (
    count_loss_tokens,
    evaluate,
    generate_samples,
    token_nll_sum,
)
from genlab.core.training.optimizers import UpdateTracker
from genlab.core.training.run_writer import RunFiles
from genlab.core.training.setup import TrainingSetup

TrainEvent = RunStarted | TrainStep | EvalResult | CheckpointSaved | RunFinished


def _without_cudnn_attention(device: torch.device) -> contextlib.AbstractContextManager:
    """On CUDA, keep training forwards off the cuDNN attention backend of SDPA.

    With torch 2.11 on an H100, its backward gave NaN gradients in bf16 for a batch holding a
    padded block (the LoRA demo fact set, step 25, at any lr), so healthy runs ended as
    "diverged"; the flash, memory-efficient and math backends give finite gradients there.
    The backward uses the kernel its forward chose, so guarding the forward is enough.
    """
    if device.type != "cuda":
        return contextlib.nullcontext()
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3 has no cuDNN attention backend either
        return contextlib.nullcontext()
    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                        SDPBackend.MATH])


class BlockOrder:
    """Block indices of seeded per-epoch shuffles laid end to end, read by position.

    Epoch ``e`` is ``torch.randperm(num_blocks)`` from a generator seeded ``seed + e``; the
    stream position (blocks consumed) is all a checkpoint needs to continue the same order.
    """

    def __init__(self, num_blocks: int, seed: int) -> None:
        self.num_blocks = num_blocks
        self.seed = seed
        self._cache: tuple[int, torch.Tensor] | None = None

    def permutation(self, epoch: int) -> torch.Tensor:
        """The shuffle of epoch ``epoch``."""
        if self._cache is None or self._cache[0] != epoch:
            gen = torch.Generator().manual_seed(self.seed + epoch)
            self._cache = (epoch, torch.randperm(self.num_blocks, generator=gen))
        return self._cache[1]

    def take(self, start: int, count: int) -> torch.Tensor:
        """The ``count`` block indices from stream position ``start`` (crossing epochs)."""
        parts, pos, end = [], start, start + count
        while pos < end:
            epoch, offset = divmod(pos, self.num_blocks)
            chunk = self.permutation(epoch)[offset:offset + end - pos]
            parts.append(chunk)
            pos += len(chunk)
        return torch.cat(parts)


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
        total = self.setup.total_steps
        status: RunStatus = "completed"
        message = f"trained {total} steps"
        while self.state.step < total:
            # phase 1: one optimizer step (or a divergence, which is not applied)
            outcome = self._train_step()
            if isinstance(outcome, str):
                status, message = "diverged", outcome
                break
            yield outcome
            step = self.state.step
            # phase 2: evaluation, samples, early stopping
            if self._eval_due(step):
                yield self._evaluate()
                if self.config.patience and self.state.bad_evals >= self.config.patience:
                    status, message = "early-stopped", self._early_stop_message()
                    break
            # phase 3: periodic checkpoint (not after the last step: the run ends there)
            if step < total and self._checkpoint_due(step):
                yield self._checkpoint()
            # phase 4: a stop request, honoured at the step boundary
            if step < total and self._stop_requested():
                status = "stopped"
                message = (f"stopped at step {step} of {total}; resume with "
                           f"--resume {self.files.dir}")
                break
        yield from self._finish(status, message)

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
            config=self.config.to_dict(),
        )

    def _micro_batches(self, indices: torch.Tensor) -> list[torch.Tensor]:
        """This process's micro-batches of a step's global block indices."""
        b, world, rank = self.config.batch_size, self.acc.num_processes, self.acc.process_index
        return [indices[(m * world + rank) * b:(m * world + rank + 1) * b]
                for m in range(self.config.grad_accum)]

    def _train_step(self) -> TrainStep | str:
        """Forward/backward every micro-batch, check health, apply the update.

        Returns the step's event, or a divergence message (the update was not applied).
        """
        setup, acc, cfg = self.setup, self.acc, self.config
        started = time.perf_counter()
        # --- the step's data: counts over the global batch, so no communication is needed
        blocks = setup.data.train
        indices = self.order.take(self.state.consumed, setup.global_batch)
        step_tokens = int(blocks.attention_mask[indices].sum())
        loss_tokens = max(1, count_loss_tokens(blocks.labels[indices]))
        # --- forward/backward; gradients sync on the last micro-batch only
        micro = self._micro_batches(indices)
        nats = torch.zeros((), dtype=torch.float64, device=acc.device)
        for i, sel in enumerate(micro):
            sync = contextlib.nullcontext() if i == len(micro) - 1 else acc.no_sync(setup.model)
            with sync, _without_cudnn_attention(acc.device):
                labels = blocks.labels[sel].to(acc.device)
                logits = setup.model(input_ids=blocks.input_ids[sel].to(acc.device),
                                     attention_mask=blocks.attention_mask[sel].to(acc.device)
                                     ).logits
                batch_nats = token_nll_sum(logits, labels)
                # DDP averages gradients over processes; scale so the result is sum / tokens.
                acc.backward(batch_nats * (acc.num_processes / loss_tokens))
            nats += batch_nats.detach().double()
        if acc.num_processes > 1:
            nats = acc.reduce(nats, "sum")
        loss = float(nats) / loss_tokens
        lr = float(setup.scheduler.get_last_lr()[0])
        # --- health: the norm is measured before clipping, and even without clipping
        max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf
        grad_norm = float(acc.clip_grad_norm_(self.trainable, max_norm))
        problem = self._divergence(loss, grad_norm, lr)
        if problem:
            setup.optimizer.zero_grad(set_to_none=True)
            return problem
        # --- the update
        self.tracker.before_step()
        setup.optimizer.step()
        if not acc.optimizer_step_was_skipped:  # fp16 overflow: the scaler skipped the step
            setup.scheduler.step()
        setup.optimizer.zero_grad(set_to_none=True)
        ratio = self.tracker.ratio()
        # --- bookkeeping
        st = self.state
        st.step += 1
        st.consumed += setup.global_batch
        st.tokens += step_tokens
        st.last_loss = loss
        event = TrainStep(
            step=st.step, epoch=st.consumed / len(blocks), loss=loss, lr=lr, grad_norm=grad_norm,
            update_ratio=ratio, tokens=st.tokens,
            tokens_per_s=step_tokens / max(1e-9, time.perf_counter() - started),
            elapsed_s=time.perf_counter() - self.t0,
        )
        self.files.log_metrics({"type": "train", **asdict(event)})
        return event

    def _divergence(self, loss: float, grad_norm: float, lr: float) -> str:
        step = self.state.step + 1
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
