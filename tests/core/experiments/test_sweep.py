"""Sweeps: trials as run directories, diverged and pruned trials, resume after stops and kills,
budgets with several worker processes, and the retrain of the best configuration.

Trials train the tiny Llama for 2-3 steps on a 24-question slice of the demo fact set.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from genlab.core.events import StopToken
from genlab.core.experiments.events import SweepFinished, TrialFinished
from genlab.core.experiments.storage import default_storage, make_storage
from genlab.core.experiments.study import (
    OWNER_ATTR,
    claim_trial,
    counts,
    enqueue_grid,
    open_study,
)
from genlab.core.experiments.sweep import iter_sweep
from genlab.core.reports.results import RESULTS_FILE, read_rows
from genlab.core.specs.loader import load_spec

FACTS = Path(__file__).resolve().parents[3] / "demo" / "facts"


@pytest.fixture(scope="module")
def facts(tmp_path_factory) -> Path:
    """A small copy of the demo fact set (24 train, 12 eval questions)."""
    out = tmp_path_factory.mktemp("facts")
    for name, n in (("train.jsonl", 24), ("eval.jsonl", 12)):
        lines = (FACTS / name).read_text(encoding="utf-8").splitlines()[:n]
        (out / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def make_spec(tiny_llama, facts, **extra):
    data = {
        "kind": "sweep", "name": "t", "model": str(tiny_llama),
        "base": {"data": str(facts / "train.jsonl"), "eval_data": str(facts / "eval.jsonl"),
                 "prompt_field": "prompt", "completion_field": "completion", "seq_len": 32,
                 "batch_size": 2, "max_steps": 2, "eval_every": 1, "eval_max_batches": 2,
                 "device": "cpu", "schedule": "constant"},
        "search": {"lr": [1e-3, 3e-3, 1e-2]}, "method": "grid",
    }
    data.update(extra)
    return load_spec(data)


def run(spec, out, stop_after=None, **kwargs):
    stop = StopToken()
    events = []
    for event in iter_sweep(spec, out, stop_token=stop, **kwargs):
        events.append(event)
        if stop_after is not None and isinstance(event, TrialFinished) and \
                sum(isinstance(e, TrialFinished) for e in events) == stop_after:
            stop.stop()
    return events


def study_of(spec, out):
    return open_study(spec, make_storage(default_storage(out)))


def test_trials_are_run_dirs_a_diverged_trial_is_recorded_and_the_best_retrained(
        tiny_llama, facts, tmp_path):
    from optuna.trial import TrialState

    base = {**make_spec(tiny_llama, facts).base, "optimizer": "sgd", "max_grad_norm": 0.0}
    spec = make_spec(tiny_llama, facts, base=base, search={"lr": [1e-3, 1e30]},
                     retrain_best=True, retrain_overrides={"max_steps": 3})
    out = tmp_path / "sweep"
    events = run(spec, out)
    rows = read_rows(out / RESULTS_FILE)
    assert [(r["trial"], r["params"]["lr"]) for r in rows] == [(0, 1e-3), (1, 1e30)]
    good, bad = rows
    assert good["status"] == "completed" and good["objective"] == good["best_eval_loss"]
    assert bad["status"] == "diverged" and bad["objective"] is None
    assert "became" in bad["message"] and bad["final_train_loss"] is not None
    for row in rows:
        run_dir = out / row["run_dir"]
        assert (run_dir / "config.json").is_file() and (run_dir / "summary.json").is_file()
    trials = study_of(spec, out).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[1].value == float("inf")
    finished = events[-1]
    assert isinstance(finished, SweepFinished) and finished.best["trial"] == 0
    assert finished.counts == {"completed": 1, "diverged": 1}
    # the best trial's config is trained again with the overrides, its adapter kept
    names = [type(e).__name__ for e in events]
    assert names.count("RetrainStarted") == names.count("RetrainFinished") == 1
    best = json.loads((out / "best.json").read_text())
    assert best["trial"] == 0 and best["params"] == {"lr": 1e-3}
    assert best["retrain"]["status"] == "completed" and best["retrain"]["steps"] == 3
    assert (out / "best" / "adapter" / "adapter_config.json").is_file()
    # a rerun of a finished sweep runs nothing (not even the retrain)
    again = run(spec, out)
    assert not any(type(e).__name__ in ("TrialFinished", "RetrainStarted") for e in again)
    assert len(read_rows(out / RESULTS_FILE)) == 2  # the retrain is not a trial row


def test_stop_then_resume_runs_the_rest_of_the_grid_once(tiny_llama, facts, tmp_path):
    spec = make_spec(tiny_llama, facts)
    out = tmp_path / "sweep"
    events = run(spec, out, stop_after=1)
    assert events[-1].stopped and len(read_rows(out / RESULTS_FILE)) == 1
    assert [p.name for p in (out / "trials").iterdir()] == ["0000"]  # the stopped one is gone
    run(spec, out)
    rows = read_rows(out / RESULTS_FILE)
    assert sorted(r["params"]["lr"] for r in rows) == [1e-3, 3e-3, 1e-2]
    assert len({r["trial"] for r in rows}) == 3
    assert sum(counts(t) for t in study_of(spec, out).get_trials()) == 3


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_sweep_resumes_without_lost_or_duplicated_trials(tiny_llama, facts, tmp_path):
    """Simulate a kill: one trial left RUNNING by a dead process, one killed between writing
    its row and telling the study, and a row torn mid-line."""
    from optuna.trial import TrialState

    spec = make_spec(tiny_llama, facts)
    out = tmp_path / "sweep"
    run(spec, out, stop_after=1)  # trial 0 done
    study = study_of(spec, out)
    enqueue_grid(study, spec)
    owner = {"host": socket.gethostname(), "pid": dead_pid()}
    told_lost = claim_trial(study, spec)      # its row made it to the file, its tell did not
    running = claim_trial(study, spec)        # killed mid-training
    for trial in (told_lost, running):
        trial.set_user_attr(OWNER_ATTR, owner)
    index = told_lost.user_attrs["grid_index"]
    row = {"trial": told_lost.number, "status": "completed", "objective": 1.25,
           "params": {"lr": spec.search.grid()[index]["lr"]}, "run_dir": "x"}
    partial = out / "trials" / f"{running.number:04d}"
    partial.mkdir(parents=True)  # what the killed trial had written
    with open(out / RESULTS_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
        f.write('{"trial": 99, "status": "comp')  # torn by the kill
    run(spec, out)
    rows = read_rows(out / RESULTS_FILE)
    assert sorted(r["params"]["lr"] for r in rows) == [1e-3, 3e-3, 1e-2]
    assert len(rows) == 3 and 99 not in {r["trial"] for r in rows}
    trials = {t.number: t for t in study_of(spec, out).get_trials()}
    assert trials[told_lost.number].state == TrialState.COMPLETE
    assert trials[told_lost.number].value == 1.25
    assert trials[running.number].state == TrialState.FAIL  # re-run under a new number
    assert not partial.exists()
    assert sum(counts(t) for t in trials.values()) == 3


@pytest.mark.slow
def test_two_worker_processes_run_exactly_the_budget(tiny_llama, facts, tmp_path):
    spec = make_spec(tiny_llama, facts, method="random", trials=3,
                     search={"lr": {"low": 1e-4, "high": 1e-2, "log": True}})
    out = tmp_path / "sweep"
    events = run(spec, out, workers=2)
    assert not [e for e in events if type(e).__name__ == "WorkerFailed"]
    rows = read_rows(out / RESULTS_FILE)
    assert len(rows) == 3 and len({r["trial"] for r in rows}) == 3
    assert {r["worker"] for r in rows} <= {0, 1}
    assert sum(counts(t) for t in study_of(spec, out).get_trials()) == 3
    assert (out / "workers" / "worker-0.log").is_file()
    assert events[-1].trials == 3 and (out / "report.html").is_file()


def _train_losses(out: Path) -> dict[str, list[float]]:
    """Every trial's per-step training losses, keyed by its parameters."""
    losses = {}
    for row in read_rows(out / RESULTS_FILE):
        metrics = [json.loads(line) for line in (out / row["run_dir"] / "metrics.jsonl").open()]
        losses[json.dumps(row["params"])] = [m["loss"] for m in metrics if m["type"] == "train"]
    return losses


