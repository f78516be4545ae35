"""Runs screen: list run directories, overlay several, open one's samples."""

from __future__ import annotations

from genlab.core.configs import TrainConfig
from genlab.core.events import StopToken
from genlab.tui.fake_source import FakeSource
from genlab.tui.screens.run_samples import RunSamplesScreen
from genlab.tui.widgets.eval_samples import EvalSamples
from genlab.tui.widgets.run_overlay import RunOverlay
from genlab.tui.widgets.run_table import RunTable


def _make_runs(root, n=2):
    source = FakeSource(write_runs=True, train_steps=20)
    for i in range(n):
        config = TrainConfig(model="m", data="d.txt", name=f"r{i}", eval_every=5,
                             lr=1e-4 * (i + 1))
        list(source.iter_train(config, out_dir=root / f"2024010{i}-000000-r{i}",
                               stop_token=StopToken(), resume_from=None))


def test_runs_table_overlay_and_samples(tmp_path, tui, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths: the snapshot does not depend on tmp_path
    _make_runs(tmp_path / "runs")

    async def scenario():
        app = tui.fake_app(tmp_path, runs_dir="runs")
        async with app.run_test(size=tui.SIZE) as pilot:
            await pilot.press("f4")
            table = app.screen.query_one(RunTable)
            assert table.row_count == 2
            first = [str(c) for c in table.get_row_at(0)]
            assert first[1] == "20240101-000000-r1"  # newest first
            assert first[2] == "completed" and first[5] == "2e-04" and first[3] == "2.304"
            table.focus()
            await pilot.press("space", "down", "space")
            assert len(table.marked) == 2
            overlay = app.screen.query_one(RunOverlay)
            assert overlay.shown == table.marked
            await pilot.press("space")  # unmark the second
            assert len(table.marked) == 1 and overlay.shown == table.marked
            await pilot.press("enter")
            assert isinstance(app.screen, RunSamplesScreen)
            log = app.screen.query_one(EvalSamples)
            text = "\n".join(str(line.text) for line in log.lines)
            assert "step 5" in text and "says hi" in text
            await pilot.press("escape")
            assert not isinstance(app.screen, RunSamplesScreen)

    tui.run(scenario)


def test_no_runs_says_how_to_make_one(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await pilot.press("f4")
            assert app.screen.query_one(RunTable).row_count == 0
            assert "train one on F3" in app.screen.query_one("StatusLine").activity

    tui.run(scenario)


def test_sweep_trials_are_listed_and_a_running_run_shows_its_best_eval_so_far(tmp_path, tui,
                                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    _make_runs(tmp_path / "runs", n=1)
    sweep = tmp_path / "runs" / "sweep-20240105-000000-lr"
    (sweep / "trials").mkdir(parents=True)
    (sweep / "spec.json").write_text("{}")
    source = FakeSource(write_runs=True, train_steps=20)
    config = TrainConfig(model="m", data="d.txt", name="0000", eval_every=5)
    list(source.iter_train(config, out_dir=sweep / "trials" / "0000", stop_token=StopToken(),
                           resume_from=None))
    running = sweep / "trials" / "0001"  # started, evaluated twice, not finished
    list(source.iter_train(config, out_dir=running, stop_token=StopToken(), resume_from=None))
    (running / "summary.json").unlink()

    async def scenario():
        app = tui.fake_app(tmp_path, runs_dir="runs")
        async with app.run_test(size=tui.SIZE) as pilot:
            await pilot.press("f4")
            table = app.screen.query_one(RunTable)
            names = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
            assert names == [f"{sweep.name}/0001", f"{sweep.name}/0000", "20240100-000000-r0"]
            newest = [str(c) for c in table.get_row_at(0)]
            assert newest[2] == "running" and newest[3].endswith("so far")
            assert newest[6].startswith("20/")  # its last step so far

    tui.run(scenario)
