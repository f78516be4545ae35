"""How long an experiment will take, from the model's measured step time.

Before a sweep runs, ``iter_estimate_sweep`` trains each distinct *cost point* of the spec for
a few steps in a throw-away directory (the same ``TrainConfig`` a trial gets, from-scratch
shapes included), timing the set-up (model and data), the optimizer steps and, when one falls
inside the probe, an evaluation; the estimate is then, over every trial,
``setup + steps x step time + evaluations x eval time``. Points that differ only in settings
that do not change the cost of a step (the learning rate, the schedule, the optimizer) share
one measurement. A compare spec's estimate decodes a few tokens for one batch of its rows.

The numbers are estimates: early stopping and pruning end trials sooner, and a busy machine
runs slower. Events: ``PointMeasured`` per probe, then ``EstimateFinished``.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from genlab.core.events import EvalResult, RunStarted, StopToken, TrainStep
from genlab.core.experiments.events import EstimateFinished, PointMeasured, PointTiming
from genlab.core.experiments.trial import point_config
from genlab.core.generation.decode import iter_generate
from genlab.core.generation.grid import GridCell, build_rows
from genlab.core.io import write_marker
from genlab.core.specs.compare import CompareSpec
from genlab.core.specs.sweep import SweepSpec
from genlab.core.training.run_dir import RUN_KIND
from genlab.core.training.train import iter_train

PROBE_STEPS = 3
"""Timed optimizer steps per probe (after a first, untimed one that warms up)."""
MAX_PROBES = 6
"""More cost points than this share the measurements, scaled by tokens per step."""
EVAL_COST = 0.35
"""An eval batch costs about this fraction of a training step (forward only)."""
PROBE_TOKENS = 6
"""Decode steps a compare probe times."""
COST_FIELDS = ("data", "eval_data", "eval_split", "text_field", "prompt_field",
               "completion_field", "doc_separator", "seq_len", "method", "rank",
               "target_modules", "batch_size", "grad_accum", "epochs", "max_steps",
               "eval_every", "eval_max_batches", "sample_prompts", "sample_max_new_tokens",
               "device", "dtype")
"""TrainConfig fields that change what a step or a run costs (the others share a probe)."""


# ----------------------------------------------------------------------------- sweeps


def trial_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The points the trials will train: the grid's, or a typical point once per trial."""
    if spec.method == "grid":
        return spec.search.grid()[: spec.trials]
    return [typical_point(spec)] * spec.trials


def typical_point(spec: SweepSpec) -> dict[str, Any]:
    """A representative point of a random/Bayes search: mid-range values, first choices."""
    point: dict[str, Any] = {}
    for dim in spec.search.dims:
        if dim.is_range:
            low, high = float(dim.low), float(dim.high)
            mid = math.sqrt(low * high) if dim.log else (low + high) / 2
            point[dim.name] = round(mid) if dim.kind == "int" else mid
        else:
            point[dim.name] = dim.choices[0]
    return point


def cost_key(spec: SweepSpec, params: dict[str, Any]) -> tuple:
    """What a point's cost depends on (points with equal keys share a probe)."""
    train, shape = spec.trial_fields(params)
    fields = tuple((k, repr(train.get(k))) for k in COST_FIELDS)
    return fields, tuple(sorted((shape or {}).items()))


