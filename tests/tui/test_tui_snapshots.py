"""Every screen at 80x24, 120x40 and 200x60: what a user sees, kept by snapshot.

Each test drives one screen to a deterministic state with the fake source, then records it
at the three sizes (``conftest.check_snapshot`` explains how snapshots are compared and
re-recorded). Besides the snapshot, each size is checked for what must never be lost: the
screen keys in the tab bar, the screen's own keys in the key bar, and (Train) the loss chart.
"""

from __future__ import annotations

from genlab.core.configs import TrainConfig
from genlab.core.events import StopToken
from genlab.tui.fake_source import FakeSource
from genlab.tui.widgets.chart_view import ChartView
from genlab.tui.widgets.key_bar import KeyBar
from genlab.tui.widgets.tab_bar import TabBar
from genlab.tui.widgets.train_form import TrainForm

SIZES = ((80, 24), (120, 40), (200, 60))
SCREEN_KEYS = ("F2 Sample", "F3 Train", "F4 Runs", "F7 Experiments", "F1 Help")


def test_svg_text_reads_rows_back(tui):
    svg = ('<text class="t-r1" x="0" y="20" clip-path="url(#t-123-line-0)">a&#160;b</text>'
           '<text class="t-r2" x="9" y="20" clip-path="url(#t-123-line-0)">&lt;c&gt;</text>'
           '<text class="t-r1" x="0" y="44" clip-path="url(#t-123-line-1)">run 20250101-120000'
           '</text>')
    assert tui.svg_text(svg) == "a b<c>\nrun YYYYMMDD-HHMMSS"
    timed = '<text class="t" x="0" y="20" clip-path="url(#t-1-line-0)">the last run took 1 s</text>'
    assert tui.svg_text(timed) == "the last run took N s"


async def _shoot_sizes(pilot, tui, name: str, tmp_path, first_key: str) -> None:
    """Snapshot the current screen at every size, checking the chrome at each."""
    app = pilot.app
    for width, height in SIZES:
        await pilot.resize_terminal(width, height)
        await tui.settle(pilot)
        tabs = str(app.screen.query_one(TabBar).render())
        assert all(key in tabs for key in SCREEN_KEYS), (width, tabs)
        bar = app.screen.query_one(KeyBar)
        keys = bar.render()
        assert first_key in str(keys), (width, str(keys))
        assert keys.cell_len <= bar.size.width, (width, str(keys))  # every key, none cut off
        await tui.check_snapshot(pilot, f"{name}-{width}x{height}", tmp_path)


def test_sample_screen_at_three_sizes(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("ctrl+r")
            await tui.wait_idle(pilot, "generate")
            await pilot.press("ctrl+t", "ctrl+t", "right", "right")
            await _shoot_sizes(pilot, tui, "sample", tmp_path, "F5 Run all")

    tui.run(scenario)


def test_train_screen_at_three_sizes_keeps_the_loss_chart(tmp_path, tui, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths: the snapshot does not depend on tmp_path
    source = FakeSource(train_steps=40)

    async def scenario():
        app = tui.fake_app(tmp_path, source, runs_dir="runs")
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("f3")
            form = app.screen.query_one(TrainForm)
            form.set_value("data", "stories.txt")
            form.set_value("name", "demo")
            await pilot.pause(0.05)
            await pilot.press("f5")
            await tui.wait_idle(pilot, "train")
            form.query_one("#data").focus()
            for width, height in SIZES:
                await pilot.resize_terminal(width, height)
                await tui.settle(pilot)
                loss = app.screen.query_one("#loss", ChartView)
                assert loss.size.width >= 30 and loss.size.height >= 8, (width, loss.size)
                assert "best eval" in loss.drawn_text
            await _shoot_sizes(pilot, tui, "train", tmp_path, "F5 Start")

    tui.run(scenario)


def test_runs_screen_at_three_sizes(tmp_path, tui, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = FakeSource(write_runs=True, train_steps=20)
    for i in range(2):
        config = TrainConfig(model="m", data="d.txt", name=f"r{i}", eval_every=5,
                             lr=1e-4 * (i + 1))
        list(source.iter_train(config, out_dir=tmp_path / "runs" / f"2024010{i}-000000-r{i}",
                               stop_token=StopToken(), resume_from=None))

    async def scenario():
        app = tui.fake_app(tmp_path, runs_dir="runs")
        async with app.run_test(size=tui.SIZE) as pilot:
            await pilot.press("f4")
            app.screen.query_one("RunTable").focus()
            await pilot.press("space", "down", "space")
            await _shoot_sizes(pilot, tui, "runs", tmp_path, "F5 Refresh")

    tui.run(scenario)


def test_experiments_screen_at_three_sizes(tmp_path, tui, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = FakeSource()

    async def scenario():
        app = tui.fake_app(tmp_path, source, runs_dir="runs")
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("f7")
            await pilot.press("1")  # lesson 1: learning-rate, at once
            await tui.wait_for(pilot, lambda: app.screen.run is not None
                               and app.screen.run.finished is not None, what="sweep end")
            await tui.wait_idle(pilot, "experiment")
            await _shoot_sizes(pilot, tui, "experiments", tmp_path, "F5 Run")

    tui.run(scenario)


def test_help_screen_at_three_sizes(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("f1")
            for width, height in SIZES:
                await pilot.resize_terminal(width, height)
                await tui.check_snapshot(pilot, f"help-{width}x{height}", tmp_path)

    tui.run(scenario)
