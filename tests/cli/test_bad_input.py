"""The bad-input table: every command x the classes of its flags and files, one line each.

Each case runs one ``genlab`` command line in-process (``CliRunner``: torch loads once) with
its working directory in a fresh temporary directory, and asserts what issue #14 promises for
bad input: the exit code (2 bad input, 1 a runtime failure), exactly one line on stderr,
starting ``genlab: error:`` and naming the flag or file (the ``needles``), no traceback, and
no file created, changed or deleted: the case directory is hashed by content before and after,
the shared inputs (models, adapters, data, specs) by size, mode and mtime.

The shared inputs are built once (``bad_input_inputs.build_inputs``). Unreadable files and
read-only directories use ``fault_fs.denied`` (real ``chmod``; simulated when running as root,
where permissions do not apply). Slow classes (sweeps that need a second process, a real
PostgreSQL server) live in their own modules.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from bad_input_inputs import build_inputs
from fault_fs import denied
from typer.testing import CliRunner

from genlab.cli import app
from genlab.core.io import write_marker

_HAS_PSYCOPG = importlib.util.find_spec("psycopg") is not None

runner = CliRunner()


@dataclass(frozen=True)
class Case:
    """One bad command line and what genlab must answer."""

    id: str
    argv: Callable[[Any, Path], list[str]]
    needles: tuple[str, ...] = ()
    code: int = 2
    setup: Callable[[Any, Path], None] | None = None
    unreadable: Callable[[Any, Path], tuple[Path, ...]] | None = None
    read_only: Callable[[Any, Path], tuple[Path, ...]] | None = None
    stdin: bytes | None = None
    marks: tuple[Any, ...] = field(default_factory=tuple)


@pytest.fixture(scope="session")
def inputs(tmp_path_factory, tiny_llama, tiny_gpt2, tiny_chat_llama, tiny_gguf
           ) -> SimpleNamespace:
    return build_inputs(tmp_path_factory.mktemp("bad-input"), tiny_llama, tiny_gpt2,
                        tiny_chat_llama, tiny_gguf)


# ------------------------------------------------------------------------ snapshots


def snapshot(root: Path, content: bool) -> dict[str, tuple]:
    """Every entry under ``root``: its kind and mode, and its bytes' hash (``content``) or
    size and mtime."""
    seen: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if path.is_dir():
                seen[rel] = ("dir", st.st_mode)
            elif content:
                seen[rel] = ("file", st.st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                seen[rel] = ("file", st.st_mode, st.st_size, st.st_mtime_ns)
    return seen


def check_one_line(result: Any, case: Case, inputs: Any, tmp: Path) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.exit_code == case.code, (result.exit_code, output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("genlab: error: "), lines[0]
    assert "unexpected" not in lines[0], lines[0]  # a bug, not a mapped failure
    for needle in case.needles:
        text = needle.format(s=inputs, t=tmp) if "{" in needle else needle
        assert text in lines[0], (text, lines[0])


# ------------------------------------------------------------------------ command lines


def sample(*extra: str) -> Callable[[Any, Path], list[str]]:
    def argv(s: Any, t: Path) -> list[str]:
        return ["sample", "--model", str(s.llama), "--prompt", "Once", "--max-new-tokens", "2",
                "--device", "cpu", *[x.format(s=s, t=t) for x in extra]]
    return argv


def train(*extra: str) -> Callable[[Any, Path], list[str]]:
    def argv(s: Any, t: Path) -> list[str]:
        return ["train", "--model", str(s.llama), "--data", str(s.data["txt"]), "--seq-len",
                "32", "--batch-size", "2", "--max-steps", "1", "--eval-every", "0",
                "--device", "cpu", "--out", str(t / "run"),
                *[x.format(s=s, t=t) for x in extra]]
    return argv


def pretrain(*extra: str) -> Callable[[Any, Path], list[str]]:
    def argv(s: Any, t: Path) -> list[str]:
        return ["pretrain", "--data", str(s.data["txt"]), "--layers", "1", "--hidden", "16",
                "--heads", "2", "--kv-heads", "1", "--mlp", "32", "--context", "32",
                "--vocab-size", "300", "--max-steps", "2", "--warmup-steps", "0",
                "--device", "cpu",
                "--out", str(t / "pre"), *[x.format(s=s, t=t) for x in extra]]
    return argv


def merge(*extra: str) -> Callable[[Any, Path], list[str]]:
    def argv(s: Any, t: Path) -> list[str]:
        return ["merge", "--adapter", str(s.adapter), "--model", str(s.llama), "--out",
                str(t / "merged"), *[x.format(s=s, t=t) for x in extra]]
    return argv


def compare(spec: str = "{s.specs[compare]}", *extra: str) -> Callable[[Any, Path], list[str]]:
    def argv(s: Any, t: Path) -> list[str]:
        return ["compare", spec.format(s=s, t=t), "--model", str(s.llama), "--out",
                str(t / "cmp"), *[x.format(s=s, t=t) for x in extra]]
    return argv


def sweep(spec: str = "{s.specs[sweep]}", *extra: str) -> Callable[[Any, Path], list[str]]:
    def argv(s: Any, t: Path) -> list[str]:
        return ["sweep", spec.format(s=s, t=t), "--model", str(s.llama), "--out",
                str(t / "swp"), *[x.format(s=s, t=t) for x in extra]]
    return argv


def lr_find(*extra: str) -> Callable[[Any, Path], list[str]]:
    def argv(s: Any, t: Path) -> list[str]:
        return ["lr-find", "--model", str(s.llama), "--data", str(s.data["txt"]), "--seq-len",
                "32", "--batch-size", "2", "--steps", "5", "--device", "cpu", "--out",
                str(t / "lrf"), *[x.format(s=s, t=t) for x in extra]]
    return argv


def raw(*args: str) -> Callable[[Any, Path], list[str]]:
    def argv(s: Any, t: Path) -> list[str]:
        return [x.format(s=s, t=t) for x in args]
    return argv


# ------------------------------------------------------------------------ per-case setups


def out_is_file(name: str) -> Callable[[Any, Path], None]:
    def setup(s: Any, t: Path) -> None:
        (t / name).write_text("my notes\n", encoding="utf-8")
    return setup


def out_is_users_dir(name: str) -> Callable[[Any, Path], None]:
    """The issue's data-loss case: the user's own adapter/mine.txt and metrics.jsonl."""
    def setup(s: Any, t: Path) -> None:
        (t / name / "adapter").mkdir(parents=True)
        (t / name / "adapter" / "mine.txt").write_text("my adapter notes\n", encoding="utf-8")
        (t / name / "metrics.jsonl").write_text('{"mine": 1}\n', encoding="utf-8")
    return setup


def out_is_genlab(name: str, kind: str) -> Callable[[Any, Path], None]:
    def setup(s: Any, t: Path) -> None:
        (t / name).mkdir()
        write_marker(t / name, kind)
        (t / name / "notes.txt").write_text("kept\n", encoding="utf-8")
    return setup


def ro_dir(s: Any, t: Path) -> None:
    (t / "ro").mkdir()


def in_ro(s: Any, t: Path) -> tuple[Path, ...]:
    return (t / "ro",)


def corrupt_results(kind: str, spec_json: str, name: str = "res"
                    ) -> Callable[[Any, Path], None]:
    def setup(s: Any, t: Path) -> None:
        (t / name).mkdir()
        if kind:
            write_marker(t / name, kind)
        (t / name / "spec.json").write_text(spec_json, encoding="utf-8")
    return setup


NO_CUDA = pytest.mark.skipif("__import__('torch').cuda.is_available()",
                             reason="CUDA is available here")
NO_MPS = pytest.mark.skipif("__import__('torch').backends.mps.is_available()",
                            reason="MPS is available here")

# ------------------------------------------------------------------------ the table

ROOT_CASES = [
    Case("root/unknown-command", raw("trian"), ("No such command", "train")),
    Case("root/unknown-option", raw("--bogus"), ("No such option: --bogus",)),
    Case("root/unknown-subcommand-option", raw("train", "-m", "x"), ("No such option: -m",)),
    Case("root/option-without-value", raw("sample", "--top-p"), ("--top-p",)),
    Case("root/missing-required-option", raw("merge", "--out", "{t}/m"), ("--adapter",)),
    Case("root/missing-argument", raw("sweep"), ("SPEC",)),
    Case("root/workers-0", raw("sweep", "{s.specs[sweep]}", "--workers", "0"), ("--workers",)),
    Case("root/workers-not-int", raw("sweep", "{s.specs[sweep]}", "-w", "two"), ("-w",)),
]

SAMPLE_MODEL_CASES = [
    Case("sample/model-missing-dir", sample("--model", "./nope"), ("--model ./nope",)),
    Case("sample/model-is-a-file", sample("--model", "{s.data[txt]}"), ("--model",)),
    Case("sample/model-truncated-weights", sample("--model", "{s.models[truncated]}"),
         ("model.safetensors is damaged",)),
    Case("sample/model-empty-weights", sample("--model", "{s.models[empty-weights]}"),
         ("model.safetensors is damaged",)),
    Case("sample/model-config-wrong-type", sample("--model", "{s.models[wrong-type]}"),
         ("config.json has a value of the wrong type", "num_hidden_layers")),
    Case("sample/model-config-shape-mismatch", sample("--model", "{s.models[shape]}"),
         ("do not have the shapes",)),
    Case("sample/model-config-not-json", sample("--model", "{s.models[bad-json]}"),
         ("config.json is not valid JSON", "line 1")),
    Case("sample/model-config-json-list", sample("--model", "{s.models[json-list]}"),
         ("not an object",)),
    Case("sample/model-pickle-refused", sample("--model", "{s.models[pickle]}"),
         ("pytorch_model.bin", "refused")),
    Case("sample/model-no-weights", sample("--model", "{s.models[no-weights]}"),
         ("--model",)),
    Case("sample/model-unknown-architecture", sample("--model", "{s.models[unknown-arch]}"),
         ("--model",)),
    Case("sample/model-damaged-tokenizer", sample("--model", "{s.models[bad-tokenizer]}"),
         ("tokenizer.json is not valid JSON",)),
    Case("sample/model-hub-offline", sample("--model", "someone/no-such-model"),
         ("someone/no-such-model",)),
]

SAMPLE_ADAPTER_CASES = [
    Case("sample/adapter-truncated", sample("--adapter", "x={s.adapters[truncated]}"),
         ("adapter_model.safetensors is damaged",)),
    Case("sample/adapter-pickle-refused", sample("--adapter", "x={s.adapters[pickle]}"),
         ("adapter_model.bin", "refused")),
    Case("sample/adapter-config-wrong-type", sample("--adapter", "x={s.adapters[wrong-type]}"),
         ("adapter_config.json has a value of the wrong type",)),
    Case("sample/adapter-config-not-json", sample("--adapter", "x={s.adapters[bad-json]}"),
         ("adapter_config.json is not valid JSON",)),
    Case("sample/adapter-no-weights", sample("--adapter", "x={s.adapters[no-weights]}"),
         ("no adapter weights",)),
    Case("sample/adapter-unknown-targets", sample("--adapter", "x={s.adapters[targets]}"),
         ("nope_proj",)),
    Case("sample/adapter-of-another-model", sample("--adapter", "x={s.gpt2_adapter}"),
         ("--adapter x=",)),
    Case("sample/adapter-no-equals", sample("--adapter", "{s.adapter}"), ("NAME=DIR",)),
    Case("sample/adapter-named-base", sample("--adapter", "base={s.adapter}"), ("'base'",)),
    Case("sample/adapter-name-twice", sample("--adapter", "x={s.adapter}", "--adapter",
                                             "x={s.adapter}"), ("given twice",)),
    Case("sample/adapter-missing-dir", sample("--adapter", "x={t}/nope"), ("no such directory",)),
    Case("sample/adapter-no-config", sample("--adapter", "x={s.adapters[no-config]}"),
         ("no adapter_config.json",)),
]

SAMPLE_FLAG_CASES = [
    Case("sample/device-tpu", sample("--device", "tpu"), ("--device tpu",)),
    Case("sample/device-cuda-letter", sample("--device", "cuda:x"), ("--device cuda:x",)),
    Case("sample/device-cuda-absent", sample("--device", "cuda"), ("--device cuda",),
         marks=(NO_CUDA,)),
    Case("sample/device-mps-absent", sample("--device", "mps"), ("--device mps",),
         marks=(NO_MPS,)),
    Case("sample/dtype-int8", sample("--dtype", "int8"), ("--dtype int8",)),
    Case("sample/temperature-negative", sample("-t", "-1"), ("--temperature",)),
    Case("sample/top-p-above-1", sample("--top-p", "1.5"), ("--top-p 1.5",)),
    Case("sample/top-k-not-int", sample("--top-k", "abc"), ("--top-k abc",)),
    Case("sample/top-p-empty-item", sample("--top-p", "0.5,,0.7"), ("empty list item",)),
    Case("sample/min-p-above-1", sample("--min-p", "2"), ("--min-p",)),
    Case("sample/repetition-penalty-0", sample("--repetition-penalty", "0"),
         ("--repetition-penalty",)),
    Case("sample/max-new-tokens-0", sample("--max-new-tokens", "0"), ("--max-new-tokens 0",)),
    Case("sample/num-samples-0", sample("-n", "0"), ("--num-samples",)),
    Case("sample/seed-negative", sample("--seed", "-1"), ("--seed",)),
    Case("sample/seed-too-big", sample("--seed", str(2**63)), ("--seed",)),
    Case("sample/batch-size-0", sample("--batch-size", "0"), ("--batch-size",)),
    Case("sample/logprobs-negative", sample("--logprobs", "-1"), ("--logprobs",)),
    Case("sample/stop-empty", sample("--stop", ""), ("--stop",)),
    Case("sample/format-unknown", sample("--format", "xml"), ("--format xml",)),
]

SAMPLE_PROMPT_CASES = [
    Case("sample/prompt-empty", raw("sample", "--model", "{s.llama}", "--prompt", ""),
         ("--prompt",)),
    Case("sample/no-prompt", raw("sample", "--model", "{s.llama}"), ("--prompt",)),
    Case("sample/prompts-missing", sample("--prompts", "{t}/nope.txt"), ("no such file",)),
    Case("sample/prompts-directory", sample("--prompts", "{t}"), ("is a directory",)),
    Case("sample/prompts-10MB-single-line", sample("--prompts", "{s.prompts[huge-line]}"),
         ("--prompts", "line 1", "1,000,000")),
    Case("sample/prompts-huge-jsonl-prompt", sample("--prompts", "{s.prompts[huge-jsonl]}"),
         ("line 1", "1,000,000")),
    Case("sample/prompts-blank-only", sample("--prompts", "{s.prompts[empty]}"),
         ("holds no prompts",)),
    Case("sample/prompts-bad-jsonl", sample("--prompts", "{s.prompts[bad-jsonl]}"),
         ("line 2", "invalid JSON")),
    Case("sample/prompts-no-prompt-field", sample("--prompts", "{s.prompts[no-field]}"),
         ('no "prompt" or "messages" field',)),
    Case("sample/prompts-not-string", sample("--prompts", "{s.prompts[not-string]}"),
         ("non-empty string",)),
    Case("sample/prompts-not-utf8", sample("--prompts", "{s.prompts[latin1]}"),
         ("not UTF-8",)),
    Case("sample/prompts-too-many", sample("--prompts", "{s.prompts[too-many]}"),
         ("100,001 prompts",)),
    Case("sample/prompts-unreadable", sample("--prompts", "{s.prompts[unreadable]}"),
         ("--prompts", "cannot read it"), unreadable=lambda s, t: (s.prompts["unreadable"],)),
    Case("sample/prompts-stdin-not-utf8", sample("--prompts", "-"), ("not UTF-8",),
         stdin="caf\xe9\n".encode("latin-1")),
    Case("sample/prompts-stdin-empty", sample("--prompts", "-"), ("holds no prompts",),
         stdin=b""),
    Case("sample/prompt-too-long", raw("sample", "--model", "{s.llama}", "--prompt",
                                       "x" * 1_000_001), ("--prompt", "1,000,000")),
]

SAMPLE_OUT_CASES = [
    Case("sample/out-unknown-extension", sample("--out", "{t}/out.xyz"), ("--out",)),
    Case("sample/out-is-directory", sample("--out", "{t}"), ("--out",)),
    Case("sample/out-is-directory-jsonl", sample("--out", "{t}/d.jsonl"), ("is a directory",),
         setup=lambda s, t: (t / "d.jsonl").mkdir()),
    Case("sample/out-parent-missing", sample("--out", "{t}/no/dir/out.jsonl"),
         ("does not exist",)),
    Case("sample/out-exists-no-force", sample("--out", "{t}/out.jsonl"),
         ("already exists", "--force"), setup=out_is_file("out.jsonl")),
    Case("sample/out-read-only-dir", sample("--out", "{t}/ro/out.jsonl"), ("not writable",),
         setup=ro_dir, read_only=in_ro),
]

SAMPLE_CHAT_CASES = [  # --chat/--system/--truncate-prompt and conversation prompt files
    Case("sample/system-empty", sample("--model", "{s.chat}", "--system", ""), ("--system",)),
    Case("sample/system-with-no-chat", sample("--model", "{s.chat}", "--no-chat", "--system",
                                              "Be brief."), ("--system", "--no-chat")),
    Case("sample/system-without-template", sample("--system", "Be brief."),
         ("--system", "no chat template")),
    Case("sample/system-too-long", sample("--model", "{s.chat}", "--system", "x" * 1_000_001),
         ("--system", "1,000,000")),
    Case("sample/chat-without-template", sample("--chat"), ("--chat", "no chat template")),
    Case("sample/conversations-without-template", sample("--prompts", "{s.prompts[chats]}"),
         ("no chat template",)),
    Case("sample/conversations-with-no-chat", sample("--model", "{s.chat}", "--no-chat",
                                                     "--prompts", "{s.prompts[chats]}"),
         ("--prompts", "--no-chat")),
    Case("sample/prompts-unknown-role", sample("--model", "{s.chat}", "--prompts",
                                               "{s.prompts[bad-role]}"),
         ("--prompts", "line 1", "wizard")),
    Case("sample/prompts-messages-not-a-list", sample("--model", "{s.chat}", "--prompts",
                                                      "{s.prompts[messages-not-list]}"),
         ("line 1", "messages")),
    Case("sample/prompts-huge-conversation", sample("--model", "{s.chat}", "--prompts",
                                                    "{s.prompts[huge-conversation]}"),
         ("line 1", "conversation", "1,000,000")),
    Case("sample/truncate-prompt-unknown", sample("--truncate-prompt", "right"),
         ("--truncate-prompt right",)),
    Case("sample/prompt-over-context", raw("sample", "--model", "{s.llama}", "--prompt",
                                           "Once upon a time " * 200, "--max-new-tokens", "2",
                                           "--device", "cpu"),
         ("prompt 1", "context of 256", "--truncate-prompt left")),
    Case("sample/max-new-tokens-over-context", sample("--max-new-tokens", "5000"),
         ("--max-new-tokens", "context of 256")),
]

SAMPLE_GGUF_CASES = [
    Case("sample/gguf-truncated", sample("--model", "{s.gguf[truncated]}"),
         ("--model", "not a readable GGUF")),
    Case("sample/gguf-fake", sample("--model", "{s.gguf[fake]}"), ("not a readable GGUF",)),
    Case("sample/gguf-several-in-dir", sample("--model", "{s.gguf[multi]}"),
         ("holds 2 GGUF files", "--gguf-file NAME")),
    Case("sample/gguf-file-missing", sample("--model", "{s.gguf[multi]}", "--gguf-file",
                                            "nope.gguf"), ("--gguf-file nope.gguf", "no such")),
    Case("sample/gguf-file-with-a-file", sample("--model", "{s.gguf[file]}", "--gguf-file",
                                                "x.gguf"), ("--gguf-file x.gguf", "already")),
]

TRAIN_MODEL_CASES = [
    Case("train/model-missing", train("--model", "./nope"), ("--model ./nope",)),
    Case("train/model-truncated-weights", train("--model", "{s.models[truncated]}"),
         ("model.safetensors is damaged",)),
    Case("train/model-config-wrong-type", train("--model", "{s.models[wrong-type]}"),
         ("wrong type",)),
    Case("train/model-config-shape-mismatch", train("--model", "{s.models[shape]}"),
         ("do not have the shapes",)),
    Case("train/model-pickle-refused", train("--model", "{s.models[pickle]}"), ("refused",)),
    Case("train/model-no-weights", train("--model", "{s.models[no-weights]}"), ("--model",)),
    Case("train/model-config-not-json", train("--model", "{s.models[bad-json]}"),
         ("not valid JSON",)),
]

TRAIN_DATA_CASES = [
    Case("train/data-required", raw("train", "--model", "{s.llama}", "--out", "{t}/run"),
         ("--data",)),
    Case("train/data-missing-file", train("--data", "{t}/nope.txt"), ("--data",)),
    Case("train/data-empty-file", train("--data", "{s.data[empty]}"), ("empty",)),
    Case("train/data-not-utf8", train("--data", "{s.data[latin1]}"), ("not UTF-8",)),
    Case("train/data-unsupported-type", train("--data", "{s.data[xyz]}"), (".xyz",)),
    Case("train/data-dir-without-data", train("--data", "{s.data[no-data-dir]}"),
         ("holds no",)),
    Case("train/data-bad-json-line", train("--data", "{s.data[bad-line]}"),
         ("line 2", "not valid JSON")),
    Case("train/data-no-text-field", train("--data", "{s.data[no-text]}"),
         ("--text-field text", "body")),
    Case("train/data-not-text", train("--data", "{s.data[numbers]}"), ("not text",)),
    Case("train/data-9MB-jsonl-line", train("--data", "{s.data[long-line]}"),
         ("line 1", "8 MiB")),
    Case("train/data-9MB-document", train("--data", "{s.data[long-doc]}"),
         ("document 1", "8 MiB")),
    Case("train/prompt-field-alone", train("--data", "{s.data[pairs]}", "--prompt-field",
                                           "prompt"),
         ("--prompt-field prompt", "--completion-field")),
    Case("train/completion-field-alone", train("--data", "{s.data[pairs]}",
                                               "--completion-field", "completion"),
         ("--completion-field completion", "--prompt-field")),
    Case("train/row-missing-completion", train("--data", "{s.data[no-completion]}",
                                               "--prompt-field", "prompt", "--completion-field",
                                               "completion"),
         ("row 4", "no 'completion' value")),
    Case("train/pair-fields-on-text", train("--prompt-field", "p", "--completion-field", "c"),
         ("plain text",)),
    Case("train/data-unreadable", train("--data", "{s.data[unreadable]}"),
         ("cannot read it",), unreadable=lambda s, t: (s.data["unreadable"],)),
    Case("train/eval-data-missing", train("--eval-data", "{t}/nope.txt"), ("--eval-data",)),
    Case("train/eval-split-too-big", train("--eval-split", "1.5"), ("--eval-split",)),
]

TRAIN_KNOB_CASES = [
    Case("train/lr-not-a-number", train("--lr", "abc"), ("--lr abc",)),
    Case("train/lr-zero", train("--lr", "0"), ("--lr 0",)),
    Case("train/rank-zero", train("--rank", "0"), ("--rank 0",)),
    Case("train/batch-size-zero", train("--batch-size", "0"), ("--batch-size 0",)),
    Case("train/epochs-negative", train("--epochs", "-1"), ("--epochs",)),
    Case("train/warmup-ratio-2", train("--warmup-ratio", "2"), ("--warmup-ratio",)),
    Case("train/optimizer-unknown", train("--optimizer", "nope"), ("--optimizer nope",)),
    Case("train/schedule-unknown", train("--schedule", "nope"), ("--schedule nope",)),
    Case("train/method-unknown", train("--method", "nope"), ("--method nope",)),
    Case("train/device-tpu", train("--device", "tpu"), ("--device tpu",)),
    Case("train/device-cuda-absent", train("--device", "cuda"), ("--device cuda",),
         marks=(NO_CUDA,)),
    Case("train/dtype-int8", train("--dtype", "int8"), ("--dtype int8",)),
    Case("train/seq-len-over-context", train("--seq-len", "100000"), ("--seq-len 100000",)),
    Case("train/target-modules-unknown", train("--target-modules", "nope"), ("nope",)),
    Case("train/patience-without-eval", train("--patience", "3", "--eval-split", "0"),
         ("--patience 3",)),
    Case("train/sample-prompts-missing", train("--sample-prompts", "{t}/nope.txt"),
         ("--sample-prompts",)),
    Case("train/sample-prompts-10MB-line", train("--sample-prompts",
                                                 "{s.prompts[huge-line]}"),
         ("--sample-prompts", "1,000,000")),
    Case("train/betas-bad", train("--betas", "0.9"), ("--betas",)),
]

TRAIN_VARIANT_CASES = [  # issue #15's LoRA variants, schedules and optimizers
    Case("train/init-unknown", train("--init", "nope"), ("--init nope",)),
    Case("train/dora-with-full", train("--method", "full", "--dora"), ("--dora", "--method")),
    Case("train/quantize-unknown", train("--quantize", "2bit"), ("--quantize 2bit",)),
    Case("train/quantize-on-cpu", train("--quantize", "4bit"), ("--quantize 4bit", "CUDA")),
    Case("train/init-loftq-without-4bit", train("--init", "loftq"),
         ("--init loftq", "--quantize 4bit")),
    Case("train/init-pissa-with-dora", train("--init", "pissa", "--dora"),
         ("--init pissa", "--dora")),
    Case("train/optimizer-adamw8bit-cpu", train("--optimizer", "adamw8bit"),
         ("--optimizer adamw8bit",)),
    Case("train/rank-pattern-malformed", train("--rank-pattern", "q_proj"),
         ("--rank-pattern",)),
    Case("train/rank-pattern-unknown-module", train("--rank-pattern", "nope_proj=4"),
         ("--rank-pattern", "nope_proj")),
    Case("train/loraplus-ratio-zero", train("--loraplus-ratio", "0"), ("--loraplus-ratio 0",)),
    Case("train/decay-shape-unknown", train("--decay-shape", "square"),
         ("--decay-shape square",)),
    Case("train/schedule-plateau-without-eval", train("--schedule", "plateau", "--eval-split",
                                                      "0"), ("--schedule plateau",)),
]

TRAIN_CHAT_CASES = [  # issue #11's conversation data and GGUF bases
    Case("train/data-format-unknown", train("--data-format", "tsv"), ("--data-format tsv",)),
    Case("train/data-format-messages-with-prompt-field",
         train("--data", "{s.data[pairs]}", "--data-format", "messages", "--prompt-field",
               "prompt", "--completion-field", "completion"), ("--data-format messages",)),
    Case("train/data-format-messages-on-text", train("--data-format", "messages"),
         ("--data-format messages", "plain text")),
    Case("train/chat-on-text-data", train("--chat", "--data-format", "text"), ("--chat",)),
    Case("train/messages-field-missing", train("--model", "{s.chat}", "--data",
                                               "{s.chat_data[no-messages]}", "--data-format",
                                               "messages"), ("--messages-field messages",)),
    Case("train/messages-unknown-role", train("--model", "{s.chat}", "--data",
                                              "{s.chat_data[bad-role]}"),
         ("--messages-field messages", "row 3", "wizard")),
    Case("train/conversations-without-template", train("--data", "{s.chat_data[chats]}"),
         ("--data", "no chat template")),
    Case("train/gguf-truncated", train("--model", "{s.gguf[truncated]}"),
         ("not a readable GGUF",)),
    Case("train/gguf-several-in-dir", train("--model", "{s.gguf[multi]}"),
         ("--gguf-file NAME",)),
    Case("train/gguf-quantize", train("--model", "{s.gguf[file]}", "--quantize", "4bit"),
         ("--quantize 4bit",)),
]

TRAIN_OUT_CASES = [
    Case("train/out-is-a-file", train(), ("is a file",), setup=out_is_file("run")),
    Case("train/out-users-dir-kept", train(), ("genlab did not write", "--force"),
         setup=out_is_users_dir("run")),
    Case("train/out-genlab-run", train(), ("already a genlab run directory", "--resume"),
         setup=out_is_genlab("run", "run")),
    Case("train/out-other-genlab-kind", train(), ("genlab compare output",),
         setup=out_is_genlab("run", "compare")),
    Case("train/out-under-read-only-dir", train("--out", "{t}/ro/run"), ("{t}/ro",),
         setup=ro_dir, read_only=in_ro),
    Case("train/resume-missing", raw("train", "--resume", "{t}/nope"), ("--resume",)),
    Case("train/resume-users-dir", raw("train", "--resume", "{t}/run"),
         ("not a genlab run directory",), setup=out_is_users_dir("run")),
    Case("train/resume-finished", raw("train", "--resume", "{s.done_run}"),
         ("already ended",)),
    Case("train/resume-conflicting-flag", raw("train", "--resume", "{s.pickled_run}",
                                              "--lr", "0.5"), ("--lr 0.5", "conflicts")),
    Case("train/resume-other-out", raw("train", "--resume", "{s.pickled_run}", "--out",
                                       "{t}/x"), ("--out",)),
    Case("train/resume-pickled-optimizer", raw("train", "--resume", "{s.pickled_run}"),
         ("optimizer.pt", "refused")),
    Case("train/resume-truncated-checkpoint", raw("train", "--resume", "{s.truncated_run}"),
         ("trainable.safetensors", "cannot be read")),
]

MERGE_CASES = [
    Case("merge/adapter-missing", merge("--adapter", "{t}/nope"), ("--adapter",)),
    Case("merge/adapter-no-config", merge("--adapter", "{s.adapters[no-config]}"),
         ("no adapter_config.json",)),
    Case("merge/adapter-truncated", merge("--adapter", "{s.adapters[truncated]}"),
         ("adapter_model.safetensors is damaged",)),
    Case("merge/adapter-pickle-refused", merge("--adapter", "{s.adapters[pickle]}"),
         ("refused",)),
    Case("merge/adapter-config-wrong-type", merge("--adapter", "{s.adapters[wrong-type]}"),
         ("wrong type",)),
    Case("merge/adapter-config-not-json", merge("--adapter", "{s.adapters[bad-json]}"),
         ("adapter_config.json",)),
    Case("merge/adapter-names-no-base", raw("merge", "--adapter", "{s.adapters[no-base]}",
                                            "--out", "{t}/merged"), ("--model",)),
    Case("merge/base-missing", merge("--model", "./nope"), ("--model ./nope",)),
    Case("merge/base-truncated", merge("--model", "{s.models[truncated]}"), ("damaged",)),
    Case("merge/base-wrong-type", merge("--model", "{s.models[wrong-type]}"),
         ("wrong type",)),
    Case("merge/base-of-another-shape", merge("--model", "{s.gpt2}"), ("--adapter",)),
    Case("merge/dtype-int8", merge("--dtype", "int8"), ("--dtype int8",)),
    Case("merge/out-is-a-file", merge(), ("is a file",), setup=out_is_file("merged")),
    Case("merge/out-users-dir", merge(), ("genlab did not write", "--force"),
         setup=out_is_users_dir("merged")),
    Case("merge/out-genlab-run", merge(), ("genlab run output",),
         setup=out_is_genlab("merged", "run")),
    Case("merge/out-under-read-only-dir", merge("--out", "{t}/ro/merged"), ("{t}/ro",),
         setup=ro_dir, read_only=in_ro),
]

MERGE_GGUF_CASES = [
    Case("merge/gguf-file-missing", merge("--model", "{s.gguf[multi]}", "--gguf-file",
                                          "nope.gguf"), ("--gguf-file nope.gguf",)),
    Case("merge/gguf-base-truncated", merge("--model", "{s.gguf[truncated]}"),
         ("not a readable GGUF",)),
]

LR_FIND_CASES = [
    Case("lr-find/data-required", raw("lr-find", "--model", "{s.llama}"), ("--data",)),
    Case("lr-find/data-missing", lr_find("--data", "{t}/nope.txt"), ("--data",)),
    Case("lr-find/data-not-utf8", lr_find("--data", "{s.data[latin1]}"), ("not UTF-8",)),
    Case("lr-find/model-missing", lr_find("--model", "./nope"), ("--model ./nope",)),
    Case("lr-find/model-truncated", lr_find("--model", "{s.models[truncated]}"),
         ("model.safetensors is damaged",)),
    Case("lr-find/gguf-truncated", lr_find("--model", "{s.gguf[truncated]}"),
         ("not a readable GGUF",)),
    Case("lr-find/end-below-start", lr_find("--start-lr", "1", "--end-lr", "0.1"),
         ("--end-lr 0.1",)),
    Case("lr-find/steps-too-few", lr_find("--steps", "2"), ("--steps 2",)),
    Case("lr-find/smoothing-1", lr_find("--smoothing", "1"), ("--smoothing 1",)),
    Case("lr-find/device-tpu", lr_find("--device", "tpu"), ("--device tpu",)),
    Case("lr-find/dora-with-full", lr_find("--method", "full", "--dora"), ("--dora",)),
    Case("lr-find/quantize-on-cpu", lr_find("--quantize", "8bit"), ("--quantize 8bit", "CUDA")),
    Case("lr-find/out-is-a-file", lr_find(), ("is a file",), setup=out_is_file("lrf")),
    Case("lr-find/out-users-dir", lr_find(), ("genlab did not write", "--force"),
         setup=out_is_users_dir("lrf")),
    Case("lr-find/out-earlier-result", lr_find(), ("already holds an lr-find result",
                                                   "--force"),
         setup=out_is_genlab("lrf", "lr-find")),
    Case("lr-find/out-genlab-run", lr_find(), ("genlab run output",),
         setup=out_is_genlab("lrf", "run")),
    Case("lr-find/out-under-read-only-dir", lr_find("--out", "{t}/ro/lrf"), ("{t}/ro",),
         setup=ro_dir, read_only=in_ro),
]

PRETRAIN_CASES = [
    Case("pretrain/data-required", raw("pretrain", "--out", "{t}/pre"), ("--data",)),
    Case("pretrain/data-missing", pretrain("--data", "{t}/nope.txt"), ("--data",)),
    Case("pretrain/data-dir-without-txt", pretrain("--data", "{s.data[no-data-dir]}"),
         ("no .txt",)),
    Case("pretrain/data-not-utf8", pretrain("--data", "{s.data[latin1]}"), ("not UTF-8",)),
    Case("pretrain/data-unreadable", pretrain("--data", "{s.data[unreadable]}"),
         ("cannot read it",), unreadable=lambda s, t: (s.data["unreadable"],)),
    Case("pretrain/data-9MB-document", pretrain("--data", "{s.data[long-doc]}"),
         ("8 MiB",)),
    Case("pretrain/eval-data-missing", pretrain("--eval-data", "{t}/nope.txt"),
         ("--eval-data",)),
    Case("pretrain/time-limit-bad", pretrain("--time-limit", "soon"), ("--time-limit soon",)),
    Case("pretrain/time-limit-with-max-steps", pretrain("--time-limit", "1m"),
         ("cannot be combined",)),
    Case("pretrain/layers-zero", pretrain("--layers", "0"), ("--layers 0",)),
    Case("pretrain/lr-zero", pretrain("--lr", "0"), ("--lr 0",)),
    Case("pretrain/device-tpu", pretrain("--device", "tpu"), ("--device tpu",)),
    Case("pretrain/doc-separator-blank", pretrain("--doc-separator", " "),
         ("--doc-separator",)),
    Case("pretrain/out-is-a-file", pretrain(), ("is a file",), setup=out_is_file("pre")),
    Case("pretrain/out-users-dir", pretrain(), ("genlab did not write",),
         setup=out_is_users_dir("pre")),
    Case("pretrain/out-genlab-pretraining", pretrain(), ("already a genlab pretraining",),
         setup=out_is_genlab("pre", "pretrain")),
    Case("pretrain/resume-not-pretraining", raw("pretrain", "--resume", "{s.done_run}"),
         ("--resume",)),
]

SAMPLE_SAMPLER_CASES = [  # issue #12's advanced samplers: each bad value is one line
    Case("sample/typical-p-0", sample("--typical-p", "0"), ("--typical-p 0", "(0, 1]")),
    Case("sample/epsilon-cutoff-negative", sample("--epsilon-cutoff", "-1"),
         ("--epsilon-cutoff -1",)),
    Case("sample/eta-cutoff-not-a-number", sample("--eta-cutoff", "abc"),
         ("--eta-cutoff abc", "not a number")),
    Case("sample/top-n-sigma-negative", sample("--top-n-sigma", "-1"), ("--top-n-sigma -1",)),
    Case("sample/min-keep-0", sample("--min-keep", "0"), ("--min-keep 0",)),
    Case("sample/presence-penalty-empty-item", sample("--presence-penalty", "0.5,,1"),
         ("--presence-penalty", "empty list item")),
    Case("sample/repeat-last-n-negative", sample("--repeat-last-n", "-2"),
         ("--repeat-last-n -2",)),
    Case("sample/no-repeat-ngram-negative", sample("--no-repeat-ngram", "-1"),
         ("--no-repeat-ngram -1",)),
    Case("sample/dry-base-below-1", sample("--dry-base", "0.5"), ("--dry-base 0.5",)),
    Case("sample/dry-allowed-length-0", sample("--dry-allowed-length", "0"),
         ("--dry-allowed-length 0",)),
    Case("sample/dry-breakers-not-json", sample("--dry-sequence-breakers", "[1"),
         ("--dry-sequence-breakers", "JSON strings")),
    Case("sample/xtc-probability-2", sample("--xtc-probability", "2"), ("--xtc-probability 2",)),
    Case("sample/xtc-threshold-above-half", sample("--xtc-threshold", "0.9"),
         ("--xtc-threshold 0.9", "(0, 0.5]")),
    Case("sample/dynatemp-exponent-0", sample("--dynatemp-exponent", "0"),
         ("--dynatemp-exponent 0",)),
    Case("sample/mirostat-3", sample("--mirostat", "3"), ("--mirostat 3", "[0, 2]")),
    Case("sample/mirostat-tau-negative", sample("--mirostat-tau", "-1"), ("--mirostat-tau -1",)),
    Case("sample/min-tokens-above-max", sample("--min-tokens", "5"), ("--min-tokens",)),
    Case("sample/logit-bias-no-equals", sample("--logit-bias", "the"),
         ("--logit-bias the", "TOKEN=BIAS")),
    Case("sample/logit-bias-not-a-number", sample("--logit-bias", "the=lots"),
         ("--logit-bias the=lots", "'lots' is not a number")),
    Case("sample/logit-bias-out-of-vocab", sample("--logit-bias", "99999=-5"),
         ("--logit-bias 99999=-5", "vocabulary")),
    Case("sample/sampler-order-unknown", sample("--sampler-order", "bogus"),
         ("--sampler-order bogus", "'bogus' is not one")),
    Case("sample/sampler-order-twice", sample("--sampler-order", "top_k,top_k"),
         ("named twice",)),
    Case("sample/sampler-order-missing-stage", sample("--sampler-order", "top_k", "--top-p",
                                                      "0.5"), ("--sampler-order", "add top_p")),
]

COMPARE_SAMPLER_CASES = [  # the same knobs in a spec; a bias token is checked before writing
    Case("compare/spec-mirostat-3", compare("{s.specs[bad-mirostat]}"), ("base.mirostat",)),
    Case("compare/spec-sampler-order-unknown", compare("{s.specs[bad-order]}"),
         ("axes.sampler_order[1]", "bogus")),
    Case("compare/spec-sampler-order-missing-stage", compare("{s.specs[order-missing-stage]}"),
         ("base.sampler_order", "add top_p")),
    Case("compare/spec-logit-bias-out-of-vocab", compare("{s.specs[bias-out-of-vocab]}"),
         ("logit_bias", "99999", "vocabulary")),
    Case("compare/spec-logit-bias-not-a-number", compare("{s.specs[bias-not-a-number]}"),
         ("base.logit_bias", "'lots' is not a number")),
]

COMPARE_CASES = [
    Case("compare/spec-missing", compare("{t}/nope.yaml"), ("no such spec file",)),
    Case("compare/spec-directory", compare("{t}"), ("is a directory",)),
    Case("compare/spec-bad-yaml", compare("{s.specs[bad-yaml]}"), ("not valid YAML",)),
    Case("compare/spec-unknown-key", compare("{s.specs[unknown-key]}"), ("temprature",)),
    Case("compare/spec-not-a-mapping", compare("{s.specs[list]}"), ("mapping",)),
    Case("compare/spec-alias-bomb", compare("{s.specs[bomb]}"), ("100,000 values",)),
    Case("compare/spec-over-4MiB", compare("{s.specs[big]}"), ("4 MiB",)),
    Case("compare/spec-not-utf8", compare("{s.specs[latin1]}"), ("not UTF-8",)),
    Case("compare/spec-unreadable", compare("{s.specs[unreadable]}"), ("cannot read it",),
         unreadable=lambda s, t: (s.specs["unreadable"],)),
    Case("compare/spec-of-a-sweep", compare("{s.specs[sweep]}"), ("genlab sweep",)),
    Case("compare/prompts-file-missing", compare("{s.specs[prompts-missing]}"),
         ("prompts",)),
    Case("compare/device-tpu", compare("{s.specs[device]}"), ("device", "tpu")),
    Case("compare/axis-out-of-range", compare("{s.specs[bad-axis]}"), ("temperature",)),
    Case("compare/set-malformed", compare("{s.specs[compare]}", "--set", "samples"),
         ("--set",)),
    Case("compare/model-missing", raw("compare", "{s.specs[compare]}", "--model", "./nope",
                                      "--out", "{t}/cmp"), ("./nope",)),
    Case("compare/model-truncated", raw("compare", "{s.specs[compare]}", "--model",
                                        "{s.models[truncated]}", "--out", "{t}/cmp"),
         ("damaged",)),
    Case("compare/out-is-a-file", compare(), ("is a file",), setup=out_is_file("cmp")),
    Case("compare/out-users-dir", compare(), ("genlab did not write", "--force"),
         setup=out_is_users_dir("cmp")),
    Case("compare/out-sweep-output", compare(), ("genlab sweep output",),
         setup=out_is_genlab("cmp", "sweep")),
    Case("compare/out-spec-json-corrupt", compare(), ("{t}/cmp/spec.json", "cannot read"),
         setup=corrupt_results("compare", '{"kind": "compare",', name="cmp")),
    Case("compare/out-other-spec", compare(), ("different spec",),
         setup=corrupt_results("compare", '{"kind": "compare", "identity": {"name": "x"}}',
                               name="cmp")),
    Case("compare/spec-system-with-chat-false", compare("{s.specs[system-no-chat]}"),
         ("system",)),
    Case("compare/spec-truncate-prompt-unknown", compare("{s.specs[truncate-right]}"),
         ("truncate_prompt", "right")),
    Case("compare/spec-prompt-unknown-role", compare("{s.specs[bad-role]}"),
         ("prompts[0]", "wizard")),
    Case("compare/out-under-read-only-dir", compare("{s.specs[compare]}", "--out",
                                                    "{t}/ro/cmp"), ("{t}/ro",),
         setup=ro_dir, read_only=in_ro),
]

SWEEP_CASES = [
    Case("sweep/storage-bogus-scheme", sweep("{s.specs[sweep]}", "--storage", "bogus://x"),
         ("--storage bogus://x", "unsupported database")),
    Case("sweep/storage-not-a-url", sweep("{s.specs[sweep]}", "--storage", "nonsense"),
         ("--storage nonsense", "not a database URL")),
    Case("sweep/storage-unsupported-db", sweep("{s.specs[sweep]}", "--storage",
                                               "oracle://u@h/db"), ("--storage",)),
    Case("sweep/storage-server-down", sweep("{s.specs[sweep]}", "--storage",
                                            "postgresql://genlab:secret@127.0.0.1:9/nodb"),
         # without the postgres extra the missing driver is the one line; with it, the server
         ("cannot open the study database" if _HAS_PSYCOPG else "pip install 'genlab[postgres]'",
          "***")),
    Case("sweep/spec-bad-range", sweep("{s.specs[bad-range]}"), ("search.lr",)),
    Case("sweep/spec-zero-trials", sweep("{s.specs[zero-trials]}"), ("trials",)),
    Case("sweep/spec-unknown-method", sweep("{s.specs[bad-method]}"), ("method",)),
    Case("sweep/spec-bad-base", sweep("{s.specs[bad-base]}"), ("base.seq_len",)),
    Case("sweep/spec-of-a-compare", sweep("{s.specs[compare]}"), ("genlab compare",)),
    Case("sweep/spec-device-tpu", sweep("{s.specs[sweep-device]}"), ("base.device", "tpu")),
    Case("sweep/spec-completion-field-alone", sweep("{s.specs[sweep-no-completion]}"),
         ("base.completion_field", "base.prompt_field")),
    Case("sweep/out-spec-json-corrupt", sweep(), ("{t}/swp/spec.json", "--force"),
         setup=corrupt_results("sweep", '{"kind": "sweep",', name="swp")),
    Case("sweep/model-missing", raw("sweep", "{s.specs[sweep]}", "--model", "./nope",
                                    "--out", "{t}/swp"), ("./nope",)),
    Case("sweep/out-is-a-file", sweep(), ("is a file",), setup=out_is_file("swp")),
    Case("sweep/out-users-dir", sweep(), ("genlab did not write", "--force"),
         setup=out_is_users_dir("swp")),
    Case("sweep/out-compare-output", sweep(), ("genlab compare output",),
         setup=out_is_genlab("swp", "compare")),
    Case("sweep/out-under-read-only-dir", sweep("{s.specs[sweep]}", "--out", "{t}/ro/swp"),
         ("{t}/ro",), setup=ro_dir, read_only=in_ro),
]

REPORT_CASES = [
    Case("report/dir-missing", raw("report", "{t}/nope"), ("no such directory",)),
    Case("report/not-an-output", raw("report", "{t}"), ("no spec.json",)),
    Case("report/spec-json-corrupt", raw("report", "{t}/res"),
         ("{t}/res/spec.json", "not valid JSON", "line 2"),
         setup=corrupt_results("compare", '{"kind": "compare",\n"name" "x"}')),
    Case("report/spec-json-other-kind", raw("report", "{t}/res"), ("spec.json",),
         setup=corrupt_results("compare", '{"kind": "pizza"}')),
    Case("report/a-file", raw("report", "{s.data[txt]}"), ("no such directory",)),
]

TUI_CASES = [
    Case("tui/runs-dir-is-a-file", raw("tui", "--model", "{s.llama}", "--runs-dir",
                                       "{s.data[txt]}"), ("--runs-dir", "is a file")),
    Case("tui/runs-dir-under-a-file", raw("tui", "--model", "{s.llama}", "--runs-dir",
                                          "{s.data[txt]}/runs"), ("is a file",)),
    Case("tui/runs-dir-read-only", raw("tui", "--model", "{s.llama}", "--runs-dir",
                                       "{t}/ro/runs"), ("not writable",),
         setup=ro_dir, read_only=in_ro),
    Case("tui/device-tpu", raw("tui", "--model", "{s.llama}", "--device", "tpu"),
         ("--device tpu",)),
    Case("tui/dtype-int8", raw("tui", "--model", "{s.llama}", "--dtype", "int8"),
         ("--dtype int8",)),
    Case("tui/adapter-no-equals", raw("tui", "--model", "{s.llama}", "--adapter", "x"),
         ("NAME=DIR",)),
    Case("tui/adapter-missing", raw("tui", "--model", "{s.llama}", "--adapter", "x={t}/nope"),
         ("no such directory",)),
    Case("tui/model-missing", raw("tui", "--model", "./nope"), ("./nope",)),
    Case("tui/gguf-file-model-not-a-dir", raw("tui", "--model", "someone/repo", "--gguf-file",
                                              "x.gguf"), ("--gguf-file x.gguf",)),
    Case("tui/gguf-file-missing", raw("tui", "--model", "{s.gguf[multi]}", "--gguf-file",
                                      "nope.gguf"), ("--gguf-file nope.gguf", "no such file")),
]

CASES = [*ROOT_CASES, *SAMPLE_MODEL_CASES, *SAMPLE_ADAPTER_CASES, *SAMPLE_FLAG_CASES,
         *SAMPLE_SAMPLER_CASES, *SAMPLE_PROMPT_CASES, *SAMPLE_OUT_CASES, *SAMPLE_CHAT_CASES,
         *SAMPLE_GGUF_CASES,
         *TRAIN_MODEL_CASES, *TRAIN_DATA_CASES, *TRAIN_KNOB_CASES, *TRAIN_VARIANT_CASES,
         *TRAIN_CHAT_CASES, *TRAIN_OUT_CASES, *MERGE_CASES, *MERGE_GGUF_CASES, *LR_FIND_CASES,
         *PRETRAIN_CASES, *COMPARE_CASES, *COMPARE_SAMPLER_CASES, *SWEEP_CASES, *REPORT_CASES,
         *TUI_CASES]


def test_the_table_is_big_and_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 150


@pytest.mark.timeout(120)  # a case that hangs (e.g. an app that starts) fails, not stalls CI
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case: Case, inputs, tmp_path, monkeypatch):
    work = tmp_path / "case"
    work.mkdir()
    if case.setup is not None:
        case.setup(inputs, work)
    monkeypatch.chdir(work)  # a default runs/ directory would show up here
    before = snapshot(work, content=True), snapshot(inputs.root, content=False)
    argv = case.argv(inputs, work)
    with denied(unreadable=case.unreadable(inputs, work) if case.unreadable else (),
                read_only=case.read_only(inputs, work) if case.read_only else ()):
        result = runner.invoke(app, argv, input=case.stdin)
    check_one_line(result, case, inputs, work)
    after = snapshot(work, content=True), snapshot(inputs.root, content=False)
    assert after[0] == before[0], "the case directory changed"
    assert after[1] == before[1], "a shared input changed"
    assert not inputs.pwned.exists(), "a pickle payload ran"


def test_the_issue_data_loss_case_keeps_the_users_files(inputs, tmp_path, monkeypatch):
    """genlab train --out DIR where DIR holds the user's adapter/mine.txt and metrics.jsonl:
    refused, both files intact; with --force the run replaces them (the user asked)."""
    out_is_users_dir("run")(inputs, tmp_path)
    monkeypatch.chdir(tmp_path)
    refused = runner.invoke(app, train()(inputs, tmp_path))
    assert refused.exit_code == 2
    assert (tmp_path / "run" / "adapter" / "mine.txt").read_text() == "my adapter notes\n"
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == '{"mine": 1}\n'
    forced = runner.invoke(app, [*train()(inputs, tmp_path), "--force", "--quiet"])
    assert forced.exit_code == 0, forced.output
    assert not (tmp_path / "run" / "adapter" / "mine.txt").exists()
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert metrics and all(m.get("type") in ("train", "eval") for m in metrics)
    assert "mine" not in (tmp_path / "run" / "metrics.jsonl").read_text()


REAL_STDERR = """
import sys
from genlab.cli import app
for argv in {cases!r}:
    try:
        app(argv)
    except SystemExit as e:
        print(f"@@exit {{e.code}}", file=sys.stderr, flush=True)
