"""The shared inputs of the bad-input table: good files to break, and broken copies of them.

Built once per test session (``build_inputs``) under a temporary directory: the tiny models of
``tests/conftest.py``, a LoRA adapter and a finished run trained on them in a second, data and
prompt files, specs, and broken copies (truncated weights, wrong-typed configs, pickles, files
over genlab's size limits). Nothing here is ever written to by a case; the table checks that.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path
from types import SimpleNamespace

PWNED = "PWNED"
"""The file a pickle payload would create if anything ever unpickled it."""

STORY = ("Once upon a time there was a little fox who lived in a green forest. The fox liked "
         "to run and jump over the tall grass every morning.")


class Payload:
    """A pickle that runs a command when loaded: genlab must refuse it, never run it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


def _train_adapter(model: Path, data: Path, out: Path) -> Path:
    """A finished 4-step LoRA run with a checkpoint at step 2."""
    from genlab.core.configs import TrainConfig
    from genlab.core.training.train import train

    config = TrainConfig(model=str(model), data=str(data), seq_len=32, batch_size=2,
                         max_steps=4, save_every=2, eval_every=0, device="cpu",
                         schedule="constant")
    finished = train(config, out_dir=out)
    assert finished.status == "completed", finished
    return out


def broken_models(root: Path, llama: Path) -> dict[str, Path]:
    """Copies of the tiny Llama, each broken one way."""
    root.mkdir(parents=True, exist_ok=True)
    m = {}
    m["truncated"] = _copy(llama, root / "m-truncated")
    _truncate(m["truncated"] / "model.safetensors")
    m["empty-weights"] = _copy(llama, root / "m-empty-weights")
    (m["empty-weights"] / "model.safetensors").write_bytes(b"")
    m["wrong-type"] = _copy(llama, root / "m-wrong-type")
    _edit_json(m["wrong-type"] / "config.json", num_hidden_layers="six")
    m["shape"] = _copy(llama, root / "m-shape")
    _edit_json(m["shape"] / "config.json", hidden_size=64, intermediate_size=128)
    m["bad-json"] = _copy(llama, root / "m-bad-json")
    (m["bad-json"] / "config.json").write_text('{"model_type": "llama",', encoding="utf-8")
    m["json-list"] = _copy(llama, root / "m-json-list")
    (m["json-list"] / "config.json").write_text("[1, 2]", encoding="utf-8")
    m["pickle"] = _copy(llama, root / "m-pickle")
    (m["pickle"] / "model.safetensors").unlink()
    with open(m["pickle"] / "pytorch_model.bin", "wb") as f:
        pickle.dump(Payload(root / PWNED), f)
    m["no-weights"] = _copy(llama, root / "m-no-weights")
    (m["no-weights"] / "model.safetensors").unlink()
    m["unknown-arch"] = _copy(llama, root / "m-unknown-arch")
    _edit_json(m["unknown-arch"] / "config.json", model_type="no-such-architecture")
    m["bad-tokenizer"] = _copy(llama, root / "m-bad-tokenizer")
    tok = m["bad-tokenizer"] / "tokenizer.json"
    tok.write_text(tok.read_text(encoding="utf-8")[:300], encoding="utf-8")
    return m


def broken_adapters(root: Path, adapter: Path) -> dict[str, Path]:
    """Copies of the trained adapter, each broken one way."""
    root.mkdir(parents=True, exist_ok=True)
    a = {}
    a["truncated"] = _copy(adapter, root / "a-truncated")
    _truncate(a["truncated"] / "adapter_model.safetensors")
    a["pickle"] = _copy(adapter, root / "a-pickle")
    (a["pickle"] / "adapter_model.safetensors").unlink()
    with open(a["pickle"] / "adapter_model.bin", "wb") as f:
        pickle.dump(Payload(root / PWNED), f)
    a["wrong-type"] = _copy(adapter, root / "a-wrong-type")
    _edit_json(a["wrong-type"] / "adapter_config.json", r="eight")
    a["bad-json"] = _copy(adapter, root / "a-bad-json")
    (a["bad-json"] / "adapter_config.json").write_text('{"r": 8,', encoding="utf-8")
    a["no-weights"] = _copy(adapter, root / "a-no-weights")
    (a["no-weights"] / "adapter_model.safetensors").unlink()
    a["targets"] = _copy(adapter, root / "a-targets")
    _edit_json(a["targets"] / "adapter_config.json", target_modules=["nope_proj"])
    a["no-base"] = _copy(adapter, root / "a-no-base")
    _edit_json(a["no-base"] / "adapter_config.json", base_model_name_or_path=None)
    a["no-config"] = root / "a-no-config"
    a["no-config"].mkdir()
    (a["no-config"] / "adapter_model.safetensors").write_bytes(
        (adapter / "adapter_model.safetensors").read_bytes())
    return a


