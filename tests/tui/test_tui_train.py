"""Train screen with the fake source: validation as you type, start, stop, resume, adapter."""

from __future__ import annotations

from textual.widgets import Input

from genlab.core.training import run_dir as runs
from genlab.tui.fake_source import FakeSource
from genlab.tui.widgets.eval_samples import EvalSamples
from genlab.tui.widgets.train_charts import TrainCharts, smooth
from genlab.tui.widgets.train_form import TrainForm


def test_form_validates_as_you_type(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await pilot.press("f3")
            form = app.screen.query_one(TrainForm)
            assert form.error.startswith("data=''")  # no data yet: says what is missing
            form.set_value("data", str(tmp_path / "d.txt"))
            await pilot.pause(0.05)
            assert form.error == ""
            form.set_value("dropout", "1.5")
            await pilot.pause(0.05)
            assert "dropout=1.5" in form.error and "[0, 1)" in form.error
            assert form.query_one("#dropout", Input).has_class("-invalid-setting")
            await pilot.press("f5")  # refused: nothing starts with an invalid form
            assert not app.bridge.running("train")
            form.set_value("dropout", "0.1")
            form.set_value("lr", "")
            await pilot.pause(0.05)
            assert form.error.startswith("lr=''") and "a number" in form.error
            form.set_value("lr", "1e-3")
            await pilot.pause(0.05)
            assert form.error == "" and form.read().lr == 1e-3
            assert form.read().doc_separator is None  # empty = blank lines
            form.set_value("doc_separator", "<|endoftext|>")  # TinyStories-style text
            await pilot.pause(0.05)
            assert form.error == "" and form.read().doc_separator == "<|endoftext|>"
            form.query_one("#warmup_steps").focus()
            await tui.wait_for(pilot, lambda: "warmup" in str(
                app.screen.query_one("#hint").render()), what="hint")

    tui.run(scenario)


def test_train_stop_resume_and_offer_the_adapter(tmp_path, tui):
    source = FakeSource(write_runs=True, train_steps=20, step_delay_s=0.1)

    async def scenario():
        app = tui.fake_app(tmp_path, source)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("f3")
            screen = app.screen
            form = screen.query_one(TrainForm)
            form.set_value("data", str(tmp_path / "d.txt"))
            form.set_value("name", "demo")
            await pilot.pause(0.05)
            await pilot.press("f5")
            charts = screen.query_one(TrainCharts)
            await tui.wait_for(pilot, lambda: charts.steps, what="first step")
            screen.action_stop()  # (Esc; pilot.press would wait for the run to idle)
            await tui.wait_idle(pilot, "train")
            assert screen.resumable is not None and screen.resumable.parent == app.runs_dir
            assert runs.read_summary(screen.resumable)["status"] == "stopped"
            assert "demo" in screen.resumable.name
            await pilot.press("f6")
            await tui.wait_for(pilot, lambda: screen.resumable is None
                               and not app.bridge.running("train"), what="resumed run end")
            await pilot.pause(0.05)
            assert charts.steps[-1] == 20 and charts.total_steps == 20
            assert charts.steps == sorted(set(charts.steps))  # resumed where it stopped
            assert charts.eval_steps and charts.best is not None
            assert charts.loss_ema == smooth(charts.loss) or len(charts.loss_ema) == len(
                charts.loss)
            log = screen.query_one(EvalSamples)
            text = "\n".join(str(line.text) for line in log.lines)
            assert "eval loss" in text and "says hi" in text and "completed" in text
            # the finished run's adapter is offered on the Sample screen
            await tui.wait_for(pilot, lambda: any("demo" in n for n in app.adapter_names),
                               what="adapter attached")

    tui.run(scenario)


def test_training_failure_is_reported(tmp_path, tui):
    class Broken(FakeSource):
        def iter_train(self, config, **kwargs):
            raise RuntimeError("--data nowhere.txt: no such file")
            yield  # pragma: no cover

    async def scenario():
        app = tui.fake_app(tmp_path, Broken())
        async with app.run_test(size=tui.SIZE, notifications=True) as pilot:
            await pilot.press("f3")
            app.screen.query_one(TrainForm).set_value("data", "nowhere.txt")
            await pilot.pause(0.05)
            await pilot.press("f5")
            await tui.wait_idle(pilot, "train")
            assert any("no such file" in n.message for n in app._notifications)
            assert "training failed" in app.screen.query_one("StatusLine").activity

    tui.run(scenario)


def test_f7_finds_a_learning_rate_and_fills_the_lr_field(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("f3")
            form = app.screen.query_one(TrainForm)
            form.set_value("data", str(tmp_path / "d.txt"))
            form.set_value("dora", True)  # a bool knob: an on/off choice
            await pilot.pause(0.05)
            assert form.error == "" and form.read().dora is True
            assert form.read().lr == 2e-4
            await pilot.press("f7")
            await tui.wait_for(pilot, lambda: form.read().lr == 1e-3, what="lr filled")
            await pilot.pause(0.1)
            notes = " ".join(strip.text for strip in app.screen.query_one(EvalSamples).lines)
            assert "lr range test" in notes and "0.001" in notes

    tui.run(scenario)
