"""The app shell: background model load, load failures, screens, help."""

from __future__ import annotations

from genlab.tui.fake_source import FakeSource
from genlab.tui.screens.help import HelpScreen
from genlab.tui.screens.runs import RunsScreen
from genlab.tui.screens.sample import SampleScreen
from genlab.tui.widgets.status_line import StatusLine


def test_paints_before_the_model_loads_then_describes_it(tmp_path, tui):
    source = FakeSource(load_delay_s=0.5)

    async def scenario():
        app = tui.fake_app(tmp_path, source)
        async with app.run_test(size=tui.SIZE) as pilot:
            status = app.screen.query_one(StatusLine)
            assert app.model_state == "loading"
            assert "loading fake-model" in str(status.render())
            await pilot.press("ctrl+r")  # too early: refused politely, nothing breaks
            assert not app.bridge.running("generate")
            await tui.wait_ready(pilot)
            assert app.model_state == "ready"
            assert "fake-model (1.2M params, cpu, float32)" in str(status.render())
            await pilot.press("f1")
            assert isinstance(app.screen, HelpScreen)
            await tui.check_snapshot(pilot, "help", tmp_path)
            await pilot.press("escape")
            assert isinstance(app.screen, SampleScreen)

    tui.run(scenario)


def test_failed_model_load_is_shown_and_the_app_keeps_running(tmp_path, tui):
    source = FakeSource(fail_load="--model nope: no such directory; pass an existing one")

    async def scenario():
        app = tui.fake_app(tmp_path, source, adapters={"bad": str(tmp_path)})
        messages: list[str] = []  # every notification, kept past its timeout on a slow machine
        notify = app.notify
        app.notify = lambda message, **kw: (messages.append(str(message)), notify(message, **kw))
        async with app.run_test(size=tui.SIZE, notifications=True) as pilot:
            await tui.wait_ready(pilot)
            assert app.model_state == "failed"
            status = str(app.screen.query_one(StatusLine).render())
            assert "model not loaded: --model nope: no such directory" in status
            assert any("no such directory" in m for m in messages)
            await pilot.press("ctrl+r")
            assert not app.bridge.running("generate")
            await pilot.press("f4")  # the rest of the app still works
            assert isinstance(app.screen, RunsScreen)

    tui.run(scenario)


def test_a_bad_adapter_does_not_lose_the_model(tmp_path, tui):
    class Picky(FakeSource):
        def attach_adapter(self, loaded, name, adapter_dir):
            if name == "bad":
                raise RuntimeError("--adapter bad=x: no adapter_config.json there")
            super().attach_adapter(loaded, name, adapter_dir)

    async def scenario():
        app = tui.fake_app(tmp_path, Picky(), adapters={"bad": "x", "good": "y"})
        async with app.run_test(size=tui.SIZE, notifications=True) as pilot:
            await tui.wait_ready(pilot)
            await pilot.pause(0.05)
            assert app.model_state == "ready" and app.adapter_names == ("good",)
            assert any("no adapter_config.json" in n.message for n in app._notifications)

    tui.run(scenario)
