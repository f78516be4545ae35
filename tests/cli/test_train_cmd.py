"""``genlab train``: flags, rendering, exit codes, Ctrl-C/resume and one-line bad-input errors.

End-to-end runs go through ``typer.testing.CliRunner`` in-process (torch is imported once) on
the tiny Llama with a few dozen tokens per step, so each run takes about a second.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genlab.cli import app, common, train_cmd
from genlab.cli.common import UsageError
from genlab.core.configs import TrainConfig
from genlab.core.events import EvalResult, RunFinished, RunStarted, StopToken, TrainStep

runner = CliRunner()

STORY = ("Once upon a time there was a little fox who lived in a green forest. "
         "The fox liked to run and jump over the tall grass every morning. "
         "One day the fox met a small bird that could not fly very well.")


@pytest.fixture(scope="module")
def story_file(tmp_path_factory) -> Path:
    """A .txt corpus of 40 short documents separated by blank lines."""
    path = tmp_path_factory.mktemp("data") / "stories.txt"
    docs = [f"{STORY} Story number {i} ends here." for i in range(40)]
    path.write_text("\n\n".join(docs), encoding="utf-8")
    return path


def base_args(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--model", str(model), "--data", str(data), "--out", str(out),
            "--device", "cpu", "--seq-len", "32", "--batch-size", "2", "--seed", "0", *extra]


def one_line(text: str) -> bool:
    return text.count("\n") == 1 and text.endswith("\n")


# ------------------------------------------------------------------------- flag parsing


def test_parse_flags_converts_types_and_lists():
    fields = train_cmd.parse_flags({
        "lr": "3e-4", "seq_len": "64", "betas": "0.8, 0.99", "target_modules": "q_proj, v_proj",
        "doc_separator": "\\n---\\n", "sample_prompt": ["Once", "A\\nB"], "rslora": False,
    })
    assert fields == {"lr": 3e-4, "seq_len": 64, "betas": (0.8, 0.99),
                      "target_modules": ("q_proj", "v_proj"), "doc_separator": "\n---\n",
                      "rslora": False, "sample_prompts": ("Once", "A\nB")}


@pytest.mark.parametrize("key,raw,flag", [
    ("seq_len", "abc", "--seq-len"), ("lr", "fast", "--lr"), ("betas", "0.9", "--betas"),
    ("target_modules", ",", "--target-modules"),
])
def test_parse_flags_rejects_malformed_values(key, raw, flag):
    with pytest.raises(UsageError, match=re.escape(flag)):
        train_cmd.parse_flags({key: raw})


def test_sample_prompts_file_and_repeats_combine(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "from file"}\n\n{"prompt": "second"}\n', encoding="utf-8")
    fields = train_cmd.parse_flags({"sample_prompts": str(path), "sample_prompt": ["cli"]})
    assert fields["sample_prompts"] == ("from file", "second", "cli")


def test_help_defaults_match_train_config():
    """Every 'Default: X.' in --help is TrainConfig's default for that field."""
    import typer.main

    command = typer.main.get_command(app).commands["train"]
    defaults = TrainConfig.__dataclass_fields__
    checked = 0
    for param in command.params:
        match = re.search(r"Default: ([^ ]+)\.$", param.help or "")
        if param.name not in defaults or not match:
            continue
        default = defaults[param.name].default
        if default is None:  # "Default: off." / "Default: from --epochs." describe None
            continue
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
        shown = {"False": "off", "True": "on", "": "none"}.get(shown, shown)
        assert match.group(1) == shown, param.name
        checked += 1
    assert checked >= 35


def test_every_train_config_field_has_a_flag():
    import typer.main

    command = typer.main.get_command(app).commands["train"]
    names = {p.name for p in command.params} | {"sample_prompts"}
    assert set(TrainConfig.__dataclass_fields__) <= names


