"""The Train screen: the knobs on the left, the run's curves and samples on the right.

Thin wiring: the form builds the ``TrainConfig``, the bridge runs ``iter_train`` in a worker
(writing the same run directory as ``genlab train``), and each event goes to the chart, the
sample log or the status line. When a LoRA run ends with weights, its adapter is offered to
the Sample screen (the app attaches it in a worker).
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from genlab.core.configs import ConfigError, LrFindConfig
from genlab.core.events import (
    CheckpointSaved,
    EvalResult,
    LrFindFinished,
    LrFindStep,
    RunFinished,
    RunStarted,
    TrainStep,
)
from genlab.core.io import fresh_dir
from genlab.core.training import run_dir as runs
from genlab.tui.bridge import Bridge
from genlab.tui.widgets.eval_samples import EvalSamples
from genlab.tui.widgets.status_line import StatusLine
from genlab.tui.widgets.train_charts import TrainCharts
from genlab.tui.widgets.train_form import TrainForm

GROUP = "train"
IDLE_HINT = ("Fill in the data path, then F5 starts training · F7 finds a learning rate · "
             "Esc stops (resumable) · F6 resumes")


class TrainScreen(Screen):
    """Form | charts | samples."""


    BINDINGS = [
        Binding("f5,ctrl+r", "start", "Start training", priority=True,
                tooltip="Start training with the form's settings (a new run directory)"),
        Binding("escape", "stop", "Stop (checkpoint)",
                tooltip="Stop at the next step, saving a resumable checkpoint"),
        Binding("f6", "resume", "Resume", priority=True,
                tooltip="Resume the stopped run from its checkpoint"),
        Binding("f7", "find_lr", "Find lr", priority=True,
                tooltip="LR range test with the form's settings; fills the lr field"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._run_id: int | None = None
        self.run_dir: Path | None = None
        self.resumable: Path | None = None
        self._config = None
        self._run_model = ""
        self._start_step = 0

    def compose(self) -> ComposeResult:
        yield StatusLine()
        with Horizontal(id="train-body"):
            with Vertical(id="train-left"):
                yield TrainForm({"model": getattr(self.app, "model_name", "")})
                yield Static("", id="form-status")
            yield TrainCharts()
            yield EvalSamples()
        yield Static(IDLE_HINT, id="hint")
        yield Footer()

    def on_mount(self) -> None:
        form = self.query_one(TrainForm)
        form.border_title = "training settings"
        form.validate_form()
        form.query_one("#data").focus()  # the one field that has no default
        self.query_one(EvalSamples).add_note(
            "Fill in the data (a .txt file works) and press F5. Train loss, lr and grad norm "
            "plot live; generations of the sample prompts appear here at each evaluation.")

    # ----------------------------------------------------------------- actions

    def action_start(self) -> None:
        if self.app.bridge.running(GROUP):
            self.notify("A run is going; Esc stops it first.", severity="warning")
            return
        try:
            config = self.query_one(TrainForm).read()
        except ConfigError as err:
            self.notify(str(err), title="Fix the settings first", severity="error")
            return
        out_dir = runs.default_run_dir(config, root=self.app.runs_dir)
        self._launch(config, out_dir=out_dir, resume_from=None)

    def action_resume(self) -> None:
        if self.app.bridge.running(GROUP):
            self.notify("A run is going already.", severity="warning")
            return
        if self.resumable is None:
            self.notify("Nothing to resume: stop a run first (Esc), then F6 continues it.",
                        severity="warning")
            return
        self._launch(None, out_dir=None, resume_from=self.resumable)

    def action_stop(self) -> None:
        if self.app.bridge.stop(GROUP):
            self._status("stopping at the next step (a checkpoint is saved)…")

    def action_find_lr(self) -> None:
        """Run the lr range test on the form's settings; its suggestion fills the lr field."""
        if self.app.bridge.running(GROUP):
            self.notify("A run is going; Esc stops it first.", severity="warning")
            return
        try:
            config = self.query_one(TrainForm).read()
        except ConfigError as err:
            self.notify(str(err), title="Fix the settings first", severity="error")
            return
        source = self.app.source
        out_dir = fresh_dir(self.app.runs_dir, config.name or "run", "lr-find-")
        handle = self.app.bridge.stream(
            self, GROUP, lambda stop: source.iter_lr_find(config, LrFindConfig(),
                                                          out_dir=out_dir, stop_token=stop))
        self._run_id = handle.run_id
        self._status("lr range test: loading the model and data…")

    def _lr_found(self, event: LrFindFinished) -> None:
        samples = self.query_one(EvalSamples)
        if event.suggested_lr is None:
            samples.add_note(f"lr range test: no suggestion ({event.stop_reason})", "bold red")
            return
        self.query_one(TrainForm).set_value("lr", f"{event.suggested_lr:.2g}")
        samples.add_note(f"lr range test: suggested lr {event.suggested_lr:.2g} (steepest "
                         f"descent; minimum / 10: {event.min_div10_lr:.2g}), now in the lr "
                         f"field · plot: {event.plot_path}", "bold")
        self._status(f"lr range test done: lr set to {event.suggested_lr:.2g}")
        self.notify(f"lr set to {event.suggested_lr:.2g}", title="Learning rate found")

    def _launch(self, config, *, out_dir, resume_from) -> None:
        source = self.app.source
        self._config = config
        handle = self.app.bridge.stream(
            self, GROUP,
            lambda stop: source.iter_train(config, out_dir=out_dir, stop_token=stop,
                                           resume_from=resume_from))
        self._run_id = handle.run_id
        charts = self.query_one(TrainCharts)
        if resume_from is None:
            charts.reset()
            self.query_one(EvalSamples).clear()
        self._status("setting up: loading the model and data…" if resume_from is None
                     else f"resuming {resume_from}…")

    # ------------------------------------------------------------------ events

    def on_bridge_events_arrived(self, message: Bridge.EventsArrived) -> None:
        if message.run_id != self._run_id:
            return
        charts = self.query_one(TrainCharts)
        samples = self.query_one(EvalSamples)
        last_step = None
        for event in message.events:
            if isinstance(event, TrainStep):
                charts.add_step(event)
                last_step = event
            elif isinstance(event, EvalResult):
                charts.add_eval(event)
                samples.add_eval(event)
            elif isinstance(event, RunStarted):
                self._started(event, charts, samples)
            elif isinstance(event, CheckpointSaved):
                self._status(f"checkpoint saved at step {event.step}")
            elif isinstance(event, RunFinished):
                self._finished(event, samples)
            elif isinstance(event, LrFindStep):
                self._status(f"lr range test step {event.step} · lr {event.lr:.2e} · "
                             f"loss {event.smoothed_loss:.3f}")
            elif isinstance(event, LrFindFinished):
                self._lr_found(event)
        if last_step is not None:
            total = charts.total_steps or "?"
            self._status(f"step {last_step.step}/{total} · loss {last_step.loss:.3f} · "
                         f"lr {last_step.lr:.2e} · {last_step.tokens_per_s:,.0f} tok/s"
                         + self._eta(last_step, charts.total_steps))

    def _eta(self, step: TrainStep, total: int | None) -> str:
        """`` · eta 3m05s`` from the time per step measured in this run (or resume)."""
        done = step.step - self._start_step
        if not total or done <= 0 or step.step >= total or step.elapsed_s <= 0:
            return ""
        left = step.elapsed_s / done * (total - step.step)
        minutes, seconds = divmod(int(left), 60)
        return f" · eta {minutes}m{seconds:02d}s" if minutes else f" · eta {seconds}s"

    def _started(self, event: RunStarted, charts: TrainCharts, samples: EvalSamples) -> None:
        self._start_step = event.start_step
        self.run_dir = Path(event.run_dir)
        self._run_model = str(event.config.get("model", ""))
        if not event.resumed:
            charts.reset(event.total_steps)
        else:
            charts.total_steps = event.total_steps
        samples.add_note(f"{'resumed' if event.resumed else 'started'} {self.run_dir.name}: "
                         f"{event.total_steps} steps, {event.trainable_params:,} trainable "
                         f"params on {event.device}")
        self._status(f"training {self.run_dir.name}…")

    def _finished(self, event: RunFinished, samples: EvalSamples) -> None:
        self.resumable = Path(event.run_dir) if event.status == "stopped" else None
        samples.add_note(f"{event.status}: {event.message}",
                         "bold red" if event.status == "diverged" else "bold")
        self._status(f"{event.status}: {event.message}")
        self.query_one(TrainCharts).redraw()
        adapter = Path(event.output_dir) if event.output_dir else None
        if adapter is not None and adapter.name == runs.ADAPTER_DIR and \
                event.status != "stopped":
            if _same_model(self._run_model, self.app.model_name):
                self.app.offer_adapter(Path(event.run_dir).name, str(adapter))
            else:
                self.notify(f"The adapter was trained on {self._run_model}, not on the Sample "
                            f"screen's {self.app.model_name}: to compare, run genlab tui "
                            f"--model {self._run_model} --adapter NAME={adapter}",
                            severity="warning", timeout=15)
        severity = "information" if event.status in ("completed", "early-stopped") \
            else "warning"
        self.notify(event.message or event.status, title=f"Run {event.status}",
                    severity=severity)

    def on_bridge_failed(self, message: Bridge.Failed) -> None:
        if message.run_id != self._run_id:
            return
        self.query_one(EvalSamples).add_note(f"failed: {message.message}", "bold red")
        self._status(f"training failed: {message.message}")
        self.notify(message.message, title="Training failed", severity="error", timeout=15)

    # ------------------------------------------------------------------- hints

    def on_train_form_field_focused(self, event: TrainForm.FieldFocused) -> None:
        self.query_one("#hint", Static).update(event.hint)

    def on_train_form_validated(self, event: TrainForm.Validated) -> None:
        status = self.query_one("#form-status", Static)
        status.update(f"✖ {event.error}" if event.error else "✓ valid: F5 starts training")
        status.set_class(bool(event.error), "-error")

    def _status(self, text: str) -> None:
        self.query_one(StatusLine).activity = text


def _same_model(a: str, b: str) -> bool:
    """True when two --model values name the same model (local paths compared resolved)."""
    if not a or not b:
        return True  # unknown: let attach_adapter decide (it reports mismatches)
    def norm(name: str) -> str:
        path = Path(name).expanduser()
        return str(path.resolve()) if path.exists() else name
    return norm(a) == norm(b)