def data_files(root: Path) -> dict[str, Path]:
    """Training data files, good and bad."""
    root.mkdir(parents=True, exist_ok=True)
    d = {}
    d["txt"] = root / "stories.txt"
    d["txt"].write_text("\n\n".join(f"{STORY} Story {i}." for i in range(40)), encoding="utf-8")
    d["pairs"] = root / "pairs.jsonl"
    d["pairs"].write_text("".join(json.dumps({"prompt": f"Q{i}:", "completion": f" A{i}."})
                                  + "\n" for i in range(20)), encoding="utf-8")
    d["empty"] = root / "empty.txt"
    d["empty"].write_text("", encoding="utf-8")
    d["latin1"] = root / "latin1.txt"
    d["latin1"].write_bytes("caf\xe9 au lait\n\nun autre\n".encode("latin-1"))
    d["xyz"] = root / "data.xyz"
    d["xyz"].write_text("hello", encoding="utf-8")
    d["no-data-dir"] = root / "no-data-dir"
    d["no-data-dir"].mkdir()
    (d["no-data-dir"] / "notes.md").write_text("# notes", encoding="utf-8")
    d["bad-line"] = root / "bad-line.jsonl"
    d["bad-line"].write_text('{"text": "ok"}\n{"text": "broken"\n{"text": "ok"}\n',
                             encoding="utf-8")
    d["no-text"] = root / "no-text.jsonl"
    d["no-text"].write_text("".join(json.dumps({"body": STORY}) + "\n" for _ in range(5)),
                            encoding="utf-8")
    d["no-completion"] = root / "no-completion.jsonl"
    rows = [{"prompt": f"Q{i}:", "completion": f" A{i}."} for i in range(10)]
    rows[3] = {"prompt": "Q3:"}
    d["no-completion"].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    d["numbers"] = root / "numbers.jsonl"
    d["numbers"].write_text("".join(json.dumps({"text": i}) + "\n" for i in range(5)),
                            encoding="utf-8")
    d["long-line"] = root / "long-line.jsonl"  # one 9 MB row: over the 8 MiB row limit
    d["long-line"].write_text(json.dumps({"text": "the fox ran " * 750_000}) + "\n",
                              encoding="utf-8")
    d["long-doc"] = root / "long-doc.txt"  # one 9 MB document, no blank line in it
    d["long-doc"].write_text("the fox ran in the park\n" * 380_000, encoding="utf-8")
    d["unreadable"] = root / "unreadable.txt"
    d["unreadable"].write_text(STORY, encoding="utf-8")
    return d


def prompt_files(root: Path) -> dict[str, Path]:
    """Prompt files, good and bad."""
    root.mkdir(parents=True, exist_ok=True)
    p = {}
    p["good"] = root / "prompts.txt"
    p["good"].write_text("Once upon a time\nThe fox\n", encoding="utf-8")
    p["huge-line"] = root / "huge-line.txt"  # the 10 MB single-line prompts file
    p["huge-line"].write_text("Once upon a time " * 600_000 + "\n", encoding="utf-8")
    p["huge-jsonl"] = root / "huge.jsonl"
    p["huge-jsonl"].write_text(json.dumps({"prompt": "the fox " * 150_000}) + "\n",
                               encoding="utf-8")
    p["empty"] = root / "empty-prompts.txt"
    p["empty"].write_text("\n\n   \n", encoding="utf-8")
    p["bad-jsonl"] = root / "bad.jsonl"
    p["bad-jsonl"].write_text('{"prompt": "ok"}\n{"prompt": \n', encoding="utf-8")
    p["no-field"] = root / "no-field.jsonl"
    p["no-field"].write_text('{"text": "hello"}\n', encoding="utf-8")
    p["not-string"] = root / "not-string.jsonl"
    p["not-string"].write_text('{"prompt": 7}\n', encoding="utf-8")
    p["latin1"] = root / "latin1-prompts.txt"
    p["latin1"].write_bytes("caf\xe9\n".encode("latin-1"))
    p["too-many"] = root / "too-many.txt"
    p["too-many"].write_text("p\n" * 100_001, encoding="utf-8")
    p["unreadable"] = root / "unreadable-prompts.txt"
    p["unreadable"].write_text("Once\n", encoding="utf-8")
    p["chats"] = root / "chats.jsonl"
    p["chats"].write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"}]}) + "\n",
                          encoding="utf-8")
    p["bad-role"] = root / "bad-role.jsonl"
    p["bad-role"].write_text(json.dumps({"messages": [{"role": "wizard", "content": "Hi"}]})
                             + "\n", encoding="utf-8")
    p["messages-not-list"] = root / "messages-not-list.jsonl"
    p["messages-not-list"].write_text('{"messages": "Hi"}\n', encoding="utf-8")
    p["huge-conversation"] = root / "huge-conversation.jsonl"  # 1.2M characters in 3 turns
    turns = [{"role": r, "content": "the fox " * 50_000} for r in ("user", "assistant", "user")]
    p["huge-conversation"].write_text(json.dumps({"messages": turns}) + "\n", encoding="utf-8")
    return p


