"""The TUI on a real (tiny, random) model: generate two columns; train the demo facts from the
form, two configs side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genlab.tui.app import make_app
from genlab.tui.widgets.eval_samples import EvalSamples
from genlab.tui.widgets.sample_column import SampleColumn
from genlab.tui.widgets.train_charts import TrainCharts
from genlab.tui.widgets.train_form import TrainForm


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


@pytest.mark.slow
def test_the_demo_facts_train_from_the_form_two_configs_side_by_side(tiny_llama, tmp_path, tui):
    """demo/facts (prompt + completion fields) from the form; A and B differ in lr."""
    facts = Path(__file__).resolve().parents[2] / "demo" / "facts"

    async def scenario():
        app = make_app(model=str(tiny_llama), device="cpu", runs_dir=tmp_path / "runs")
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("f3")
            screen = app.screen
            form = screen.query_one(TrainForm)
            for name, value in (("data", facts / "train.jsonl"), ("eval_data", facts /
                                "eval.jsonl"), ("prompt_field", "prompt"),
                                ("completion_field", "completion"), ("seq_len", 32),
                                ("batch_size", 2), ("max_steps", 3), ("eval_every", 1),
                                ("sample_prompts", "Q: What is the capital of France?\\nA:")):
                form.set_value(name, str(value))
            await pilot.pause(0.05)
            assert form.errors == {}
            await pilot.press("ctrl+n")
            screen.forms[1].set_value("lr", "3e-3")
            await pilot.pause(0.05)
            await pilot.press("f5")
            charts = screen.query_one(TrainCharts)
            await tui.wait_for(pilot, lambda: not app.bridge.running("train") and len(
                charts.series) == 2, timeout=300, what="the comparison")
            await pilot.pause(0.1)
            assert {k: len(s.steps) for k, s in charts.series.items()} == {
                "A lr=0.0002": 3, "B lr=0.003": 3}
            # the step-0 eval (eval_at_start), then every step
            assert all(s.eval_steps == [0, 1, 2, 3] for s in charts.series.values())
            (out,) = (tmp_path / "runs").glob("sweep-*")
            rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
            assert sorted(r["status"] for r in rows) == ["completed", "completed"]
            assert sorted(r["fields"]["lr"] for r in rows) == [2e-4, 3e-3]
            log = "\n".join(str(line.text) for line in screen.query_one(EvalSamples).lines)
            assert "Q: What is the capital of France?" in log  # the eval samples, per config
            await tui.wait_for(pilot, lambda: len(app.adapter_names) == 2, timeout=30,
                               what="both adapters offered to Sample")

    tui.run(scenario)
