"""--threads and --quantize on the commands that run a model: parsed, applied, recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from genlab.cli import app
from genlab.cli.common import UsageError
from genlab.cli.runtime_options import parse_runtime, spec_overrides
from genlab.core.modeling import cpu_dtype
from genlab.core.reports.results import RESULTS_FILE, read_rows

runner = CliRunner()
COMPARE = """\
kind: compare
name: runtime
prompts: [Once upon a time]
base: {max_new_tokens: 3, temperature: 0}
"""


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def sample(model: Path, *args: str):
    return runner.invoke(app, ["sample", "-m", str(model), "--prompt", "Once upon a time",
                               "-t", "0", "--max-new-tokens", "4", *args],
                         env={"COLUMNS": "200"}, catch_exceptions=False)


def test_sample_records_threads_and_quantize_in_every_row(tiny_llama):
    result = sample(tiny_llama, "-n", "2", "--threads", "1", "--quantize", "int8",
                    "-f", "jsonl")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert row["runtime"] == {"device": "cpu", "dtype": "float32", "quantize": "int8",
                                  "threads": 1, "compile": False}
    assert "int8 weights, float32 compute, 1 thread)" in " ".join(result.stderr.split())


@pytest.mark.parametrize(("args", "line"), [
    (["--threads", "0"], "--threads 0: must be an integer >= 1"),
    (["--threads", "two"], "--threads two: must be an integer"),
    (["--quantize", "int4"], "--quantize int4: must be one of none, int8, 8bit, 4bit"),
    (["--quantize", "4bit"], "--quantize 4bit: bitsandbytes quantization needs a CUDA GPU"),
    (["--quantize", "int8", "--dtype", "bfloat16"], "--quantize int8: int8 layers compute in "
                                                   "float32 on the CPU"),
])
def test_bad_runtime_flags_are_one_line_and_exit_2(tiny_llama, args, line):
    result = sample(tiny_llama, *args)
    assert result.exit_code == 2
    error = [x for x in result.stderr.splitlines() if x.startswith("genlab: error:")]
    assert len(error) == 1 and line in error[0], result.stderr
    assert "Traceback" not in result.stderr


def test_train_refuses_int8_in_one_line(tiny_llama, tmp_path):
    data = tmp_path / "d.txt"
    data.write_text("Once upon a time there was a fox.\n" * 20, encoding="utf-8")
    result = runner.invoke(app, ["train", "--model", str(tiny_llama), "--data", str(data),
                                 "--quantize", "int8", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "--quantize int8: must be none, 4bit or 8bit for training" in result.stderr
    assert not (tmp_path / "run").exists()


def test_compare_flags_replace_the_spec_keys_and_every_cell_records_them(tiny_llama,
                                                                       tmp_path):
    spec = tmp_path / "c.yaml"
    spec.write_text(COMPARE + "threads: 2\n", encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(app, ["compare", str(spec), "--model", str(tiny_llama), "--out",
                                 str(out), "--threads", "1", "--quantize", "int8", "-q"])
    assert result.exit_code == 0, result.output
    rows = read_rows(out / RESULTS_FILE)
    assert rows and all(r["runtime"]["threads"] == 1 and r["runtime"]["quantize"] == "int8"
                        for r in rows)
    stored = json.loads((out / "spec.json").read_text())
    assert stored["threads"] == 1 and stored["quantize"] == "int8"


def test_spec_overrides_and_parse_runtime():
    assert spec_overrides({"threads": "2", "quantize": None}) == ["threads=2"]
    assert spec_overrides({"compile": True}) == ["compile=true"]
    assert spec_overrides({"threads": "3"}, prefix="base.") == ["base.threads=3"]
    assert parse_runtime({"quantize": "int8"}).quantize == "int8"
    with pytest.raises(UsageError, match="^--threads -1: must be an integer >= 1$"):
        parse_runtime({"threads": "-1"})


def test_sweep_threads_becomes_the_base_key(tmp_path, monkeypatch):
    from genlab.core.specs.loader import load_spec

    facts = Path(__file__).resolve().parents[2] / "demo" / "facts"
    spec = {"kind": "sweep", "name": "s", "base": {"data": str(facts / "eval.jsonl")},
            "search": {"lr": [1e-4, 1e-3]}, "method": "grid"}
    parsed = load_spec(spec, overrides=spec_overrides({"threads": "1"}, prefix="base."))
    assert parsed.base["threads"] == 1


def test_tui_passes_threads_and_quantize_to_the_app(monkeypatch, tiny_llama):
    seen = {}

    class FakeApp:
        def run(self):
            seen["ran"] = True

    def fake_make_app(**kwargs):
        seen.update(kwargs)
        return FakeApp()

    monkeypatch.setattr("genlab.tui.app.make_app", fake_make_app)
    result = runner.invoke(app, ["tui", "--model", str(tiny_llama), "--threads", "1",
                                 "--quantize", "int8"])
    assert result.exit_code == 0, result.output
    assert seen["threads"] == 1 and seen["quantize"] == "int8" and seen["ran"]


def test_bfloat16_on_a_cpu_without_amx_gets_a_note(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(cpu_dtype.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(cpu_dtype, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    note = cpu_dtype.dtype_note(torch.bfloat16, cpu)
    assert note and "without AMX" in note and "--dtype float16" in note
    assert cpu_dtype.dtype_note(torch.float16, cpu) is None
    assert cpu_dtype.dtype_note(torch.bfloat16, torch.device("cuda")) is None
    monkeypatch.setattr(cpu_dtype, "cpu_flags", lambda: frozenset({"avx512_bf16", "amx_bf16"}))
    assert cpu_dtype.dtype_note(torch.bfloat16, cpu) is None


def test_sample_shows_the_dtype_note(tiny_llama, monkeypatch):
    monkeypatch.setattr("genlab.core.modeling.loading.dtype_note",
                        lambda dtype, device: "slow here" if dtype == torch.bfloat16 else None)
    result = sample(tiny_llama, "--dtype", "bfloat16")
    assert result.exit_code == 0
    assert "genlab: warning: slow here" in result.stderr


@pytest.mark.parametrize(("key", "value", "words"), [
    ("quantize", "int4", "expected one of none, int8, 8bit, 4bit"),
    ("threads", 0, ">= 1"),
    ("compile", "yes", "true or false"),
])
def test_compare_spec_runtime_keys_are_checked(key, value, words):
    from genlab.core.specs.common import SpecError
    from genlab.core.specs.loader import load_spec

    spec = {"kind": "compare", "prompts": ["Once"], key: value}
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    assert key in str(err.value) and words in str(err.value)


def test_compare_spec_runtime_keys_and_identity():
    from genlab.core.specs.loader import load_spec

    plain = load_spec({"kind": "compare", "prompts": ["Once"]})
    tuned = load_spec({"kind": "compare", "prompts": ["Once"], "threads": 1, "compile": True})
    int8 = load_spec({"kind": "compare", "prompts": ["Once"], "quantize": "int8"})
    assert (tuned.threads, tuned.compile, int8.quantize) == (1, True, "int8")
    assert "threads" not in plain.to_dict() and tuned.to_dict()["threads"] == 1
    assert tuned.identity() == plain.identity()  # threads/compile: same answers, same output
    assert int8.identity() != plain.identity()  # int8 changes the answers
