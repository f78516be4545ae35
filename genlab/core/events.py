"""Events that long-running core work yields, and the stop token that ends it.

Every face of genlab (CLI, TUI, scripts) consumes the same iterators of these frozen,
JSON-able dataclasses and only renders them. Generation yields ``TokenSampled`` per row per
step, ``RowFinished`` per row and one ``GenerationFinished``; training yields one ``RunStarted``,
then ``TrainStep`` per optimizer step, ``EvalResult`` per evaluation, ``CheckpointSaved`` per
checkpoint, and one ``RunFinished`` last.

A ``StopToken`` is shared between the consumer and the producer: the consumer calls
``stop()`` (from any thread, e.g. a Ctrl-C handler or a TUI key), the producer checks
``stopped`` between steps and ends cleanly with its finish events.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

FinishReason = Literal["length", "stop", "eos", "cancelled"]
RunStatus = Literal["completed", "stopped", "early-stopped", "diverged", "failed"]


class StopToken:
    """A thread-safe flag asking a running iterator to finish at its next step boundary."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def stop(self) -> None:
        """Ask the producer to stop; safe to call from any thread, any number of times."""
        self._event.set()

    @property
    def stopped(self) -> bool:
        """True once ``stop()`` has been called."""
        return self._event.is_set()


def to_dict(event: Any) -> dict[str, Any]:
    """Return a JSON-able dict of an event, with its type name under ``"event"``."""
    data = dataclasses.asdict(event)
    data["event"] = type(event).__name__
    return data


# --------------------------------------------------------------------------- generation


@dataclass(frozen=True)
class TokenAlternative:
    """One candidate token at a decode step.

    Attributes:
        token_id: Vocabulary id of the candidate.
        text: The candidate decoded on its own (for display).
        raw_prob: Probability under the model's raw softmax (no transforms).
        sampled_prob: Probability under the distribution actually sampled from, after every
            transform of the row (0 when top-k/top-p/min-p removed the token; for a greedy
            row, 1 for the argmax and 0 elsewhere).
    """

    token_id: int
    text: str
    raw_prob: float
    sampled_prob: float


@dataclass(frozen=True)
class TokenSampled:
    """A token was chosen for one row.

    Attributes:
        row: Index of the row in the request list given to the generator.
        step: 0-based index of this token among the row's new tokens.
        token_id: The chosen token.
        text: Text this token adds to the row's output (may be empty while a multi-byte
            character is incomplete; stop-string text is withheld and never emitted).
        logprob: Natural-log probability of the chosen token under the raw model softmax.
        sampled_logprob: Log probability under the row's post-transform distribution.
        alternatives: The top-N tokens by raw probability (N = the requested ``top_n``).
    """

    row: int
    step: int
    token_id: int
    text: str
    logprob: float
    sampled_logprob: float
    alternatives: tuple[TokenAlternative, ...] = ()


@dataclass(frozen=True)
class RowFinished:
    """A row is done.

    Attributes:
        row: Index of the row in the request list.
        reason: ``length`` (max new tokens), ``stop`` (a stop string), ``eos`` (end-of-sequence
            token) or ``cancelled`` (the stop token was set).
        text: The row's full generated text (stop string excluded).
        token_ids: Every generated token id (EOS included when it ended the row).
        elapsed_s: Seconds from the start of the run until this row finished.
    """

    row: int
    reason: FinishReason
    text: str
    token_ids: tuple[int, ...]
    elapsed_s: float


@dataclass(frozen=True)
class GenerationFinished:
    """The whole batch run is over (every row has a ``RowFinished`` before this)."""

    rows: int
    new_tokens: int
    elapsed_s: float
    cancelled: bool = False


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class RunStarted:
    """A training run passed setup and created (or reopened) its run directory.

    Attributes:
        run_dir: The run directory.
        total_steps: Optimizer steps the run will take.
        start_step: Steps already done (the checkpoint's step when resuming, else 0).
        resumed: True when continuing from a checkpoint.
        method: ``lora`` or ``full``.
        trainable_params: Parameters being trained.
        total_params: All parameters of the (wrapped) model.
        device: Device type of the main process (``cpu``, ``cuda``, ``mps``).
        dtype: Compute dtype (``float32``, or ``bfloat16``/``float16`` autocast).
        num_processes: Training processes (GPUs) in the run.
        effective_batch: Sequences per optimizer step over all processes.
        lr: Peak learning rate after ``lr_scaling``.
        warmup_steps: Resolved warmup length in steps.
        train_blocks: Packed training sequences.
        eval_blocks: Packed eval sequences (0 without eval data).
        train_tokens: Tokens in the training stream.
        target_modules: LoRA target module names (empty for full training).
        config: The resolved ``TrainConfig.to_dict()``.
        model: What was loaded and what it costs (``LoadedModel.describe()`` and its memory).
    """

    run_dir: str
    total_steps: int
    start_step: int
    resumed: bool
    method: str
    trainable_params: int
    total_params: int
    device: str
    dtype: str
    num_processes: int
    effective_batch: int
    lr: float
    warmup_steps: int
    train_blocks: int
    eval_blocks: int
    train_tokens: int
    target_modules: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    model: str = ""


