"""Faults in the middle of a run: a full disk, a directory made read-only, kills and signals.

What every case checks: one line on stderr naming the file and how to go on (no traceback),
exit 1 for a failure mid-run (130 for a signal), no temporary file left behind, the previous
checkpoint complete, and ``--resume`` finishing the run afterwards.

The full disk is a real tmpfs where the machine lets the tests mount one (root with
CAP_SYS_ADMIN) and a monkeypatched ``ENOSPC`` everywhere; the read-only directory is real
``chmod`` (simulated as root, see ``fault_fs``). The kills run ``genlab train`` in a child
process (``slow``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fault_fs import denied, fill, full_disk
from typer.testing import CliRunner

from genlab.cli import app
from genlab.core.io import read_jsonl
from genlab.core.training import checkpoint as ckpt_mod
from genlab.core.training import run_writer

runner = CliRunner()
STORY = ("Once upon a time there was a little fox who lived in a green forest. The fox liked "
         "to run and jump over the tall grass every morning.")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "stories.txt"
    path.write_text("\n\n".join(f"{STORY} Story {i}." for i in range(40)), encoding="utf-8")
    return path


def train_args(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--model", str(model), "--data", str(data), "--out", str(out),
            "--seq-len", "32", "--batch-size", "2", "--max-steps", "6", "--save-every", "2",
            "--eval-every", "0", "--device", "cpu", "--seed", "0", *extra]


def leftovers(run: Path) -> list[str]:
    """Temporary files or directories anywhere in ``run`` (a failed write must leave none)."""
    return sorted(str(p.relative_to(run)) for p in run.rglob("*")
                  if p.name.startswith((".tmp-", ".old-")) or p.name.endswith(".tmp"))


def assert_one_line(result, *needles: str) -> str:
    """The progress lines of the steps that ran, then exactly one error line, last."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("genlab: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], lines
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def resume_and_finish(model: Path, out: Path) -> dict:
    result = runner.invoke(app, ["train", "--resume", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "completed" and summary["steps"] == 6
    steps = [r["step"] for r in read_jsonl(out / "metrics.jsonl") if r.get("type") == "train"]
    assert steps == list(range(1, 7))  # every step exactly once across the two segments
    return summary


def at_checkpoint(step: int, action):
    """A ``save_checkpoint`` that runs ``action(run_dir)`` first when saving ``step``."""
    real = ckpt_mod.save_checkpoint

    def save(run_dir, *, state, **kwargs):
        if state["step"] == step:
            action(Path(run_dir))
        return real(run_dir, state=state, **kwargs)
    return save


# ----------------------------------------------------------------------------- full disk


def test_disk_full_at_a_checkpoint_on_a_real_tmpfs(tiny_llama, corpus, monkeypatch):
    """The issue's case: ENOSPC while writing a checkpoint (a real one, from the kernel)."""
    with full_disk("8m") as disk:
        out = disk / "run"
        monkeypatch.setattr(run_writer.ckpt_mod, "save_checkpoint", at_checkpoint(4, fill))
        result = runner.invoke(app, train_args(tiny_llama, corpus, out))
        monkeypatch.undo()
        assert result.exit_code == 1, result.output
        assert_one_line(result, "no space left on the device", "(ENOSPC)", "step 4",
                        f"genlab train --resume {out}")
        assert leftovers(out) == []
        assert ckpt_mod.latest_checkpoint(out).name == "step-00000002"
        ckpt_mod.load_checkpoint(ckpt_mod.latest_checkpoint(out))  # complete and readable
        (out / ".filler").unlink()  # free the space again
        resume_and_finish(tiny_llama, out)


def _enospc_inside_torch_save(monkeypatch) -> None:
    """``torch.save`` failing as it does on a full disk: a RuntimeError raised while handling
    the OSError, after part of the file was written."""
    real_save = ckpt_mod.torch.save

    def save(obj, f, *args, **kwargs):
        if getattr(f, "name", "").endswith("optimizer.pt"):
            f.write(b"partial")
            try:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            except OSError:
                raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected "
                                   "pos 576 vs 534") from None
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(ckpt_mod.torch, "save", save)


def test_disk_full_at_a_checkpoint_monkeypatched(tiny_llama, corpus, tmp_path, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(run_writer.ckpt_mod, "save_checkpoint", at_checkpoint(
        4, lambda run: _enospc_inside_torch_save(monkeypatch)))
    result = runner.invoke(app, train_args(tiny_llama, corpus, out))
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    line = assert_one_line(result, "optimizer.pt", "no space left", "--resume")
    assert "RuntimeError" not in line
    assert leftovers(out) == [] and ckpt_mod.latest_checkpoint(out).name == "step-00000002"
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "failed" and "step 4" in summary["message"]
    resume_and_finish(tiny_llama, out)


def test_disk_full_while_writing_the_summary_leaves_no_temp_file(tiny_llama, corpus, tmp_path,
                                                                 monkeypatch):
    """The issue's 0-byte .summary.json.tmp: the atomic writer removes it, the error is one
    line, and the run resumes from its last checkpoint."""
    out = tmp_path / "run"
    real = run_writer.write_json_atomic

    def full(path, data):
        if Path(path).name == "summary.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(run_writer, "write_json_atomic", full)
    result = runner.invoke(app, train_args(tiny_llama, corpus, out))
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    assert_one_line(result, "summary.json", "no space left")
    assert leftovers(out) == [] and not (out / "summary.json").exists()


# ----------------------------------------------------------------------------- read-only


def test_run_dir_made_read_only_mid_run(tiny_llama, corpus, tmp_path, monkeypatch):
    out = tmp_path / "run"
    stack = contextlib.ExitStack()
    monkeypatch.setattr(run_writer.ckpt_mod, "save_checkpoint", at_checkpoint(
        4, lambda run: stack.enter_context(denied(read_only=(run, run / "checkpoints")))))
    with stack:
        result = runner.invoke(app, train_args(tiny_llama, corpus, out))
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    assert_one_line(result, str(out), "permission denied", "--resume")
    assert ckpt_mod.latest_checkpoint(out).name == "step-00000002"
    resume_and_finish(tiny_llama, out)


# ----------------------------------------------------------------------------- kills


def test_a_kill_mid_checkpoint_leaves_the_previous_one(tiny_llama, corpus, tmp_path,
                                                       monkeypatch):
    """Aborted while the step-4 checkpoint is half written (a second Ctrl-C): the temp
    directory goes, step 2 stays the latest, and resuming redoes steps 3-6."""
    out = tmp_path / "run"
    real_write = ckpt_mod._write_files

    def half_then_abort(tmp, state, *args):
        if state["step"] == 4:
            (tmp / "trainable.safetensors").write_bytes(b"half")
            raise KeyboardInterrupt
        return real_write(tmp, state, *args)

    monkeypatch.setattr(ckpt_mod, "_write_files", half_then_abort)
    result = runner.invoke(app, train_args(tiny_llama, corpus, out))
    monkeypatch.undo()
    assert result.exit_code == 130, result.output
    assert leftovers(out) == [] and ckpt_mod.latest_checkpoint(out).name == "step-00000002"
    resume_and_finish(tiny_llama, out)


CHILD = textwrap.dedent("""
    import os, signal, sys
    from genlab.core.training import checkpoint as ckpt
    real = ckpt._write_files
    def write(tmp, state, *args):
        if state["step"] == int(os.environ["KILL_AT_STEP"]):
            (tmp / "trainable.safetensors").write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)  # the machine dies mid-write
        return real(tmp, state, *args)
    ckpt._write_files = write
    from genlab.cli import main
    sys.argv = ["genlab", *sys.argv[1:]]
    main()
""")


def _child(args: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, *args],
                            env={**os.environ, "KILL_AT_STEP": "-1", **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sigkill_mid_checkpoint_then_resume(tiny_llama, corpus, tmp_path):
    out = tmp_path / "run"
    proc = _child(train_args(tiny_llama, corpus, out), KILL_AT_STEP="4")
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert (out / "checkpoints" / ".tmp-step-00000004").is_dir()  # what a kill leaves
    assert ckpt_mod.latest_checkpoint(out).name == "step-00000002"
    resume_and_finish(tiny_llama, out)
    assert leftovers(out) == []  # the next save reused and removed the leftover


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_checkpoints_exits_130_and_resumes(tiny_llama, corpus, tmp_path, sig):
    out = tmp_path / "run"
    proc = _child(train_args(tiny_llama, corpus, out, "--max-steps", "400", "--save-every",
                             "50"))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(read_jsonl(out / "metrics.jsonl")) < 3:
        time.sleep(0.2)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and f"genlab train --resume {out}" in stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "stopped"
    stopped_at = summary["steps"]
    assert ckpt_mod.latest_checkpoint(out).name == f"step-{stopped_at:08d}"


@pytest.mark.slow
def test_sigkill_mid_run_resumes_from_the_last_checkpoint(tiny_llama, corpus, tmp_path):
    out = tmp_path / "run"
    proc = _child(train_args(tiny_llama, corpus, out, "--max-steps", "400"))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and ckpt_mod.latest_checkpoint(out) is None:
        time.sleep(0.2)
    proc.kill()
    proc.communicate(timeout=60)
    assert not (out / "summary.json").exists()  # no chance to write it
    latest = ckpt_mod.latest_checkpoint(out)
    assert latest is not None
    result = runner.invoke(app, ["train", "--resume", str(out), "--max-steps", "400",
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    steps = [r["step"] for r in read_jsonl(out / "metrics.jsonl") if r.get("type") == "train"]
    assert steps == list(range(1, 401))


SWEEP = """\
kind: sweep
name: killed-sweep
base:
  data: {data}
  seq_len: 32
  batch_size: 2
  max_steps: 60
  eval_every: 0
  eval_max_batches: 1
  device: cpu
search:
  lr: [1.0e-4, 1.0e-3, 1.0e-2]
method: grid
trials: 3
"""


@pytest.mark.slow
def test_sigkill_mid_sweep_then_rerun_trains_each_point_once(tiny_llama, corpus, tmp_path):
    """A ``genlab sweep`` process killed mid-trial (SIGKILL: no cleanup), then rerun with the
    same --out: the killed trial runs again, every grid point has exactly one row."""
    spec = tmp_path / "sweep.yaml"
    spec.write_text(SWEEP.format(data=corpus), encoding="utf-8")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "genlab", "sweep", str(spec), "--model", str(tiny_llama),
            "--out", str(out), "--quiet"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        trials = sorted((out / "trials").glob("*")) if (out / "trials").is_dir() else []
        if len(trials) >= 2 and read_jsonl(trials[-1] / "metrics.jsonl"):
            break  # one trial done, the second mid-way
        time.sleep(0.05)
    proc.kill()
    proc.communicate(timeout=60)
    assert len(read_jsonl(out / "results.jsonl")) < 3
    result = runner.invoke(app, ["sweep", str(spec), "--model", str(tiny_llama), "--out",
                                 str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out / "results.jsonl")
    assert sorted(r["params"]["lr"] for r in rows) == [1e-4, 1e-3, 1e-2]
    assert len({r["trial"] for r in rows}) == 3 and all(r["status"] == "completed"
                                                        for r in rows)