def chat_data_files(root: Path) -> dict[str, Path]:
    """Conversation training data, good and bad."""
    root.mkdir(parents=True, exist_ok=True)
    d = {}
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    d["chats"] = root / "chats.jsonl"
    d["chats"].write_text("".join(json.dumps({"messages": chat}) + "\n" for _ in range(20)),
                          encoding="utf-8")
    d["bad-role"] = root / "chats-bad-role.jsonl"
    rows = [{"messages": chat} for _ in range(5)]
    rows[2] = {"messages": [{"role": "wizard", "content": "Hi"}]}
    d["bad-role"].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    d["no-messages"] = root / "chats-no-messages.jsonl"
    d["no-messages"].write_text("".join(json.dumps({"turns": chat}) + "\n" for _ in range(5)),
                                encoding="utf-8")
    return d


def gguf_files(root: Path, gguf: dict[str, Path]) -> dict[str, Path]:
    """GGUF models, copied from ``tiny_gguf`` under ``root`` (so the table sees any change):
    a directory with one file, one with two, a truncated copy and a fake."""
    root.mkdir(parents=True, exist_ok=True)
    g = {"dir": _copy(gguf["gguf"], root / "one"), "multi": _copy(gguf["multi"], root / "two")}
    g["file"] = g["dir"] / "tiny-F32.gguf"
    g["truncated"] = root / "truncated.gguf"
    shutil.copyfile(g["file"], g["truncated"])
    _truncate(g["truncated"])
    g["fake"] = root / "fake.gguf"
    g["fake"].write_bytes(b"GGUF but not really")
    return g


COMPARE_SPEC = """\
kind: compare
name: bad-input-compare
prompts: [Once upon a time]
base: {max_new_tokens: 2}
axes:
  temperature: [0.0, 1.0]
"""

SWEEP_SPEC = """\
kind: sweep
name: bad-input-sweep
base:
  data: {data}
  seq_len: 32
  batch_size: 2
  max_steps: 1
  eval_every: 0
  device: cpu
search:
  lr: {{low: 1.0e-4, high: 1.0e-2, log: true, num: 2}}
method: grid
"""


