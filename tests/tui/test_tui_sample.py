"""Sample screen with the fake source: batched runs, live re-runs, validation, token cursor."""

from __future__ import annotations

from textual.widgets import Collapsible, Input, Select
from textual.widgets._collapsible import CollapsibleTitle

from genlab.core.events import RowFinished
from genlab.tui.fake_source import FakeSource
from genlab.tui.screens.sample import SampleScreen
from genlab.tui.widgets.params_panel import ADVANCED_FIELDS, FIELDS, HINTS
from genlab.tui.widgets.sample_column import SampleColumn
from genlab.tui.widgets.token_dist import TokenDist
from genlab.tui.widgets.token_view import EOS_MARK


def _columns(app) -> list[SampleColumn]:
    return list(app.screen.query(SampleColumn))


def _text(column: SampleColumn) -> str:
    return "".join(t.text for t in column.tokens)


def test_run_all_fills_every_column_from_one_batch(tmp_path, tui):
    source = FakeSource()

    async def scenario():
        app = tui.fake_app(tmp_path, source)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            assert isinstance(app.screen, SampleScreen)
            await pilot.press("ctrl+r")
            await tui.wait_idle(pilot, "generate")
            columns = _columns(app)
            assert len(columns) == 3
            assert source.generations == 1  # one batched call for every column
            for column in columns:
                assert len(column.tokens) == 48 and column.reason == "length"
                assert "tok/s" in column.border_subtitle and "length" in column.border_subtitle
            texts = {_text(c) for c in columns}
            assert len(texts) == 3  # temperature 0 / 0.8 / 1.5 differ

    tui.run(scenario)


def test_changing_a_setting_reruns_only_that_column_after_debounce(tmp_path, tui):
    source = FakeSource()

    async def scenario():
        app = tui.fake_app(tmp_path, source)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("ctrl+r")
            await tui.wait_idle(pilot, "generate")
            first, second, third = _columns(app)
            before = [_text(c) for c in (first, second, third)]
            second.panel.set_value("top_k", "3")
            await pilot.pause(0.1)
            assert source.generations == 1  # debounced: nothing yet
            await tui.wait_for(pilot, lambda: source.generations == 2, what="re-run")
            await tui.wait_idle(pilot, "generate")
            assert _text(first) == before[0] and _text(third) == before[2]
            assert _text(second) != before[1]
            assert all(len(t.alternatives) and sum(a.sampled_prob > 0 for a in t.alternatives)
                       <= 3 for t in second.tokens)
            # the seed is fixed: setting top-k back gives the original text again
            second.panel.set_value("top_k", "0")
            await tui.wait_for(pilot, lambda: source.generations == 3, what="second re-run")
            await tui.wait_idle(pilot, "generate")
            assert _text(second) == before[1]

    tui.run(scenario)


def test_invalid_setting_is_shown_inline_and_settings_explain_themselves(tmp_path, tui):
    source = FakeSource()

    async def scenario():
        app = tui.fake_app(tmp_path, source)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("ctrl+r")
            await tui.wait_idle(pilot, "generate")
            column = _columns(app)[0]
            column.panel.set_value("top_p", "1.5")
            await pilot.pause(0.6)
            assert source.generations == 1
            assert column.panel.error == '"top-p": must be in (0, 1] (1 = off) (got 1.5)'
            column.panel.set_value("top_p", "0.9x")  # a letter: shown, not dropped
            await pilot.pause(0.05)
            assert "must be a number (got '0.9x')" in column.panel.error
            top_p = column.panel.query_one("#top_p", Input)
            assert top_p.has_class("-invalid-setting")
            await pilot.press("ctrl+r")  # run all: the invalid column is left out
            await tui.wait_idle(pilot, "generate")
            assert source.generations == 2
            column.panel.set_value("top_p", "0.5")
            await pilot.pause(0.05)
            assert column.panel.error == "" and not top_p.has_class("-invalid-setting")
            # each setting explains itself in the hint line when focused
            hint = app.screen.query_one("#hint")
            assert set(HINTS) == {f.name for f in FIELDS} | {"adapter", "advanced"}
            assert "safe and repetitive" in HINTS["temperature"] and "0 = off" in HINTS["top_k"]
            for name, phrase in [("top_p", "nucleus"), ("adapter", "adapter")]:
                column.panel.query_one(f"#{name}").focus()
                await tui.wait_for(pilot, lambda p=phrase: p in str(hint.render()), timeout=3,
                                   what=f"hint for {name}")

    tui.run(scenario)


