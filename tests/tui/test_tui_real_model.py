"""The TUI on a real (tiny, random) model: load in the background, generate two columns."""

from __future__ import annotations

from genlab.tui.app import make_app
from genlab.tui.widgets.sample_column import SampleColumn


def test_tiny_llama_generates_into_two_columns(tiny_llama, tmp_path, tui):
    async def scenario():
        app = make_app(model=str(tiny_llama), device="cpu", runs_dir=tmp_path / "runs")
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_for(pilot, lambda: app.model_state != "loading", timeout=120,
                               what="model load")
            assert app.model_state == "ready", app.model_text
            assert "cpu" in app.model_text and "float32" in app.model_text
            await pilot.press("ctrl+b")  # three columns -> two
            columns = list(app.screen.query(SampleColumn))
            assert len(columns) == 2
            for column in columns:
                column.panel.set_value("max_new_tokens", "12")
            await pilot.pause(0.05)
            await pilot.press("ctrl+r")
            await tui.wait_for(pilot, lambda: all(c.reason for c in columns), timeout=60,
                               what="generation")
            for column in columns:
                assert column.reason in ("length", "eos")
                assert column.tokens and "".join(t.text for t in column.tokens).strip()
                assert len(column.tokens[0].alternatives) == 10
                assert all(t.logprob <= 0 for t in column.tokens)
            greedy = columns[0]  # temperature 0: the sampled distribution is one-hot
            chosen = greedy.tokens[0]
            assert any(a.token_id == chosen.token_id and a.sampled_prob == 1.0
                       for a in chosen.alternatives)

    tui.run(scenario)
