"""Chat templates: parsing conversations, rendering, end-of-turn detection, assistant-only masks.

The assistant mask is checked token by token against what each turn contributes, and against
transformers' own ``return_assistant_tokens_mask`` on a template that carries the
``{% generation %}`` markers it needs (the oracle), for the same conversation.
"""

from __future__ import annotations

import pytest
from conftest import CHATML_TEMPLATE, build_chat_tokenizer

from genlab.core.data.chat import (
    ChatError,
    conversation,
    describe_template,
    end_of_turn_text,
    parse_messages,
    render_prompt_ids,
    render_text,
    template_name,
)
from genlab.core.data.chat_masks import assistant_token_mask

LLAMA3_TEMPLATE = (
    "{% for message in messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' "
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)
CHATML_MARKED = (  # CHATML_TEMPLATE with {% generation %} around what the assistant writes
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' + '\\n' }}{% endgeneration %}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
THINK_STRIP = (  # Qwen3-like: earlier assistant turns lose their <think> block
    "{% set ns = namespace(last=-1) %}{% for m in messages %}{% if m['role'] == 'user' %}"
    "{% set ns.last = loop.index0 %}{% endif %}{% endfor %}"
    "{% for m in messages %}{% set c = m['content'] %}"
    "{% if m['role'] == 'assistant' and loop.index0 < ns.last and '</think>' in c %}"
    "{% set c = c.split('</think>')[-1].lstrip() %}{% endif %}"
    "{{ '<|im_start|>' + m['role'] + '\\n' + c + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CONVERSATION = (("system", "Be brief."), ("user", "What is two plus two?"),
                ("assistant", "four"), ("user", "And three plus two?"),
                ("assistant", " five, roughly "))


@pytest.fixture(scope="module")
def tok():
    return build_chat_tokenizer()


@pytest.fixture
def llama3_tok():
    t = build_chat_tokenizer()
    t.add_special_tokens({"additional_special_tokens": [
        "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|begin_of_text|>",
        "<|end_of_text|>"]})
    t.bos_token, t.eos_token = "<|begin_of_text|>", "<|end_of_text|>"
    t.chat_template = LLAMA3_TEMPLATE
    return t


def _trained_text(tok, ids, mask) -> list[str]:
    """The text of each run of masked tokens."""
    runs, current = [], []
    for token_id, m in zip(ids, mask, strict=True):
        if m:
            current.append(token_id)
        elif current:
            runs.append(tok.decode(current))
            current = []
    if current:
        runs.append(tok.decode(current))
    return runs


def test_parse_messages_checks_shape_and_roles():
    assert parse_messages([{"role": "user", "content": "hi"}]) == (("user", "hi"),)
    for bad, words in [([], "non-empty list"), ("hi", "non-empty list"),
                       (["hi"], "messages[0] must be an object"),
                       ([{"role": "bot", "content": "x"}], "role 'bot'"),
                       ([{"role": "user", "content": 3}], '"content" must be a string')]:
        with pytest.raises(ChatError, match=words.replace("[", r"\[").replace("]", r"\]")):
            parse_messages(bad)


def test_conversation_adds_system_unless_present():
    assert conversation("hi", "sys") == (("system", "sys"), ("user", "hi"))
    own = (("system", "mine"), ("user", "x"))
    assert conversation("x", "sys", own) == own
    assert conversation("hi") == (("user", "hi"),)


def test_render_prompt_ids_is_apply_chat_template(tok):
    pairs = CONVERSATION[:2]
    dicts = [{"role": r, "content": c} for r, c in pairs]
    expected = tok.apply_chat_template(dicts, add_generation_prompt=True, return_dict=False)
    assert render_prompt_ids(tok, pairs) == expected
    assert tok.decode(expected).endswith("<|im_start|>assistant\n")


def test_a_final_assistant_message_is_continued(tok):
    pairs = (("user", "Tell me a story."), ("assistant", "Once upon"))
    text = tok.decode(render_prompt_ids(tok, pairs))
    assert text.endswith("<|im_start|>assistant\nOnce upon")  # no <|im_end|>, no new turn


def test_end_of_turn_and_template_names(tok, llama3_tok):
    assert end_of_turn_text(tok) == "<|im_end|>"
    assert template_name(tok) == "ChatML"
    assert describe_template(tok) == "ChatML template, turns end with <|im_end|>"
    assert end_of_turn_text(llama3_tok) == "<|eot_id|>"  # not the tokenizer's EOS
    assert llama3_tok.eos_token == "<|end_of_text|>"
    assert template_name(llama3_tok) == "Llama 3"


def test_no_template_is_a_chat_error(tok):
    plain = build_chat_tokenizer()
    plain.chat_template = None
    assert template_name(plain) == "" and end_of_turn_text(plain) is None
    with pytest.raises(ChatError, match="no chat template"):
        render_prompt_ids(plain, (("user", "hi"),))


def test_refusing_template_is_one_line(tok):
    strict = build_chat_tokenizer()
    strict.chat_template = ("{% if messages[0]['role'] != 'user' %}"
                            "{{ raise_exception('Conversations must start with a user') }}"
                            "{% endif %}" + CHATML_TEMPLATE)
    with pytest.raises(ChatError, match="refused the conversation.*start with a user"):
        render_prompt_ids(strict, (("assistant", "hi"), ("user", "x")))


def test_assistant_mask_token_by_token_chatml(tok):
    ids, mask = assistant_token_mask(tok, CONVERSATION)
    dicts = [{"role": r, "content": c} for r, c in CONVERSATION]
    assert ids == tok.apply_chat_template(dicts, return_dict=False)
    # Expected mask built turn by turn: tokens of each assistant content + "<|im_end|>\n".
    expected = []
    for role, content in CONVERSATION:
        header = tok(f"<|im_start|>{role}\n", add_special_tokens=False)["input_ids"]
        body = tok(content + "<|im_end|>\n", add_special_tokens=False)["input_ids"]
        expected += [0] * len(header) + [int(role == "assistant")] * len(body)
    assert mask == expected
    assert _trained_text(tok, ids, mask) == ["four<|im_end|>\n", " five, roughly <|im_end|>\n"]


def test_assistant_mask_equals_transformers_generation_markers(tok):
    """The oracle: transformers' own mask on the marked copy of the same template."""
    marked = build_chat_tokenizer()
    marked.chat_template = CHATML_MARKED
    dicts = [{"role": r, "content": c} for r, c in CONVERSATION]
    out = marked.apply_chat_template(dicts, tokenize=True, return_dict=True,
                                     return_assistant_tokens_mask=True)
    ids, mask = assistant_token_mask(tok, CONVERSATION)
    assert ids == list(out["input_ids"])
    assert mask == list(out["assistant_masks"])


def test_assistant_mask_llama3_trims_and_skips_headers(llama3_tok):
    ids, mask = assistant_token_mask(llama3_tok, CONVERSATION)
    assert _trained_text(llama3_tok, ids, mask) == ["four<|eot_id|>", "five, roughly<|eot_id|>"]
    assert ids[0] == llama3_tok.convert_tokens_to_ids("<|begin_of_text|>")  # template's BOS
    assert mask[0] == 0


def test_assistant_mask_history_rewriting_template():
    t = build_chat_tokenizer()
    t.chat_template = THINK_STRIP
    pairs = (("user", "Q1"), ("assistant", "<think>hmm</think>A1"), ("user", "Q2"),
             ("assistant", "<think>ok</think>\nA2"))
    ids, mask = assistant_token_mask(t, pairs)
    assert _trained_text(t, ids, mask) == ["A1<|im_end|>", "<think>ok</think>\nA2<|im_end|>\n"]


def test_render_text_without_generation_prompt(tok):
    text = render_text(tok, CONVERSATION[:3], generation_prompt=False)
    assert text.endswith("<|im_start|>assistant\nfour<|im_end|>\n")