def spec_files(root: Path, data: Path) -> dict[str, Path]:
    """Spec files, good and bad."""
    root.mkdir(parents=True, exist_ok=True)
    s = {}

    def put(name: str, text: str) -> None:
        s[name] = root / f"{name}.yaml"
        s[name].write_text(text, encoding="utf-8")

    put("compare", COMPARE_SPEC)
    put("sweep", SWEEP_SPEC.format(data=data))
    put("bad-yaml", "kind: compare\naxes: [unclosed\n")
    put("unknown-key", COMPARE_SPEC + "temprature: 3\n")
    put("list", "- 1\n- 2\n")
    put("bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n"
        for i in range(6)) + "kind: compare\n")
    put("big", COMPARE_SPEC + "description: " + "x" * (5 << 20) + "\n")
    put("prompts-missing", COMPARE_SPEC.replace("prompts: [Once upon a time]",
                                                f"prompts: {root / 'missing.txt'}"))
    put("device", COMPARE_SPEC + "device: tpu\n")
    put("bad-axis", COMPARE_SPEC.replace("[0.0, 1.0]", "[0.0, -1.0]"))
    put("bad-range", SWEEP_SPEC.format(data=data).replace("low: 1.0e-4", "low: 1.0"))
    put("zero-trials", SWEEP_SPEC.format(data=data) + "trials: 0\n")
    put("bad-method", SWEEP_SPEC.format(data=data).replace("method: grid", "method: magic"))
    put("bad-base", SWEEP_SPEC.format(data=data).replace("seq_len: 32", "seq_len: -3"))
    put("sweep-device", SWEEP_SPEC.format(data=data).replace("device: cpu", "device: tpu"))
    put("sweep-no-completion", SWEEP_SPEC.format(data=data).replace(
        "  seq_len: 32", "  completion_field: completion\n  seq_len: 32"))
    put("system-no-chat", COMPARE_SPEC + "chat: false\nsystem: Be brief.\n")
    put("truncate-right", COMPARE_SPEC + "truncate_prompt: right\n")
    put("bad-role", COMPARE_SPEC.replace(
        "prompts: [Once upon a time]",
        "prompts:\n  - messages: [{role: wizard, content: Hi}]"))
    # issue #12's samplers: a bad knob in base/axes, a bias token outside the vocabulary
    put("bad-mirostat", COMPARE_SPEC.replace("{max_new_tokens: 2}",
                                             "{max_new_tokens: 2, mirostat: 3}"))
    put("bad-order", COMPARE_SPEC + "  sampler_order: [transformers, bogus]\n")
    put("order-missing-stage", COMPARE_SPEC.replace(
        "{max_new_tokens: 2}", "{max_new_tokens: 2, top_p: 0.5, sampler_order: [top_k]}"))
    put("bias-out-of-vocab", COMPARE_SPEC.replace(
        "{max_new_tokens: 2}", "{max_new_tokens: 2, logit_bias: {99999: -5}}"))
    put("bias-not-a-number", COMPARE_SPEC.replace(
        "{max_new_tokens: 2}", "{max_new_tokens: 2, logit_bias: {' the': lots}}"))
    s["unreadable"] = root / "unreadable.yaml"
    s["unreadable"].write_text(COMPARE_SPEC, encoding="utf-8")
    s["latin1"] = root / "latin1.yaml"
    s["latin1"].write_bytes("name: caf\xe9\n".encode("latin-1"))
    return s


def build_inputs(root: Path, llama: Path, gpt2: Path, chat: Path,
                 gguf: dict[str, Path]) -> SimpleNamespace:
    """Every shared input of the table, under ``root`` (``chat``: a Llama with a chat
    template; ``gguf``: the ``tiny_gguf`` fixture's files)."""
    root.mkdir(parents=True, exist_ok=True)
    data = data_files(root / "data")
    done = _train_adapter(llama, data["txt"], root / "run-done")
    gpt2_run = _train_adapter(gpt2, data["txt"], root / "run-gpt2")
    pickled = _unfinished_copy(done, root / "run-pickled-optimizer")
    with open(pickled / "checkpoints" / "step-00000002" / "optimizer.pt", "wb") as f:
        pickle.dump(Payload(root / PWNED), f)
    truncated = _unfinished_copy(done, root / "run-truncated-checkpoint")
    _truncate(truncated / "checkpoints" / "step-00000002" / "trainable.safetensors")
    return SimpleNamespace(
        root=root, llama=llama, gpt2=gpt2, data=data, prompts=prompt_files(root / "prompts"),
        specs=spec_files(root / "specs", data["txt"]), adapter=done / "adapter",
        gpt2_adapter=gpt2_run / "adapter", done_run=done, pickled_run=pickled,
        truncated_run=truncated,
        models=broken_models(root / "models", llama),
        adapters=broken_adapters(root / "adapters", done / "adapter"),
        chat=chat, chat_data=chat_data_files(root / "chat-data"),
        gguf=gguf_files(root / "gguf", gguf),
        pwned=root / PWNED,
    )


def _unfinished_copy(run: Path, dst: Path) -> Path:
    """A copy of a finished run that looks interrupted (no summary.json): resumable."""
    shutil.copytree(run, dst)
    (dst / "summary.json").unlink()
    assert (dst / "checkpoints" / "step-00000002" / "state.json").is_file()
    return dst
