"""A GGUF file through the whole CLI: ``genlab train`` a LoRA on it (conversation data),
``genlab merge`` into a plain HF directory, ``genlab sample`` the merged model: its greedy
reply equals base GGUF + adapter, token for token."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from genlab.cli import app

CONVERSATIONS = [
    [{"role": "user", "content": "What is two plus two?"},
     {"role": "assistant", "content": "Four."}],
    [{"role": "user", "content": "What is the capital of France?"},
     {"role": "assistant", "content": "Paris."}],
] * 10


def test_gguf_train_merge_sample(tiny_gguf, tmp_path):
    runner = CliRunner()
    data = tmp_path / "chats.jsonl"
    data.write_text("".join(json.dumps({"messages": c}) + "\n" for c in CONVERSATIONS))
    gguf = tiny_gguf["gguf"] / "tiny-F32.gguf"
    run = tmp_path / "run"
    trained = runner.invoke(app, ["train", "--model", str(gguf), "--data", str(data),
                                  "--max-steps", "3", "--seq-len", "32", "--batch-size", "4",
                                  "--lr", "2e-2", "--eval-every", "0", "--device", "cpu",
                                  "--out", str(run), "-q"])
    assert trained.exit_code == 0, trained.output
    merged = runner.invoke(app, ["merge", "--adapter", str(run / "adapter"), "--out",
                                 str(tmp_path / "merged")])
    assert merged.exit_code == 0, merged.output
    assert (tmp_path / "merged" / "config.json").is_file()

    def greedy(*args):
        r = runner.invoke(app, ["sample", *args, "-q", "--prompt", "What is two plus two?",
                                "-t", "0", "--max-new-tokens", "8", "--ignore-eos",
                                "-f", "jsonl"])
        assert r.exit_code == 0, r.output
        return [json.loads(line)["token_ids"] for line in r.stdout.splitlines()]

    with_adapter = greedy("-m", str(gguf), "--adapter", f"tuned={run / 'adapter'}")
    assert greedy("-m", str(tmp_path / "merged"))[0] == with_adapter[1]  # the adapter column
    assert with_adapter[0] != with_adapter[1]  # training changed the model


def test_gguf_errors_are_one_line(tiny_gguf, tmp_path):
    runner = CliRunner()
    data = tmp_path / "x.txt"
    data.write_text("a story\n\nanother story\n")
    r = runner.invoke(app, ["train", "--model", str(tiny_gguf["multi"]), "--data", str(data)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "holds 2 GGUF files" in r.stderr and "--gguf-file NAME" in r.stderr
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF but not really")
    r = runner.invoke(app, ["sample", "-m", str(bad), "--prompt", "Hi", "-q"])
    assert r.exit_code == 2
    assert r.stderr.startswith("genlab: error: --model") and "not a readable GGUF" in r.stderr
