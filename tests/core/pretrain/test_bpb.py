"""Whole-story bits per byte: windows cover every token once; batched = hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.core.pretrain.bpb import bits_per_byte, document_windows

STORIES = [
    "Once upon a time there was a little fox.",
    "Tom and Lily went to the park to see the ducks on the pond. The sun was warm.",
]


@pytest.fixture(scope="module")
def loaded(tiny_llama):
    from genlab.core.modeling.loading import load_model

    return load_model(str(tiny_llama), device="cpu", dtype="float32")


def _hand_nats(model, ids: list[int]) -> float:
    """-sum log p(ids[t] | ids[:t]) for t >= 1, one unbatched forward."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    logprobs = torch.log_softmax(logits.double(), dim=-1)
    return -sum(float(logprobs[t - 1, ids[t]]) for t in range(1, len(ids)))


def test_bpb_equals_hand_computation(loaded):
    tok, model = loaded.tokenizer, loaded.model
    ids = [[tok.bos_token_id, *tok(s, add_special_tokens=False)["input_ids"], tok.eos_token_id]
           for s in STORIES]
    nats = sum(_hand_nats(model, x) for x in ids)
    n_bytes = sum(len(s.encode()) for s in STORIES)
    result = bits_per_byte(model, tok, STORIES, batch_size=2)
    assert result.bytes == n_bytes
    assert result.nats == pytest.approx(nats, rel=1e-5)
    assert result.bpb == pytest.approx(nats / math.log(2) / n_bytes, rel=1e-5)
    bpb, total_nats, total_bytes = result  # unpacks as a tuple
    assert (bpb, total_nats, total_bytes) == tuple(result)


def test_sliding_window_scores_each_token_once_and_stays_close(loaded):
    tok, model = loaded.tokenizer, loaded.model
    long_story = " ".join(STORIES * 4)
    n = len(tok(long_story, add_special_tokens=False)["input_ids"]) + 2
    windows = document_windows(list(range(n)), context=24, stride=8)
    scored = [w[j] for w, first in windows for j in range(first, len(w))]
    assert scored == list(range(1, n)) and all(len(w) <= 24 for w, _ in windows)
    full = bits_per_byte(model, tok, [long_story], context=256)
    windowed = bits_per_byte(model, tok, [long_story], context=24, stride=8, batch_size=3)
    assert windowed.bytes == full.bytes
    assert windowed.bpb == pytest.approx(full.bpb, rel=0.05)  # a random model barely uses context


def test_batching_does_not_change_the_result(loaded):
    tok, model = loaded.tokenizer, loaded.model
    one = bits_per_byte(model, tok, STORIES, batch_size=1)
    two = bits_per_byte(model, tok, STORIES, batch_size=2)
    assert two.nats == pytest.approx(one.nats, rel=1e-5)


def test_bpb_rejects_empty_input(loaded):
    with pytest.raises(ValueError):
        bits_per_byte(loaded.model, loaded.tokenizer, [])
