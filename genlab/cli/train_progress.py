"""Terminal rendering of training events for ``genlab train``: progress bar, eval lines, summary.

Owns only presentation. ``TrainProgress`` consumes the events ``core.training.train.iter_train``
yields and draws them on a rich console (stderr): a live bar with step/total, loss, eval loss,
lr, tokens/s and ETA; one permanent line per evaluation above the bar; and the latest
sample-prompt generation under the bar until the next evaluation replaces it. On a console that
is not a terminal (a log file, CI) the live bar cannot redraw, so a plain step line is printed
every ~5% of the run instead. ``summary_lines`` turns the final ``RunFinished`` into the
summary the command prints on stdout.

Nothing here imports torch: the module is imported after the core has started anyway, but it
must stay cheap for tests that render synthetic events.
"""

from __future__ import annotations

import math
import shlex
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from genlab.cli.common import escape
from genlab.cli.render import EventRenderer, renders
from genlab.core.events import CheckpointSaved, EvalResult, RunFinished, RunStarted, TrainStep

MIN_REFRESH_S = 0.1
"""Redraw the bar on every step unless steps come faster than this."""
SAMPLE_CHARS = 160
"""Longest sample generation shown under the bar (the full text is in samples.jsonl)."""


def format_lr(lr: float) -> str:
    """Learning rates in compact scientific notation (``2.00e-04``)."""
    return f"{lr:.2e}"


def format_rate(tokens_per_s: float) -> str:
    """Throughput with a k/M suffix (``12.3k``)."""
    if tokens_per_s >= 1e6:
        return f"{tokens_per_s / 1e6:.2f}M"
    if tokens_per_s >= 1e3:
        return f"{tokens_per_s / 1e3:.1f}k"
    return f"{tokens_per_s:.0f}"


def format_loss(loss: float | None) -> str:
    """A loss with 4 decimals; ``-`` when there is none yet; nan/inf spelled out."""
    if loss is None:
        return "-"
    if not math.isfinite(loss):
        return str(loss)
    return f"{loss:.4f}"


def format_duration(seconds: float) -> str:
    """``12.3s``, ``4m05s`` or ``1h02m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def sample_text(sample: dict[str, str]) -> tuple[str, str]:
    """(prompt, generated text) of one sample record, whatever the core names the text key."""
    prompt = sample.get("prompt", "")
    for key in ("completion", "text", "output", "generation"):
        if key in sample:
            return prompt, sample[key]
    return prompt, ""


def format_count(n: int) -> str:
    """Parameter counts with a K/M/B suffix (``1.2M``)."""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return f"{n / scale:.1f}{suffix}"
    return str(n)


def started_lines(event: RunStarted) -> list[str]:
    """Header lines: where the run lives and how long it is; the model loaded and its memory;
    what is trained, and how."""
    resumed = f", resuming after step {event.start_step}" if event.resumed else ""
    head = f"run {event.run_dir}: {event.total_steps} steps{resumed}"
    if event.method == "lora":
        targets = ",".join(event.target_modules) or "default targets"
        rank = event.config.get("rank", "?")
        what = f"LoRA r={rank} on {targets}"
    else:
        what = "full fine-tuning"
    seq_len = event.config.get("seq_len", "?")
    procs = f" x {event.num_processes} processes" if event.num_processes > 1 else ""
    how = (f"{what}: {format_count(event.trainable_params)} of "
           f"{format_count(event.total_params)} params trained · {event.device} {event.dtype}"
           f"{procs} · batch {event.effective_batch} x {seq_len} tokens · "
           f"lr {format_lr(event.lr)}, warmup {event.warmup_steps} · "
           f"{event.train_tokens:,} train tokens, {event.eval_blocks} eval sequences")
    return [head, *([event.model] if event.model else []), how]


def eval_line(event: EvalResult) -> Text:
    """One permanent line per evaluation: step, eval loss, perplexity and a best marker."""
    line = Text.assemble(
        ("eval ", "bold cyan"),
        f"step {event.step:>6}  loss {format_loss(event.loss)}  ",
        f"ppl {event.perplexity:.2f}" if math.isfinite(event.perplexity) else "ppl inf",
    )
    if event.bits_per_byte is not None:
        line.append(f"  bpb {event.bits_per_byte:.3f}")
    if event.is_best:
        line.append("  * best", style="bold green")
    return line


class _StepCount(ProgressColumn):
    """``step 12/100`` (``step 12`` while the total is unknown)."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text(task.description, style="progress.description")
        return Text(f"step {int(task.completed)}/{int(task.total)}", style="progress.description")


