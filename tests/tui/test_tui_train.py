"""Train screen with the fake source: validation as you type (every field at once), start,
stop, resume, the adapter offered to Sample, configs side by side, the hint under fast keys."""

from __future__ import annotations

from textual.widgets import Input, TextArea

from genlab.core.data.sources import DataError
from genlab.core.training import run_dir as runs
from genlab.tui.fake_source import FakeSource
from genlab.tui.widgets.chart_view import ChartView
from genlab.tui.widgets.config_tabs import ConfigTabs
from genlab.tui.widgets.eval_samples import EvalSamples
from genlab.tui.widgets.train_charts import TrainCharts, smooth
from genlab.tui.widgets.train_form import HINTS, TrainForm


def test_form_validates_as_you_type(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await pilot.press("f3")
            form = app.screen.query_one(TrainForm)
            assert form.error.startswith('"data": required')  # no data yet: what is missing
            form.set_value("data", str(tmp_path / "d.txt"))
            await pilot.pause(0.05)
            assert form.error == ""
            form.set_value("dropout", "1.5")
            await pilot.pause(0.05)
            assert form.error == '"dropout": must be in [0, 1) (got 1.5)'
            assert form.query_one("#dropout", Input).has_class("-invalid-setting")
            await pilot.press("f5")  # refused: nothing starts with an invalid form
            assert not app.bridge.running("train")
            form.set_value("dropout", "0.1")
            form.set_value("lr", "")
            await pilot.pause(0.05)
            assert form.error.startswith('"lr": required') and "a number" in form.error
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
            raise DataError("--data nowhere.txt: no such file")  # as the core raises it
            yield  # pragma: no cover

    async def scenario():
        app = tui.fake_app(tmp_path, Broken())
        async with app.run_test(size=tui.SIZE, notifications=True) as pilot:
            await pilot.press("f3")
            app.screen.query_one(TrainForm).set_value("data", "nowhere.txt")
            await pilot.pause(0.05)
            await pilot.press("f5")
            await tui.wait_idle(pilot, "train")
            messages = [n.message for n in app._notifications]
            assert '"data" nowhere.txt: no such file' in messages  # the TUI's words, no flags
            assert "training failed" in app.screen.query_one("StatusLine").activity

    tui.run(scenario)


def test_every_invalid_field_is_red_at_once_and_letters_are_not_dropped(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await pilot.press("f3")
            form = app.screen.query_one(TrainForm)
            form.set_value("lr", "2e-4x")  # a letter in a number: kept, and an error
            form.set_value("dropout", "1.5")
            form.set_value("rank", "0")
            await pilot.pause(0.05)
            assert form.query_one("#lr", Input).value == "2e-4x"
            assert set(form.errors) == {"data", "lr", "dropout", "rank"}
            assert form.errors["lr"] == '"lr": must be a number (got \'2e-4x\')'
            assert form.errors["rank"] == '"rank": must be an integer >= 1 (got 0)'
            for name in form.errors:
                assert form.query_one(f"#{name}").has_class("-invalid-setting"), name
            status = str(app.screen.query_one("#form-status").render())
            assert "4 fields to fix" in status and '"dropout": must be in [0, 1)' in status
            form.set_value("data", "d.txt")
            form.set_value("lr", "2e-4")
            await pilot.pause(0.05)
            assert set(form.errors) == {"dropout", "rank"}
            assert not form.query_one("#lr").has_class("-invalid-setting")

    tui.run(scenario)


def test_prompt_and_completion_fields_multi_line_prompts_and_escapes(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await pilot.press("f3")
            form = app.screen.query_one(TrainForm)
            form.set_value("data", "demo/facts/train.jsonl")
            form.set_value("prompt_field", "prompt")
            await pilot.pause(0.05)
            assert set(form.errors) == {"completion_field"}  # the two go together
            assert "needed with" in form.errors["completion_field"]
            form.set_value("completion_field", "completion")
            form.set_value("sample_prompts", "Q: What is the capital of France?\nA poem:\\n")
            form.set_value("doc_separator", "\\n\\n")
            await pilot.pause(0.05)
            config = form.read()
            assert (config.prompt_field, config.completion_field) == ("prompt", "completion")
            assert config.sample_prompts == ("Q: What is the capital of France?", "A poem:\n")
            assert config.doc_separator == "\n\n"
            assert isinstance(form.query_one("#sample_prompts"), TextArea)

    tui.run(scenario)


def test_two_configs_differing_in_lr_overlay_live_as_one_sweep(tmp_path, tui):
    source = FakeSource(step_delay_s=0.005)

    async def scenario():
        app = tui.fake_app(tmp_path, source)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("f3")
            screen = app.screen
            a = screen.query_one(TrainForm)
            (tmp_path / "stories.txt").write_text("Once upon a time.\n")
            a.set_value("data", str(tmp_path / "stories.txt"))
            a.set_value("max_steps", "30")
            a.query_one("#lr").focus()
            await pilot.pause(0.05)
            await pilot.press("ctrl+n")  # compare with...: B, a copy of A, on the same field
            forms = screen.forms
            assert len(forms) == 2 and forms[1].raw_values() == a.raw_values()
            assert app.focused is forms[1].query_one("#lr") and not a.display
            forms[1].set_value("lr", "1e-3")
            await pilot.pause(0.05)
            tabs = screen.query_one(ConfigTabs)
            assert tabs.labels == ["A lr=0.0002", "B lr=0.001"] and tabs.active == 1
            await pilot.press("f5")
            charts = screen.query_one(TrainCharts)
            await tui.wait_for(pilot, lambda: all(len(s.steps) > 5 for s in
                                                  charts.series.values()) and len(
                charts.series) == 2, timeout=20, what="both configs training")
            await tui.wait_idle(pilot, "train")
            assert set(charts.series) == {"A lr=0.0002", "B lr=0.001"}
            assert charts.series["B lr=0.001"].ema[-1] < charts.series["A lr=0.0002"].ema[-1]
            await tui.settle(pilot)
            chart = screen.query_one("#loss", ChartView).drawn_text
            assert "A lr=0.0002" in chart and "B lr=0.001" in chart  # the legend
            assert "best A lr=0.0002" in str(screen.query_one("StatusLine").render()) or \
                "best B lr=0.001" in str(screen.query_one("StatusLine").render())
            await pilot.press("ctrl+b")  # drop B: back to one config
            assert len(screen.forms) == 1 and a.display

    tui.run(scenario)


def test_the_hint_follows_focus_under_fast_shift_tab(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await pilot.press("f3")
            screen = app.screen
            screen.query_one(TrainForm).query_one("#lr").focus()
            await pilot.pause(0.05)
            for _ in range(7):
                app.simulate_key("shift+tab")  # faster than the messages are handled
            await pilot.pause(0.2)
            focused = app.focused.id
            assert focused in HINTS
            assert str(screen.query_one("#hint").render()) == HINTS[focused]

    tui.run(scenario)


def test_f9_finds_a_learning_rate_and_fills_the_lr_field(tmp_path, tui):
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
            await pilot.press("f9")
            await tui.wait_for(pilot, lambda: form.read().lr == 1e-3, what="lr filled")
            await pilot.pause(0.1)
            notes = " ".join(strip.text for strip in app.screen.query_one(EvalSamples).lines)
            assert "lr range test" in notes and "0.001" in notes

    tui.run(scenario)


def test_f9_fills_the_lr_of_the_config_it_ran_on(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("f3")
            screen = app.screen
            a = screen.query_one(TrainForm)
            a.set_value("data", str(tmp_path / "d.txt"))
            a.set_value("dora", True)
            await pilot.pause(0.05)
            await pilot.press("ctrl+n")  # B: a copy of A, on/off fields included
            a, b = screen.forms
            assert b.read().dora is True and b.raw("dora") == "on"
            b.set_value("lr", "5e-4")
            await pilot.pause(0.05)
            await pilot.press("f9")  # runs on the shown config, B
            await tui.wait_for(pilot, lambda: b.read().lr == 1e-3, what="B's lr filled")
            assert a.read().lr == 2e-4

    tui.run(scenario)
