"""Estimates from measured step times: probes per cost point, what they measure, the sum.

The sweep probes train the tiny Llama for a few steps on a slice of the demo fact set in a
temporary directory (nothing is left behind); the compare probe decodes a few tokens.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from genlab.core.events import StopToken
from genlab.core.experiments.estimate import (
    cost_key,
    iter_estimate_compare,
    iter_estimate_sweep,
    trial_points,
    typical_point,
)
from genlab.core.experiments.events import EstimateFinished, PointMeasured
from genlab.core.specs.loader import load_spec

FACTS = Path(__file__).resolve().parents[3] / "demo" / "facts"


def _spec(tiny_llama, search, **extra):
    return load_spec({
        "kind": "sweep", "name": "est", "model": str(tiny_llama),
        "base": {"data": str(FACTS / "train.jsonl"), "eval_data": str(FACTS / "eval.jsonl"),
                 "prompt_field": "prompt", "completion_field": "completion", "seq_len": 32,
                 "batch_size": 2, "max_steps": 12, "eval_every": 2, "eval_max_batches": 2,
                 "device": "cpu", "schedule": "constant"},
        "search": search, "method": "grid", **extra})


def test_points_that_cost_the_same_share_one_probe(tiny_llama):
    spec = _spec(tiny_llama, {"lr": [1e-3, 3e-3], "batch_size": [2, 4]})
    points = trial_points(spec)
    assert len(points) == 4
    assert len({cost_key(spec, p) for p in points}) == 2  # lr does not change a step's cost
    ranged = _spec(tiny_llama, {"lr": {"low": 1e-4, "high": 1e-2, "log": True}},
                   method="random", trials=5)
    assert trial_points(ranged) == [typical_point(ranged)] * 5
    assert typical_point(ranged)["lr"] == pytest.approx(1e-3)  # the log-range's middle


def test_sweep_estimate_measures_each_cost_point_and_adds_up(tiny_llama):
    spec = _spec(tiny_llama, {"lr": [1e-3, 3e-3], "batch_size": [2, 4]})
    leftovers = set(Path(tempfile.gettempdir()).glob("genlab-estimate-*"))
    events = list(iter_estimate_sweep(spec, str(tiny_llama)))
    measured = [e for e in events if isinstance(e, PointMeasured)]
    final = events[-1]
    assert isinstance(final, EstimateFinished) and len(measured) == 2
    assert [m.timing.label for m in measured] == ["batch_size=2", "batch_size=4"]
    for m in measured:
        t = m.timing
        assert t.step_s > 0 and t.setup_s > 0 and t.eval_s > 0
        assert t.total_steps == 12 and t.evals == 6  # every 2 steps over 12
    assert measured[1].timing.tokens_per_step == 2 * measured[0].timing.tokens_per_step
    assert final.runs == 4
    by_batch = {m.timing.label: m.timing.run_s for m in measured}
    assert final.seconds == pytest.approx(2 * sum(by_batch.values()))
    assert set(Path(tempfile.gettempdir()).glob("genlab-estimate-*")) == leftovers


def test_a_from_scratch_point_is_probed_in_its_own_marked_run_dir(tiny_llama):
    # the probe saves the fresh model under its run dir before training there (as a sweep
    # trial does): that run dir is genlab's own, not an existing folder to refuse
    base = {"data": str(FACTS / "train.jsonl"), "prompt_field": "prompt",
            "completion_field": "completion", "seq_len": 32, "batch_size": 2, "max_steps": 6,
            "eval_every": 3, "eval_max_batches": 1, "device": "cpu", "method": "full",
            "model_shape": {"heads": 2, "kv_heads": 1, "context": 32, "hidden": 16,
                            "mlp": 32}}
    spec = load_spec({"kind": "sweep", "name": "scratch", "model": str(tiny_llama),
                      "base": base, "search": {"model_shape.layers": [1, 2]},
                      "method": "grid"})
    events = list(iter_estimate_sweep(spec, str(tiny_llama)))
    measured = [e for e in events if isinstance(e, PointMeasured)]
    assert len(measured) == 2 and all(m.timing.step_s > 0 for m in measured)
    assert isinstance(events[-1], EstimateFinished) and events[-1].runs == 2


def test_a_stopped_estimate_yields_nothing_more(tiny_llama):
    stop = StopToken()
    stop.stop()
    spec = _spec(tiny_llama, {"lr": [1e-3]})
    assert list(iter_estimate_sweep(spec, str(tiny_llama), stop)) == []


def test_compare_estimate_times_a_batch_of_rows(tiny_llama):
    from genlab.core.modeling.loading import load_model

    loaded = load_model(str(tiny_llama), device="cpu", dtype="float32")
    spec = load_spec({"kind": "compare", "name": "c", "model": str(tiny_llama),
                      "prompts": ["Once upon a time"], "base": {"max_new_tokens": 20},
                      "axes": {"temperature": [0.5, 1.0]}, "samples": 3, "batch_size": 4})
    (final,) = list(iter_estimate_compare(spec, loaded))
    assert final.runs == 6 and final.step_s > 0
    # 6 rows in batches of 4: two chunks of 20 decode steps (plus their prefill)
    assert final.seconds >= 2 * 20 * final.step_s
