"""The Train screen: the knobs on the left, the run's curves and samples on the right.

Thin wiring: the form builds the ``TrainConfig``, the bridge runs ``iter_train`` in a worker
(writing the same run directory as ``genlab train``), and each event goes to the chart, the
sample log or the status line. When a LoRA run ends with weights, its adapter is offered to
the Sample screen (the app attaches it in a worker).

Side by side: Ctrl+N ("compare with...") clones the shown config into B (then C); edit what
should differ, and F5 runs the configs as one small sweep (``train_compare``: the same core
iterator and output directory as ``genlab sweep``); their curves overlay live, labelled by the
fields that differ, and each finished config's adapter is offered to the Sample screen.

The layout follows the terminal: on a wide one form | charts | samples; narrower, the samples
go under the charts; on a short one only the loss chart stays, and Ctrl+S hides the form so
the charts get the whole width.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from genlab.core.configs import LrFindConfig
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
from genlab.core.reports.results import default_out_dir
from genlab.core.specs.common import SpecError
from genlab.core.training import run_dir as runs
from genlab.tui.bridge import Bridge
from genlab.tui.models import same_model
from genlab.tui.screens.base import GenlabScreen
from genlab.tui.screens.train_compare import LETTERS, compare_spec, legends
from genlab.tui.screens.train_side_by_side import GOOD, SideBySide
from genlab.tui.widgets.config_tabs import ConfigTabs
from genlab.tui.widgets.eval_samples import EvalSamples
from genlab.tui.widgets.train_charts import TrainCharts
from genlab.tui.widgets.train_form import HINTS, TrainForm, field_label
from genlab.tui.wording import tui_message

GROUP = "train"
IDLE_HINT = ("Fill in the data path, then F5 starts training · F9 finds a learning rate · "
             "Esc stops (resumable) · F6 resumes · Ctrl+N compares with a second config")


class TrainScreen(GenlabScreen):
    """Form | charts | samples."""

    TAB = "train"
    FOCUS_RINGS = (TrainForm, EvalSamples)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-medium"), (150, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]

    BINDINGS = [
        Binding("f5,ctrl+r", "start", "Start", priority=True,
                tooltip="Start training with the form's settings (a new run directory; with "
                        "configs A, B, C: all of them, as one sweep)"),
        Binding("escape", "stop", "Stop",
                tooltip="Stop at the next step, saving a resumable checkpoint"),
        Binding("f6", "resume", "Resume", priority=True,
                tooltip="Resume the stopped run from its checkpoint (a stopped comparison: "
                        "its unfinished configs)"),
        Binding("f9", "find_lr", "Find lr", priority=True,
                tooltip="LR range test with the shown config's settings; fills its lr field"),
        Binding("ctrl+n", "add_config", "Compare with…", priority=True,
                tooltip="Compare with...: add config B (then C), a copy of the shown one; "
                        "edit what should differ"),
        Binding("ctrl+b", "drop_config", "Drop", priority=True,
                tooltip="Remove the shown config (A stays)"),
        Binding("f8", "next_config", "Next", priority=True,
                tooltip="Show the next config's form (A, B, C)"),
        Binding("ctrl+s", "toggle_form", "Form", priority=True,
                tooltip="Hide or show the form (the charts take the whole width)"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._run_id: int | None = None
        self.run_dir: Path | None = None
        self.resumable: Path | None = None
        self._resume_sweep = None  # the comparison's spec, when the resumable is a sweep
        self._run_model = ""
        self.shown = 0
        self._side: SideBySide | None = None
        self._start_step = 0
        self._lr_form: TrainForm | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="train-body"):
            with Vertical(id="train-left"):
                yield ConfigTabs()
                yield self._new_form()
                yield Static("", id="form-status")
            with Vertical(id="train-right"):
                yield TrainCharts()
                yield EvalSamples()
        yield Static(IDLE_HINT, id="hint")

    def _new_form(self, letter: str = "A") -> TrainForm:
        form = TrainForm({"model": getattr(self.app, "model_name", "")},
                         id=f"form-{letter.lower()}")
        form.border_title = f"config {letter}" if letter != "A" else "training settings"
        return form

    def on_mount(self) -> None:
        self.watch(self, "focused", self._follow_focus, init=False)
        form = self.forms[0]
        form.validate_form()
        form.query_one("#data").focus()  # the one field that has no default
        self.query_one(EvalSamples).add_note(
            "Fill in the data (a .txt file works) and press F5. Train loss, lr and grad norm "
            "plot live; generations of the sample prompts appear here at each evaluation.")

    # ------------------------------------------------------------------ configs

    @property
    def forms(self) -> list[TrainForm]:
        return list(self.query(TrainForm))

    @property
    def form(self) -> TrainForm:
        """The form shown now."""
        forms = self.forms
        return forms[min(self.shown, len(forms) - 1)]

    async def action_add_config(self) -> None:
        forms = self.forms
        if len(forms) >= len(LETTERS):
            self.notify(f"At most {len(LETTERS)} configs side by side.", severity="warning")
            return
        source = self.form
        raw = source.raw_values()
        focused = self.focused.id if self.focused is not None else None
        form = self._new_form(LETTERS[len(forms)])
        await self.query_one("#train-left").mount(form, before="#form-status")
        for name, text in raw.items():
            form.set_value(name, text)
        self.show_config(len(forms))
        if focused in HINTS:
            form.query_one(f"#{focused}").focus()
        self._hint(f"Config {LETTERS[len(forms)]} is a copy of {LETTERS[forms.index(source)]}:"
                   " change what should differ (e.g. lr), then F5 runs the configs side by "
                   "side. F8 switches configs, Ctrl+B drops one.")

    async def action_drop_config(self) -> None:
        forms = self.forms
        if len(forms) <= 1:
            self.notify("Config A stays (Ctrl+N adds B to compare with).", severity="warning")
            return
        index = max(self.shown, 1)
        await forms[index].remove()
        for letter, form in zip(LETTERS, self.forms, strict=False):
            form.border_title = f"config {letter}" if letter != "A" else "training settings"
        self.show_config(min(index, len(self.forms) - 1))

    def action_next_config(self) -> None:
        self.show_config((self.shown + 1) % len(self.forms))

    def show_config(self, index: int) -> None:
        """Show config ``index`` (0 = A) and hide the others."""
        forms = self.forms
        self.shown = max(0, min(index, len(forms) - 1))
        for n, form in enumerate(forms):
            if form.display != (n == self.shown):
                form.display = n == self.shown
        self._retab()
        self.form.validate_form()

    def _retab(self) -> None:
        forms = self.forms
        labels = ["A"]
        if len(forms) > 1:
            try:
                labels = legends([f.read() for f in forms])
            except Exception:  # noqa: BLE001 - an invalid config keeps its bare letter
                labels = list(LETTERS[: len(forms)])
        self.query_one(ConfigTabs).show(labels, self.shown)

    def action_toggle_form(self) -> None:
        left = self.query_one("#train-left")
        left.display = not left.display
        if not left.display and self.focused is not None and any(
                isinstance(n, TrainForm) for n in self.focused.ancestors):
            self.query_one(EvalSamples).focus()

    # ----------------------------------------------------------------- actions

    def action_start(self) -> None:
        if self.app.bridge.running(GROUP):
            self.notify("A run is going; Esc stops it first.", severity="warning")
            return
        configs = []
        for n, form in enumerate(self.forms):
            if not form.validate_form():
                self.show_config(n)
                self.notify(f"Config {LETTERS[n]}: {form.error}", title="Fix the settings first",
                            severity="error")
                return
            configs.append(form.read())
        if len(configs) == 1:
            config = configs[0]
            out_dir = runs.default_run_dir(config, root=self.app.runs_dir)
            self._launch(config, out_dir=out_dir, resume_from=None)
            return
        name = configs[0].name or "side-by-side"
        try:
            spec = compare_spec(configs, name)
        except SpecError as err:  # a field of the configs (the spec is built from them)
            field = err.key.split(".")[-1] if err.key else ""
            self.notify(f'"{field_label(field)}": {err.problem}' if field else err.problem,
                        title="The configs cannot run", severity="error")
            return
        except ValueError as err:
            self.notify(tui_message(str(err)), title="Nothing to compare", severity="error")
            return
        self._launch_compare(spec, default_out_dir("sweep", spec.name, root=self.app.runs_dir))

    def action_resume(self) -> None:
        if self.app.bridge.running(GROUP):
            self.notify("A run is going already.", severity="warning")
            return
        if self.resumable is None:
            self.notify("Nothing to resume: stop a run first (Esc), then F6 continues it.",
                        severity="warning")
            return
        if self._resume_sweep is not None:
            self._launch_compare(self._resume_sweep, self.resumable, resumed=True)
        else:
            self._launch(None, out_dir=None, resume_from=self.resumable)

    def action_stop(self) -> None:
        if self.app.bridge.stop(GROUP):
            self.status("stopping at the next step (a checkpoint is saved)…")

    def action_find_lr(self) -> None:
        """Run the lr range test on the shown config; its suggestion fills that lr field."""
        if self.app.bridge.running(GROUP):
            self.notify("A run is going; Esc stops it first.", severity="warning")
            return
        form = self.form
        if not form.validate_form():
            self.notify(form.error, title="Fix the settings first", severity="error")
            return
        config = form.read()
        self._lr_form = form  # the suggestion goes to this config even if F8 shows another
        source = self.app.source
        out_dir = fresh_dir(self.app.runs_dir, config.name or "run", "lr-find-")
        handle = self.app.bridge.stream(
            self, GROUP, lambda stop: source.iter_lr_find(config, LrFindConfig(),
                                                          out_dir=out_dir, stop_token=stop))
        self._run_id = handle.run_id
        self.status("lr range test: loading the model and data…")

    def _lr_found(self, event: LrFindFinished) -> None:
        samples = self.query_one(EvalSamples)
        if event.suggested_lr is None:
            samples.add_note(f"lr range test: no suggestion ({event.stop_reason})", "bold red")
            return
        form = self._lr_form if self._lr_form in self.forms else self.form
        form.set_value("lr", f"{event.suggested_lr:.2g}")
        samples.add_note(f"lr range test: suggested lr {event.suggested_lr:.2g} (steepest "
                         f"descent; minimum / 10: {event.min_div10_lr:.2g}), now in the lr "
                         f"field · plot: {event.plot_path}", "bold")
        self.status(f"lr range test done: lr set to {event.suggested_lr:.2g}")
        self.notify(f"lr set to {event.suggested_lr:.2g}", title="Learning rate found")

    def _launch(self, config, *, out_dir, resume_from) -> None:
        source = self.app.source
        handle = self.app.bridge.stream(
            self, GROUP,
            lambda stop: source.iter_train(config, out_dir=out_dir, stop_token=stop,
                                           resume_from=resume_from))
        self._run_id = handle.run_id
        self._resume_sweep = None
        self._side = None
        if resume_from is None:
            self.query_one(TrainCharts).reset()
            self.query_one(EvalSamples).clear()
        self.status("setting up: loading the model and data…" if resume_from is None
                    else f"resuming {Path(resume_from).name}…")

    def _launch_compare(self, spec, out_dir: Path, resumed: bool = False) -> None:
        source = self.app.source
        handle = self.app.bridge.stream(
            self, GROUP, lambda stop: source.iter_sweep(spec, out_dir=out_dir, stop_token=stop))
        self._run_id = handle.run_id
        self._resume_sweep = spec
        self.resumable = None
        self.run_dir = Path(out_dir)
        self._run_model = spec.model
        labels = list(spec.search.dims[0].choices)
        charts, samples = self.query_one(TrainCharts), self.query_one(EvalSamples)
        self._side = SideBySide(Path(out_dir), charts, samples)
        if not resumed:
            charts.reset(labels={label: label for label in labels})
            samples.clear()
        self.status(f"{'resuming' if resumed else 'starting'} {len(labels)} configs side by "
                    f"side: {' · '.join(labels)}")

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
                self.status(f"checkpoint saved at step {event.step}")
            elif isinstance(event, RunFinished):
                self._finished(event, samples)
            elif isinstance(event, LrFindStep):
                self.status(f"lr range test step {event.step} · lr {event.lr:.2e} · "
                            f"loss {event.smoothed_loss:.3f}")
            elif isinstance(event, LrFindFinished):
                self._lr_found(event)
            else:
                self._compare_event(event)
        if last_step is not None:
            total = charts.total_steps or "?"
            self.status(f"step {last_step.step}/{total} · loss {last_step.loss:.3f} · "
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
        self.status(f"training {self.run_dir.name}…")

    def _finished(self, event: RunFinished, samples: EvalSamples) -> None:
        self.resumable = Path(event.run_dir) if event.status == "stopped" else None
        message = tui_message(event.message)
        samples.add_note(f"{event.status}: {message}",
                         "bold red" if event.status == "diverged" else "bold")
        self.status(f"{event.status}: {message}")
        self.query_one(TrainCharts).redraw()
        adapter = Path(event.output_dir) if event.output_dir else None
        if adapter is not None and adapter.name == runs.ADAPTER_DIR and \
                event.status != "stopped":
            self._offer(Path(event.run_dir).name, adapter)
        severity = "information" if event.status in GOOD else "warning"
        self.notify(message or event.status, title=f"Run {event.status}", severity=severity)

    def _offer(self, name: str, adapter: Path) -> None:
        if same_model(self._run_model, self.app.model_name):
            self.app.offer_adapter(name, str(adapter))
        else:
            self.notify(f"The adapter was trained on {self._run_model}, not on the Sample "
                        f"screen's {self.app.model_name}: Ctrl+L loads that model, then "
                        f"the adapter is in {adapter}", severity="warning", timeout=15)

    def _compare_event(self, event) -> None:
        """An event of a side-by-side comparison (drawn by ``SideBySide``)."""
        side = self._side
        if side is None:
            return
        side.handle(event)
        for name, adapter in side.offers:
            self._offer(name, adapter)
        side.offers.clear()
        if side.status:
            self.status(side.status)
        if side.finished is not None and side.finished is event:
            self.resumable = Path(event.out_dir) if event.stopped else None
            self.notify(side.status, title="Side by side", timeout=10)

    def on_bridge_failed(self, message: Bridge.Failed) -> None:
        if message.run_id != self._run_id:
            return
        text = tui_message(message.message)
        self.query_one(EvalSamples).add_note(f"failed: {text}", "bold red")
        self.status(f"training failed: {text}")
        self.notify(text, title="Training failed", severity="error", timeout=15)

    # ------------------------------------------------------------------- hints

    def _follow_focus(self, focused) -> None:
        """The hint describes what has focus now (looked up when focus moves, so fast
        Shift+Tab presses never leave it describing a field that lost focus)."""
        if focused is not None and (focused.id or "") in HINTS:
            self._hint(HINTS[focused.id])
        elif isinstance(focused, EvalSamples):
            self._hint("the generations of the sample prompts at each evaluation (↑/↓ "
                       "scroll)")

    def on_train_form_validated(self, event: TrainForm.Validated) -> None:
        if event.control is not self.form:
            self._retab()
            return
        status = self.query_one("#form-status", Static)
        if event.errors:
            count = len(event.errors)
            head = f"✖ {count} field{'s' if count > 1 else ''} to fix (red):\n" if count > 1 \
                else "✖ "
            status.update(head + "\n".join(event.errors))
        else:
            many = len(self.forms) > 1
            status.update("✓ valid: F5 runs " + ("the configs side by side" if many
                                                  else "training"))
        status.set_class(bool(event.errors), "-error")
        self._retab()

    def _hint(self, text: str) -> None:
        self.query_one("#hint", Static).update(text)
