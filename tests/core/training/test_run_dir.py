"""The run-directory format: writers, readers and checkpoints round-trip."""

from __future__ import annotations

import json
import re

import pytest
import torch

from genlab.core.configs import TrainConfig
from genlab.core.io import write_json_atomic
from genlab.core.training import checkpoint as ckpt
from genlab.core.training import run_dir as runs


def _config(**kw) -> TrainConfig:
    return TrainConfig(model="org/some-model", data="data.txt", **kw)


def test_default_run_dir_name(tmp_path):
    path = runs.default_run_dir(_config(), root=tmp_path)
    assert path.parent == tmp_path
    assert re.fullmatch(r"\d{8}-\d{6}-some-model", path.name)
    named = runs.default_run_dir(_config(name="my run/1"), root=tmp_path)
    assert named.name.endswith("-my-run-1")
    path.mkdir()
    assert runs.default_run_dir(_config(), root=tmp_path) != path  # never an existing dir


def test_config_round_trip(tmp_path):
    config = _config(target_modules=("q_proj", "v_proj"), sample_prompts=("Hi",), lr=3e-4)
    runs.write_config(tmp_path, config, {"total_steps": 12, "device": "cpu"})
    assert runs.read_config(tmp_path) == config
    assert runs.read_resolved(tmp_path) == {"total_steps": 12, "device": "cpu"}
    stored = json.loads((tmp_path / runs.CONFIG_FILE).read_text())
    assert stored["lr"] == 3e-4 and stored["target_modules"] == ["q_proj", "v_proj"]
    with pytest.raises(FileNotFoundError):
        runs.read_config(tmp_path / "nope")


def test_metrics_lines_are_strict_json_and_flushed(tmp_path):
    writer = runs.JsonlWriter(tmp_path / runs.METRICS_FILE)
    writer.write({"type": "train", "step": 1, "loss": 2.5})
    writer.write({"type": "train", "step": 2, "loss": float("nan"), "lr": (1, 2)})
    # readable before close: every write is flushed
    assert [r["step"] for r in runs.read_metrics(tmp_path)] == [1, 2]
    writer.write({"type": "eval", "step": 2, "loss": float("inf")})
    writer.close()
    lines = (tmp_path / runs.METRICS_FILE).read_text().splitlines()
    assert [json.loads(line, parse_constant=lambda c: pytest.fail(c)) for line in lines]
    assert runs.read_metrics(tmp_path, "train")[1] == {"type": "train", "step": 2, "loss": None,
                                                       "lr": [1, 2]}
    assert runs.read_metrics(tmp_path, "eval") == [{"type": "eval", "step": 2, "loss": None}]
    runs.truncate_jsonl(tmp_path / runs.METRICS_FILE, 1)
    assert [r["step"] for r in runs.read_metrics(tmp_path)] == [1]


def test_cut_last_line_ends_the_readable_part(tmp_path):
    (tmp_path / runs.METRICS_FILE).write_text('{"step": 1}\n{"step": 2, "lo')
    assert runs.read_metrics(tmp_path) == [{"step": 1}]


def test_summary_and_list_runs(tmp_path):
    assert runs.list_runs(tmp_path / "missing") == []
    a, b = tmp_path / "20240101-000000-a", tmp_path / "20240102-000000-b"
    for d in (a, b):
        d.mkdir()
        runs.write_config(d, _config(name=d.name), {})
    (tmp_path / "not-a-run").mkdir()
    assert runs.read_summary(a) is None
    write_json_atomic(a / runs.SUMMARY_FILE, {"status": "completed", "best": float("nan")})
    assert runs.read_summary(a) == {"status": "completed", "best": None}
    listed = runs.list_runs(tmp_path)
    assert [(r.name, r.status) for r in listed] == [(a.name, "completed"), (b.name, "running")]
    assert listed[0].config["name"] == a.name
    assert not list(tmp_path.rglob(".*.tmp"))


def test_list_runs_by_start_time_with_sweep_trials_and_the_best_so_far(tmp_path):
    import os

    late, early = tmp_path / "aaa-named-late", tmp_path / "zzz-named-early"
    for d, when in ((early, 1_000), (late, 2_000)):
        d.mkdir()
        runs.write_config(d, _config(name=d.name), {})
        os.utime(d / runs.CONFIG_FILE, (when, when))
    sweep = tmp_path / "sweep-20240101-000000-lr"
    trial = sweep / "trials" / "0001"
    trial.mkdir(parents=True)
    (sweep / "spec.json").write_text("{}")
    runs.write_config(trial, _config(name="0001"), {})
    os.utime(trial / runs.CONFIG_FILE, (3_000, 3_000))
    runs.JsonlWriter(trial / runs.METRICS_FILE).write({"type": "train", "step": 7, "loss": 2.0})
    for loss in (2.5, 1.5, float("nan")):
        runs.JsonlWriter(trial / runs.METRICS_FILE).write({"type": "eval", "step": 7,
                                                           "loss": loss})
    assert [r.name for r in runs.list_runs(tmp_path)] == [early.name, late.name]
    listed = runs.list_runs(tmp_path, nested=True)
    assert [r.name for r in listed] == [early.name, late.name, f"{sweep.name}/0001"]
    running = listed[-1]
    assert running.status == "running" and running.best_so_far == 1.5
    assert running.steps_so_far == 7
    assert listed[0].best_so_far is None  # (no evaluation yet)


def _fake_checkpoint(run_dir, step, best=None):
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    return ckpt.save_checkpoint(
        run_dir, state={"step": step, "consumed": 4 * step},
        trainable={"w": torch.full((2,), float(step))}, best=best,
        optimizer=opt.state_dict(), scheduler={"last_epoch": step}, scaler=None,
        rng=[ckpt.capture_rng()])


def test_checkpoint_round_trip_and_pruning(tmp_path):
    assert ckpt.latest_checkpoint(tmp_path) is None
    _fake_checkpoint(tmp_path, 2)
    (ckpt.checkpoints_root(tmp_path) / ".tmp-step-00000009").mkdir()  # a crashed write
    path = _fake_checkpoint(tmp_path, 5, best={"w": torch.zeros(2)})
    assert ckpt.list_checkpoints(tmp_path) == [path]  # only the latest is kept
    loaded = ckpt.load_checkpoint(path)
    assert loaded.state == {"step": 5, "consumed": 20, "best_is_current": False}
    assert torch.equal(loaded.trainable["w"], torch.full((2,), 5.0))
    assert torch.equal(loaded.best["w"], torch.zeros(2))
    assert loaded.scheduler == {"last_epoch": 5} and loaded.scaler is None


def test_rng_capture_restore():
    import random

    state = ckpt.capture_rng()
    first = (random.random(), torch.rand(3))
    ckpt.restore_rng(state)
    again = (random.random(), torch.rand(3))
    assert first[0] == again[0] and torch.equal(first[1], again[1])


def test_trainable_state_round_trip():
    model = torch.nn.Linear(3, 2)
    model.bias.requires_grad_(False)
    state = ckpt.trainable_state(model)
    assert set(state) == {"weight"}
    with torch.no_grad():
        model.weight.zero_()
    ckpt.load_trainable_state(model, state)
    assert torch.equal(model.weight, state["weight"])
    with pytest.raises(KeyError):
        ckpt.load_trainable_state(model, {})
