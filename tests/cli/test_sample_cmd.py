"""``genlab sample`` end to end on the tiny random Llama: grid, formats, seeds, adapters, errors.

Runs in-process with typer's CliRunner (torch is imported once for the whole file); a couple
of checks go through a real subprocess where the process boundary matters.
"""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from genlab.cli import app
from genlab.core.configs import SamplingParams, knob_fields
from genlab.core.generation.grid import derive_seed

JSONL_KEYS = {"prompt", "messages", "params", "seed", "sample_index", "text", "token_ids",
              "finish_reason", "adapter", "runtime"}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread, and the test machine's cores are shared."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def sample(runner, tiny_llama):
    """Invoke ``genlab sample -m <tiny> ...`` and return the click Result."""

    def invoke(*args: str, model: bool = True, input: str | None = None):
        argv = ["sample", *(["-m", str(tiny_llama)] if model else []), "-q", *args]
        return runner.invoke(app, argv, input=input, env={"COLUMNS": "200"},
                             catch_exceptions=False)

    return invoke


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def lora_dir(tiny_llama, tmp_path_factory):
    """A random (non-identity) PEFT LoRA adapter for the tiny Llama."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    config = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"],
                        init_lora_weights=False)
    out = tmp_path_factory.mktemp("lora")
    get_peft_model(model, config).save_pretrained(out)
    return out


# ----------------------------------------------------------------------------- grid & formats


def test_grid_size_and_jsonl_shape(sample):
    r = sample("--prompt", "Once upon a time", "--prompt", "Tom and Lily", "-t", "0.5,1.0",
               "--top-k", "0,40", "-n", "2", "--max-new-tokens", "4", "-f", "jsonl")
    assert r.exit_code == 0, r.stderr
    rows = _jsonl(r.stdout)
    assert len(rows) == 2 * 2 * 2 * 2
    for prompt in ("Once upon a time", "Tom and Lily"):
        mine = [x for x in rows if x["prompt"] == prompt]
        assert len(mine) == 8
        combos = {(x["params"]["temperature"], x["params"]["top_k"], x["sample_index"])
                  for x in mine}
        assert len(combos) == 8
    for x in rows:
        assert set(x) == JSONL_KEYS
        assert set(x["params"]) == set(SamplingParams().to_dict())
        assert x["adapter"] is None
        assert x["seed"] == derive_seed(0, x["sample_index"])
        assert x["finish_reason"] in ("length", "eos", "stop")
        assert 1 <= len(x["token_ids"]) <= 4 and isinstance(x["text"], str)


def test_advanced_samplers_are_grid_axes_and_shared_settings(sample):
    r = sample("--prompt", "Once upon a time", "--dry-multiplier", "0,0.8", "--mirostat", "0,2",
               "--typical-p", "0.9", "--logit-bias", " the=-inf", "--logit-bias", '"\\n"=-2',
               "--sampler-order", "llama.cpp", "--dry-sequence-breakers", '"\\n", ":"',
               "--max-new-tokens", "6", "-f", "jsonl")
    assert r.exit_code == 0, r.stderr
    rows = _jsonl(r.stdout)
    assert {(x["params"]["dry_multiplier"], x["params"]["mirostat"]) for x in rows} == {
        (0.0, 0), (0.0, 2), (0.8, 0), (0.8, 2)}
    for x in rows:
        assert x["params"]["logit_bias"] == [[" the", "-inf"], ["\n", -2.0]]
        assert x["params"]["sampler_order"] == "llama.cpp"
        assert x["params"]["dry_sequence_breakers"] == ["\n", ":"]
        assert x["params"]["typical_p"] == 0.9
    table = sample("--prompt", "Once upon a time", "--xtc-probability", "0,0.5",
                   "--logit-bias", "5=1", "--max-new-tokens", "3")
    assert "xtc-p=0 " in table.stdout and "xtc-p=0.5" in table.stdout
    assert "bias=5=1" in table.stdout  # shared advanced settings join the caption


def test_logit_bias_outside_the_vocabulary_fails_after_load(sample):
    r = sample("--prompt", "hi", "--logit-bias", "999999=-inf")
    _assert_one_line_error(r, "--logit-bias 999999=-inf: must be token ids in 0..")


def test_same_command_twice_gives_same_output_and_seeds_reproduce_a_row(sample):
    args = ("--prompt", "The fox", "-t", "0.8,1.5", "-n", "3", "--seed", "11",
            "--max-new-tokens", "6", "-f", "jsonl")
    first, second = sample(*args), sample(*args)
    assert first.exit_code == second.exit_code == 0
    assert first.stdout == second.stdout
    rows = _jsonl(first.stdout)
    assert sorted({x["seed"] for x in rows}) == sorted(derive_seed(11, i) for i in range(3))
    # A written seed reproduces its row on its own: rows depend only on their own seed.
    row = next(x for x in rows if x["sample_index"] == 2 and x["params"]["temperature"] == 1.5)
    alone = sample("--prompt", "The fox", "-t", "1.5", "--seed", str(row["seed"]),
                   "--max-new-tokens", "6", "-f", "jsonl")
    assert _jsonl(alone.stdout)[0]["token_ids"] == row["token_ids"]
    other = sample(*args[:-4], "--seed", "12", "--max-new-tokens", "6", "-f", "jsonl")
    assert other.stdout != first.stdout


def test_table_shows_each_setting_header_and_finish_info(sample):
    r = sample("--prompt", "Once upon a time", "-t", "0.5,1", "--top-k", "0,40",
               "--max-new-tokens", "3")
    assert r.exit_code == 0, r.stderr
    for header in ("T=0.5 k=0", "T=0.5 k=40", "T=1 k=0", "T=1 k=40"):
        assert header in r.stdout
    assert "Prompt 1: Once upon a time" in r.stdout
    assert re.search(r"(length|eos|stop) · \d+ tok", r.stdout)
    assert "max=3" in r.stdout  # fixed settings in the caption


def test_csv_parses_with_flattened_params(sample):
    r = sample("--prompt", "a, \"quoted\"\nprompt", "-t", "0,1", "--stop", "zzz",
               "--max-new-tokens", "3", "-f", "csv")
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 2
    for key in SamplingParams().to_dict():
        assert key in rows[0]
    assert {row["temperature"] for row in rows} == {"0.0", "1.0"}
    assert rows[0]["prompt"] == "a, \"quoted\"\nprompt"
    assert json.loads(rows[0]["stop"]) == ["zzz"]
    assert int(rows[0]["num_tokens"]) >= 1


def test_markdown_is_one_table_per_prompt_with_settings_columns(sample):
    r = sample("--prompt", "one | two", "--prompt", "three", "--top-p", "0.5,1",
               "-n", "2", "--max-new-tokens", "3", "-f", "markdown")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    tables = [i for i, line in enumerate(lines) if line.startswith("| sample |")]
    assert len(tables) == 2
    for start in tables:
        header, rule, *body = lines[start:start + 4]
        assert "p=0.5" in header and "p=1" in header
        cols = len(re.split(r"(?<!\\)\|", header))
        assert re.fullmatch(r"\|(-*:?-*\|)+", rule)
        assert len(body) == 2 and all(len(re.split(r"(?<!\\)\|", b)) == cols for b in body)
    assert "> one \\| two" in r.stdout


def test_logprobs_shape(sample):
    r = sample("--prompt", "The fox", "-t", "0,1", "--max-new-tokens", "5", "--ignore-eos",
               "--logprobs", "3", "-f", "jsonl")
    assert r.exit_code == 0, r.stderr
    for x in _jsonl(r.stdout):
        assert set(x) == JSONL_KEYS | {"logprobs"}
        assert len(x["logprobs"]) == len(x["token_ids"]) == 5
        for tok, tid in zip(x["logprobs"], x["token_ids"], strict=True):
            assert set(tok) == {"token_id", "token", "logprob", "top"}
            assert tok["token_id"] == tid and isinstance(tok["token"], str)
            assert tok["logprob"] <= 0
            assert len(tok["top"]) == 3
            for alt in tok["top"]:
                assert set(alt) == {"token_id", "token", "logprob", "sampled_prob"}
                assert 0 <= alt["sampled_prob"] <= 1
            probs = [alt["logprob"] for alt in tok["top"]]
            assert probs == sorted(probs, reverse=True)
    no_lp = sample("--prompt", "The fox", "--max-new-tokens", "2", "-f", "jsonl")
    assert "logprobs" not in _jsonl(no_lp.stdout)[0]


def test_out_is_written_atomically_and_format_follows_extension(sample, tmp_path):
    out = tmp_path / "res.jsonl"
    r = sample("--prompt", "hi there", "-t", "0.5,1", "--max-new-tokens", "3", "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert len(_jsonl(out.read_text(encoding="utf-8"))) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res.jsonl"]  # no temp file left
    table = tmp_path / "res.txt"
    r = sample("--prompt", "hi there", "-t", "0.5,1", "--max-new-tokens", "3", "-o", str(table))
    assert "T=0.5" in table.read_text(encoding="utf-8") and "\x1b[" not in table.read_text()


def test_adapter_columns_beside_base_in_one_run(sample, lora_dir):
    r = sample("--prompt", "Once upon a time", "-t", "0,1", "--max-new-tokens", "6",
               "--adapter", f"kind={lora_dir}", "-f", "jsonl")
    assert r.exit_code == 0, r.stderr
    rows = _jsonl(r.stdout)
    assert [(x["params"]["temperature"], x["adapter"]) for x in rows] == [
        (0.0, None), (0.0, "kind"), (1.0, None), (1.0, "kind")]
    greedy = {x["adapter"]: x["token_ids"] for x in rows if x["params"]["temperature"] == 0}
    assert greedy[None] != greedy["kind"]
    table = sample("--prompt", "Once upon a time", "-t", "0,1", "--max-new-tokens", "3",
                   "--adapter", f"kind={lora_dir}")
    for header in ("base T=0", "kind T=0", "base T=1", "kind T=1"):
        assert header in table.stdout


def test_prompts_from_files_and_stdin(sample, tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "The fox"}\n{"prompt": "Tom"}\n', encoding="utf-8")
    r = sample("--prompts", str(f), "--prompt", "Mia", "--max-new-tokens", "2", "-f", "jsonl")
    assert [x["prompt"] for x in _jsonl(r.stdout)] == ["Mia", "The fox", "Tom"]
    r = sample("--prompts", "-", "--max-new-tokens", "2", "-f", "jsonl", input="a\n\nb\n")
    assert [x["prompt"] for x in _jsonl(r.stdout)] == ["a", "b"]


def test_stop_string_escape(sample):
    r = sample("--prompt", "The fox", "--stop", "\\n", "--max-new-tokens", "2", "-f", "jsonl")
    assert _jsonl(r.stdout)[0]["params"]["stop"] == ["\n"]


# ------------------------------------------------------------------------------- Ctrl-C


@pytest.mark.parametrize("signals", [1, 2], ids=["stop-cleanly", "abort"])
def test_ctrl_c_exits_130_and_writes_nothing(sample, tmp_path, monkeypatch, signals):
    from genlab.core.generation import decode as generate

    real = generate.iter_generate

    def interrupted(*args, **kwargs):
        for i, event in enumerate(real(*args, **kwargs)):
            if i == 2:
                for _ in range(signals):
                    signal.raise_signal(signal.SIGINT)
            yield event

    monkeypatch.setattr(generate, "iter_generate", interrupted)
    out = tmp_path / "o.jsonl"
    r = sample("--prompt", "The fox", "-t", "0.5,1", "--ignore-eos", "--max-new-tokens", "60",
               "-o", str(out))
    assert r.exit_code == 130
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert "nothing written" in r.stderr
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --------------------------------------------------------------------------- bad input


BAD = [
    (["-t", "-1"], "--temperature -1: must be >= 0"),
    (["-t", "0.7,abc"], "--temperature 0.7,abc: 'abc' is not a number"),
    (["-t", "0.7,,1"], "--temperature 0.7,,1: empty list item"),
    (["-t", "nan"], "--temperature nan: must be >= 0"),
    (["--top-k", "-1"], "--top-k -1: must be an integer >= 0"),
    (["--top-k", "1.5"], "--top-k 1.5: '1.5' is not an integer"),
    (["--top-p", "1.5"], "--top-p 1.5: must be in (0, 1] (1 = off)"),
    (["--top-p", "0"], "--top-p 0: must be in (0, 1]"),
    (["--min-p", "1.2"], "--min-p 1.2: must be in [0, 1]"),
    (["--min-p", "-0.1"], "--min-p -0.1: must be in [0, 1]"),
    (["--repetition-penalty", "0"], "--repetition-penalty 0: must be > 0"),
    (["--repetition-penalty", "1,-2"], "--repetition-penalty -2: must be > 0"),
    (["--max-new-tokens", "0"], "--max-new-tokens 0: must be an integer >= 1"),
    (["-n", "0"], "--num-samples 0: must be an integer >= 1"),
    (["--seed", "-3"], "--seed -3: must be an integer in [0, 2**63)"),
    (["--seed", "x"], "--seed x: not an integer"),
    (["--seed", str(2**63)], f"--seed {2**63}: must be an integer in [0, 2**63)"),
    (["--batch-size", "0"], "--batch-size 0: must be an integer >= 1"),
    (["--logprobs", "-1"], "--logprobs -1: must be an integer >= 0"),
    (["--stop", ""], "--stop '': a stop string must not be empty"),
    (["--format", "xml"], "--format xml: unknown format"),
    (["--device", "tpu"], "--device tpu: must be auto, cpu, cuda, cuda:N or mps"),
    (["--dtype", "int8"], "--dtype int8: must be auto, float32, bfloat16 or float16"),
    (["--adapter", "nodir"], "--adapter nodir: expected NAME=DIR"),
    (["--adapter", "a=/no/such/adapter"], "--adapter a=/no/such/adapter: no such directory"),
    (["--adapter", "base=/tmp"], "--adapter base=/tmp: 'base' names the model"),
    (["--typical-p", "0,0.5"], "--typical-p 0: must be in (0, 1] (1 = off)"),
    (["--mirostat", "0,3"], "--mirostat 3: must be an integer in [0, 2]"),
    (["--presence-penalty", "2.5"], "--presence-penalty 2.5: must be in [-2, 2] (0 = off)"),
    (["--xtc-threshold", "0.7"], "--xtc-threshold 0.7: must be in (0, 0.5]"),
    (["--dry-allowed-length", "1.5"], "--dry-allowed-length 1.5: '1.5' is not an integer"),
    (["--min-tokens", "9", "--max-new-tokens", "8"], "--min-tokens 9: must be <= max_new"),
    (["--logit-bias", "the"], "--logit-bias the: must be TOKEN=BIAS entries"),
    (["--logit-bias", "5=-1", "--logit-bias", "x=high"], "--logit-bias x=high: must be"),
    (["--logit-bias", "x=inf"], "-inf bans a token"),
    (["--sampler-order", "top_k,nope"], "--sampler-order top_k,nope: must be transformers"),
    (["--top-k", "5", "--sampler-order", "temperature"], "(add top_k)"),
    (["--dry-sequence-breakers", "\\n"], "--dry-sequence-breakers \\n: must be JSON strings"),
]


def _assert_one_line_error(r, needle: str) -> None:
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("genlab: error: "), lines[0]
    assert needle in lines[0], lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""


@pytest.mark.parametrize("args,needle", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_flag_is_one_line_exit_2_and_no_file(sample, tmp_path, args, needle):
    out = tmp_path / "o.jsonl"
    r = sample("--prompt", "hi", *args, "-o", str(out))
    _assert_one_line_error(r, needle)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name,content,needle", [
    ("empty.txt", b"", "--prompts {f}: holds no prompts"),
    ("bad.txt", b"\xff\xfe bad", "--prompts {f}: line 1: not UTF-8"),
    ("rows.jsonl", b'{"prompt": "a"}\n{"text": "b"}\n', '--prompts {f}: line 2: no "prompt"'),
    ("json.jsonl", b'{"prompt": "a"\n', "--prompts {f}: line 1: invalid JSON"),
])
def test_bad_prompt_file(sample, tmp_path, name, content, needle):
    f = tmp_path / name
    f.write_bytes(content)
    out = tmp_path / "o.jsonl"
    r = sample("--prompts", str(f), "-o", str(out))
    _assert_one_line_error(r, needle.format(f=f))
    assert not out.exists()


def test_missing_prompts(sample, tmp_path):
    _assert_one_line_error(sample("--prompts", str(tmp_path / "nope.txt")),
                           f"--prompts {tmp_path / 'nope.txt'}: no such file")
    _assert_one_line_error(sample(), "no prompt given; pass --prompt TEXT")
    _assert_one_line_error(sample("--prompt", ""), "--prompt '': a prompt must not be empty")


def test_out_problems(sample, tmp_path):
    _assert_one_line_error(sample("--prompt", "hi", "-o", str(tmp_path / "no" / "x.jsonl")),
                           "directory")
    _assert_one_line_error(sample("--prompt", "hi", "-o", str(tmp_path / "x.xml")),
                           "cannot tell the format")
    assert list(tmp_path.iterdir()) == []


def test_model_required_and_unknown_model(sample, tmp_path, monkeypatch):
    import genlab.assets

    monkeypatch.setattr(genlab.assets, "DEFAULT_MODEL_DIR", str(tmp_path / "no-default"))
    _assert_one_line_error(sample("--prompt", "hi", model=False), "--model is required")
    out = tmp_path / "o.jsonl"
    r = sample("--prompt", "hi", "-m", str(tmp_path / "missing-model"), "-o", str(out),
               model=False)
    _assert_one_line_error(r, f"--model {tmp_path / 'missing-model'}")
    assert not out.exists()


def test_adapter_dir_without_config(sample, tmp_path):
    _assert_one_line_error(sample("--prompt", "hi", "--adapter", f"x={tmp_path}"),
                           "no adapter_config.json")


def test_validation_happens_before_model_load(runner, monkeypatch):
    import genlab.core.modeling.loading as models

    def never(*a, **k):
        raise AssertionError("model loaded before flags were checked")

    monkeypatch.setattr(models, "load_model", never)
    r = runner.invoke(app, ["sample", "-m", "whatever", "--prompt", "x", "--top-p", "2"])
    assert r.exit_code == 2 and "--top-p 2" in r.stderr


def test_subprocess_error_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "genlab", "sample", "-m", "x", "--prompt",
                           "hi", "--top-p", "1.5"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == "genlab: error: --top-p 1.5: must be in (0, 1] (1 = off)\n"


# ---------------------------------------------------------------------------------- help


def test_help_documents_every_option_and_examples(runner):
    r = runner.invoke(app, ["sample", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    command = typer.main.get_command(app).commands["sample"]
    for param in command.params:
        if param.name != "help":
            assert param.help and len(param.help) > 15, param.name
    assert command.help.count("genlab sample ") >= 2
    assert "Examples" in r.stdout


def test_help_defaults_match_sampling_params():
    command = typer.main.get_command(app).commands["sample"]
    defaults = SamplingParams().to_dict()
    numbers = {kf.name for kf in knob_fields(SamplingParams) if kf.kind in ("int", "float")}
    for param in command.params:
        if param.name in numbers:
            shown = re.search(r"Default: ([\d.]+)\.", param.help).group(1)
            assert float(shown) == defaults[param.name], param.name


# ------------------------------------------------------------------------------ progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_goes_to_its_stream_only(capsys):
    from genlab.cli.sample_progress import RunProgress

    stream = _Tty()
    with RunProgress(2, stream=stream) as progress:
        for _ in range(5):
            progress.token()
        progress.row()
        progress.row()
    assert "2/2" in stream.getvalue() and "5 tokens" in stream.getvalue()
    assert capsys.readouterr().out == ""


def test_progress_off_a_terminal_is_silent_until_the_run_is_long():
    from genlab.cli.sample_progress import RunProgress

    quick = io.StringIO()
    with RunProgress(3, stream=quick) as progress:
        progress.token()
        progress.row()
    assert quick.getvalue() == ""
    slow = io.StringIO()
    with RunProgress(3, stream=slow, interval_s=0.0) as progress:
        progress.row()
    assert slow.getvalue() == "genlab: sampling: 1/3 rows, 0 tokens, 0 s\n"
    off = _Tty()
    with RunProgress(3, stream=off, enabled=False) as progress:
        progress.row()
    assert off.getvalue() == ""
