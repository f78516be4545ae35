"""Scoring continuations under the base model: the same numbers the decode loop streams."""

from __future__ import annotations

import pytest
import torch

from genlab.core.configs import GenerationRequest, SamplingParams
from genlab.core.events import TokenSampled
from genlab.core.generation.decode import iter_generate
from genlab.core.generation.scoring import score_continuations
from genlab.core.modeling.loading import load_model


@pytest.fixture(scope="module")
def llama(tiny_llama):
    return load_model(str(tiny_llama), device="cpu")


def test_scores_equal_the_summed_raw_logprobs_of_generation(llama):
    prompts = ["Once upon a time", "The fox", "Tom and Lily went to the park to see", ""]
    requests = [GenerationRequest(p, SamplingParams(temperature=t, max_new_tokens=9,
                                                    ignore_eos=True), seed=i)
                for i, (p, t) in enumerate(zip(prompts, (0.0, 1.0, 1.5, 0.7), strict=True))]
    streamed = {i: [] for i in range(len(prompts))}
    tokens = {i: [] for i in range(len(prompts))}
    for event in iter_generate(llama, requests):
        if isinstance(event, TokenSampled):
            streamed[event.row].append(event.logprob)
            tokens[event.row].append(event.token_id)
    scores = score_continuations(llama, requests, [tokens[i] for i in range(len(prompts))],
                                 batch_size=3)
    for i, score in enumerate(scores):
        assert score == pytest.approx(sum(streamed[i]), abs=1e-3), i
    assert score_continuations(llama, [_raw("x")], [[]]) == [None]


def test_chat_rows_are_scored_after_the_template_they_were_generated_from(tiny_chat_llama):
    chat = load_model(str(tiny_chat_llama), device="cpu")
    requests = [GenerationRequest("Hi there", SamplingParams(temperature=1.0, max_new_tokens=6,
                                                             ignore_eos=True), seed=3,
                                  system=system) for system in (None, "Be brief.")]
    streamed = {0: [], 1: []}
    tokens = {0: [], 1: []}
    for event in iter_generate(chat, requests):
        if isinstance(event, TokenSampled):
            streamed[event.row].append(event.logprob)
            tokens[event.row].append(event.token_id)
    scores = score_continuations(chat, requests, [tokens[0], tokens[1]])
    for i, score in enumerate(scores):
        assert score == pytest.approx(sum(streamed[i]), abs=1e-3), i
    raw = score_continuations(chat, [_raw("Hi there")], [tokens[0]])
    assert raw[0] != pytest.approx(scores[0], abs=1e-3)  # the template is part of the context


def _raw(prompt: str) -> GenerationRequest:
    return GenerationRequest(prompt, SamplingParams(), chat=False)


def test_adapter_rows_are_scored_by_the_base_model(tiny_llama, llama, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_llama))
    get_peft_model(base, LoraConfig(r=4, init_lora_weights=False,
                                    target_modules=["q_proj", "v_proj"])).save_pretrained(
        str(tmp_path / "a"))
    with_adapter = load_model(str(tiny_llama), device="cpu", adapters={"a": str(tmp_path / "a")})
    ids = [[5, 9, 12, 40], [7]]
    rows = [_raw("The fox"), _raw("Once")]
    plain = score_continuations(llama, rows, ids)
    assert score_continuations(with_adapter, rows, ids) == pytest.approx(plain)
