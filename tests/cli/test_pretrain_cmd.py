"""``genlab pretrain``: an end-to-end toy run, one-line bad-input errors, resume rules, help.

The end-to-end run goes through ``typer.testing.CliRunner`` in-process on a 2-layer toy (vocab
300, 30 steps of 4 x 64 tokens); the trained directory is then loaded by plain transformers in
a fresh interpreter that never imports genlab.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import CORPUS_LINES
from typer.testing import CliRunner

from genlab.cli import app, pretrain_cmd, pretrain_progress
from genlab.cli.common import UsageError
from genlab.core.events import RunStarted

runner = CliRunner()
EOS = "<|endoftext|>"
STORIES = [" ".join(CORPUS_LINES[i:] + CORPUS_LINES[:i]) for i in range(8)] * 4
TOY = ["--vocab-size", "300", "--layers", "2", "--hidden", "32", "--heads", "4",
       "--kv-heads", "2", "--mlp", "64", "--context", "64", "--batch-size", "4",
       "--warmup-steps", "3", "--lr", "3e-3", "--device", "cpu", "--seed", "0"]


def write_corpus(path: Path, stories: list[str]) -> Path:
    path.write_text("".join(f"{s}\n{EOS}\n" for s in stories), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("corpus")
    return write_corpus(tmp / "train.txt", STORIES), write_corpus(tmp / "valid.txt", STORIES[:3])


@pytest.fixture(scope="module")
def toy_run(corpus, tmp_path_factory):
    """(CliRunner result, output dir) of a 30-step toy pretraining."""
    train, valid = corpus
    out = tmp_path_factory.mktemp("pretrain") / "out"
    result = runner.invoke(app, ["pretrain", "--data", str(train), "--eval-data", str(valid),
                                 "--eval-stories", "2", "--max-steps", "30", "--eval-every",
                                 "15", "--save-every", "15", "--sample-prompt", "Once upon",
                                 *TOY, "--out", str(out)])
    return result, out


def one_line_error(result, needle: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("genlab: error: "), \
        result.stderr
    assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.output


# ----------------------------------------------------------------------------- end to end


def test_toy_pretrain_learns_and_reports(toy_run):
    result, out = toy_run
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "bits per byte" in result.stdout and f"model dir       {out}/run/model" in result.stdout
    assert "genlab sample --model" in result.stdout
    losses = [json.loads(line)["loss"] for line in (out / "run" / "metrics.jsonl").open()
              if '"train"' in line]
    assert len(losses) == 30 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.5
    record = json.loads((out / "pretrain.json").read_text())
    assert record["status"] == "completed" and 0 < record["bits_per_byte"] < 8
    assert f"{record['bits_per_byte']:.4f}" in result.stdout
    stored = json.loads((out / "pretrain_config.json").read_text())
    assert stored["shape"]["layers"] == 2 and Path(stored["data"]).is_absolute()


LOAD = textwrap.dedent("""
    import json, sys
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(sys.argv[1])
    model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
    ids = tok("Once upon a time", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert not any(m.startswith("genlab") for m in sys.modules), "genlab was imported"
    print(json.dumps({"arch": type(model).__name__, "vocab": len(tok),
                      "layers": model.config.num_hidden_layers,
                      "new": out.shape[1] - ids["input_ids"].shape[1]}))
""")


def load_without_genlab(model_dir: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", LOAD, str(model_dir)], capture_output=True,
                          text=True, timeout=180, cwd=model_dir,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                               "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_model_dir_loads_with_plain_transformers(toy_run):
    info = load_without_genlab(toy_run[1] / "run" / "model")
    assert info == {"arch": "LlamaForCausalLM", "vocab": 300, "layers": 2, "new": 4}


def test_quiet_prints_only_the_model_dir(corpus, tmp_path):
    out = tmp_path / "q"
    result = runner.invoke(app, ["pretrain", "--data", str(corpus[0]), "--max-steps", "4",
                                 "--eval-every", "0", *TOY, "--layers", "1", "--out", str(out),
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out}/run/model\n"
    assert (out / "pretrain.json").is_file()


def test_without_eval_data_a_held_out_split_is_scored_and_never_trained_on(tmp_path):
    from genlab.core.data.packing import split_documents
    from genlab.core.data.sources import load_documents
    from genlab.core.pretrain.stories import read_stories
    from genlab.core.training.run_dir import read_config

    unique = [f"Story {i}: " + " ".join(CORPUS_LINES[i:] + CORPUS_LINES[:i]) for i in range(20)]
    data = write_corpus(tmp_path / "mine.txt", unique)
    out = tmp_path / "out"
    result = runner.invoke(app, ["pretrain", "--data", str(data), "--max-steps", "4",
                                 "--eval-every", "2", *TOY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "pretrain.json").read_text())
    assert record["eval_source"] == "split" and record["eval_stories"] == 2  # 10 % of 20
    assert 0 < record["bits_per_byte"] < 8
    assert (f"bits per byte   {record['bits_per_byte']:.4f} (2 documents held out of mine.txt "
            "(--eval-split 0.1, never trained on), scored whole") in result.stdout
    held = read_stories(out / "eval_stories.txt")
    assert len(held) == 2 and all(h in unique for h in held)
    # the training run holds out exactly those documents (its own split, its stored settings)
    stored = read_config(out / "run")
    resolved = json.loads((out / "run" / "config.json").read_text())["resolved"]
    assert (resolved["train_documents"], resolved["eval_documents"]) == (18, 2)
    docs = load_documents(stored.data, doc_separator=stored.doc_separator)
    _, evals = split_documents(docs, stored.eval_split, stored.seed)
    assert [d.text.strip() for d in evals] == held
    evals = [json.loads(line) for line in (out / "run" / "metrics.jsonl").open()
             if '"eval"' in line]
    assert [e["step"] for e in evals] == [0, 2, 4]


@pytest.mark.parametrize("extra, reason", [
    ([], "the corpus has 1 document, too few to hold one out"),
    (["--eval-split", "0"], "--eval-split 0"),
])
def test_nothing_held_out_is_said_plainly(tmp_path, extra, reason):
    one_doc = tmp_path / "one.txt"
    one_doc.write_text(" ".join(STORIES[:4]), encoding="utf-8")  # no separator: 1 document
    data = one_doc if not extra else write_corpus(tmp_path / "many.txt", STORIES)
    result = runner.invoke(app, ["pretrain", "--data", str(data), "--max-steps", "4",
                                 *TOY, *extra, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (f"bits per byte   not scored: nothing was held out ({reason}" in result.stdout)
    assert "pass --eval-data FILE" in result.stdout
    record = json.loads((tmp_path / "out" / "pretrain.json").read_text())
    assert record["bits_per_byte"] is None and record["eval_source"] == "none"


# ------------------------------------------------------------------------------- bad input


def bad_cases(tmp: Path, train: Path) -> dict[str, tuple[list[str], str]]:
    """Case name -> (flags, the text the one-line error must contain)."""
    full = tmp / "full"  # a non-empty directory (made by the test)
    d = ["--data", str(train)]
    return {
        "missing data": (["--data", str(tmp / "nope.txt")], "--data"),
        "no data flag": (["--vocab-size", "300"], "--data is required"),
        "vocab too small": ([*d, "--vocab-size", "100"],
                            "--vocab-size 100: must be an integer >= 259"),
        "heads do not divide hidden": ([*d, "--hidden", "30", "--heads", "4"],
                                       "--hidden 30: must be a multiple of heads=4"),
        "kv-heads do not divide heads": ([*d, "--kv-heads", "3"],
                                         "--kv-heads 3: must be a divisor of heads=4"),
        "odd head size": ([*d, "--hidden", "12", "--heads", "4", "--kv-heads", "1"],
                          "--hidden 12"),
        "context too short": ([*d, "--context", "4"], "--context 4: must be an integer >= 8"),
        "not an integer": ([*d, "--layers", "two"], "--layers two: must be an integer"),
        "lr zero": ([*d, "--lr", "0"], "--lr 0: must be > 0"),
        "bad time limit": ([*d, "--time-limit", "soon"], "--time-limit soon"),
        "time limit and max steps": ([*d, "--time-limit", "1m", "--max-steps", "5"],
                                     "--max-steps 5: cannot be combined with --time-limit"),
        "decay fraction": ([*d, "--time-limit", "1m", "--decay-fraction", "1"],
                           "--decay-fraction 1: must be in (0, 1)"),
        "warmup too long": ([*d, "--max-steps", "5", "--warmup-steps", "5"], "--warmup-steps 5"),
        "missing eval data": ([*d, "--eval-data", str(tmp / "nope.txt")], "--eval-data"),
        "blank separator": ([*d, "--doc-separator", " "], "--doc-separator"),
        "eval split too big": ([*d, "--eval-split", "0.9"],
                               "--eval-split 0.9: must be in [0, 0.5]"),
        "unknown schedule": ([*d, "--schedule", "zigzag"], "--schedule zigzag"),
        "out not empty": ([*d, "--out", str(full)], "genlab did not write"),
        "resume not a pretrain dir": (["--resume", str(full)], "no pretrain_config.json"),
    }


@pytest.mark.parametrize("case", list(bad_cases(Path("/nonexistent"), Path("t.txt"))))
def test_bad_input_is_one_line_exit_2_and_no_output_dir(case, corpus, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    args, needle = bad_cases(tmp_path, corpus[0])[case]
    out = tmp_path / "new-out"
    if "--out" not in args and "--resume" not in args:
        args = [*args, "--out", str(out)]
    one_line_error(runner.invoke(app, ["pretrain", *args]), needle)
    assert not out.exists()


def test_data_too_short_for_a_block_leaves_nothing_behind(tmp_path):
    tiny = write_corpus(tmp_path / "tiny.txt", ["Hi."])
    out = tmp_path / "out"
    result = runner.invoke(app, ["pretrain", "--data", str(tiny), *TOY, "--max-steps", "5",
                                 "--out", str(out)])
    assert result.exit_code == 2 and result.stderr.startswith("genlab: error: ")
    assert not out.exists()


def test_resume_rules(toy_run, tmp_path):
    _, out = toy_run
    one_line_error(runner.invoke(app, ["pretrain", "--resume", str(out)]), "already finished")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "pretrain_config.json").write_text(
        (out / "pretrain_config.json").read_text())
    one_line_error(runner.invoke(app, ["pretrain", "--resume", str(tmp_path / "r"), "--lr",
                                       "1e-3"]), "--lr: cannot be changed when resuming")
    one_line_error(runner.invoke(app, ["pretrain", "--resume", str(tmp_path / "r"),
                                       "--time-limit", "5m"]), "is not time-boxed")
    one_line_error(runner.invoke(app, ["pretrain", "--resume", str(tmp_path / "r"), "--out",
                                       str(tmp_path / "elsewhere")]), "conflicts with --resume")


@pytest.mark.parametrize("raw,seconds", [("90m", 5400), ("2h", 7200), ("1h30m", 5400),
                                         ("45s", 45), ("600", 600), ("1.5h", 5400)])
def test_parse_duration(raw, seconds):
    assert pretrain_cmd.parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["", "0", "0m", "m", "5 minutes", "-5"])
def test_parse_duration_rejects(raw):
    with pytest.raises(UsageError, match="--time-limit"):
        pretrain_cmd.parse_duration(raw)


# ---------------------------------------------------------------------------- rendering, help


def test_stable_phase_renders_without_a_step_total(corpus):
    import io

    from rich.console import Console

    from genlab.core.events import TrainStep

    fields = pretrain_cmd.parse_flags({"data": str(corpus[0]), "time_limit": "10m"})
    config = pretrain_cmd.build_config(fields)
    buf = io.StringIO()
    progress = pretrain_progress.make_progress(Console(file=buf, width=120), config, quiet=False)
    started = RunStarted(run_dir="o/run-stable", total_steps=10**9, start_step=0, resumed=False,
                         method="full", trainable_params=10, total_params=10, device="cpu",
                         dtype="float32", num_processes=1, effective_batch=4, lr=1e-3,
                         warmup_steps=2, train_blocks=8, eval_blocks=0, train_tokens=100)
    with progress:
        progress.handle(started)
        for step in (1, 25):
            progress.handle(TrainStep(step=step, epoch=0.1, loss=5.0, lr=1e-3, grad_norm=1.0,
                                      update_ratio=0.0, tokens=step * 256, tokens_per_s=9e3,
                                      elapsed_s=1.0))
    text = buf.getvalue()
    assert "stable phase at constant lr for 80% of 10m00s" in text
    assert "pretraining: 10 of 10 params" in text and "step 25  loss 5.0000" in text


def test_help_does_not_import_torch():
    code = textwrap.dedent("""
        import io, contextlib, json, sys
        from genlab.cli import app
        with contextlib.redirect_stdout(io.StringIO()) as out:
            try:
                app(["pretrain", "--help"])
            except SystemExit as e:
                assert e.code in (0, None), e.code
        heavy = [m for m in sys.modules if m.split(".")[0] in
                 ("torch", "transformers", "peft", "datasets", "accelerate")
                 or (m.startswith("genlab.core") and m != "genlab.core"
                     and not m.startswith(("genlab.core.configs", "genlab.core.errors")))]
        print(json.dumps({"heavy": heavy, "help": out.getvalue()}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["heavy"] == []
    for flag in ("--data", "--vocab-size", "--kv-heads", "--time-limit", "--resume"):
        assert flag in info["help"]


@pytest.mark.slow
def test_time_boxed_pretrain_ends_on_time(corpus, tmp_path):
    import time

    out = tmp_path / "tb"
    began = time.monotonic()
    result = runner.invoke(app, ["pretrain", "--data", str(corpus[0]), *TOY, "--layers", "1",
                                 "--time-limit", "12s", "--decay-fraction", "0.5",
                                 "--eval-every", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "run-stable" / "summary.json").is_file() and (out / "run" / "model").is_dir()
    assert "stable phase done" in result.stderr
    assert time.monotonic() - began < 60
    record = json.loads((out / "pretrain.json").read_text())
    stable = json.loads((out / "run-stable" / "summary.json").read_text())
    assert record["train_tokens"] > stable["tokens"]  # both phases counted
