"""``genlab.sweep`` from Python says what it is doing: one log line per trial started and
finished, on stderr when logging is not configured, through ``logging`` when it is."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import genlab
from genlab.core.experiments.events import SweepFinished, TrialFinished, TrialProgress
from genlab.core.experiments.progress_lines import sweep_line

FACTS = Path(__file__).resolve().parents[1] / "demo" / "facts"


def tiny_spec(model: Path, data: Path) -> dict:
    return {
        "kind": "sweep", "name": "api-log", "model": str(model),
        "base": {"data": str(data), "eval_split": 0.25, "prompt_field": "prompt",
                 "completion_field": "completion", "seq_len": 32, "batch_size": 2,
                 "max_steps": 2, "eval_max_batches": 1, "device": "cpu"},
        "search": {"lr": [1e-3, 1e-2]}, "method": "grid",
    }


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "facts.jsonl"
    lines = (FACTS / "eval.jsonl").read_text(encoding="utf-8").splitlines()[:16]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_sweep_lines_go_to_stderr_when_logging_is_not_configured(
        tiny_llama, data, tmp_path, capsys, monkeypatch):
    # No handler anywhere, as in a plain script (pytest adds its capture handlers to the root
    # logger once the test starts, so they are removed here, not in a fixture).
    monkeypatch.setattr(logging.root, "handlers", [])
    assert logging.getLogger("genlab").level == logging.NOTSET
    result = genlab.sweep(tiny_spec(tiny_llama, data), out_dir=tmp_path / "out")
    err = capsys.readouterr().err
    assert "genlab: sweep api-log: grid, 2 trials (0 already done), 1 worker(s)" in err
    assert "genlab: trial 0 started: lr=0.001" in err
    assert "genlab: trial 1 completed" in err and "[2/2 steps, " in err
    assert f"genlab: 2 trials (2 completed); best trial {result.best['trial']}" in err
    assert "TrialProgress" not in err and err.count("\n") == 6  # no line per step
    family = logging.getLogger("genlab")
    assert not family.handlers and family.level == logging.NOTSET  # put back


def test_with_on_event_or_configured_logging_nothing_is_printed(
        tiny_llama, data, tmp_path, capsys, caplog):
    events = []
    with caplog.at_level(logging.INFO, logger="genlab"):
        genlab.sweep(tiny_spec(tiny_llama, data), out_dir=tmp_path / "out",
                     on_event=events.append)
    assert capsys.readouterr().err == ""
    assert any(isinstance(e, TrialProgress) for e in events)
    messages = [r.getMessage() for r in caplog.records if r.name == "genlab.sweep"]
    assert messages[1] == "trial 0 started: lr=0.001" and len(messages) == 6


def test_sweep_lines_of_results():
    row = {"params": {"lr": 1.0}, "steps": 24, "total_steps": 100, "wall_time_s": 8.25,
           "message": "loss became inf at step 24"}
    level, text = sweep_line(TrialFinished(3, "diverged", None, row))
    assert level == logging.INFO
    assert text == ("trial 3 diverged - lr=1 [24/100 steps, 8.2s] (loss became inf at "
                    "step 24)")
    best = {"trial": 1, "objective": 0.61234, "params": {"lr": 1e-3, "model_shape.layers": 2}}
    _, text = sweep_line(SweepFinished("out", 4, {"completed": 3, "diverged": 1}, best, False,
                                       "out/report.md", 312.4))
    assert text == ("4 trials (3 completed, 1 diverged); best trial 1: 0.6123 (lr=0.001 "
                    "layers=2) in 312s; report out/report.md")
    assert sweep_line(TrialProgress(0, 1, 2, loss=3.0)) is None