def iter_estimate_sweep(spec: SweepSpec, model: str, stop_token: StopToken | None = None
                        ) -> Iterator[PointMeasured | EstimateFinished]:
    """Probe each cost point of ``spec`` on ``model`` and yield the estimate.

    Raises:
        Whatever a trial's set-up raises (bad data path, unknown model, ...): the same
        problem the sweep would hit, found before it starts.
    """
    stop = stop_token or StopToken()
    points = trial_points(spec)
    keys = [cost_key(spec, p) for p in points]
    distinct = list(dict.fromkeys(keys))
    probed = distinct[:MAX_PROBES]
    timings: dict[tuple, PointTiming] = {}
    for n, key in enumerate(probed, start=1):
        params = points[keys.index(key)]
        timing = measure_point(spec, params, model, stop, _label(spec, params, points))
        if stop.stopped:
            return
        timings[key] = timing
        yield PointMeasured(n, len(probed), timing)
    per_trial = [timings.get(k) or _scaled(timings, spec, p) for k, p in zip(keys, points,
                                                                          strict=True)]
    seconds = sum(t.run_s for t in per_trial)
    runs = len(points)
    if spec.retrain_best:
        best = per_trial[0]
        steps = int(spec.retrain_overrides.get("max_steps") or best.total_steps)
        seconds += best.setup_s + steps * best.step_s + best.evals * best.eval_s
        runs += 1
    notes = []
    if spec.method != "grid":
        notes.append("a typical point stands for every trial")
    patience = spec.base.get("patience") or any(
        "patience" in spec.search.expand(p) for p in points[:1])
    if spec.pruner.kind != "none" or patience:
        notes.append("pruning or early stopping can end trials sooner")
    typical = sorted(t.step_s for t in per_trial)[len(per_trial) // 2]
    yield EstimateFinished(seconds, runs, tuple(timings.values()), typical, "; ".join(notes))


def measure_point(spec: SweepSpec, params: dict[str, Any], model: str, stop: StopToken,
                  label: str = "base") -> PointTiming:
    """Train ``params`` for a few steps in a temporary directory and time it."""
    with tempfile.TemporaryDirectory(prefix="genlab-estimate-") as tmp:
        run_dir = Path(tmp) / "probe"
        run_dir.mkdir()
        write_marker(run_dir, RUN_KIND)  # our own run dir, as a sweep trial's (owned below)
        start = time.perf_counter()
        config = point_config(spec, params, run_dir, model)
        token = StopToken()
        started: RunStarted | None = None
        setup_s, last, steps, evals = 0.0, 0.0, [], []
        for event in iter_train(config, out_dir=run_dir, stop_token=token, owned=True):
            now = time.perf_counter()
            if stop.stopped:
                token.stop()
            if isinstance(event, RunStarted):
                started, setup_s, last = event, now - start, now
            elif isinstance(event, TrainStep):
                if event.step > 1:  # the first step warms up: not timed
                    steps.append(now - last)
                last = now
                if len(steps) >= PROBE_STEPS:
                    token.stop()
            elif isinstance(event, EvalResult):
                evals.append(now - last)
                last = now
    if started is None:
        raise RuntimeError("the probe run did not start")
    step_s = sum(steps) / len(steps) if steps else max(last - start - setup_s, 0.0)
    eval_batches = math.ceil(started.eval_blocks / max(config.batch_size, 1))
    if config.eval_max_batches:
        eval_batches = min(eval_batches, config.eval_max_batches)
    eval_s = max(evals) if evals else eval_batches * step_s / max(config.grad_accum, 1) * \
        EVAL_COST
    total = started.total_steps
    n_evals = 1 if not config.eval_every else total // config.eval_every + bool(
        total % config.eval_every)
    return PointTiming(label, setup_s, step_s, eval_s, total, n_evals,
                       config.effective_batch * config.seq_len)


def _label(spec: SweepSpec, params: dict[str, Any], points: list[dict[str, Any]]) -> str:
    """The cost fields in which this point differs from the others: ``batch_size=16``."""
    mine, _ = spec.trial_fields(params)
    others = [spec.trial_fields(p)[0] for p in points]
    differ = [k for k in COST_FIELDS if len({repr(o.get(k)) for o in others}) > 1]
    shape = spec.trial_fields(params)[1]
    parts = [f"{k}={mine.get(k)}" for k in differ]
    if shape and len({repr(spec.trial_fields(p)[1]) for p in points}) > 1:
        parts.append(" ".join(f"{k}={v}" for k, v in sorted(shape.items())))
    return " ".join(parts) or "base"


def _scaled(timings: dict[tuple, PointTiming], spec: SweepSpec, params: dict[str, Any]
            ) -> PointTiming:
    """A point without its own probe: the nearest measured one, scaled by tokens per step."""
    train, _ = spec.trial_fields(params)
    tokens = int(train.get("batch_size", 8)) * int(train.get("grad_accum", 1)) * int(
        train.get("seq_len", 256))
    ref = min(timings.values(), key=lambda t: abs(math.log(t.tokens_per_step / tokens)))
    scale = tokens / ref.tokens_per_step
    return replace(ref, step_s=ref.step_s * scale, eval_s=ref.eval_s, tokens_per_step=tokens)


# ----------------------------------------------------------------------------- compares


def iter_estimate_compare(spec: CompareSpec, loaded: Any,
                          stop_token: StopToken | None = None) -> Iterator[EstimateFinished]:
    """Time a few decode steps of one batch of ``spec``'s rows on ``loaded``."""
    cells = spec.cells()
    rows = build_rows(spec.prompts, [GridCell(c.index, c.params, c.adapter) for c in cells],
                      spec.samples, spec.seed)
    batch = rows[: max(1, min(spec.batch_size, len(rows)))]
    probe = [replace(r.request, params=replace(r.request.params, max_new_tokens=PROBE_TOKENS,
                                               ignore_eos=True)) for r in batch]
    start = time.perf_counter()
    first = last = None
    for event in iter_generate(loaded, probe, batch_size=len(probe), stop_token=stop_token):
        if getattr(event, "row", None) == 0 and hasattr(event, "token_id"):
            last = time.perf_counter()
            first = first or last
    if first is None or last is None:
        return
    prefill_s = first - start
    step_s = (last - first) / max(PROBE_TOKENS - 1, 1)
    longest = max(c.params.max_new_tokens for c in cells)
    chunks = math.ceil(len(rows) / len(probe))
    seconds = chunks * (prefill_s + longest * step_s)
    yield EstimateFinished(seconds, len(rows), (), step_s,
                           "rows that end early (eos, stop) finish sooner")
