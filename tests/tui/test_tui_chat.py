"""The Sample screen's prompt format and context check: the chat toggle, the system prompt,
the active template, and a max-new field that turns red when the prompt would not fit; plus a
GGUF file and a chat model in the real app."""

from __future__ import annotations

from textual.widgets import Checkbox, Input, Static

from genlab.tui.app import make_app
from genlab.tui.fake_source import FakeSource
from genlab.tui.widgets.chat_bar import ChatBar
from genlab.tui.widgets.sample_column import SampleColumn

TEMPLATE = "ChatML template, turns end with <|im_end|>"


def _columns(app) -> list[SampleColumn]:
    return list(app.screen.query(SampleColumn))


class _Recording(FakeSource):
    """Remembers the requests of every generation."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.requests: list = []

    def iter_generate(self, loaded, requests, **kw):
        self.requests.append(list(requests))
        return super().iter_generate(loaded, requests, **kw)


def test_chat_is_on_with_a_template_and_carries_the_system_prompt(tmp_path, tui):
    source = _Recording(template=TEMPLATE)

    async def scenario():
        app = tui.fake_app(tmp_path, source)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            bar = app.screen.query_one(ChatBar)
            await pilot.pause()
            assert bar.query_one("#chat", Checkbox).value is True
            assert TEMPLATE in str(bar.query_one("#template", Static).render())
            assert "context 256 tokens" in str(bar.query_one("#template", Static).render())
            bar.query_one("#system", Input).value = "Be brief."
            await pilot.press("ctrl+r")
            await tui.wait_idle(pilot, "generate")
            assert all(r.chat is True and r.system == "Be brief." for r in source.requests[-1])
            bar.query_one("#chat", Checkbox).value = False
            await pilot.pause()
            await pilot.press("ctrl+r")
            await tui.wait_idle(pilot, "generate")
            assert all(r.chat is False and r.system is None for r in source.requests[-1])

    tui.run(scenario)


def test_without_a_template_chat_is_off_and_disabled(tmp_path, tui):
    source = _Recording()

    async def scenario():
        app = tui.fake_app(tmp_path, source)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.pause()
            box = app.screen.query_one("#chat", Checkbox)
            assert box.value is False and box.disabled
            assert "no chat template" in str(app.screen.query_one("#template", Static).render())
            await pilot.press("ctrl+r")
            await tui.wait_idle(pilot, "generate")
            assert all(r.chat is False for r in source.requests[-1])

    tui.run(scenario)


def test_max_new_past_the_context_turns_red_with_the_limit(tmp_path, tui):
    source = _Recording()

    async def scenario():
        app = tui.fake_app(tmp_path, source)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.pause()
            column = _columns(app)[0]
            column.panel.set_value("max_new_tokens", "99999")
            await pilot.pause()
            field = column.panel.query_one("#max_new_tokens", Input)
            assert field.has_class("-invalid-setting")
            # the fake counts a token per word: "Once upon a time" is 4 of 256
            assert "at most 252 here: the prompt takes 4 of the model's 256-token context" \
                in column.panel.error
            await pilot.press("ctrl+r")
            await tui.wait_idle(pilot, "generate")
            assert len(source.requests[-1]) == 2  # the red column did not run
            # a longer prompt lowers the limit of a column that fitted before
            second = _columns(app)[1]
            second.panel.set_value("max_new_tokens", "250")
            await pilot.pause()
            assert not second.panel.error
            app.screen.query_one("#prompt").load_text("one two three four five six seven")
            await pilot.pause()
            assert "at most 249 here" in second.panel.error

    tui.run(scenario)


def test_gguf_chat_model_in_the_real_app(tiny_gguf, tmp_path, tui):
    async def scenario():
        app = make_app(model=str(tiny_gguf["gguf"] / "tiny-F32.gguf"), device="cpu",
                       runs_dir=tmp_path / "runs")
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_for(pilot, lambda: app.model_state != "loading", timeout=120,
                               what="model load")
            assert app.model_state == "ready", app.model_text
            assert "tiny-F32.gguf" in app.model_text and "weights" in app.model_text
            await pilot.pause()
            template = str(app.screen.query_one("#template", Static).render())
            assert TEMPLATE in template and "context 256" in template
            columns = _columns(app)
            for column in columns:
                column.panel.set_value("max_new_tokens", "6")
            await pilot.pause(0.05)
            await pilot.press("ctrl+r")
            await tui.wait_for(pilot, lambda: all(c.reason for c in columns), timeout=60,
                               what="generation")
            assert all(c.reason in ("length", "eos") and c.tokens for c in columns)
            columns[0].panel.set_value("max_new_tokens", "300")
            await pilot.pause()
            assert "256-token context" in columns[0].panel.error

    tui.run(scenario)
