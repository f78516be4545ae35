"""``genlab compare``, ``genlab sweep`` and ``genlab report``: end to end, --check, one-line
bad-spec errors (exit 2, nothing written), and help without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genlab.cli import app
from genlab.core.reports.results import RESULTS_FILE, read_rows

runner = CliRunner()
FACTS = Path(__file__).resolve().parents[2] / "demo" / "facts"

COMPARE = """\
kind: compare
name: cli-compare
prompts: [Once upon a time, The fox]
base: {max_new_tokens: 3}
axes:
  temperature: [0.0, 1.0]
paired:
  - {top_k: [0, 5], top_p: [1.0, 0.9]}
samples: 2
"""

SWEEP = f"""\
kind: sweep
name: cli-sweep
vars: {{facts: "{FACTS}"}}
base:
  data: ${{facts}}/eval.jsonl
  eval_split: 0.2
  prompt_field: prompt
  completion_field: completion
  seq_len: 32
  batch_size: 2
  max_steps: 2
  eval_max_batches: 1
  device: cpu
search:
  lr: {{low: 1.0e-4, high: 1.0e-2, log: true, num: 2}}
method: grid
"""


@pytest.fixture
def specs(tmp_path) -> Path:
    (tmp_path / "compare.yaml").write_text(COMPARE, encoding="utf-8")
    (tmp_path / "sweep.yaml").write_text(SWEEP, encoding="utf-8")
    return tmp_path


def one_line(text: str) -> bool:
    return text.count("\n") == 1 and text.endswith("\n")


def test_compare_end_to_end_and_report_regeneration(specs, tiny_llama):
    out = specs / "out"
    result = runner.invoke(app, ["compare", str(specs / "compare.yaml"), "--model",
                                 str(tiny_llama), "--out", str(out), "--set", "samples=1"])
    assert result.exit_code == 0, result.output
    rows = read_rows(out / RESULTS_FILE)
    assert [r["label"] for r in rows] == ["T=0 k=0 p=1", "T=0 k=5 p=0.9", "T=1 k=0 p=1",
                                          "T=1 k=5 p=0.9"]
    assert all(len(r["outputs"]) == 2 for r in rows)  # 2 prompts x 1 sample (--set)
    assert f"{out}/report.md" in result.stdout and f"{out}/report.html" in result.stdout
    assert "cell 3: T=1 k=5 p=0.9" in result.stderr
    (out / "report.md").unlink()
    again = runner.invoke(app, ["report", str(out)])
    assert again.exit_code == 0 and (out / "report.md").is_file()


def test_sweep_end_to_end(specs, tiny_llama):
    out = specs / "out"
    result = runner.invoke(app, ["sweep", str(specs / "sweep.yaml"), "--model", str(tiny_llama),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = read_rows(out / RESULTS_FILE)
    assert sorted(r["params"]["lr"] for r in rows) == [1e-4, 1e-2]
    assert "trial 0" in result.stderr and "trial 1" in result.stderr
    assert f"{out}/report.html" in result.stdout and "best: " in result.stdout
    assert (out / "trials" / "0000" / "summary.json").is_file()
    assert json.loads((out / "spec.json").read_text())["name"] == "cli-sweep"


def test_check_prints_the_plan_and_writes_nothing(specs, tiny_llama, monkeypatch):
    monkeypatch.chdir(specs)
    result = runner.invoke(app, ["sweep", "sweep.yaml", "--check", "--model", str(tiny_llama)])
    assert result.exit_code == 0, result.output
    assert "method grid, 2 trials" in result.stdout and "lr=0.0001" in result.stdout
    result = runner.invoke(app, ["compare", "compare.yaml", "--check"])
    assert result.exit_code == 0 and "4 cells x 2 prompts x 2 samples" in result.stdout
    assert not (specs / "runs").exists()


@pytest.mark.parametrize("command, edit, words", [
    ("sweep", ("lr: {low: 1.0e-4", "lr: {low: abc"),
     "sweep.yaml: search.lr.low: expected a number, got 'abc'"),
    ("sweep", ("method: grid", "method: grd"), "method: expected one of grid, random, bayes"),
    ("sweep", ("  max_steps: 2", "  max_step: 2"), "base.max_step: unknown key (did you mean "
                                                   "'max_steps'?)"),
    ("sweep", ("  seq_len: 32", "  seq_len: many"), "base.seq_len: expected an integer >= 8, "
                                                    "got 'many'"),
    ("compare", ("temperature: [0.0, 1.0]", "temperature: []"), "axes.temperature: expected "
                                                                "at least one value"),
    ("compare", ("samples: 2", "sample: 2"), "sample: unknown key (did you mean 'samples'?)"),
    ("compare", ("kind: compare", "kind: sweep"), "kind: this is a sweep spec"),
])
def test_bad_specs_are_one_line_exit_2_and_create_nothing(specs, tiny_llama, command, edit,
                                                          words):
    path = specs / f"{command}.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(*edit), encoding="utf-8")
    out = specs / "out"
    result = runner.invoke(app, [command, str(path), "--model", str(tiny_llama), "--out",
                                 str(out)])
    assert result.exit_code == 2, result.output
    assert one_line(result.stderr) and words in result.stderr, result.stderr
    assert not out.exists()


@pytest.mark.parametrize("args, words", [
    (["--set", "samples"], "--set 'samples': expected KEY.PATH=VALUE"),
    (["--set", "samples=0"], "samples: expected an integer >= 1, got 0"),
    (["--model", "./no/such/model"], "model: no such file or directory"),
])
def test_bad_flags_are_one_line_exit_2_and_create_nothing(specs, args, words):
    out = specs / "out"
    result = runner.invoke(app, ["compare", str(specs / "compare.yaml"), "--out", str(out),
                                 *args])
    assert result.exit_code == 2 and one_line(result.stderr) and words in result.stderr
    assert not out.exists()


def test_an_out_dir_of_another_spec_is_refused(specs, tiny_llama):
    out = specs / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    result = runner.invoke(app, ["compare", str(specs / "compare.yaml"), "--model",
                                 str(tiny_llama), "--out", str(out)])
    assert result.exit_code == 2 and "genlab did not write" in result.stderr
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("make, words", [
    (lambda d: d / "missing", "missing: no such directory; pass the output directory of "
                              "genlab compare or genlab sweep"),
    (lambda d: d, "no spec.json; not a genlab compare or sweep output"),
])
def test_report_names_a_missing_directory_apart_from_a_foreign_one(tmp_path, make, words):
    result = runner.invoke(app, ["report", str(make(tmp_path))])
    assert result.exit_code == 2 and one_line(result.stderr), result.output
    assert words in result.stderr, result.stderr
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("command", ["compare", "sweep", "report"])
def test_help_does_not_import_torch(command):
    code = ("import io, contextlib, sys\nfrom genlab.cli import app\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n"
            f"        app([{command!r}, '--help'])\n"
            "    except SystemExit as e:\n"
            "        assert e.code in (0, None), e.code\n"
            "heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'transformers', 'optuna', 'matplotlib', 'yaml')]\n"
            "print(heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
