"""Sweeps on a real PostgreSQL server: two ``genlab sweep`` commands, one study, one killed.

Marked ``postgres`` (not in the default run): ``pytest -m postgres`` starts a private server
(``postgres_server.start_server``; ``scripts/ci_postgres.sh`` installs PostgreSQL in CI) or
skips with the reason. The scenario is the multi-machine recipe of docs/specs.md on one host:
a coordinator (``--workers 2``) and a joining worker (``--workers 2 --worker``, its own
``--out``) share ``--storage postgresql://...``; the worker's whole process group is killed
with SIGKILL while one of its trials runs (a machine dying). The coordinator must give that
trial back, run it itself, and end with every grid point trained exactly once and a complete
``results.jsonl`` (rows of the dead worker's finished trials included).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from postgres_server import start_server

from genlab.core.io import read_jsonl

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(1200)]
STORY = ("Once upon a time there was a little fox who lived in a green forest. The fox liked "
         "to run and jump over the tall grass every morning.")
LRS = (1e-4, 1e-3, 1e-2)
RANKS = (2, 4)


def write_spec(tmp: Path, name: str) -> Path:
    data = tmp / "stories.txt"
    data.write_text("\n\n".join(f"{STORY} Story {i}." for i in range(40)), encoding="utf-8")
    spec = tmp / "spec.yaml"
    spec.write_text(f"""\
kind: sweep
name: {name}
base:
  data: {data}
  seq_len: 32
  batch_size: 2
  max_steps: 60
  eval_every: 0
  eval_max_batches: 1
  device: cpu
search:
  lr: {list(LRS)}
  rank: {list(RANKS)}
method: grid
trials: {len(LRS) * len(RANKS)}
""", encoding="utf-8")
    return spec


def running_trial(out: Path) -> Path | None:
    """A trial directory of ``out`` that has trained a step and not finished."""
    for run in sorted((out / "trials").glob("*")):
        if read_jsonl(run / "metrics.jsonl") and not (run / "summary.json").exists():
            return run
    return None


def sweep_command(spec: Path, model: Path, url: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "genlab", "sweep", str(spec), "--model", str(model),
            "--storage", url, "--out", str(out), "--workers", "2", "--quiet", *extra]


def test_two_commands_share_a_postgres_study_and_a_killed_worker_loses_nothing(
        tiny_llama, tmp_path):
    import optuna
    from optuna.trial import TrialState

    name = f"pg-sweep-{uuid.uuid4().hex[:8]}"
    spec = write_spec(tmp_path, name)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with start_server() as url:
        coordinator_out, worker_out = tmp_path / "coordinator", tmp_path / "worker"
        logs = {n: open(tmp_path / f"{n}.log", "w") for n in ("coordinator", "worker")}  # noqa: SIM115
        worker = subprocess.Popen(sweep_command(spec, tiny_llama, url, worker_out, "--worker"),
                                  env=env, stdout=logs["worker"], stderr=subprocess.STDOUT,
                                  start_new_session=True)
        coordinator = subprocess.Popen(sweep_command(spec, tiny_llama, url, coordinator_out),
                                       env=env, stdout=logs["coordinator"],
                                       stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 600
            while running_trial(worker_out) is None:
                assert time.monotonic() < deadline, "the joining worker never started a trial"
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                time.sleep(0.05)
            killed = running_trial(worker_out)
            os.killpg(worker.pid, signal.SIGKILL)  # the machine dies: no cleanup at all
            worker.wait(timeout=60)
            assert coordinator.wait(timeout=900) == 0, (tmp_path / "coordinator.log").read_text()
        finally:
            for proc in (worker, coordinator):
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
            for log in logs.values():
                log.close()

        rows = read_jsonl(coordinator_out / "results.jsonl")
        points = sorted((r["params"]["lr"], r["params"]["rank"]) for r in rows)
        assert points == sorted((lr, rank) for lr in LRS for rank in RANKS), points
        assert all(r["status"] == "completed" for r in rows), rows
        killed_number = int(killed.name)
        assert killed_number not in {r["trial"] for r in rows}  # it was given back and rerun

        study = optuna.load_study(study_name=name, storage=url)
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        assert len(complete) == len(points)
        assert sorted((t.params["lr"], t.params["rank"]) for t in complete) == points
        assert not [t for t in trials if t.state == TrialState.RUNNING]
        killed_trial = next(t for t in trials if t.number == killed_number)
        assert killed_trial.state == TrialState.FAIL and "genlab_row" not in \
            killed_trial.user_attrs
        # Rows of trials the dead worker had finished reached the coordinator's file too.
        worker_rows = read_jsonl(worker_out / "results.jsonl")
        assert {r["trial"] for r in worker_rows} <= {r["trial"] for r in rows}
        assert (coordinator_out / "report.md").is_file()