def test_advanced_samplers_sit_under_a_fold_and_reach_the_request(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            column = _columns(app)[0]
            fold = column.panel.query_one(Collapsible)
            assert fold.collapsed and fold.title == "advanced"
            assert not column.panel.query_one("#dry_multiplier", Input).is_on_screen
            assert {f.name for f in ADVANCED_FIELDS} >= {"typical_p", "dry_multiplier",
                                                         "mirostat", "logit_bias",
                                                         "sampler_order"}
            fold.query_one(CollapsibleTitle).focus()
            await pilot.press("enter")  # the keyboard opens the fold
            await pilot.pause()
            assert not fold.collapsed
            column.panel.set_value("dry_multiplier", "0.8")
            column.panel.set_value("logit_bias", '" the"=-inf, 5=2')
            column.panel.set_value("sampler_order", "llama.cpp")
            await pilot.pause(0.05)
            params = column.request("x").params
            assert params.dry_multiplier == 0.8 and params.sampler_order == "llama.cpp"
            assert params.logit_bias == ((" the", float("-inf")), (5, 2.0))
            assert "dry 0.8" in column.label and "order llama.cpp" in column.label
            column.panel.set_value("mirostat", "3")
            await pilot.pause(0.05)
            assert '"mirostat"' in column.panel.error and "(got 3)" in column.panel.error
            assert column.panel.query_one("#mirostat", Input).has_class("-invalid-setting")
            column.panel.set_value("mirostat", "2")
            await pilot.pause(0.05)
            assert column.panel.error == "" and column.request("x").params.mirostat == 2
            assert "mirostat" in HINTS["mirostat"] and "surprise" in HINTS["mirostat"]

    tui.run(scenario)


def test_add_and_remove_columns_within_bounds(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("ctrl+n", "ctrl+n", "ctrl+n", "ctrl+n")  # the 4th is refused
            assert len(_columns(app)) == 6
            assert [c.number for c in _columns(app)] == [1, 2, 3, 4, 5, 6]
            # a new column copies the last one's settings
            assert _columns(app)[-1].panel.values() == _columns(app)[2].panel.values()
            await pilot.press("ctrl+b", "ctrl+b", "ctrl+b", "ctrl+b", "ctrl+b")  # 5th refused
            assert len(_columns(app)) == 2
            await pilot.press("ctrl+s")  # hide the settings: titles keep what differs
            assert app.screen.settings_hidden
            assert not _columns(app)[0].panel.display
            assert _columns(app)[1].border_title == "2 · T 0.8"  # what differs, first
            await pilot.press("ctrl+r")
            await tui.wait_idle(pilot, "generate")
            assert all(len(c.tokens) == 48 for c in _columns(app))

    tui.run(scenario)


def test_stop_cancels_a_long_run(tmp_path, tui):
    source = FakeSource(endless=True, token_delay_s=0.005)

    async def scenario():
        app = tui.fake_app(tmp_path, source)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("ctrl+r")
            await tui.wait_for(pilot, lambda: len(_columns(app)[0].tokens) > 5, what="tokens")
            app.simulate_key("escape")  # (pilot.press would wait for the stream to idle)
            await tui.wait_idle(pilot, "generate")
            assert all(c.reason == "cancelled" and not c.running for c in _columns(app))

    tui.run(scenario)


def test_token_cursor_shows_the_distribution(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("ctrl+r")
            await tui.wait_idle(pilot, "generate")
            column = _columns(app)[1]
            await pilot.press("ctrl+t")  # the first column's tokens, cursor on the first
            assert app.focused is _columns(app)[0].view and _columns(app)[0].view.cursor == 0
            await pilot.press("ctrl+t")  # the next column's
            assert app.focused is column.view
            await pilot.press("right", "right")
            await pilot.pause(0.05)
            dist = app.screen.query_one(TokenDist)
            assert column.view.cursor == 2
            assert dist.token is column.tokens[2]
            assert len(dist.token.alternatives) == 10  # top_n=10 was requested
            await pilot.press("left")
            await pilot.pause(0.05)
            assert dist.token is column.tokens[1]
            # clicking a token of another column moves the view there
            other = _columns(app)[2]
            await pilot.click(other.view, offset=(0, 0))
            await pilot.pause(0.05)
            assert other.view.cursor == 0 and dist.token is other.tokens[0]
            # a re-run keeps the step: the panel shows the new token at the same step
            old = other.tokens[0]
            runs = app.source.generations
            other.panel.set_value("temperature", "0.3")
            # (the fake run can finish between two polls: wait for it to start, not to run)
            await tui.wait_for(pilot, lambda: app.source.generations > runs,
                               what="re-run start")
            await tui.wait_idle(pilot, "generate")
            assert dist.token is other.tokens[0] and dist.token is not old

    tui.run(scenario)


def test_offered_adapter_appears_in_every_model_choice(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path, adapters={"kind": str(tmp_path)})
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            assert app.adapter_names == ("kind",)
            app.offer_adapter("run-1", str(tmp_path / "adapter"))
            await tui.wait_for(pilot, lambda: "run-1" in app.adapter_names, what="attach")
            await pilot.pause(0.05)
            column = _columns(app)[0]
            select = column.panel.query_one("#adapter", Select)
            options = [str(o[1]) for o in select._options]
            assert "kind" in options and "run-1" in options
            column.panel.set_value("adapter", "run-1")
            await pilot.pause(0.05)
            assert column.request("x").adapter == "run-1" and column.label == "1 · run-1 · T 0"

    tui.run(scenario)


def test_quick_ctrl_n_presses_add_columns_without_a_crash(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            for _ in range(3):
                app.simulate_key("ctrl+n")  # faster than a column mounts
            await pilot.pause(0.3)
            assert len(_columns(app)) == 6
            assert all(c.panel.values()["temperature"] == "1.5" for c in _columns(app)[2:])

    tui.run(scenario)


def test_six_columns_at_80_cells_keep_what_differs_in_their_titles(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await tui.wait_ready(pilot)
            for n in range(3):
                await app.screen.action_add_column()
                app.screen.columns[-1].panel.set_value("top_k", str(10 * (n + 1)))
            await pilot.pause(0.1)
            columns = _columns(app)
            assert app.screen.settings_hidden  # a short terminal: tokens get the room
            titles = [c.border_title for c in columns]
            assert titles[0] == "1 T0 k0" and titles[4] == "T1.5k20"  # tighter, so it fits
            for column in columns:
                assert column.outer_size.width >= 13  # every column on screen, none cut off
                assert column.region.right <= 80
                assert len(column.border_title) <= column.outer_size.width - 6

    tui.run(scenario)


def test_an_eos_token_is_marked_and_the_legend_explains_it(tmp_path, tui):
    class EndsEarly(FakeSource):
        def iter_generate(self, loaded, requests, *, top_n, stop_token):
            for event in super().iter_generate(loaded, requests, top_n=top_n,
                                               stop_token=stop_token):
                if isinstance(event, RowFinished) and event.row == 0:
                    event = RowFinished(0, "eos", event.text, event.token_ids,
                                        event.elapsed_s)
                yield event

    async def scenario():
        app = tui.fake_app(tmp_path, EndsEarly())
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("ctrl+r")
            await tui.wait_idle(pilot, "generate")
            first = _columns(app)[0]
            assert first.reason == "eos" and first.eos_index == len(first.tokens) - 1
            last_line = "".join(text for text, _ in first.view._lines[-1].pieces)
            assert last_line.endswith(EOS_MARK)
            dist = app.screen.query_one(TokenDist)
            assert f"{EOS_MARK} end of text (eos)" in str(dist.render().renderables[0])
            first.view.focus()
            await pilot.press("end")
            await pilot.pause(0.05)
            assert dist.eos and "end of text (eos)" in str(dist.render().renderables[1])

    tui.run(scenario)


def test_the_hint_follows_focus_under_fast_shift_tab(tmp_path, tui):
    async def scenario():
        app = tui.fake_app(tmp_path)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            _columns(app)[2].panel.query_one("#seed").focus()
            await pilot.pause(0.05)
            for _ in range(9):
                app.simulate_key("shift+tab")  # faster than the messages are handled
            await pilot.pause(0.2)
            focused = app.focused
            hint = str(app.screen.query_one("#hint").render())
            key = focused.id or focused.parent.id  # a setting, or the advanced fold's title
            assert key in HINTS and focused is not _columns(app)[2].panel.query_one("#seed")
            assert hint == HINTS[key]

    tui.run(scenario)
