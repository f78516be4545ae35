"""The train screen's snapshot, and the snapshot reader itself.

The other screens are snapshotted by the tests that drive them (sample: the token-cursor
test, runs: the runs test, help: the app test); ``conftest.check_snapshot`` explains how.
"""

from __future__ import annotations

from genlab.tui.fake_source import FakeSource
from genlab.tui.widgets.train_form import TrainForm


def test_svg_text_reads_rows_back(tui):
    svg = ('<text class="t-r1" x="0" y="20" clip-path="url(#t-123-line-0)">a&#160;b</text>'
           '<text class="t-r2" x="9" y="20" clip-path="url(#t-123-line-0)">&lt;c&gt;</text>'
           '<text class="t-r1" x="0" y="44" clip-path="url(#t-123-line-1)">run 20250101-120000'
           '</text>')
    assert tui.svg_text(svg) == "a b<c>\nrun YYYYMMDD-HHMMSS"


def test_train_screen_snapshot(tmp_path, tui, monkeypatch):
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
            app.screen.query_one("TrainCharts").redraw()
            form.query_one("#data").focus()
            await tui.check_snapshot(pilot, "train", tmp_path)

    tui.run(scenario)