@pytest.mark.parametrize("command", ["train", "merge"])
def test_help_does_not_import_torch(command):
    code = ("import sys\nfrom genlab.cli import app\n"
            f"try:\n    app(['{command}', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "120"})
    assert proc.returncode == 0, proc.stderr
    assert "Exit codes" in proc.stdout


# ---------------------------------------------------------------------- signals, exits


def test_first_signal_stops_second_aborts():
    stop = StopToken()
    noticed = []
    handler = common.StopOnSignals(stop, on_first=lambda: noticed.append(1))
    with handler:
        assert signal.getsignal(signal.SIGTERM) == handler.handle
        handler.handle(signal.SIGINT)
        assert stop.stopped and noticed == [1]
        with pytest.raises(KeyboardInterrupt):
            handler.handle(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) != handler.handle


def test_exit_codes():
    assert [common.exit_code(s) for s in
            ("completed", "early-stopped", "stopped", "diverged", "failed")] == [0, 0, 130, 3, 1]


def test_only_rank_zero_renders(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert not common.is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert common.is_main_process()


# ---------------------------------------------------------------------------- rendering


def _started(**overrides) -> RunStarted:
    fields = dict(run_dir="runs/x", total_steps=4, start_step=0, resumed=False, method="lora",
                  trainable_params=1234, total_params=56789, device="cpu", dtype="float32",
                  num_processes=1, effective_batch=2, lr=2e-4, warmup_steps=0,
                  train_blocks=10, eval_blocks=2, train_tokens=320,
                  target_modules=("q_proj", "v_proj"), config={"rank": 8, "seq_len": 32})
    return RunStarted(**{**fields, **overrides})


def test_progress_renders_steps_evals_and_samples_on_a_plain_console():
    from rich.console import Console

    from genlab.cli.train_progress import TrainProgress

    buffer = io.StringIO()
    progress = TrainProgress(Console(file=buffer, width=200))
    with progress:
        progress.handle(_started())
        for step in range(1, 5):
            progress.handle(TrainStep(step, step / 4, 3.0 - step / 10, 2e-4, 1.0, 1e-3,
                                      64 * step, 1500.0, step * 0.5))
            if step % 2 == 0:
                progress.handle(EvalResult(step, 2.5 - step / 10, 10.0, is_best=True,
                                           samples=({"prompt": "Once", "text": " upon"},)))
    text = buffer.getvalue()
    assert "run runs/x: 4 steps" in text and "LoRA r=8 on q_proj,v_proj" in text
    assert "step 1/4  loss 2.9000" in text and "1.5k tok/s" in text
    assert "eval step      2  loss 2.3000  ppl 10.00  * best" in text
    assert "sample Once upon" in text


def test_a_multiline_sample_prompt_stays_on_the_sample_line():
    from rich.console import Console

    from genlab.cli.train_progress import TrainProgress

    buffer = io.StringIO()
    with TrainProgress(Console(file=buffer, width=200)) as progress:
        progress.handle(_started())
        progress.handle(EvalResult(0, 2.5, 12.2, is_best=True, samples=(
            {"prompt": "Q: What color is Zog?\nA:", "text": " Zog is blue."},)))
    lines = [line for line in buffer.getvalue().splitlines() if line.startswith("sample ")]
    assert lines == ["sample Q: What color is Zog? A: Zog is blue."]


def test_quiet_progress_prints_nothing():
    from rich.console import Console

    from genlab.cli.train_progress import TrainProgress

    buffer = io.StringIO()
    with TrainProgress(Console(file=buffer), quiet=True) as progress:
        progress.handle(_started())
        progress.handle(EvalResult(1, 2.0, 7.4))
    assert buffer.getvalue() == ""


def test_summary_names_paths_and_try_command(tmp_path):
    from genlab.cli.train_progress import summary_lines

    (tmp_path / "adapter").mkdir()
    finished = RunFinished("completed", str(tmp_path), 6, 384, 2.5, 2.1, 6)
    text = "\n".join(summary_lines(finished, model="./tiny", prompt="Once"))
    assert "Training completed after 6 steps (384 tokens) in 2.5s" in text
    assert "best eval loss  2.1000" in text and "@ step 6" in text
    assert f"adapter         {tmp_path / 'adapter'}" in text
    assert (f"genlab sample --model ./tiny --adapter tuned={tmp_path / 'adapter'} --prompt Once"
            in text)


def test_try_command_keeps_a_multiline_prompt_on_one_line(tmp_path):
    import shlex

    from genlab.cli.common import unescape
    from genlab.cli.train_progress import summary_lines

    (tmp_path / "adapter").mkdir()
    prompt = "Q: What color is Zog the duck?\nA:\t"
    finished = RunFinished("completed", str(tmp_path), 6, 384, 2.5, 2.1, 6)
    lines = summary_lines(finished, model="./tiny", prompt=prompt)
    command = lines[lines.index("Try it:") + 1].strip()
    assert command == lines[-1].strip() and "\n" not in command
    assert "--prompt 'Q: What color is Zog the duck?\\nA:\\t'" in command
    args = shlex.split(command)
    assert unescape(args[args.index("--prompt") + 1]) == prompt  # what genlab sample reads


# --------------------------------------------------------------------------- end to end


def test_train_end_to_end_writes_the_run_directory(tiny_llama, story_file, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, base_args(tiny_llama, story_file, out, "--max-steps", "6",
                                          "--eval-every", "3", "--sample-prompt", "Once upon",
                                          "--sample-max-new-tokens", "4", "--threads", "1"))
    assert result.exit_code == 0, result.output
    for name in ("config.json", "metrics.jsonl", "samples.jsonl", "summary.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["threads"] == 1 and config["resolved"]["threads"] == 1
    assert (out / "adapter" / "adapter_config.json").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 6
    assert "Training completed after 6 steps" in result.stdout
    assert f"run dir         {out}" in result.stdout
    assert "genlab sample --model" in result.stdout and "--adapter tuned=" in result.stdout
    assert re.search(r"eval step +3 +loss", result.stderr)
    assert "sample Once upon" in result.stderr


def test_ctrl_c_checkpoints_then_resume_finishes(tiny_llama, story_file, tmp_path, monkeypatch):
    from genlab.core.training import train as core_train

    real_iter_train = core_train.iter_train

    def interrupted_after_step_2(config, **kwargs):
        for event in real_iter_train(config, **kwargs):
            yield event
            if isinstance(event, TrainStep) and event.step == 2:
                os.kill(os.getpid(), signal.SIGINT)  # what a Ctrl-C delivers

    out = tmp_path / "run"
    args = base_args(tiny_llama, story_file, out, "--max-steps", "6", "--eval-every", "3")
    monkeypatch.setattr(core_train, "iter_train", interrupted_after_step_2)
    result = runner.invoke(app, args)
    monkeypatch.setattr(core_train, "iter_train", real_iter_train)
    assert result.exit_code == 130, result.output
    assert f"genlab train --resume {out}" in result.stderr
    stopped = json.loads((out / "summary.json").read_text())
    assert stopped["status"] == "stopped" and stopped["steps"] < 6

    conflict = runner.invoke(app, ["train", "--resume", str(out), "--lr", "0.1"])
    assert conflict.exit_code == 2 and one_line(conflict.stderr)
    assert "--lr 0.1: conflicts with the resumed run" in conflict.stderr

    result = runner.invoke(app, ["train", "--resume", str(out), "--seq-len", "32",
                                 "--model", str(tiny_llama), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)  # --quiet: just the run directory
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 6


def test_divergence_exits_3_and_suggests_a_lower_lr(tiny_llama, story_file, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, base_args(tiny_llama, story_file, out, "--max-steps", "8",
                                          "--lr", "1e30", "--max-grad-norm", "0",
                                          "--eval-every", "0", "--quiet"))
    assert result.exit_code == 3, result.output
    assert "diverged" in result.stderr and "lower --lr" in result.stderr
    assert json.loads((out / "summary.json").read_text())["status"] == "diverged"


def _bad_input_cases(tmp: Path, good: Path) -> dict[str, tuple[list[str], Path, str]]:
    """name -> (extra flags, data file, text the one error line must contain)."""
    empty = tmp / "empty.txt"
    empty.write_text("", encoding="utf-8")
    no_field = tmp / "rows.jsonl"
    no_field.write_text('{"body": "hello there"}\n{"body": "more"}\n', encoding="utf-8")
    latin1 = tmp / "latin1.txt"
    latin1.write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e\n".encode("latin-1") * 50)
    prompts = tmp / "prompts.jsonl"
    prompts.write_text('{"text": "no prompt key"}\n', encoding="utf-8")
    return {
        "missing data": ([], tmp / "nope.txt", "--data"),
        "empty data": ([], empty, "--data"),
        "rows without text field": ([], no_field, "--text-field"),
        "not utf-8": ([], latin1, f"--data {latin1}: not UTF-8"),
        "seq-len < 8": (["--seq-len", "4"], good, "--seq-len 4"),
        "warmup longer than run": (["--max-steps", "5", "--warmup-steps", "10"], good,
                                   "--warmup-steps 10"),
        "lr zero": (["--lr", "0"], good, "--lr 0: must be > 0"),
        "lr negative": (["--lr", "-1e-3"], good, "--lr -1e-3: must be > 0"),
        "unknown target module": (["--target-modules", "nope_proj"], good, "q_proj"),
        "unknown optimizer": (["--optimizer", "lamb"], good, "adamw, adam, sgd"),
        "unknown schedule": (["--schedule", "exp"], good, "constant, linear, cosine, step"),
        "bad betas": (["--betas", "0.9"], good, "--betas"),
        "bad sample prompts": (["--sample-prompts", str(prompts)], good, "--sample-prompts"),
    }


CASE_NAMES = ["missing data", "empty data", "rows without text field", "not utf-8",
              "seq-len < 8", "warmup longer than run", "lr zero", "lr negative",
              "unknown target module", "unknown optimizer", "unknown schedule", "bad betas",
              "bad sample prompts"]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_input_is_one_line_exit_2_and_no_run_dir(case, tiny_llama, story_file, tmp_path):
    extra, data, needle = _bad_input_cases(tmp_path, story_file)[case]
    runs = tmp_path / "runs"
    args = base_args(tiny_llama, data, runs / "r", "--max-steps", "6", *extra)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert one_line(result.stderr), result.stderr
    assert result.stderr.startswith("genlab: error: ")
    assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert not runs.exists() or not any(runs.iterdir())


def test_missing_model_names_the_flag(story_file, tmp_path, monkeypatch):
    import genlab.assets

    monkeypatch.setattr(genlab.assets, "DEFAULT_MODEL_DIR", str(tmp_path / "no-default"))
    result = runner.invoke(app, ["train", "--data", str(story_file), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and one_line(result.stderr)
    assert "--model is required" in result.stderr
