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


# --- the schedules added for parity with transformers' get_scheduler ---------------------


@pytest.mark.parametrize("total,warmup", [(10, 0), (37, 5), (100, 10), (50, 49)])
@pytest.mark.parametrize("decay_ratio", [0.1, 0.35, 1.0])
@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
def test_wsd_matches_transformers_warmup_stable_decay(total, warmup, decay_ratio, shape):
    from transformers import get_scheduler

    from genlab.core.training.schedules import wsd_decay_steps

    config = _config(schedule="wsd", warmup_steps=warmup, decay_ratio=decay_ratio,
                     decay_shape=shape)
    decay = wsd_decay_steps(total, config)
    expected = _oracle_lrs(lambda opt: get_scheduler(
        "warmup_stable_decay", opt, num_warmup_steps=warmup, num_training_steps=total,
        scheduler_specific_kwargs={"num_decay_steps": decay, "decay_type": shape}), total)
    assert _ours(total, config) == pytest.approx(expected, abs=1e-12)


def test_wsd_floor_matches_transformers_after_warmup():
    from transformers import get_scheduler

    total, warmup, floor = 60, 6, 0.2
    config = _config(schedule="wsd", warmup_steps=warmup, decay_ratio=0.3, min_lr_ratio=floor)
    expected = _oracle_lrs(lambda opt: get_scheduler(
        "warmup_stable_decay", opt, num_warmup_steps=warmup, num_training_steps=total,
        scheduler_specific_kwargs={"num_decay_steps": 18, "decay_type": "linear",
                                   "min_lr_ratio": floor}), total)
    # transformers warms up from the floor; genlab warms every schedule up from 0.
    assert _ours(total, config)[warmup:] == pytest.approx(expected[warmup:], abs=1e-12)
    assert _ours(total, config)[:warmup] == pytest.approx(
        [PEAK * s / warmup for s in range(warmup)])


@pytest.mark.parametrize("total,warmup", [(10, 0), (37, 5), (100, 10)])
@pytest.mark.parametrize("cycles", [1, 2, 5])
def test_cosine_restarts_matches_transformers(total, warmup, cycles):
    from transformers import get_scheduler

    config = _config(schedule="cosine_restarts", warmup_steps=warmup, num_cycles=cycles)
    expected = _oracle_lrs(lambda opt: get_scheduler(
        "cosine_with_restarts", opt, num_warmup_steps=warmup, num_training_steps=total,
        scheduler_specific_kwargs={"num_cycles": cycles}), total)
    assert _ours(total, config) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("total,warmup", [(10, 0), (37, 5), (100, 10)])
@pytest.mark.parametrize("power", [0.5, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("floor", [0.0, 0.1])
def test_polynomial_matches_transformers(total, warmup, power, floor):
    from transformers import get_scheduler

    config = _config(schedule="polynomial", warmup_steps=warmup, power=power,
                     min_lr_ratio=floor)
    expected = _oracle_lrs(lambda opt: get_scheduler(
        "polynomial", opt, num_warmup_steps=warmup, num_training_steps=total,
        scheduler_specific_kwargs={"power": power, "lr_end": floor * PEAK}), total)
    assert _ours(total, config) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("warmup,timescale", [(0, None), (10, None), (5, 40), (0, 3)])
def test_inverse_sqrt_matches_transformers(warmup, timescale):
    from transformers import get_scheduler

    total = 80
    config = _config(schedule="inverse_sqrt", warmup_steps=warmup, timescale=timescale)
    kwargs = {} if timescale is None else {"timescale": timescale}
    expected = _oracle_lrs(lambda opt: get_scheduler(
        "inverse_sqrt", opt, num_warmup_steps=warmup, num_training_steps=total,
        scheduler_specific_kwargs=kwargs), total)
    assert _ours(total, config) == pytest.approx(expected, abs=1e-12)


EVAL_LOSSES = [3.0, 2.5, 2.6, 2.55, 2.7, 2.4, 2.41, 2.42, 2.43, 2.44, 2.39, 2.5, 2.6, 2.7,
               2.8, 2.9, 3.0, 3.1]


@pytest.mark.parametrize("patience,gamma,min_delta,floor", [
    (0, 0.5, 0.0, 0.0), (1, 0.5, 0.0, 0.0), (2, 0.3, 0.0, 0.0), (1, 0.5, 0.05, 0.0),
    (0, 0.5, 0.0, 0.1)])
def test_plateau_matches_transformers_reduce_lr_on_plateau(patience, gamma, min_delta, floor):
    from transformers import get_scheduler

    config = _config(schedule="plateau", plateau_patience=patience, gamma=gamma,
                     min_delta=min_delta, min_lr_ratio=floor)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    theirs = get_scheduler("reduce_lr_on_plateau", opt, scheduler_specific_kwargs={
        "patience": patience, "factor": gamma, "threshold": min_delta,
        "threshold_mode": "abs", "min_lr": floor * PEAK})
    ours_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    ours = build_scheduler(ours_opt, 1000, config)
    cuts = 0
    for loss in EVAL_LOSSES:
        for _ in range(5):  # steps between evaluations do not change the lr
            ours_opt.step()
            ours.step()
        theirs.step(loss)
        cuts += ours.observe(loss)
        assert ours_opt.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"],
                                                               rel=1e-12)
    assert cuts > 0


def test_plateau_state_survives_a_checkpoint():
    config = _config(schedule="plateau", plateau_patience=0, gamma=0.5)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    sched = build_scheduler(opt, 100, config)
    for loss in (2.0, 2.1, 2.2):
        sched.observe(loss)
    state = sched.state_dict()
    assert "schedule_config" not in state
    torch.save(state, "/dev/null")  # plain data only (checkpoints load with weights_only)
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    sched2 = build_scheduler(opt2, 100, config)
    sched2.load_state_dict(state)
    opt2.load_state_dict(opt.state_dict())
    assert (sched2.plateau_cuts, sched2.plateau_best) == (2, 2.0)
    sched2.observe(2.3)
    assert opt2.param_groups[0]["lr"] == pytest.approx(PEAK * 0.125)


def test_plateau_warmup_then_cuts():
    config = _config(schedule="plateau", warmup_steps=4, plateau_patience=0, gamma=0.5)
    assert [lr_at(s, 50, config) for s in range(6)] == pytest.approx(
        [0, 0.25, 0.5, 0.75, 1, 1])
    assert lr_at(10, 50, config, cuts=2) == pytest.approx(0.25)


def test_group_base_lrs_share_one_multiplier():
    """LoRA+ gives the B group its own base lr; the schedule scales both alike."""
    total = 20
    config = _config(schedule="cosine", warmup_steps=2)
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a], "lr": PEAK}, {"params": [b], "lr": 16 * PEAK}])
    sched = build_scheduler(opt, total, config)
    for s in range(total):
        lr_a, lr_b = (g["lr"] for g in opt.param_groups)
        assert lr_b == pytest.approx(16 * lr_a) and lr_a == pytest.approx(
            PEAK * lr_at(s, total, config))
        opt.step()
        sched.step()
