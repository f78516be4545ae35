"""The app shell: background model load, load failures and Ctrl+L, screens, tabs, help."""

from __future__ import annotations

from textual.widgets import Input

from genlab.tui.fake_source import FakeSource
from genlab.tui.screens.experiments import ExperimentsScreen
from genlab.tui.screens.help import HelpScreen
from genlab.tui.screens.load_model import LoadModelScreen
from genlab.tui.screens.runs import RunsScreen
from genlab.tui.screens.sample import SampleScreen
from genlab.tui.screens.train import TrainScreen
from genlab.tui.widgets.key_bar import KeyBar
from genlab.tui.widgets.sample_column import SampleColumn
from genlab.tui.widgets.status_line import StatusLine
from genlab.tui.widgets.tab_bar import TabBar


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
            tabs = app.screen.query_one(TabBar)
            assert "fake-model (1.2M params, cpu, float32)" in str(tabs.render())
            await pilot.press("f1")
            assert isinstance(app.screen, HelpScreen)
            help_screen = app.screen
            await pilot.press("escape")
            assert isinstance(app.screen, SampleScreen)
            await pilot.press("f1")  # the same help screen again (built once)
            assert app.screen is help_screen
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
            assert 'model not loaded: "model" nope: no such directory' in status
            assert any("no such directory" in m and "Ctrl+L" in m for m in messages)
            await pilot.press("ctrl+r")  # says how to load another model, runs nothing
            assert not app.bridge.running("generate")
            assert "Ctrl+L loads another model" in messages[-1]
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


def test_after_a_failed_load_ctrl_l_loads_another_model(tmp_path, tui):
    class OnlyGood(FakeSource):
        def load_model(self, name, **kwargs):
            if name != "good-model":
                raise RuntimeError(f"--model {name}: no such directory; pass an existing one")
            return super().load_model(name, **kwargs)

    async def scenario():
        app = tui.fake_app(tmp_path, OnlyGood())
        async with app.run_test(size=tui.SIZE, notifications=True) as pilot:
            await tui.wait_ready(pilot)
            assert app.model_state == "failed"
            await pilot.press("ctrl+l")
            dialog = app.screen
            assert isinstance(dialog, LoadModelScreen)
            assert '"model" fake-model: no such directory' in str(
                dialog.query_one("#load-model-why").render())
            dialog.query_one(Input).value = "good-model"
            await pilot.press("enter")
            await tui.wait_for(pilot, lambda: app.model_state == "ready", what="the new model")
            assert app.model_name == "good-model" and isinstance(app.screen, SampleScreen)
            await pilot.press("ctrl+r")  # now it generates
            await tui.wait_idle(pilot, "generate")
            assert all(c.tokens for c in app.screen.query(SampleColumn))

    tui.run(scenario)


def test_the_tab_bar_marks_the_screen_and_its_keys_switch(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            for key, screen_type in (("f3", TrainScreen), ("f7", ExperimentsScreen),
                                     ("f4", RunsScreen), ("f2", SampleScreen)):
                await pilot.press(key)
                assert isinstance(app.screen, screen_type)
                tabs = app.screen.query_one(TabBar)
                active = [span for span in tabs.tabs().spans if span.style.reverse]
                assert len(active) == 1  # one tab drawn reversed: this screen's
                label = tabs.tabs().plain[active[0].start:active[0].end]
                assert label.strip().split()[0] == key.upper()

    tui.run(scenario)


def test_clicking_a_tab_or_a_key_in_the_key_bar_acts(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            tabs = app.screen.query_one(TabBar).tabs().plain
            await pilot.click(TabBar, offset=(tabs.index("Train"), 0))
            assert isinstance(app.screen, TrainScreen)
            await tui.settle(pilot)  # the Train screen's key bar laid out at its final width
            keys = str(app.screen.query_one(KeyBar).render())
            await pilot.click(KeyBar, offset=(keys.index("Compare"), 0))  # = Ctrl+N
            await pilot.pause(0.1)
            assert len(app.screen.forms) == 2

    tui.run(scenario)
