"""Chat rows, end-of-turn stops, context limits and chunked prefill in the decode loop.

Oracles: ``model.generate(apply_chat_template(...), do_sample=False)`` for chat rows, and the
one-shot prefill for the chunked one.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from genlab.core.configs import GenerationRequest, SamplingParams
from genlab.core.generation.decode import generate, iter_generate
from genlab.core.generation.prompting import (
    ContextLimitError,
    PromptError,
    encode_prompt,
    fit_context,
    max_new_room,
)
from genlab.core.modeling.loading import load_model

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def chat(tiny_chat_llama):
    return load_model(str(tiny_chat_llama), device="cpu")


@pytest.fixture(scope="module")
def plain(tiny_llama):
    return load_model(str(tiny_llama), device="cpu")


def _hf_greedy(loaded, messages, n, eos=None):
    tok = loaded.tokenizer
    enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)
    out = loaded.model.generate(**enc, do_sample=False, max_new_tokens=n,
                                eos_token_id=eos if eos is not None else tok.eos_token_id,
                                pad_token_id=tok.pad_token_id)
    return out[0, enc["input_ids"].shape[1]:].tolist()


def test_chat_greedy_equals_generate_on_the_template(chat):
    params = SamplingParams(temperature=0, max_new_tokens=30)
    rows = generate(chat, [GenerationRequest(QUESTION, params),
                           GenerationRequest(QUESTION, params, system="Be brief.")])
    expected = [
        _hf_greedy(chat, [{"role": "user", "content": QUESTION}], 30),
        _hf_greedy(chat, [{"role": "system", "content": "Be brief."},
                          {"role": "user", "content": QUESTION}], 30),
    ]
    assert [list(r.token_ids) for r in rows] == expected
    assert rows[0].token_ids != rows[1].token_ids  # the system message reached the model


def test_chat_is_default_only_with_a_template(chat, plain):
    assert encode_prompt(chat, GenerationRequest("Hi")).chat
    assert not encode_prompt(chat, GenerationRequest("Hi", chat=False)).chat
    assert not encode_prompt(plain, GenerationRequest("Hi")).chat
    with pytest.raises(PromptError, match="no chat template"):
        encode_prompt(plain, GenerationRequest("Hi", chat=True))
    with pytest.raises(PromptError, match="needs the chat template"):
        encode_prompt(chat, GenerationRequest("Hi", chat=False, messages=[("user", "Hi")]))
    with pytest.raises(PromptError, match="--system: the model's tokenizer has no chat"):
        encode_prompt(plain, GenerationRequest("Hi", system="Be brief."))


def test_raw_row_is_tokenizer_text(chat):
    enc = encode_prompt(chat, GenerationRequest(QUESTION, chat=False))
    assert enc.ids == chat.tokenizer(QUESTION)["input_ids"] and not enc.end_ids


def test_messages_row_renders_the_whole_conversation(chat):
    messages = (("user", "What is two plus two?"), ("assistant", "Four."), ("user", QUESTION))
    enc = encode_prompt(chat, GenerationRequest(QUESTION, messages=messages, system="Brief."))
    dicts = [{"role": "system", "content": "Brief."}] + [
        {"role": r, "content": c} for r, c in messages]
    assert enc.ids == chat.tokenizer.apply_chat_template(dicts, add_generation_prompt=True,
                                                         return_dict=False)


def test_reply_stops_at_the_end_of_turn_token(tiny_chat_llama):
    """Make <|im_end|> the greedy choice after a few tokens; the row ends there with 'eos'
    even though the tokenizer's EOS is another token, exactly where generate() stops."""
    loaded = load_model(str(tiny_chat_llama), device="cpu")
    tok = loaded.tokenizer
    tok.eos_token = "<|endoftext|>"  # a Llama-3-like split: document EOS != end of turn
    loaded.model.generation_config.eos_token_id = tok.eos_token_id
    eot = tok.convert_tokens_to_ids("<|im_end|>")
    messages = [{"role": "user", "content": QUESTION}]
    first = _hf_greedy(loaded, messages, 4, eos=[])
    with torch.no_grad():  # the end-of-turn row becomes a scaled copy of token 3's row
        head = loaded.model.get_output_embeddings().weight
        head[eot] = head[first[3]] * 2.0
    row = generate(loaded, [GenerationRequest(QUESTION, SamplingParams(
        temperature=0, max_new_tokens=40))])[0]
    assert row.reason == "eos" and row.token_ids[-1] == eot
    assert list(row.token_ids) == _hf_greedy(loaded, messages, 40, eos=[eot])
    assert "<|im_end|>" not in row.text  # the reply only