def test_trials_run_with_the_trial_thread_count_and_restore_the_callers(tiny_llama, facts,
                                                                        tmp_path):
    import torch

    from genlab.core.experiments.trial import TRIAL_THREADS

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # what a 2-core machine gives a process by default
    try:
        seen = set()
        for event in iter_sweep(make_spec(tiny_llama, facts), tmp_path / "sweep"):
            if type(event).__name__ == "TrialProgress":
                seen.add(torch.get_num_threads())
        assert seen == {TRIAL_THREADS} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    rows = read_rows(tmp_path / "sweep" / RESULTS_FILE)
    assert [r["threads"] for r in rows] == [TRIAL_THREADS] * 3


@pytest.mark.slow
def test_one_worker_and_two_workers_give_identical_losses(tiny_llama, facts, tmp_path):
    # The same seed must give the same numbers whatever --workers says (the lesson tables
    # come from one run; a reader reruns them with either).
    spec = make_spec(tiny_llama, facts, base={**make_spec(tiny_llama, facts).base,
                                              "max_steps": 4, "dropout": 0.1})
    run(spec, tmp_path / "one", workers=1)
    events = run(spec, tmp_path / "two", workers=2)
    assert not [e for e in events if type(e).__name__ == "WorkerFailed"]
    one, two = _train_losses(tmp_path / "one"), _train_losses(tmp_path / "two")
    assert len(one) == 3 and all(len(v) == 4 for v in one.values())
    assert one == two  # bit for bit
    assert {r["worker"] for r in read_rows(tmp_path / "two" / RESULTS_FILE)} == {0, 1}
    assert {r["threads"] for r in read_rows(tmp_path / "two" / RESULTS_FILE)} == {1}