@dataclass(frozen=True)
class TrainStep:
    """One optimizer step finished.

    Attributes:
        step: 1-based optimizer step.
        epoch: Fractional epoch reached.
        loss: Training loss of the step: summed nats over every loss token of the step's
            micro-batches (and processes) divided by their count.
        lr: Learning rate used for this step.
        grad_norm: Global gradient L2 norm before clipping.
        update_ratio: ||delta W|| / ||W|| over the trained weights for this step.
        tokens: Tokens seen so far (all steps).
        tokens_per_s: Training throughput for this step.
        elapsed_s: Seconds since the run (or resume) began.
    """

    step: int
    epoch: float
    loss: float
    lr: float
    grad_norm: float
    update_ratio: float
    tokens: int
    tokens_per_s: float
    elapsed_s: float


@dataclass(frozen=True)
class EvalResult:
    """Held-out evaluation at a step, with generations of the fixed sample prompts.

    Attributes:
        step: Optimizer steps done when evaluated.
        loss: Token-weighted mean eval loss (nats per token).
        perplexity: ``exp(loss)``.
        bits_per_byte: Summed nats / ln 2 / eval bytes (None without a byte count).
        is_best: True when this evaluation improved the best loss by more than ``min_delta``.
        samples: ``{"prompt", "text"}`` per ``sample_prompts`` entry, generated at this step.
    """

    step: int
    loss: float
    perplexity: float
    bits_per_byte: float | None = None
    is_best: bool = False
    samples: tuple[dict[str, str], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class CheckpointSaved:
    """A resumable checkpoint was written to ``path``."""

    step: int
    path: str


@dataclass(frozen=True)
class RunFinished:
    """A training run ended; mirrors the run directory's ``summary.json``.

    Attributes:
        status: ``completed`` (all steps), ``stopped`` (stop token; resumable),
            ``early-stopped`` (patience ran out), ``diverged`` (non-finite loss/gradient; the
            bad step was not applied) or ``failed`` (an exception; re-raised after this is
            recorded, so no event carries it).
        run_dir: The run directory.
        steps: Optimizer steps applied.
        tokens: Training tokens processed.
        wall_time_s: Training wall time, summed over resumed segments.
        best_eval_loss: Best eval loss seen (None without eval).
        best_step: Step of ``best_eval_loss``.
        message: One line for humans (why it stopped, what to try).
        final_train_loss: Loss of the last applied step.
        output_dir: Where the final weights are (``adapter/`` or ``model/``); "" if none.
        weights_step: Step whose weights are in ``output_dir`` (the best step when restored).
    """

    status: RunStatus
    run_dir: str
    steps: int
    tokens: int
    wall_time_s: float
    best_eval_loss: float | None = None
    best_step: int | None = None
    message: str = ""
    final_train_loss: float | None = None
    output_dir: str = ""
    weights_step: int | None = None


# ------------------------------------------------------------------------- lr range test


@dataclass(frozen=True)
class LrFindStarted:
    """The lr range test passed setup and created its output directory.

    Attributes:
        out_dir: Where ``lr_find.jsonl`` and ``lr_find.png`` go.
        num_steps: Steps of the sweep (it stops earlier when the loss explodes).
        start_lr, end_lr: The sweep's first and last learning rates.
        device: Device type.
        trainable_params: Parameters trained during the sweep.
    """

    out_dir: str
    num_steps: int
    start_lr: float
    end_lr: float
    device: str
    trainable_params: int


@dataclass(frozen=True)
class LrFindStep:
    """One step of the lr range test: its lr, its batch loss and the smoothed loss."""

    step: int
    lr: float
    loss: float
    smoothed_loss: float


@dataclass(frozen=True)
class LrFindFinished:
    """The lr range test's result.

    Attributes:
        out_dir: The output directory.
        steps: Steps run.
        suggested_lr: The suggestion: the steepest descent of the smoothed loss.
        steepest_lr: Same as ``suggested_lr`` (named for what it is).
        min_loss_lr: The lr at the smoothed loss's minimum.
        min_div10_lr: ``min_loss_lr / 10``, the other classic rule.
        stop_reason: ``exploded`` (the smoothed loss passed ``diverge`` x its minimum, or
            became non-finite), ``end`` (``end_lr`` reached) or ``stopped`` (stop token).
        plot_path: ``lr_find.png``.
        records_path: ``lr_find.jsonl``.
        wall_time_s: Seconds from setup to the end.
    """

    out_dir: str
    steps: int
    suggested_lr: float | None
    steepest_lr: float | None
    min_loss_lr: float | None
    min_div10_lr: float | None
    stop_reason: str
    plot_path: str
    records_path: str
    wall_time_s: float
