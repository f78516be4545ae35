"""Training on conversations and on GGUF bases: the label mask through packing, ``--chat`` for
prompt/completion rows, GGUF -> LoRA -> merged HF directory, gradient checkpointing.

The mask oracle: each conversation's assistant tokens, computed turn by turn from the
template's own pieces, must be exactly the positions that carry loss in the packed blocks.
"""

from __future__ import annotations

import json

import pytest
import torch

from genlab.core.configs import ConfigError, TrainConfig
from genlab.core.data.packing import (
    IGNORE_INDEX,
    DataError,
    load_documents,
    prepare_data,
    tokenize_documents,
)
from genlab.core.events import RunStarted
from genlab.core.modeling.loading import load_model
from genlab.core.modeling.merge import merge_adapter
from genlab.core.training.train import iter_train, train

CONVERSATIONS = [
    [{"role": "system", "content": "Be brief."},
     {"role": "user", "content": "What is two plus two?"},
     {"role": "assistant", "content": "Four."},
     {"role": "user", "content": "And the capital of France?"},
     {"role": "assistant", "content": "Paris."}],
    [{"role": "user", "content": "Tell me a story about a fox."},
     {"role": "assistant", "content": "Once upon a time a little fox ran in the forest."}],
    [{"role": "user", "content": "Hi"}],  # no reply: carries no loss, dropped
] * 6


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def chats(tmp_path_factory):
    path = tmp_path_factory.mktemp("chats") / "chats.jsonl"
    path.write_text("".join(json.dumps({"messages": m, "note": f"row {i}"}) + "\n"
                            for i, m in enumerate(CONVERSATIONS)))
    return path


@pytest.fixture(scope="module")
def tok(tiny_chat_llama):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_chat_llama)


def _expected_labels(tok, conversation):
    """Labels turn by turn: -100 on headers and non-assistant turns, ids on each reply and
    its ``<|im_end|>\\n``."""
    labels = []
    for m in conversation:
        header = tok(f"<|im_start|>{m['role']}\n", add_special_tokens=False)["input_ids"]
        body = tok(m["content"] + "<|im_end|>\n", add_special_tokens=False)["input_ids"]
        labels += [IGNORE_INDEX] * len(header)
        labels += body if m["role"] == "assistant" else [IGNORE_INDEX] * len(body)
    return labels


def test_messages_rows_are_detected_and_replies_only_carry_loss(chats, tok):
    docs = load_documents(str(chats))
    assert len(docs) == 12 and all(d.is_conversation for d in docs)  # "Hi" rows dropped
    stream = tokenize_documents(docs, tok)
    expected = [t for conv in CONVERSATIONS if len(conv) > 1
                for t in _expected_labels(tok, conv)]
    assert stream.labels.tolist() == expected
    assert docs[0].text == "Four.Paris."  # the scored text (bits per byte counts it)


def test_packing_keeps_every_turn_boundary(tiny_chat_llama, chats, tok):
    config = TrainConfig(model=str(tiny_chat_llama), data=str(chats), seq_len=16,
                         eval_split=0)
    data = prepare_data(config, tok)
    assert data.chat
    stream = tokenize_documents(load_documents(str(chats)), tok)
    stride = 15  # blocks overlap by one token; each block's first label is never scored
    starts = range(0, len(stream) - 1, stride)
    kept = [k for k in starts if (stream.labels[k + 1:k + 16] != IGNORE_INDEX).any()]
    assert len(kept) == len(data.train) < len(starts)  # blocks without a reply are dropped
    for b, start in enumerate(kept):
        ids, labels = data.train.input_ids[b], data.train.labels[b]
        n = int(data.train.attention_mask[b].sum())
        assert ids[:n].tolist() == stream.input_ids[start:start + n].tolist()
        assert labels[1:n].tolist() == stream.labels[start + 1:start + n].tolist()
        assert labels[0] == IGNORE_INDEX


def test_chat_flag_renders_prompt_completion_rows(tiny_chat_llama, tmp_path, tok):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps({"q": "What is two plus two?", "a": "Four."}) + "\n"
                            for _ in range(8)))
    config = TrainConfig(model=str(tiny_chat_llama), data=str(path), prompt_field="q",
                         completion_field="a", chat=True, seq_len=64, eval_split=0)
    data = prepare_data(config, tok)
    conv = [{"role": "user", "content": "What is two plus two?"},
            {"role": "assistant", "content": "Four."}]
    assert data.chat
    ids = tok.apply_chat_template(conv, return_dict=False)
    assert data.train.input_ids[0, :len(ids)].tolist() == ids
    raw = prepare_data(TrainConfig(model=str(tiny_chat_llama), data=str(path),
                                   prompt_field="q", completion_field="a", seq_len=64,
                                   eval_split=0), tok)
    assert not raw.chat and raw.train.input_ids[0, 1:3].tolist() != ids[:2]


