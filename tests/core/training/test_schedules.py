"""Learning-rate schedules against transformers' and torch's own schedulers (test oracles)."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.core.configs import TrainConfig
from genlab.core.training.schedules import build_scheduler, lr_at, lr_curve, resolve_warmup_steps

PEAK = 0.1


def _config(**kw) -> TrainConfig:
    return TrainConfig(model="m", data="d", lr=PEAK, **kw)


def _oracle_lrs(scheduler_factory, total: int) -> list[float]:
    """The lr a torch scheduler gives at each 0-based step, stepped once per update."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    sched = scheduler_factory(opt)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def _ours(total: int, config: TrainConfig) -> list[float]:
    return [PEAK * lr_at(step, total, config) for step in range(total)]


@pytest.mark.parametrize("total,warmup", [(1, 0), (10, 0), (37, 5), (100, 1), (50, 49)])
@pytest.mark.parametrize("ours,theirs", [("linear", "linear"), ("cosine", "cosine"),
                                         ("constant", "constant_with_warmup")])
def test_matches_transformers_get_scheduler(ours, theirs, total, warmup):
    from transformers import get_scheduler

    config = _config(schedule=ours, warmup_steps=warmup)
    expected = _oracle_lrs(lambda opt: get_scheduler(
        theirs, opt, num_warmup_steps=warmup, num_training_steps=total), total)
    assert _ours(total, config) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("min_ratio", [0.1, 0.5])
def test_cosine_floor_matches_transformers_cosine_with_min_lr(min_ratio):
    from transformers import get_scheduler

    total, warmup = 40, 4
    config = _config(schedule="cosine", warmup_steps=warmup, min_lr_ratio=min_ratio)
    expected = _oracle_lrs(lambda opt: get_scheduler(
        "cosine_with_min_lr", opt, num_warmup_steps=warmup, num_training_steps=total,
        scheduler_specific_kwargs={"min_lr_rate": min_ratio}), total)
    assert _ours(total, config) == pytest.approx(expected, abs=1e-12)


def test_linear_floor():
    total, warmup, floor = 30, 3, 0.2
    config = _config(schedule="linear", warmup_steps=warmup, min_lr_ratio=floor)
    mults = [lr_at(s, total, config) for s in range(total + 5)]
    assert mults[:warmup] == pytest.approx([s / warmup for s in range(warmup)])
    assert mults[warmup] == pytest.approx(1.0)
    assert min(mults[warmup:]) == pytest.approx(floor)  # reaches the floor, never below
    assert all(a >= b for a, b in zip(mults[warmup:], mults[warmup + 1:], strict=False))
    assert mults[total] == pytest.approx(floor)
    # Same shape as HF's linear, squeezed into [floor, 1].
    plain = _config(schedule="linear", warmup_steps=warmup)
    for s in range(warmup, total):
        assert mults[s] == pytest.approx(floor + (1 - floor) * lr_at(s, total, plain))


@pytest.mark.parametrize("step_size,gamma", [(1, 0.9), (7, 0.5), (25, 0.1)])
def test_step_matches_torch_steplr(step_size, gamma):
    total = 60
    config = _config(schedule="step", step_size=step_size, gamma=gamma)
    expected = _oracle_lrs(lambda opt: torch.optim.lr_scheduler.StepLR(
        opt, step_size=step_size, gamma=gamma), total)
    assert _ours(total, config) == pytest.approx(expected, rel=1e-9)


def test_step_with_warmup_shape():
    total, warmup, step_size, gamma = 50, 6, 10, 0.5
    config = _config(schedule="step", warmup_steps=warmup, step_size=step_size, gamma=gamma,
                     min_lr_ratio=0.9)  # the floor does not apply to step
    for s in range(total):
        expected = s / warmup if s < warmup else gamma ** math.floor((s - warmup) / step_size)
        assert lr_at(s, total, config) == pytest.approx(expected)


def test_warmup_ratio_resolves_with_ceil():
    config = _config(schedule="cosine", warmup_ratio=0.1)
    assert resolve_warmup_steps(95, config) == 10
    assert resolve_warmup_steps(100, config) == 10
    # warmup_steps wins over the ratio
    assert resolve_warmup_steps(100, _config(warmup_steps=3, warmup_ratio=0.5)) == 3


def test_lr_curve_uses_scaled_lr():
    config = _config(schedule="constant", lr_scaling="linear", batch_size=4, grad_accum=4,
                     lr_reference_batch=8)
    assert config.scaled_lr == pytest.approx(2 * PEAK)
    assert lr_curve(5, config) == pytest.approx([2 * PEAK] * 5)


def test_build_scheduler_steps_through_lr_at():
    total = 20
    config = _config(schedule="cosine", warmup_steps=4, min_lr_ratio=0.1)
    got = _oracle_lrs(lambda opt: build_scheduler(opt, total, config), total)
    assert got == pytest.approx(_ours(total, config), abs=1e-12)
