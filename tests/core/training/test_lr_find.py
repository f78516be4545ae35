"""The learning-rate range test: the suggestion arithmetic, the files, and the lesson check."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from genlab.assets import resolve_model
from genlab.core.configs import ConfigError, LrFindConfig, TrainConfig
from genlab.core.events import LrFindFinished, LrFindStarted, LrFindStep, StopToken
from genlab.core.training.lr_find import (
    iter_lr_find,
    lr_find,
    moving_average,
    suggest,
    sweep_lr,
    zero_phase,
)
from genlab.core.training.train import TrainSetupError

FACTS = Path(__file__).resolve().parents[3] / "demo" / "facts"


def test_sweep_is_exponential_from_start_to_end():
    find = LrFindConfig(start_lr=1e-6, end_lr=1.0, num_steps=7)
    lrs = [sweep_lr(i, find) for i in range(7)]
    assert lrs[0] == pytest.approx(1e-6) and lrs[-1] == pytest.approx(1.0)
    assert all(b / a == pytest.approx(10.0) for a, b in zip(lrs, lrs[1:], strict=False))


def test_moving_average_is_fastai_debiased_and_zero_phase_has_no_lag():
    assert moving_average([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])
    step = [1.0] * 50 + [0.0] * 50
    causal, centred = moving_average(step, 0.8), zero_phase(step, 0.8)
    # the causal average crosses 0.5 well after the step; the zero-phase one at the step
    assert next(i for i, v in enumerate(causal) if v < 0.5) > 51
    assert next(i for i, v in enumerate(centred) if v < 0.5) in (49, 50)


def test_suggest_finds_the_steepest_descent_and_the_minimum():
    lrs = [10 ** (-6 + 7 * i / 99) for i in range(100)]
    # a smooth sigmoid dip centred at lr 1e-3, minimum near 1e-1, then a blow-up
    losses = [4 - 3 / (1 + math.exp(-3 * (math.log10(lr) + 3))) + max(0, math.log10(lr) + 1) ** 2
              * 5 for lr in lrs]
    result, curve = suggest(lrs, losses, 100, beta=0.5)
    assert result.steepest_lr == pytest.approx(1e-3, rel=0.2)
    assert 3e-2 < result.min_loss_lr < 2e-1
    assert result.min_div10_lr == pytest.approx(result.min_loss_lr / 10)
    assert len(curve) == 100


def test_config_validation():
    with pytest.raises(ConfigError, match="end_lr"):
        LrFindConfig(start_lr=1e-2, end_lr=1e-3)
    with pytest.raises(ConfigError, match="num_steps"):
        LrFindConfig(num_steps=2)


def _config(model, **kw) -> TrainConfig:
    base = dict(model=str(model), data=str(FACTS / "train.jsonl"), prompt_field="prompt",
                completion_field="completion", seq_len=64, batch_size=8, max_grad_norm=0.0,
                seed=0, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _digest(path: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(path.rglob("*"))
                                   if p.is_file())).hexdigest()


def test_files_events_and_the_model_is_untouched(tiny_llama, tmp_path):
    before = _digest(Path(tiny_llama))
    out = tmp_path / "lrf"
    events = list(iter_lr_find(_config(tiny_llama), LrFindConfig(num_steps=30), out_dir=out))
    assert isinstance(events[0], LrFindStarted) and isinstance(events[-1], LrFindFinished)
    steps = [e for e in events if isinstance(e, LrFindStep)]
    finished = events[-1]
    assert 5 < len(steps) <= 30 and finished.steps == len(steps)
    assert [e.step for e in steps] == list(range(1, len(steps) + 1))
    assert finished.stop_reason in ("exploded", "end")
    assert 1e-7 < finished.suggested_lr < 10 and finished.suggested_lr == finished.steepest_lr
    lines = [json.loads(line) for line in (out / "lr_find.jsonl").read_text().splitlines()]
    assert [r["type"] for r in lines] == ["step"] * len(steps) + ["result"]
    assert [r["lr"] for r in lines[:-1]] == [e.lr for e in steps]
    assert lines[-1]["suggested_lr"] == finished.suggested_lr
    assert (out / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _digest(Path(tiny_llama)) == before  # the start weights are not changed
    with pytest.raises(TrainSetupError, match="already holds an lr-find result"):
        next(iter_lr_find(_config(tiny_llama), out_dir=out))


def test_stop_token_keeps_the_curve_so_far(tiny_llama, tmp_path):
    stop = StopToken()
    events = []
    for event in iter_lr_find(_config(tiny_llama), LrFindConfig(num_steps=50),
                              out_dir=tmp_path / "s", stop_token=stop):
        events.append(event)
        if isinstance(event, LrFindStep) and event.step == 8:
            stop.stop()
    assert events[-1].stop_reason == "stopped" and events[-1].steps == 8
    assert (tmp_path / "s" / "lr_find.png").is_file()


@pytest.mark.slow
def test_suggestion_is_within_3x_of_the_learning_rate_lessons_best(tmp_path):
    """prompts/specs/learning-rate.yaml: 1e-3 is the best of 1e-5, 1e-3, 3e-2 and 1.0 on the
    shipped model (docs/specs.md); lr-find with the lesson's settings must land near it."""
    finished = lr_find(_config(resolve_model(None)), out_dir=tmp_path / "lesson")
    assert 1e-3 / 3 <= finished.suggested_lr <= 3e-3
    assert 1e-3 / 3 <= finished.min_div10_lr <= 3e-3