def test_data_format_choices_are_checked(tiny_chat_llama, chats, tmp_path):
    with pytest.raises(ConfigError, match="data_format"):
        TrainConfig(model="m", data="d", data_format="prompt-completion")
    with pytest.raises(ConfigError, match="chat"):
        TrainConfig(model="m", data="d", data_format="text", chat=True)
    text = tmp_path / "t.txt"
    text.write_text("a story\n\nanother story\n")
    with pytest.raises(DataError, match="--data-format messages: .* is plain text"):
        load_documents(str(text), data_format="messages")
    docs = load_documents(str(chats), data_format="text", text_field="note")
    assert not any(d.is_conversation for d in docs)  # text mode reads the named field


def test_conversations_need_a_chat_template(tiny_llama, chats):
    from transformers import AutoTokenizer

    config = TrainConfig(model=str(tiny_llama), data=str(chats), seq_len=16, eval_split=0)
    with pytest.raises(DataError, match="no chat template"):
        prepare_data(config, AutoTokenizer.from_pretrained(tiny_llama))


def test_bad_message_rows_name_the_row(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n"
                    + json.dumps({"messages": [{"role": "robot", "content": "x"}]}) + "\n")
    with pytest.raises(DataError, match=r"--messages-field messages: row 2 of .*: "
                                        r"messages\[0\]: role 'robot'"):
        load_documents(str(path))


def test_training_on_conversations_samples_through_the_template(tiny_chat_llama, chats,
                                                                 tmp_path):
    config = TrainConfig(model=str(tiny_chat_llama), data=str(chats), seq_len=32,
                         batch_size=4, max_steps=4, lr=5e-3, eval_every=2, device="cpu",
                         sample_prompts=("What is two plus two?",), sample_max_new_tokens=4)
    events = list(iter_train(config, out_dir=tmp_path / "run"))
    started = next(e for e in events if isinstance(e, RunStarted))
    assert "tiny-chat-llama" in started.model and "weights" in started.model
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["resolved"]["chat_template"] is True
    assert events[-1].status == "completed"


def test_gguf_lora_merge_gives_a_plain_hf_model(tiny_gguf, chats, tmp_path):
    """GGUF -> LoRA -> merged: the merged directory loads without PEFT and equals base +
    adapter."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    gguf = tiny_gguf["gguf"] / "tiny-F32.gguf"
    config = TrainConfig(model=str(gguf), data=str(chats), seq_len=32, batch_size=4,
                         max_steps=3, lr=2e-2, eval_every=0, device="cpu")
    finished = train(config, out_dir=tmp_path / "run")
    adapter = tmp_path / "run" / "adapter"
    assert finished.status == "completed"
    saved = json.loads((adapter / "adapter_config.json").read_text())
    assert saved["base_model_name_or_path"] == str(gguf)
    out = merge_adapter(adapter, tmp_path / "merged")
    assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out)
    base = load_model(str(gguf), device="cpu")
    peft_model = PeftModel.from_pretrained(base.model, str(adapter))
    x = torch.tensor([base.tokenizer("What is two plus two?")["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(merged(x).logits, peft_model(x).logits, atol=1e-4,
                                   rtol=1e-4)
        assert not torch.allclose(merged(x).logits,
                                  AutoModelForCausalLM.from_pretrained(tiny_gguf["hf"])(x).logits)


def test_gradient_checkpointing_gives_the_same_steps(tiny_chat_llama, chats, tmp_path):
    def losses(**kw):
        config = TrainConfig(model=str(tiny_chat_llama), data=str(chats), seq_len=32,
                             batch_size=4, max_steps=3, lr=1e-2, eval_every=0, device="cpu",
                             dropout=0.0, **kw)
        return [e.loss for e in iter_train(config, out_dir=tmp_path / str(kw))
                if type(e).__name__ == "TrainStep"]

    plain = losses()
    checkpointed = losses(gradient_checkpointing=True)
    assert checkpointed == pytest.approx(plain, rel=1e-5)
    stored = json.loads((tmp_path / str({"gradient_checkpointing": True}) / "config.json")
                        .read_text())
    assert stored["resolved"]["gradient_checkpointing"] is True


def test_gradient_checkpointing_is_switched_on(tiny_chat_llama):
    import warnings

    from transformers import AutoModelForCausalLM

    from genlab.core.modeling.lora import apply_lora
    from genlab.core.training.setup import enable_gradient_checkpointing

    model = apply_lora(AutoModelForCausalLM.from_pretrained(tiny_chat_llama), rank=4, alpha=8,
                       dropout=0.0, targets=("q_proj",), rslora=False)
    base = model.get_base_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the non-deprecated API is used
        enable_gradient_checkpointing(model)
    layers = [m for m in base.modules() if getattr(m, "gradient_checkpointing", False)]
    assert layers and base.config.use_cache is False
