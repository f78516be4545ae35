"""``genlab sample`` with real-model inputs: chat templates, GGUF files, context limits, and
output that is never cut when stdout is a file.

The done-when check of issue 11: a model whose tokenizer carries a chat template answers
``--prompt "What is the capital of France?"`` without the user writing any template, and its
greedy reply equals ``model.generate(apply_chat_template(...), do_sample=False)`` token for
token.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from genlab.cli import app

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["sample", *args], env={"COLUMNS": "200"},
                             catch_exceptions=False)

    return invoke


def _rows(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def _generate_reference(model_dir, messages, n):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)
    out = model.generate(**ids, do_sample=False, max_new_tokens=n,
                         pad_token_id=tok.pad_token_id)
    return out[0, ids["input_ids"].shape[1]:].tolist()


def test_chat_model_answers_without_a_hand_written_template(run, tiny_chat_llama):
    r = run("-m", str(tiny_chat_llama), "-q", "--prompt", QUESTION, "-t", "0",
            "--max-new-tokens", "24", "-f", "jsonl")
    (row,) = _rows(r)
    assert row["messages"] == [{"role": "user", "content": QUESTION}]
    assert row["prompt"] == QUESTION
    expected = _generate_reference(tiny_chat_llama, row["messages"], 24)
    assert row["token_ids"] == expected


def test_system_message_and_no_chat(run, tiny_chat_llama):
    sys_rows = _rows(run("-m", str(tiny_chat_llama), "-q", "--prompt", QUESTION, "-t", "0",
                         "--max-new-tokens", "8", "--system", "Answer in one word.",
                         "-f", "jsonl"))
    assert sys_rows[0]["messages"][0] == {"role": "system", "content": "Answer in one word."}
    raw = _rows(run("-m", str(tiny_chat_llama), "-q", "--prompt", QUESTION, "-t", "0",
                    "--max-new-tokens", "8", "--no-chat", "-f", "jsonl"))
    assert raw[0]["messages"] is None
    assert raw[0]["token_ids"] != sys_rows[0]["token_ids"]


def test_prompt_file_with_conversations(run, tiny_chat_llama, tmp_path):
    path = tmp_path / "chats.jsonl"
    convo = [{"role": "user", "content": "What is two plus two?"},
             {"role": "assistant", "content": "Four."}, {"role": "user", "content": QUESTION}]
    path.write_text(json.dumps({"messages": convo}) + "\n" + json.dumps({"prompt": "Hi"}) + "\n")
    rows = _rows(run("-m", str(tiny_chat_llama), "-q", "--prompts", str(path), "-t", "0",
                     "--max-new-tokens", "6", "-f", "jsonl"))
    assert rows[0]["messages"] == convo and rows[0]["prompt"] == QUESTION
    assert rows[0]["token_ids"] == _generate_reference(tiny_chat_llama, convo, 6)
    assert rows[1]["messages"] == [{"role": "user", "content": "Hi"}]
    r = run("-m", str(tiny_chat_llama), "-q", "--prompts", str(path), "--no-chat")
    assert r.exit_code == 2 and "need the chat template; drop --no-chat" in r.stderr


def test_chat_without_a_template_is_a_usage_error(run, tiny_llama):
    r = run("-m", str(tiny_llama), "-q", "--prompt", "Once", "--chat")
    assert r.exit_code == 2
    assert "--chat: the model's tokenizer has no chat template" in r.stderr
    assert "Traceback" not in r.output


def test_over_context_is_exit_2_with_both_numbers(run, tiny_llama):
    from transformers import AutoTokenizer

    n = len(AutoTokenizer.from_pretrained(tiny_llama)("Once upon a time")["input_ids"])
    r = run("-m", str(tiny_llama), "-q", "--prompt", "Once upon a time",
            "--max-new-tokens", "253")
    assert r.exit_code == 2
    assert (f"prompt 1 ('Once upon a time'): prompt of {n} tokens + --max-new-tokens 253 = "
            f"{n + 253} tokens, more than the model's context of 256; lower --max-new-tokens "
            f"to {256 - n} or less") in r.stderr
    assert "--truncate-prompt left" in r.stderr
    long_prompt = " ".join(["the fox ran over the hill"] * 60)
    ok = run("-m", str(tiny_llama), "-q", "--prompt", long_prompt, "--max-new-tokens", "20",
             "-t", "0", "--ignore-eos", "--truncate-prompt", "left", "-f", "jsonl")
    assert len(_rows(ok)[0]["token_ids"]) == 20


def test_gguf_file_and_directory(run, tiny_gguf):
    gguf = tiny_gguf["gguf"] / "tiny-F32.gguf"
    args = ("--prompt", QUESTION, "-t", "0", "--max-new-tokens", "10", "-f", "jsonl", "-q")
    from_file = _rows(run("-m", str(gguf), *args))
    from_hf = _rows(run("-m", str(tiny_gguf["hf"]), *args))
    assert from_file[0]["token_ids"] == from_hf[0]["token_ids"]
    assert _rows(run("-m", str(tiny_gguf["gguf"]), *args))[0]["token_ids"] == \
        from_hf[0]["token_ids"]
    several = run("-m", str(tiny_gguf["multi"]), *args)
    assert several.exit_code == 2
    assert "holds 2 GGUF files (tiny-F32.gguf, tiny-Q8_0.gguf); pick one with --gguf-file" \
        in several.stderr
    picked = _rows(run("-m", str(tiny_gguf["multi"]), "--gguf-file", "tiny-Q8_0.gguf", *args))
    assert len(picked[0]["token_ids"]) == 10


def test_raw_text_to_an_instruct_model_gets_a_hint(run, tiny_chat_llama, tmp_path):
    """A model that ends every raw prompt at once (as instruct models do): say why."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_chat_llama)
    tok = AutoTokenizer.from_pretrained(tiny_chat_llama)
    with torch.no_grad():
        model.lm_head.weight[tok.eos_token_id] *= 0
        model.lm_head.bias = None
        model.model.norm.weight.fill_(1.0)
        model.lm_head.weight[tok.eos_token_id] = 50.0  # EOS always wins
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    r = run("-m", str(tmp_path), "--prompt", QUESTION, "-t", "0,0.8", "--no-chat")
    assert r.exit_code == 0
    assert "hint: 2 of 2 rows ended at once with end-of-text" in r.stderr
    assert "ChatML chat template" in r.stderr and "drop --no-chat" in r.stderr
    chat = run("-m", str(tmp_path), "--prompt", QUESTION, "-t", "0")
    assert "hint" not in chat.stderr
    assert "prompts: chat, ChatML template, turns end with <|im_end|>" in chat.stderr


def test_table_is_not_cut_when_stdout_is_a_pipe(tiny_llama):
    """Six columns and the footer survive a pipe (rich would assume 80 columns)."""
    cmd = [sys.executable, "-m", "genlab", "sample", "-m", str(tiny_llama), "-q", "--prompt",
           "Once upon a time", "-t", "0,0.3,0.6,0.9,1.2,1.5", "--max-new-tokens", "4"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "COLUMNS": ""})
    assert out.returncode == 0, out.stderr
    for label in ("T=0 ", "T=0.3", "T=0.6", "T=0.9", "T=1.2", "T=1.5"):
        assert label in out.stdout
    assert "seed 0" in out.stdout  # the caption (footer) is there too