"""


def test_real_stderr_is_one_line_with_library_warnings_hidden(inputs, tmp_path):
    """In a real process (pytest does not capture warnings there): refusing a pickle makes
    torch warn about its protocol, loading mismatched weights logs a report; neither may
    reach the user, whose stderr is exactly the error line."""
    cases = [
        ["sample", "--model", str(inputs.models["pickle"]), "--prompt", "Once"],
        ["sample", "--model", str(inputs.llama), "--adapter", f"x={inputs.adapters['pickle']}",
         "--prompt", "Once"],
        ["sample", "--model", str(inputs.models["shape"]), "--prompt", "Once"],
        ["sample", "--model", str(inputs.models["truncated"]), "--prompt", "Once"],
        ["sample", "--model", str(inputs.llama), "--prompt", "Once", "--max-new-tokens", "2",
         "--quiet", "--format", "jsonl"],
    ]
    proc = subprocess.run([sys.executable, "-c", REAL_STDERR.format(cases=cases)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    runs = proc.stderr.split("@@exit ")
    outputs = [runs[0], *(r.split("\n", 1)[1] if "\n" in r else "" for r in runs[1:-1])]
    codes = [r.split("\n", 1)[0] for r in runs[1:]]
    assert codes == ["2", "2", "2", "2", "0"], proc.stderr
    for output in outputs[:4]:
        assert len(output.strip().splitlines()) == 1, output
        assert output.startswith("genlab: error: "), output
    assert outputs[4].strip() == "" and not inputs.pwned.exists()
