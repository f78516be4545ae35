"""``genlab.sample``: the grid in memory, the same rows as ``genlab sample -f jsonl``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import genlab
from genlab.cli import app
from genlab.core.configs import ConfigError
from genlab.core.generation.prompting import ContextLimitError

QUESTION = "What is the capital of France?"


def test_rows_equal_the_cli_jsonl(tiny_chat_llama):
    rows = genlab.sample([QUESTION, "Hi"], str(tiny_chat_llama), grid={"temperature": [0, 0.8]},
                         base={"max_new_tokens": 8}, num_samples=2, seed=3, system="Brief.",
                         device="cpu")
    cli = CliRunner().invoke(app, ["sample", "-m", str(tiny_chat_llama), "-q", "--prompt",
                                   QUESTION, "--prompt", "Hi", "-t", "0,0.8",
                                   "--max-new-tokens", "8", "-n", "2", "-s", "3",
                                   "--system", "Brief.", "-f", "jsonl"])
    assert cli.exit_code == 0, cli.output
    assert rows == [json.loads(line) for line in cli.stdout.splitlines()]
    assert len(rows) == 8 and rows[0]["messages"][0] == {"role": "system", "content": "Brief."}


def test_prompt_shapes(tiny_chat_llama):
    convo = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
             {"role": "user", "content": QUESTION}]
    base = {"max_new_tokens": 4, "temperature": 0}
    one = genlab.sample(convo, str(tiny_chat_llama), base=base, device="cpu")
    assert len(one) == 1 and one[0]["messages"] == convo and one[0]["prompt"] == QUESTION
    many = genlab.sample([QUESTION, convo, {"messages": convo}, {"prompt": "Hi"}],
                         str(tiny_chat_llama), base=base, device="cpu", chat=True)
    assert [r["prompt"] for r in many] == [QUESTION, QUESTION, QUESTION, "Hi"]
    assert many[1]["token_ids"] == many[2]["token_ids"] == one[0]["token_ids"]
    raw = genlab.sample(QUESTION, str(tiny_chat_llama), base=base, chat=False, device="cpu")
    assert raw[0]["messages"] is None


def test_errors_are_typed(tiny_llama):
    with pytest.raises(ConfigError, match="temperature"):
        genlab.sample("Once", str(tiny_llama), grid={"temperature": [-1]})
    with pytest.raises(ContextLimitError, match="context of 256"):
        genlab.sample("Once", str(tiny_llama), base={"max_new_tokens": 400}, device="cpu")


def test_import_genlab_stays_light():
    code = "import sys, genlab; genlab.sample; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "False", out.stderr
