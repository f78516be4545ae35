"""``genlab lr-find`` end to end on a tiny model, its bad input, and the train bar's ETA."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from genlab.cli import app
from genlab.cli.train_progress import eta_text

runner = CliRunner()
FACTS = Path(__file__).resolve().parents[2] / "demo" / "facts"


def test_lr_find_prints_the_suggestion_and_writes_the_plot(tiny_llama, tmp_path):
    out = tmp_path / "lrf"
    args = ["lr-find", "--model", str(tiny_llama), "--data", str(FACTS / "train.jsonl"),
            "--prompt-field", "prompt", "--completion-field", "completion", "--seq-len", "64",
            "--steps", "20", "--device", "cpu", "--threads", "1", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Suggested lr:" in result.stdout and "minimum / 10" in result.stdout
    assert (out / "lr_find.png").is_file() and (out / "lr_find.jsonl").is_file()
    last = json.loads((out / "lr_find.jsonl").read_text().splitlines()[-1])
    assert last["type"] == "result" and last["threads"] == 1
    again = runner.invoke(app, args)  # the same --out: refused, nothing changed
    assert again.exit_code == 2
    assert "already holds an lr-find result" in again.stderr and "--force" in again.stderr
    assert json.loads((out / ".genlab.json").read_text())["kind"] == "lr-find"
    (out / "notes.txt").write_text("stale\n")
    forced = runner.invoke(app, [*args, "--force", "--steps", "6"])  # replaces the old result
    assert forced.exit_code == 0, forced.output
    assert not (out / "notes.txt").exists() and (out / "lr_find.png").is_file()
    records = [json.loads(line) for line in (out / "lr_find.jsonl").read_text().splitlines()]
    assert len(records) <= 7 and records[-1]["type"] == "result"  # only the new run's lines
    quiet = runner.invoke(app, [*args[:-1], str(tmp_path / "q"), "--quiet"])
    assert quiet.exit_code == 0 and float(quiet.stdout.strip()) > 0


def test_lr_find_bad_input_is_one_line_exit_2(tmp_path):
    for extra, words in ((["--start-lr", "1", "--end-lr", "0.1"], "--end-lr 0.1: must be above"),
                         (["--steps", "2"], "--steps 2: must be an integer >= 5"),
                         (["--smoothing", "1"], "--smoothing 1: must be in [0, 1)")):
        result = runner.invoke(app, ["lr-find", "--data", "x.txt", *extra])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("genlab: error: ")
        assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_eta_appears_with_the_first_step_and_uses_the_later_ones():
    assert eta_text(100, 0, 1, None, 0.0) == ""
    assert eta_text(100, 1, 1, 2.0, 2.0) == "ETA 3m18s"  # the first step alone: 99 x 2 s
    assert eta_text(100, 11, 1, 2.0, 7.0) == "ETA 44.5s"  # then the mean of later steps