def test_min_tokens_holds_the_end_of_turn_back_too(tiny_chat_llama):
    """min-tokens bans every id that would end a chat row, the end of turn included, not only
    the tokenizer's EOS (here another token, as in Llama 3)."""
    loaded = load_model(str(tiny_chat_llama), device="cpu")
    tok = loaded.tokenizer
    tok.eos_token = "<|endoftext|>"
    loaded.model.generation_config.eos_token_id = tok.eos_token_id
    eot = tok.convert_tokens_to_ids("<|im_end|>")
    params = {"temperature": 0, "max_new_tokens": 20, "logit_bias": [(eot, 50.0)]}
    at_once, held = generate(loaded, [
        GenerationRequest(QUESTION, SamplingParams(**params)),
        GenerationRequest(QUESTION, SamplingParams(**params, min_tokens=3))])
    assert at_once.reason == "eos" and at_once.token_ids == (eot,)
    assert held.reason == "eos" and len(held.token_ids) == 4 and held.token_ids[-1] == eot
    assert eot not in held.token_ids[:3]


def test_context_limit_names_both_numbers(chat):
    n = len(encode_prompt(chat, GenerationRequest(QUESTION)).ids)
    request = GenerationRequest(QUESTION, SamplingParams(max_new_tokens=256 - n + 1))
    with pytest.raises(ContextLimitError) as info:
        list(iter_generate(chat, [GenerationRequest("Hi"), request]))
    err = info.value
    assert (err.prompt_tokens, err.max_new_tokens, err.limit, err.row) == (n, 256 - n + 1,
                                                                          256, 1)
    assert f"prompt of {n} tokens + --max-new-tokens {257 - n}" in str(err)
    assert "context of 256" in str(err) and f"to {256 - n} or less" in str(err)
    ok = GenerationRequest(QUESTION, SamplingParams(max_new_tokens=256 - n))
    assert encode_prompt(chat, ok).truncated == 0
    assert max_new_room(chat, ok) == 256 - n


def test_truncate_left_keeps_the_newest_tokens(plain):
    long_prompt = " ".join(["the fox ran over the hill"] * 60)
    ids = plain.tokenizer(long_prompt)["input_ids"]
    assert len(ids) > 256
    with pytest.raises(ContextLimitError):
        encode_prompt(plain, GenerationRequest(long_prompt))
    params = SamplingParams(max_new_tokens=16, temperature=0)
    enc = encode_prompt(plain, GenerationRequest(long_prompt, params, truncate_prompt="left"))
    assert enc.ids == ids[-(256 - 16):] and enc.truncated == len(ids) - 240
    row = generate(plain, [GenerationRequest(long_prompt, params, truncate_prompt="left")])[0]
    assert len(row.token_ids) == 16
    with pytest.raises(ContextLimitError, match="lower --max-new-tokens to 255 or less"):
        fit_context([1, 2], 300, 256, "left")


def test_chunked_prefill_equals_one_shot(plain):
    prompts = ["Once upon a time there was a little fox who lived in a green forest and " * 3,
               "The fox", "Tom and Lily went to the park"]
    params = SamplingParams(temperature=0, max_new_tokens=12, ignore_eos=True,
                            repetition_penalty=1.2)
    requests = [GenerationRequest(p, params) for p in prompts]
    one_shot = [r.token_ids for r in generate(plain, requests, prefill_chunk=10_000)]
    for chunk in (1, 7, 16):
        assert [r.token_ids for r in generate(plain, requests, prefill_chunk=chunk)] == one_shot


def test_grid_forward_passes_are_bounded_by_batch_size(plain):
    """A grid of 10 rows with batch_size 3: no forward ever sees more than 3 rows, so the KV
    cache (and activations) are those of 3 rows, not of the whole grid."""
    widths = []
    hook = plain.model.register_forward_pre_hook(
        lambda _m, _a, kw: widths.append(kw["input_ids"].shape[0]), with_kwargs=True)
    try:
        requests = [GenerationRequest("Once upon a time", SamplingParams(max_new_tokens=4),
                                      seed=i) for i in range(10)]
        rows = generate(plain, requests, batch_size=3)
    finally:
        hook.remove()
    assert len(rows) == 10 and max(widths) == 3


def test_decode_emits_no_future_warning(plain):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        generate(plain, [GenerationRequest("Once", SamplingParams(max_new_tokens=3))])
