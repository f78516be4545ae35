"""Experiments screen (F7): lessons one key each, live sweeps, stop and resume, compare cells.

The fast tests run the fake source (its sweeps yield the core's events); the last one runs the
real core on the tiny Llama and checks that the screen's output directory is what ``genlab
sweep`` writes for the same spec and edits.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Input
from typer.testing import CliRunner

from genlab.cli import app as cli_app
from genlab.tui.app import make_app
from genlab.tui.fake_source import FakeSource
from genlab.tui.screens.experiments import ExperimentsScreen
from genlab.tui.spec_catalog import LESSON_ORDER, find_specs
from genlab.tui.widgets.cell_columns import CellText
from genlab.tui.widgets.chart_view import ChartView
from genlab.tui.widgets.experiment_table import ExperimentTable
from genlab.tui.widgets.plan_view import PlanView

ROOT = Path(__file__).resolve().parents[2]
LR_SPEC = ROOT / "prompts" / "specs" / "learning-rate.yaml"


def _table(app) -> list[list[str]]:
    table = app.screen.query_one(ExperimentTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def _finished(pilot, tui, timeout: float = 20.0) -> None:
    app = pilot.app
    await tui.wait_for(pilot, lambda: app.screen.run is not None
                       and app.screen.run.finished is not None, timeout, what="experiment end")
    await tui.wait_idle(pilot, "experiment")


def test_the_lessons_are_listed_in_teaching_order_with_what_they_show():
    entries = find_specs()
    names = [e.name for e in entries]
    assert names[:7] == list(LESSON_ORDER[:7])  # lr, warmup, ... early stopping: keys 1-7
    assert names == list(LESSON_ORDER)  # every shipped lesson has its place (new ones too)
    lr = entries[0]
    assert lr.kind == "sweep" and "too small, good, oscillating, diverging" in lr.summary
    assert all(e.summary for e in entries)


def test_one_key_runs_a_lesson_live_sorted_with_the_diverged_trial_flagged(tmp_path, tui,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    async def scenario():
        app = tui.fake_app(tmp_path, FakeSource(), runs_dir="runs")
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("f7")
            assert isinstance(app.screen, ExperimentsScreen)
            plan = app.screen.query_one(PlanView)
            await tui.wait_for(pilot, lambda: "measured" in str(plan.render()),
                               what="the estimate")
            text = str(plan.render())
            assert "learning-rate · sweep (grid) · 4 trials" in text
            assert "lr ∈ {1e-05, 0.001, 0.03, 1}" in text and "≈" in text
            await pilot.press("1")  # lesson 1, at once
            await _finished(pilot, tui)
            run = app.screen.run
            assert run.out_dir.parent == Path("runs") and run.out_dir.name.startswith("sweep-")
            assert sorted(run.series) == [0, 1, 2, 3]  # four curves, one per trial
            assert run.series[3].diverged and not run.series[1].diverged
            rows = _table(app)
            assert [r[2] for r in rows][-1] == "lr=1" and "diverged" in rows[-1][3]
            objectives = [float(r[4]) for r in rows[:-1]]
            assert objectives == sorted(objectives)  # best first, the diverged one last
            await tui.settle(pilot)
            chart = app.screen.query_one("#exp-chart", ChartView).drawn_text
            assert "lr=1 ×" in chart and "lr=0.001" in chart  # legend: the varied values
            samples = "\n".join(str(line.text) for line in
                                app.screen.query_one("#exp-samples").lines)
            assert "at step" in samples  # the current trial's eval samples
            status = str(app.screen.query_one("StatusLine").render())
            assert "done: 4 trials" in status and "report.html" in status

    tui.run(scenario)


def test_esc_keeps_finished_trials_and_f5_resumes_the_same_output(tmp_path, tui, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = FakeSource(step_delay_s=0.01)

    async def scenario():
        app = tui.fake_app(tmp_path, source, runs_dir="runs")
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("f7", "f5")
            screen = app.screen
            await tui.wait_for(pilot, lambda: len(screen.run.rows) >= 2, timeout=30,
                               what="two trials")
            app.simulate_key("escape")
            await _finished(pilot, tui)
            first = screen.run
            assert first.stopped and 2 <= len(first.rows) < 4
            kept = set(first.rows)
            assert str(first.out_dir) in str(screen.query_one(PlanView).render()).replace(
                "\n", "")  # the plan says F5 resumes it
            await pilot.press("f5")
            await _finished(pilot, tui, timeout=30)
            second = screen.run
            assert second.out_dir == first.out_dir and not second.stopped
            assert set(second.rows) == {0, 1, 2, 3} and kept <= set(second.rows)
            assert len(source._sweep_rows[str(first.out_dir)]) == 4  # no trial ran twice

    tui.run(scenario)


def test_edits_change_the_plan_and_a_bad_edit_says_why_in_tui_words(tmp_path, tui, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def scenario():
        app = tui.fake_app(tmp_path, runs_dir="runs")
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("f7")
            screen = app.screen
            plan = screen.query_one(PlanView)
            edits = screen.query_one("#edits", Input)
            edits.value = "base.max_steps=5 'search.lr=[0.001, 0.01]'"
            await tui.wait_for(pilot, lambda: "2 trials" in str(plan.render()), what="edit")
            assert "max_steps 5" in str(plan.render())
            edits.value = "base.lr=abc"
            await tui.wait_for(pilot, lambda: plan.has_class("-error"), what="bad edit")
            assert "base.lr: expected" in str(plan.render())
            await pilot.press("f5")  # refused: nothing runs
            assert not app.bridge.running("experiment")
            path = screen.query_one("#spec-path", Input)
            path.value = str(tmp_path / "nope.yaml")
            await pilot.press("ctrl+r")
            screen.choose(Path(path.value))
            assert "no such spec file" in str(plan.render())

    tui.run(scenario)


def test_a_compare_spec_shows_its_cells_as_columns_with_the_metric_table(tmp_path, tui,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def scenario():
        app = tui.fake_app(tmp_path, runs_dir="runs")
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("f7")
            names = [e.name for e in app.screen.entries]
            await pilot.press(str(names.index("temperature-top-k") + 1))
            await _finished(pilot, tui)
            await pilot.pause(0.1)
            columns = list(app.screen.query(CellText))
            assert [c.border_title for c in columns][:2] == ["T=0 k=0", "T=0 k=40"]
            assert len(columns) == 8 and all("says story" in str(c.render()) for c in columns)
            rows = _table(app)
            assert len(rows) == 8 and rows[0][0] == "T=0 k=0"
            per_cell = app.screen.spec.rows_per_cell  # prompts x samples, all ended by length
            assert per_cell > 1 and rows[0][2] == f"length {per_cell}"
            assert not app.screen.query_one("#exp-chart").display

    tui.run(scenario)


def test_a_finished_sweep_retrains_the_best_and_loads_it_into_sample(tmp_path, tui,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def scenario():  # the app's model is the lessons' (the shipped one), faked
        app = make_app(model="default", event_source=FakeSource(), runs_dir="runs")
        async with app.run_test(size=tui.SIZE, notifications=True) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("f7", "1")
            await _finished(pilot, tui)
            screen = app.screen
            best = screen.run.best
            adapter = screen.run.out_dir / best["run_dir"] / "adapter"
            adapter.mkdir(parents=True)  # (the fake trains nothing: give it weights)
            await pilot.press("f9")
            await tui.wait_for(pilot, lambda: "learning-rate-best" in app.adapter_names,
                               what="the best adapter offered")
            await pilot.press("f8")  # retrain the best: the same output, retrain_best on
            await _finished(pilot, tui)
            assert screen.run.out_dir == adapter.parents[2]
            assert -1 in screen.run.series and screen.run.series[-1].label == "best, retrained"
            await pilot.press("ctrl+o")  # no desktop here: the path is copied and shown
            assert any("report.html" in n.message for n in app._notifications)

    tui.run(scenario)


@pytest.mark.slow
def test_the_screen_writes_what_genlab_sweep_writes(tiny_llama, tmp_path, tui):
    """learning-rate.yaml, shortened by edits, run from the screen and by ``genlab sweep``."""
    facts = tmp_path / "facts"
    facts.mkdir()
    for name, n in (("train.jsonl", 24), ("eval.jsonl", 12)):
        lines = (ROOT / "demo" / "facts" / name).read_text(encoding="utf-8").splitlines()[:n]
        (facts / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    edits = [f"model={tiny_llama}", f"vars.facts={facts}", "base.max_steps=3",
             "base.eval_every=1", "base.batch_size=2", "base.seq_len=32",
             "base.eval_max_batches=2", "base.device=cpu"]

    async def scenario():
        app = make_app(model=str(tiny_llama), device="cpu", runs_dir=tmp_path / "tui")
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("f7")
            app.screen.query_one("#edits", Input).value = " ".join(edits)
            await tui.wait_for(pilot, lambda: str(tiny_llama) in str(
                app.screen.query_one(PlanView).render()).replace("\n", ""), what="edits")
            await pilot.press("f5")
            await _finished(pilot, tui, timeout=300)
            assert not app.screen.run.stopped

    tui.run(scenario)
    (tui_out,) = (tmp_path / "tui").glob("sweep-*-learning-rate")
    cli_out = tmp_path / "cli"
    args = ["sweep", str(LR_SPEC), "--out", str(cli_out), "-q"]
    for edit in edits:
        args += ["--set", edit]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    assert _tree(tui_out) == _tree(cli_out)
    assert _rows(tui_out) == _rows(cli_out) and len(_rows(cli_out)) == 4
    spec = json.loads((tui_out / "spec.json").read_text())
    assert spec == json.loads((cli_out / "spec.json").read_text())
    for trial in (cli_out / "trials").iterdir():
        other = tui_out / "trials" / trial.name
        assert _losses(trial) == _losses(other)
        assert json.loads((trial / "config.json").read_text()) == json.loads(
            (other / "config.json").read_text())


TIMING = ("wall_time_s", "finished_at", "pid", "elapsed_s", "tokens_per_s")


def _tree(out: Path) -> set[str]:
    """Every file of an output directory, relative (the study's and reports' bytes aside)."""
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


def _rows(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return sorted(({k: v for k, v in r.items() if k not in TIMING} for r in rows),
                  key=lambda r: r["trial"])


def _losses(run_dir: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["type"], r["step"], r.get("loss")) for r in rows]