CLAIMER = """
import json, sys, time
from genlab.core.experiments.storage import default_storage, make_storage
from genlab.core.experiments.study import claim_trial, open_study
from genlab.core.experiments.trial_loop import claim_lock
from genlab.core.specs.loader import load_spec
spec, out = load_spec(json.loads(sys.argv[1])), sys.argv[2]
study = open_study(spec, make_storage(default_storage(out)), seed_offset=int(sys.argv[3]))
while time.time() < float(sys.argv[4]):
    time.sleep(0.001)
got = []
while True:
    with claim_lock(out):
        trial = claim_trial(study, spec)
    if trial is None:
        break
    got.append(trial.number)
print(json.dumps(got))
"""


@pytest.mark.slow
def test_concurrent_local_workers_never_claim_the_same_grid_point(tiny_llama, facts, tmp_path):
    # On SQLite two workers asking at once could pop the same waiting trial (seen in a
    # 2-worker lesson run: one grid point trained twice into one directory, a worker lost).
    import time

    data = {"kind": "sweep", "name": "race", "model": str(tiny_llama),
            "base": {"data": str(facts / "train.jsonl"), "prompt_field": "prompt",
                     "completion_field": "completion", "max_steps": 2},
            "search": {"lr": [1e-5 * (i + 1) for i in range(48)]}, "method": "grid"}
    spec, out = load_spec(data), tmp_path / "sweep"
    out.mkdir()
    enqueue_grid(study_of(spec, out), spec)
    start = str(time.time() + 10)  # every process is imported and waiting by then
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, json.dumps(data), str(out),
                               str(i + 1), start], stdout=subprocess.PIPE, text=True)
             for i in range(4)]
    claimed = [n for proc in procs for n in json.loads(proc.communicate(timeout=120)[0])]
    assert sorted(claimed) == list(range(48))


def test_a_pruned_trial_stops_early_and_is_recorded_as_pruned(tiny_llama, facts, tmp_path):
    from optuna.trial import TrialState

    from genlab.core.experiments.trial import build_row, iter_train_point

    class PruneAtOnce:
        def report(self, value, step):
            self.reported = (value, step)

        def should_prune(self):
            return True

    spec = make_spec(tiny_llama, facts, base={**make_spec(tiny_llama, facts).base,
                                              "max_steps": 4})
    gen = iter_train_point(spec, {"lr": 1e-3}, tmp_path / "run", str(tiny_llama),
                           stop=StopToken(), number=0, trial=PruneAtOnce())
    try:
        while True:
            next(gen)
    except StopIteration as done:
        outcome = done.value
    assert outcome.status == "pruned" and outcome.finished.steps == 1
    row = build_row(spec, 0, {"lr": 1e-3}, tmp_path / "run", tmp_path, outcome, 0)
    assert row["status"] == "pruned" and row["objective"] is None
    assert "pruned at step 1" in row["message"]
    study = study_of(spec, tmp_path)
    from genlab.core.experiments.study import record

    trial = study.ask()
    record(study, trial, row)
    assert study.get_trials()[0].state == TrialState.PRUNED


def test_a_shared_storage_refuses_a_study_of_another_spec(tiny_llama, facts, tmp_path):
    from genlab.core.experiments.study import SweepSetupError, check_study_identity

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = make_spec(tiny_llama, facts)
    check_study_identity(open_study(first, make_storage(url)), first)
    other = make_spec(tiny_llama, facts, search={"lr": [0.5]})
    out = tmp_path / "other"
    with pytest.raises(SweepSetupError, match="differs in: search"):
        list(iter_sweep(other, out, storage=url))
    assert not out.exists()
