"""Running compare specs: rows per cell, shared seeds, resume after a stop or a torn write."""

from __future__ import annotations

import json

import pytest

from genlab.core.events import StopToken
from genlab.core.experiments.compare import (
    CellFinished,
    CompareFinished,
    CompareStarted,
    iter_compare,
)
from genlab.core.reports.results import RESULTS_FILE, OutDirError, read_rows
from genlab.core.specs.loader import load_spec


@pytest.fixture(scope="module")
def loaded(tiny_llama):
    from genlab.core.modeling.loading import load_model

    return load_model(str(tiny_llama), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def spec(tiny_llama):
    return load_spec({
        "kind": "compare", "name": "t", "model": str(tiny_llama),
        "prompts": ["Once upon a time", "The fox"],
        "base": {"max_new_tokens": 4},
        "axes": {"temperature": [0.7, 1.3], "top_k": [0, 5]},
        "samples": 2, "seed": 3, "batch_size": 6,
    })


def run(spec, out, loaded, stop=None, stop_after=None):
    events = []
    for event in iter_compare(spec, out, loaded=loaded, stop_token=stop):
        events.append(event)
        if stop_after is not None and isinstance(event, CellFinished) \
                and sum(isinstance(e, CellFinished) for e in events) == stop_after:
            stop.stop()
    return events


@pytest.fixture(scope="module")
def full_run(spec, loaded, tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "full"
    events = run(spec, out, loaded)
    return out, events


def test_one_row_per_cell_with_every_prompt_and_sample(spec, full_run):
    out, events = full_run
    rows = read_rows(out / RESULTS_FILE)
    assert isinstance(events[0], CompareStarted) and isinstance(events[-1], CompareFinished)
    assert len(rows) == len(spec.cells()) == 4
    assert sorted(r["cell"] for r in rows) == [0, 1, 2, 3]
    for row in rows:
        assert [(o["prompt_index"], o["sample"]) for o in row["outputs"]] == [
            (0, 0), (0, 1), (1, 0), (1, 1)]
        assert all(o["new_tokens"] >= 1 for o in row["outputs"])
        assert all(o["base_logprob"] < 0 for o in row["outputs"])  # scored by the base model
    # sample i has the same seed in every cell (common random numbers)
    seeds = {(o["prompt_index"], o["sample"]): set() for o in rows[0]["outputs"]}
    for row in rows:
        for o in row["outputs"]:
            seeds[(o["prompt_index"], o["sample"])].add(o["seed"])
    assert all(len(s) == 1 for s in seeds.values())
    assert seeds[(0, 0)] == {3}
    assert events[-1].report_path.endswith("report.md")
    assert (out / "report.html").is_file()


def test_stop_then_rerun_finishes_without_losing_or_duplicating(spec, loaded, full_run,
                                                                tmp_path):
    out = tmp_path / "resumed"
    events = run(spec, out, loaded, stop=StopToken(), stop_after=1)
    finished = events[-1]
    assert finished.cancelled and finished.cells_run < 4 and finished.report_path == ""
    partial = read_rows(out / RESULTS_FILE)
    assert 1 <= len(partial) < 4
    events = run(spec, out, loaded)
    assert events[0].done == len(partial)
    assert events[-1].cells_skipped == len(partial) and not events[-1].cancelled
    rows = read_rows(out / RESULTS_FILE)
    assert sorted(r["cell"] for r in rows) == [0, 1, 2, 3]
    # a cell's outputs depend only on its own requests: identical to the uninterrupted run
    full = {r["key"]: r["outputs"] for r in read_rows(full_run[0] / RESULTS_FILE)}
    assert all(full[r["key"]] == r["outputs"] for r in rows)


def test_a_torn_last_line_is_dropped_and_its_cell_redone(spec, loaded, full_run, tmp_path):
    import shutil

    out = tmp_path / "torn"
    shutil.copytree(full_run[0], out)
    data = (out / RESULTS_FILE).read_bytes()
    last_start = data[:-1].rfind(b"\n") + 1
    (out / RESULTS_FILE).write_bytes(data[: last_start + 25])  # killed mid-write
    assert len(read_rows(out / RESULTS_FILE)) == 3
    events = run(spec, out, loaded)
    assert events[-1].cells_run == 1
    lines = (out / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]  # every line parses: the torn one is gone
    assert sorted(r["cell"] for r in rows) == [0, 1, 2, 3]


def test_rerun_of_a_finished_output_runs_nothing(spec, loaded, full_run):
    out = full_run[0]
    before = (out / RESULTS_FILE).read_bytes()
    events = run(spec, out, loaded)
    assert events[-1].cells_run == 0 and events[-1].cells_skipped == 4
    assert (out / RESULTS_FILE).read_bytes() == before


def test_an_output_of_another_spec_is_refused(tiny_llama, loaded, full_run):
    other = load_spec({"kind": "compare", "model": str(tiny_llama), "prompts": ["x"],
                       "base": {"max_new_tokens": 2}})
    with pytest.raises(OutDirError, match="different spec"):
        list(iter_compare(other, full_run[0], loaded=loaded))