class _Eta(ProgressColumn):
    """``ETA 1m05s`` from the measured steps; until the first step, the time waited for it."""

    def render(self, task: Task) -> Text:
        eta = task.fields.get("eta")
        return Text(eta or "", style="progress.remaining")


def eta_text(total: int, step: int, first_step: int, first_elapsed: float | None,
             elapsed: float) -> str:
    """``ETA 4m05s`` from the mean time of the steps after the first one of this session
    (the first also paid for warm-up); from the first step alone while it is the only one."""
    if first_elapsed is None or step <= first_step - 1:
        return ""
    remaining = max(0, total - step)
    done = step - first_step
    per_step = (elapsed - first_elapsed) / done if done > 0 else first_elapsed
    return f"ETA {format_duration(remaining * per_step)}"


class _TrainBar(Progress):
    """A progress bar with one extra line under it: the latest sample generation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sample_line: Text | None = None
        self.notice: Text | None = None
        super().__init__(*args, **kwargs)

    def get_renderables(self) -> Iterable[RenderableType]:
        extra = [line for line in (self.sample_line, self.notice) if line is not None]
        yield Group(self.make_tasks_table(self.tasks), *extra)


class TrainProgress(EventRenderer):
    """Draws a training run's events on ``console``; use as a context manager around the loop.

    Args:
        console: Where to draw (``Console(stderr=True)`` in the CLI).
        quiet: Draw nothing at all.
    """

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.live = console.is_terminal and not console.is_dumb_terminal
        self.total_steps: int | None = None
        self.step = 0
        self.last_checkpoint: str | None = None
        self.run_dir: str | None = None
        self.stop_requested = False
        self._log_every = 1
        self._last_refresh = 0.0
        self._segment_start = 0  # the step this run (or resume) started from
        self._bar = _TrainBar(
            _StepCount(),
            BarColumn(bar_width=28),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("eval {task.fields[eval]}"),
            TextColumn("lr {task.fields[lr]}"),
            TextColumn("{task.fields[rate]} tok/s"),
            _Eta(),
            TimeElapsedColumn(),
            console=console,
            disable=quiet or not self.live,
            refresh_per_second=4,
            transient=True,
        )
        self._task = self._bar.add_task("loading model and data", total=None, loss="-",
                                        eval="-", lr="-", rate="-", eta="")
        self._t0 = time.monotonic()  # the command's start: the time to the first step counts
        self._setup_s: float | None = None
        self._baseline_s: float | None = None
        self._first: tuple[int, float] | None = None  # (step, elapsed_s) of the first step

    def __enter__(self) -> TrainProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def print(self, message: RenderableType) -> None:
        """Print a permanent line above the bar (nothing when quiet)."""
        if not self.quiet:
            self.console.print(message, highlight=False)

    def stopping(self) -> None:
        """Show that a stop was requested. Runs inside a signal handler: set state only."""
        self.stop_requested = True
        self._bar.notice = Text("stopping after this step and saving a checkpoint "
                                "(Ctrl-C again to abort)", style="yellow")

    # ------------------------------------------------------------------ event handlers

    @renders(RunStarted)
    def _on_started(self, event: RunStarted) -> None:
        self.run_dir = event.run_dir
        self.total_steps = event.total_steps
        self.step = event.start_step
        self._segment_start = event.start_step
        self._log_every = max(1, self.total_steps // 20)
        self._bar.reset(self._task, total=self.total_steps, completed=self.step,
                        description="training", eta="waiting for step 1")
        self._setup_s = time.monotonic() - self._t0
        for line in started_lines(event):
            self.print(Text(line, style="dim"))

    @renders(TrainStep)
    def _on_step(self, event: TrainStep) -> None:
        self.step = event.step
        if self._first is None:
            self._first = (event.step, event.elapsed_s)
            self.print(Text(self.first_step_line(event), style="dim"))
        eta = eta_text(self.total_steps or event.step, event.step, self._first[0],
                       self._first[1], event.elapsed_s)
        self._bar.update(self._task, completed=event.step, loss=format_loss(event.loss),
                         lr=format_lr(event.lr), rate=format_rate(event.tokens_per_s),
                         eta=eta)
        now = time.monotonic()
        if now - self._last_refresh >= MIN_REFRESH_S:  # fast steps: the 4 Hz auto-refresh
            self._last_refresh = now
            self._bar.refresh()
        if not self.live and (event.step % self._log_every == 0 or event.step == 1):
            total = f"/{self.total_steps}" if self.total_steps else ""
            self.print(f"step {event.step}{total}  loss {format_loss(event.loss)}  "
                       f"lr {format_lr(event.lr)}  {format_rate(event.tokens_per_s)} tok/s  "
                       f"{format_duration(event.elapsed_s)}" + (f" · {eta}" if eta else ""))

    def first_step_line(self, event: TrainStep) -> str:
        """Where the wait for the first step went: setup, the step-0 eval, the step itself."""
        total = time.monotonic() - self._t0
        parts = [f"setup {format_duration(self._setup_s)}"] if self._setup_s is not None else []
        if self._baseline_s is not None:
            parts.append(f"step-0 eval {format_duration(self._baseline_s)}")
        step_s = max(0.0, event.elapsed_s - (self._baseline_s or 0.0))
        parts.append(f"step {event.step} {format_duration(step_s)}")
        return f"first step after {format_duration(total)} ({', '.join(parts)})"

    @renders(CheckpointSaved)
    def _on_checkpoint(self, event: CheckpointSaved) -> None:
        self.last_checkpoint = event.path

    @renders(RunFinished)
    def _on_finished(self, event: RunFinished) -> None:
        self.run_dir = event.run_dir

    @renders(EvalResult)
    def _on_eval(self, event: EvalResult) -> None:
        if self._first is None and self._setup_s is not None:  # the step-0 baseline
            self._baseline_s = time.monotonic() - self._t0 - self._setup_s
        self._bar.update(self._task, eval=format_loss(event.loss))
        self.print(eval_line(event))
        if event.samples:
            prompt, text = sample_text(event.samples[0])
            shown = (prompt + (text if text.strip() else " (empty generation)")).replace("\n", " ")
            if len(shown) > SAMPLE_CHARS:
                shown = shown[: SAMPLE_CHARS - 1] + "…"
            line = Text.assemble(("sample ", "bold magenta"), (shown[:len(prompt)], "dim"),
                                 shown[len(prompt):])  # one line: the prompt's \n as spaces
            if self.live:
                self._bar.sample_line = line
            else:
                self.print(line)
        self._bar.refresh()


def adapter_dir(run_dir: str | Path) -> Path | None:
    """The run's trained weights: ``adapter/`` (LoRA) or ``model/`` (full), if written."""
    for name in ("adapter", "model"):
        path = Path(run_dir) / name
        if path.is_dir():
            return path
    return None


