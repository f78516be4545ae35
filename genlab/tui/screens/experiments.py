"""The Experiments screen (F7): run a sweep or compare spec live, the lessons one key each.

Pick a spec (the shipped lessons, each with what it shows; 1-9 run the first nine at once) or
open any spec file, read its plan and estimate (from a short probe of the real step time),
edit a value or two (``KEY=VALUE`` entries, exactly ``genlab sweep --set``), and run it. The
run is the core's own iterator, ``iter_sweep`` or ``iter_compare``, in a bridge worker, writing
the same output directory as the CLI; this screen only renders its events (``ExperimentRun``
keeps them). A sweep shows every trial's train and eval loss overlaid as they grow (legend =
the varied values, a diverged trial ends in ``x``), the trials sorted by the objective as they
finish, and the current trial's eval samples; a compare shows its cells as columns of text
with the metric table. Esc stops (finished trials stay); F5 again resumes the unfinished
output (same ``results.jsonl`` and Optuna study). Finished: the report's path, F8 retrains
the best configuration, F9 puts the best adapter (or model) into the Sample screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import OptionList, Static

from genlab.core.reports.results import default_out_dir
from genlab.core.training import run_dir as runs
from genlab.tui.bridge import Bridge
from genlab.tui.models import open_report, same_model
from genlab.tui.screens.base import GenlabScreen
from genlab.tui.screens.experiment_run import ExperimentRun
from genlab.tui.spec_catalog import SpecEntry, find_resumable
from genlab.tui.widgets.cell_columns import CellColumns
from genlab.tui.widgets.chart_view import ChartView
from genlab.tui.widgets.curves import LEGEND_MIN_HEIGHT, legend_text, loss_builder
from genlab.tui.widgets.eval_samples import EvalSamples
from genlab.tui.widgets.experiment_table import ExperimentTable
from genlab.tui.widgets.plan_view import duration, estimate_text
from genlab.tui.widgets.spec_picker import LESSON_KEYS, SpecPicker
from genlab.tui.wording import model_not_ready, tui_message

GROUP = "experiment"
ESTIMATE_GROUP = "estimate"
REDRAW_S = 0.3
MEASURE_AFTER_S = 0.5
"""The estimate's probe starts once the chosen spec stayed chosen this long."""
IDLE_HINT = ("↑/↓ pick a spec (1-9 run a lesson at once) · F5 runs it · edit values as "
             "KEY=VALUE (e.g. base.max_steps=40 trials=2) · Esc stops, F5 resumes")


