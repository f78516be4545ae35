"""Compare specs with chat models and GGUF files: conversations and system messages in specs,
the conversation sent recorded per output, and prompts checked before anything is written."""

from __future__ import annotations

import pytest

from genlab.api import compare, load_spec
from genlab.core.generation.prompting import PromptError
from genlab.core.specs.common import SpecError

CONVO = [{"role": "user", "content": "What is two plus two?"},
         {"role": "assistant", "content": "Four."},
         {"role": "user", "content": "What is the capital of France?"}]


def _spec(model, **extra):
    return {"kind": "compare", "model": str(model), "device": "cpu",
            "prompts": ["What is two plus two?", {"messages": CONVO}],
            "base": {"max_new_tokens": 6, "temperature": 0}, **extra}


def test_chat_spec_records_the_conversation_sent(tiny_chat_llama, tmp_path):
    result = compare(_spec(tiny_chat_llama, system="Be brief."), tmp_path / "out")
    (row,) = result.rows
    first, second = row["outputs"]
    assert first["messages"] == [{"role": "system", "content": "Be brief."},
                                 {"role": "user", "content": "What is two plus two?"}]
    assert second["messages"][1:] == CONVO and second["prompt"] == CONVO[-1]["content"]
    spec = result.spec
    assert spec.to_dict()["system"] == "Be brief." and len(spec.to_dict()["messages"]) == 2
    raw = compare(_spec(tiny_chat_llama, chat=False, prompts=["What is two plus two?"]),
                  tmp_path / "raw")
    assert "messages" not in raw.rows[0]["outputs"][0]
    assert raw.rows[0]["outputs"][0]["text"] != first["text"]


def test_spec_keys_are_checked():
    with pytest.raises(SpecError, match="truncate_prompt: expected one of error, left"):
        load_spec(_spec("m", truncate_prompt="right"))
    with pytest.raises(SpecError, match="chat: .*need the chat template"):
        load_spec(_spec("m", chat=False))
    with pytest.raises(SpecError, match=r"prompts\[1\]: messages\[0\]: role 'bot'"):
        load_spec(_spec("m", prompts=["a", {"messages": [{"role": "bot", "content": "x"}]}]))
    plain = load_spec({"kind": "compare", "prompts": ["a"]}).to_dict()
    assert "chat" not in plain and "messages" not in plain  # old output dirs still resume


def test_over_context_prompt_fails_before_writing(tiny_chat_llama, tmp_path):
    spec = _spec(tiny_chat_llama, base={"max_new_tokens": 226})
    with pytest.raises(PromptError, match=r"prompts\[1\]: prompt of \d+ tokens \+ "
                                          r"--max-new-tokens 226 = \d+ tokens, more than the "
                                          "model's context of 256"):
        compare(spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_gguf_model_in_a_spec(tiny_gguf, tmp_path):
    spec = _spec(tiny_gguf["multi"], gguf_file="tiny-F32.gguf", prompts=["Hi"])
    from_gguf = compare(spec, tmp_path / "g").rows[0]["outputs"][0]["text"]
    from_hf = compare(_spec(tiny_gguf["hf"], prompts=["Hi"]), tmp_path / "h").rows[0]
    assert from_gguf == from_hf["outputs"][0]["text"]