def try_command(model: str, weights: Path | None, method: str, prompt: str) -> str:
    """The ``genlab sample`` command line that tries the trained weights."""
    if weights is None:
        return ""
    prompt_flag = f"--prompt {shlex.quote(escape(prompt))}"  # genlab sample unescapes \n
    if method == "full" or weights.name == "model":
        return f"genlab sample --model {shlex.quote(str(weights))} {prompt_flag}"
    # The adapter shows as its own columns beside the base model's, in the same batch.
    return (f"genlab sample --model {shlex.quote(model)} "
            f"--adapter tuned={shlex.quote(str(weights))} {prompt_flag} -t 0,0.8")


def summary_lines(finished: RunFinished, *, model: str, method: str = "lora",
                  prompt: str = "Once upon a time") -> list[str]:
    """The end-of-run summary: status, steps, tokens, time, best eval, paths, try-it command."""
    lines = [f"Training {finished.status} after {finished.steps} steps "
             f"({finished.tokens:,} tokens) in {format_duration(finished.wall_time_s)}"]
    if finished.message and finished.status in ("early-stopped", "failed"):
        lines.append(f"  {finished.message}")  # the command prints its own stop/diverge hint
    if finished.best_eval_loss is not None:
        ppl = math.exp(finished.best_eval_loss) if finished.best_eval_loss < 50 else math.inf
        lines.append(f"  best eval loss  {format_loss(finished.best_eval_loss)} "
                     f"(ppl {ppl:.2f}) @ step {finished.best_step}")
    lines.append(f"  run dir         {finished.run_dir}")
    weights = adapter_dir(finished.run_dir)
    if weights is not None:
        label = "model" if weights.name == "model" else "adapter"
        lines.append(f"  {label:<15} {weights}")
        lines.append("Try it:")
        lines.append(f"  {try_command(model, weights, method, prompt)}")
    return lines