class ExperimentsScreen(GenlabScreen):
    """Specs and plan on the left; the live experiment on the right."""

    TAB = "experiments"
    FOCUS_RINGS = (OptionList, ExperimentTable, EvalSamples)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-medium"), (160, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]

    BINDINGS = [
        Binding("f5,ctrl+r", "run", "Run", priority=True,
                tooltip="Run the spec shown (an unfinished output of the same spec is resumed)"),
        Binding("ctrl+n", "run_afresh", "Run afresh", priority=True,
                tooltip="Run the spec into a new output directory (nothing resumed)"),
        Binding("escape", "stop", "Stop",
                tooltip="Stop: finished trials (cells) stay, the running one is redone on resume"),
        Binding("f8", "retrain_best", "Retrain best", priority=True,
                tooltip="Retrain the best trial's configuration in full (into the output's "
                        "best/ folder)"),
        Binding("f9", "best_to_sample", "Best → Sample", priority=True,
                tooltip="Load the best adapter into the Sample screen (a full model: load it)"),
        Binding("ctrl+o", "open_report", "Report", priority=True,
                tooltip="Open the finished experiment's report.html (or copy its path)"),
        *(Binding(str(n), f"lesson({n})", "Run lesson N", show=False,
                  tooltip="Run lesson 1-9 of the list at once (when the list has focus)")
          for n in range(1, LESSON_KEYS + 1)),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec_path: Path | None = None
        self.spec: Any = None
        self.resume: tuple[Path, int] | None = None
        self.estimate = ""
        self.run: ExperimentRun | None = None
        self._run_id: int | None = None
        self._estimate_id: int | None = None
        self._measure_timer: Timer | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="exp-body"):
            yield SpecPicker(id="exp-left")
            with Vertical(id="exp-right"):
                yield ChartView(id="exp-chart")
                yield CellColumns(id="exp-cells")
                with Horizontal(id="exp-lower"):
                    yield ExperimentTable(id="exp-table")
                    yield EvalSamples(id="exp-samples")
        yield Static(IDLE_HINT, id="hint")

    def on_mount(self) -> None:
        self.query_one("#exp-chart", ChartView).border_title = "loss"
        self.query_one("#exp-table").border_title = "results"
        self.query_one("#exp-samples", EvalSamples).border_title = "eval samples"
        self.query_one("#exp-cells").display = False  # until a compare spec runs
        self.set_interval(REDRAW_S, self._redraw)

    @property
    def picker(self) -> SpecPicker:
        return self.query_one(SpecPicker)

    @property
    def entries(self) -> list[SpecEntry]:
        return self.picker.entries

    # ----------------------------------------------------------------- choosing

    def on_spec_picker_chosen(self, event: SpecPicker.Chosen) -> None:
        self._chosen(event.path, event.spec)

    def _chosen(self, path: Path, spec: Any) -> None:
        if spec is not None and spec is self.spec:
            return  # (already shown: a lesson key handles its choice at once)
        self.spec_path, self.spec = path, spec
        if self.spec is None:
            return
        self.resume = find_resumable(self.app.runs_dir, self.spec)
        if self.resume is None and self._stopped_run_of(self.spec) is not None:
            self.resume = (self.run.out_dir, len(self.run.rows))
        self.estimate = "measuring the step time…"
        self._show_plan()
        if self._measure_timer is not None:
            self._measure_timer.stop()  # browsing the list starts one probe, not one per row
        self._measure_timer = self.set_timer(MEASURE_AFTER_S, self._measure)

    def on_spec_picker_run_requested(self, event: SpecPicker.RunRequested) -> None:
        self.action_run()

    def choose(self, path: Path) -> None:
        """Show ``path``'s plan (the edits cleared) and estimate it."""
        self.picker.choose(path)

    def _show_plan(self) -> None:
        spec = self.spec
        if spec is None:
            return
        if self.resume is not None:
            out, done = self.resume
            want = spec.budget if spec.kind == "sweep" else len(spec.cells())
            where = f"resumes {out} ({done} of {want} done; Ctrl+N runs afresh)"
        else:
            where = f"new folder under {self.app.runs_dir}/"
        self.picker.plan.show_plan(spec, self.estimate, where)

    def _measure(self) -> None:
        self._measure_timer = None
        spec, app = self.spec, self.app
        if spec is None:
            return
        if app.bridge.running(GROUP):
            self.estimate = "measured when the running experiment is done"
            self._show_plan()
            return
        loaded = self._shared_model(spec)
        if spec.kind == "compare" and loaded is None and app.model_state != "ready" \
                and self._same_model(spec):
            self.estimate = "measured once the model has loaded"
            self._show_plan()
            return
        source = app.source
        handle = app.bridge.stream(
            self, ESTIMATE_GROUP,
            lambda stop: source.iter_estimate(spec, stop_token=stop, loaded=loaded),
            uses_model=loaded is not None)
        self._estimate_id = handle.run_id

    def _same_model(self, spec: Any) -> bool:
        return same_model(self.app.model_name, spec.model)

    def _shared_model(self, spec: Any) -> Any:
        """The app's loaded model, when a compare spec can use it (same model, no adapters)."""
        app = self.app
        if spec.kind != "compare" or spec.adapters or app.model_state != "ready":
            return None
        return app.loaded if self._same_model(spec) else None

    # ----------------------------------------------------------------- running

    def action_lesson(self, n: int) -> None:
        if self.picker.pick(n):
            self._chosen(self.picker.path, self.picker.spec)
            self.action_run()

    def action_run(self) -> None:
        self._run(resume=True)

    def action_run_afresh(self) -> None:
        self._run(resume=False)

    def _run(self, resume: bool, overrides: tuple[str, ...] = (), out: Path | None = None
             ) -> None:
        app = self.app
        if app.bridge.running(GROUP):
            self.notify("An experiment is running; Esc stops it first.", severity="warning")
            return
        spec = self.spec
        if spec is None:
            self.notify("Pick a spec that loads first (its problem is shown in the plan).",
                        severity="warning")
            return
        if overrides:
            spec = self.picker.load(overrides)
        if spec.kind == "compare" and self._same_model(spec) and app.model_state != "ready":
            self.notify(model_not_ready(app.model_state, app.model_text), severity="warning")
            return
        if out is not None:
            pass  # (the retrain of a finished sweep: into its own directory)
        elif resume and self.resume is not None:
            out = self.resume[0]
        elif resume and self._stopped_run_of(spec) is not None:
            out = self._stopped_run_of(spec)
        else:
            out = default_out_dir(spec.kind, spec.name, root=app.runs_dir)
        self._start(spec, out)

    def _stopped_run_of(self, spec: Any) -> Path | None:
        """The output of this session's stopped run of ``spec`` (same identity), if any."""
        run = self.run
        if run is None or not run.stopped or run.spec.kind != spec.kind:
            return None
        return run.out_dir if run.spec.identity() == spec.identity() else None

    def _start(self, spec: Any, out: Path) -> None:
        app = self.app
        self._estimate_id = None  # the run below stops the probe, and starts once it ended
        if self._measure_timer is not None:
            self._measure_timer.stop()
            self._measure_timer = None
        previous, self.run = self.run, ExperimentRun(spec, Path(out))
        if previous is not None and previous.out_dir == self.run.out_dir:
            self.run.carry_over(previous)  # a resume: what this session already showed
        self.run.load_finished()
        loaded = self._shared_model(spec)
        source = app.source
        if spec.kind == "sweep":
            make = lambda stop: source.iter_sweep(spec, out_dir=out, stop_token=stop)  # noqa: E731
        else:
            make = lambda stop: source.iter_compare(spec, out_dir=out, stop_token=stop,  # noqa: E731
                                                    loaded=loaded)
        handle = app.bridge.stream(self, GROUP, make, uses_model=loaded is not None,
                                   after=ESTIMATE_GROUP)  # the probe shares torch's RNG
        self._run_id = handle.run_id
        self._layout_for(spec)
        self._render_run(full=True)
        self.estimate = "running: the status line shows the time left"
        self._show_plan()
        self.status(f"{spec.name}: starting ({out})…")
        self.refresh_bindings()

    def _layout_for(self, spec: Any) -> None:
        compare = spec.kind == "compare"
        for selector, shown in (("#exp-chart", not compare), ("#exp-cells", compare),
                                ("#exp-samples", not compare)):
            widget = self.query_one(selector)
            if shown:
                widget.styles.clear_rule("display")  # (CSS may still hide it when small)
                widget.refresh(layout=True)
            else:
                widget.display = False
        if compare:
            self.run_worker(self.query_one(CellColumns).set_cells(
                [c.label for c in spec.cells()]))

    def action_stop(self) -> None:
        if self.app.bridge.stop(GROUP):
            self.status("stopping: the running trial ends at its next step (finished ones "
                        "stay)…")

    # ------------------------------------------------------------------ events

    def on_bridge_events_arrived(self, message: Bridge.EventsArrived) -> None:
        if message.run_id == self._estimate_id:
            for event in message.events:
                self._estimated(event)
            return
        if message.run_id != self._run_id or self.run is None:
            return
        run = self.run
        notes = []
        for event in message.events:
            notes += run.handle(event)
        log = self.query_one("#exp-samples", EvalSamples)
        for text, style in notes:
            log.add_note(text, style)
        for sample in run.take_samples():
            log.add_sample(sample.get("prompt", ""), sample.get("text", ""))
        for index, row in run.take_cells():
            self.query_one(CellColumns).fill(index, row)
        if run.table_dirty:
            self._render_run()
        self.status(run.status_text())
        if run.finished is not None:
            self._finished()

    def _estimated(self, event: Any) -> None:
        text = estimate_text(event, self.spec.kind if self.spec is not None else "sweep")
        if text:
            self.estimate = text
            self._show_plan()

    def _render_run(self, full: bool = False) -> None:
        run = self.run
        if run is None:
            return
        table = self.query_one(ExperimentTable)
        if run.spec.kind == "sweep":
            table.show_sweep(run.rows_list(), run.spec.objective, run.running_row())
        else:
            table.show_compare(run.rows_list())
        table.border_title = run.table_title()
        run.table_dirty = False
        if full:
            self._redraw(force=True)

    def _redraw(self, force: bool = False) -> None:
        run = self.run
        if run is None or run.spec.kind != "sweep" or not (run.chart_dirty or force):
            return
        if not self.is_current:
            return
        run.chart_dirty = False
        series = run.series_snapshot()
        title = f"{run.spec.name}: train (EMA lines) and eval (points) loss per trial"
        chart = self.query_one("#exp-chart", ChartView)
        inside = chart.size.height >= LEGEND_MIN_HEIGHT  # else the legend hides the curves
        chart.border_subtitle = "" if inside else legend_text(series)
        chart.draw(loss_builder(series, title, overlay=True, legend=inside))

    def on_chart_view_resized(self, message: ChartView.Resized) -> None:
        # The legend moves into or out of the chart with its height: decide again at the
        # chart's new size (the screen's own resize comes before the chart's layout).
        message.stop()
        if self.run is not None:
            self.run.chart_dirty = True
            self._redraw()

    def _finished(self) -> None:
        run = self.run
        assert run is not None and run.finished is not None
        self._render_run(full=True)
        self.resume = find_resumable(self.app.runs_dir, self.spec) if self.spec else None
        if self.resume is None and self.spec is not None and self._stopped_run_of(self.spec):
            self.resume = (run.out_dir, len(run.rows))
        self.estimate = f"the last run took {duration(run.elapsed_s)}"
        self._show_plan()
        self.refresh_bindings()
        severity = "warning" if run.stopped else "information"
        self.notify(run.summary_text(), title=f"{run.spec.name}: "
                    f"{'stopped' if run.stopped else 'done'}", severity=severity, timeout=12)

    def on_bridge_failed(self, message: Bridge.Failed) -> None:
        text = tui_message(message.message)
        if message.run_id == self._estimate_id:
            self.estimate = f"cannot measure: {text}"
            self._show_plan()
        elif message.run_id == self._run_id:
            self.status(f"failed: {text}")
            self.query_one("#exp-samples", EvalSamples).add_note(f"failed: {text}", "bold red")
            self.notify(text, title="Experiment failed", severity="error", timeout=15)
            self.refresh_bindings()

    def on_bridge_finished(self, message: Bridge.Finished) -> None:
        if message.run_id == self._run_id:
            self.refresh_bindings()

    # --------------------------------------------------------------- finished

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        run = self.run
        done = run is not None and run.finished is not None and not run.stopped
        if action in ("retrain_best", "best_to_sample"):
            return None if not (done and run.spec.kind == "sweep" and run.best) else True
        if action == "open_report":
            return True if run is not None and run.report_html() else None
        return True

    def action_retrain_best(self) -> None:
        run = self.run
        if run is None or run.spec.kind != "sweep" or not run.best:
            return
        self._run(resume=True, overrides=("retrain_best=true",), out=run.out_dir)

    def action_best_to_sample(self) -> None:
        run = self.run
        where = run.best_weights() if run is not None else None
        if where is None:
            self.notify("No best weights yet: a trial must complete first.",
                        severity="warning")
            return
        if where.name == runs.MODEL_DIR:
            self.app.load_model_named(str(where))
            self.notify(f"The best trial trained a whole model: loading {where} for every "
                        "screen (Ctrl+L loads another).", title="Best model")
            return
        if not self._same_model(run.spec):
            self.notify(f"The best adapter was trained on {run.spec.model}, not on the loaded "
                        f"{self.app.model_name}: Ctrl+L loads that model, then F9 again.",
                        severity="warning", timeout=12)
            return
        self.app.offer_adapter(f"{run.spec.name}-best", str(where))

    def action_open_report(self) -> None:
        run = self.run
        path = run.report_html() if run is not None else None
        if path is not None:
            self.notify(open_report(self.app, path), title="Report", timeout=15)
