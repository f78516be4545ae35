"""The decode loop on tiny Llama and GPT-2 models: HF parity, independence, text and events."""

from __future__ import annotations

import pytest
import torch

from genlab.core.configs import ConfigError, GenerationRequest, SamplingParams
from genlab.core.events import GenerationFinished, RowFinished, StopToken, TokenSampled
from genlab.core.generation.decode import generate, iter_generate
from genlab.core.modeling.loading import load_model

PROMPTS = ["Once upon a time", "The fox", "Tom and Lily went to the park to see", ""]


@pytest.fixture(scope="module")
def loaded(tiny_model):
    return load_model(str(tiny_model), device="cpu")


@pytest.fixture(scope="module")
def llama(tiny_llama):
    return load_model(str(tiny_llama), device="cpu")


def req(prompt: str = "Once upon a time", seed: int = 0, adapter: str | None = None,
        **params) -> GenerationRequest:
    params.setdefault("max_new_tokens", 16)
    return GenerationRequest(prompt, SamplingParams(**params), seed=seed, adapter=adapter)


def run(loaded, requests, **kwargs) -> tuple[list[RowFinished], list]:
    events = list(iter_generate(loaded, requests, **kwargs))
    finished = sorted((e for e in events if isinstance(e, RowFinished)), key=lambda r: r.row)
    return finished, events


MIXED = [
    req(PROMPTS[0], seed=1, temperature=0.9, top_k=40),
    req(PROMPTS[1], seed=2, temperature=0, repetition_penalty=1.3, max_new_tokens=9),
    req(PROMPTS[2], seed=3, top_p=0.8, min_p=0.05, ignore_eos=True, max_new_tokens=20),
    req(PROMPTS[3], seed=4, temperature=1.4, repetition_penalty=1.2, stop=("e",)),
    req(PROMPTS[1], seed=5, temperature=0.6, top_k=5, top_p=0.9, ignore_eos=True),
]


def test_greedy_matches_hf_generate(loaded):
    tok = loaded.tokenizer
    results = generate(loaded, [req(p, temperature=0, max_new_tokens=24) for p in PROMPTS[:3]])
    for prompt, result in zip(PROMPTS, results, strict=False):
        inputs = tok(prompt, return_tensors="pt")
        out = loaded.model.generate(**inputs, do_sample=False, max_new_tokens=24)
        expected = out[0, inputs["input_ids"].shape[1]:].tolist()
        assert list(result.token_ids) == expected
        assert result.reason == ("eos" if expected[-1] == tok.eos_token_id else "length")


def test_greedy_with_repetition_penalty_matches_hf_generate(loaded):
    # A padded batch: the penalised history (prompt + every output so far) must follow each row.
    tok = loaded.tokenizer
    results = generate(loaded, [req(p, temperature=0, repetition_penalty=1.3, max_new_tokens=24)
                                for p in PROMPTS[:3]])
    for prompt, result in zip(PROMPTS, results, strict=False):
        inputs = tok(prompt, return_tensors="pt")
        out = loaded.model.generate(**inputs, do_sample=False, repetition_penalty=1.3,
                                    max_new_tokens=24)
        assert list(result.token_ids) == out[0, inputs["input_ids"].shape[1]:].tolist()


def test_same_seed_same_text_and_seeds_differ(loaded):
    params = dict(temperature=1.5, max_new_tokens=20, ignore_eos=True)
    first = generate(loaded, [req(seed=s, **params) for s in range(4)])
    again = generate(loaded, [req(seed=s, **params) for s in range(4)])
    assert [r.token_ids for r in first] == [r.token_ids for r in again]
    assert len({r.token_ids for r in first}) > 1


def test_row_alone_equals_row_in_mixed_batch_and_any_chunking(loaded):
    together = generate(loaded, MIXED)
    alone = [generate(loaded, [r])[0] for r in MIXED]
    assert [r.token_ids for r in together] == [r.token_ids for r in alone]
    assert [r.text for r in together] == [r.text for r in alone]
    for size in (2, 3):
        chunked = generate(loaded, MIXED, batch_size=size)
        assert [r.token_ids for r in chunked] == [r.token_ids for r in together]
        assert [r.row for r in chunked] == list(range(len(MIXED)))


def test_deltas_concatenate_to_the_final_text(loaded):
    finished, events = run(loaded, MIXED)
    tok = loaded.tokenizer
    for result, request in zip(finished, MIXED, strict=True):
        tokens = [e for e in events if isinstance(e, TokenSampled) and e.row == result.row]
        assert "".join(e.text for e in tokens) == result.text
        assert [e.token_id for e in tokens] == list(result.token_ids)
        assert [e.step for e in tokens] == list(range(len(tokens)))
        if result.reason != "stop":
            assert result.text == tok.decode(result.token_ids, skip_special_tokens=True)
        else:
            assert request.params.stop[0] not in result.text
    assert isinstance(events[-1], GenerationFinished)
    assert events[-1].rows == len(MIXED)
    quiet = generate(loaded, MIXED)  # no token events: the same rows
    assert [(r.token_ids, r.text, r.reason) for r in quiet] == [
        (r.token_ids, r.text, r.reason) for r in finished]
    assert not any(isinstance(e, TokenSampled) for e in iter_generate(
        loaded, MIXED[:2], token_events=False))
    assert events[-1].new_tokens == sum(len(r.token_ids) for r in finished)


def test_stop_string_ends_the_row_and_is_not_emitted(loaded):
    params = dict(temperature=1.0, max_new_tokens=30, ignore_eos=True, seed=1)
    plain = generate(loaded, [req(**params)])[0]
    # A 3-character stop string first seen mid-text (it spans several tokens).
    k = next(k for k in range(4, len(plain.text) - 3)
             if "\ufffd" not in plain.text[k:k + 3] and plain.text.find(plain.text[k:k + 3]) == k)
    stop = plain.text[k:k + 3]
    finished, events = run(loaded, [req(**params, stop=("never-generated", stop))])
    result = finished[0]
    assert result.reason == "stop"
    assert result.text == plain.text[:k]
    assert "".join(e.text for e in events if isinstance(e, TokenSampled)) == result.text
    assert plain.token_ids[: len(result.token_ids)] == result.token_ids
    assert len(result.token_ids) < len(plain.token_ids)


def test_max_new_tokens_gives_length(loaded):
    result = generate(loaded, [req(ignore_eos=True, max_new_tokens=5, temperature=1.2)])[0]
    assert result.reason == "length" and len(result.token_ids) == 5


def test_generation_config_eos_ends_the_row_unless_ignored(tiny_llama):
    loaded = load_model(str(tiny_llama), device="cpu")
    first = generate(loaded, [req(temperature=0, max_new_tokens=8)])[0].token_ids[0]
    loaded.model.generation_config.eos_token_id = [loaded.tokenizer.eos_token_id, first]
    stopped, kept = generate(loaded, [req(temperature=0, max_new_tokens=8),
                                      req(temperature=0, max_new_tokens=8, ignore_eos=True)])
    assert stopped.reason == "eos" and stopped.token_ids == (first,)
    assert kept.reason == "length" and len(kept.token_ids) == 8


def test_stop_token_cancels_every_unfinished_row(loaded):
    stop = StopToken()
    requests = [req(seed=i, ignore_eos=True, max_new_tokens=50) for i in range(3)]
    events = []
    for event in iter_generate(loaded, requests, batch_size=2, stop_token=stop):
        events.append(event)
        if isinstance(event, TokenSampled) and event.step == 2:
            stop.stop()
    finished = [e for e in events if isinstance(e, RowFinished)]
    assert sorted(r.row for r in finished) == [0, 1, 2]
    assert all(r.reason == "cancelled" for r in finished)
    assert max(e.step for e in events if isinstance(e, TokenSampled)) == 2
    assert events[-1] == GenerationFinished(3, events[-1].new_tokens, events[-1].elapsed_s, True)
    for r in finished:
        deltas = [e.text for e in events if isinstance(e, TokenSampled) and e.row == r.row]
        assert "".join(deltas) == r.text


def test_stop_token_set_before_start(loaded):
    stop = StopToken()
    stop.stop()
    finished, events = run(loaded, [req(), req()], stop_token=stop)
    assert [r.reason for r in finished] == ["cancelled", "cancelled"]
    assert events[-1].cancelled and events[-1].new_tokens == 0


def test_top_n_alternatives(loaded):
    requests = [req(temperature=0), req(top_k=2, seed=1), req(top_p=0.5, temperature=0.7)]
    _, events = run(loaded, requests, top_n=6)
    tokens = [e for e in events if isinstance(e, TokenSampled)]
    assert tokens and all(len(e.alternatives) == 6 for e in tokens)
    for e in tokens:
        raw = [a.raw_prob for a in e.alternatives]
        sampled = [a.sampled_prob for a in e.alternatives]
        assert raw == sorted(raw, reverse=True)
        assert sum(sampled) <= 1 + 1e-5 and all(0 <= s <= 1 for s in sampled)
        chosen = [a for a in e.alternatives if a.token_id == e.token_id]
        if chosen:
            assert abs(chosen[0].raw_prob - torch.tensor(e.logprob).exp().item()) < 1e-5
        if e.row == 0:  # greedy: all mass on the argmax
            assert sampled == [1.0] + [0.0] * 5 and e.sampled_logprob == 0.0
        if e.row == 1:  # top-k 2: only the two most likely tokens can be drawn
            assert all(s == 0 for s in sampled[2:]) and e.token_id in {
                a.token_id for a in e.alternatives[:2]}
    assert all(e.alternatives == () for e in run(loaded, requests[:1])[1]
               if isinstance(e, TokenSampled))


def test_invalid_arguments(loaded):
    with pytest.raises(ConfigError, match="adapter"):
        list(iter_generate(loaded, [req(adapter="nope")]))
    with pytest.raises(ConfigError, match="top_n"):
        list(iter_generate(loaded, [req()], top_n=-1))
    assert generate(loaded, []) == []


@pytest.fixture(scope="module")
def adapters(tiny_llama, tmp_path_factory) -> dict[str, str]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dirs = {}
    for name, seed in (("a", 1), ("b", 2)):
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(str(tiny_llama))
        config = LoraConfig(r=8, lora_alpha=32, init_lora_weights=False,
                            target_modules=["q_proj", "v_proj", "o_proj", "up_proj", "down_proj"])
        out = tmp_path_factory.mktemp(f"lora-{name}")
        get_peft_model(base, config).save_pretrained(str(out))
        dirs[name] = str(out)
    return dirs


def test_mixed_adapter_batch_equals_separate_runs(tiny_llama, adapters, llama):
    with_adapters = load_model(str(tiny_llama), device="cpu", adapters=adapters)
    rows = [req(PROMPTS[0], temperature=0, max_new_tokens=12, ignore_eos=True, adapter=a)
            for a in (None, "a", "b")] + [req(PROMPTS[1], seed=3, adapter="a", top_k=20)]
    together = generate(with_adapters, rows)
    alone = [generate(with_adapters, [r])[0] for r in rows]
    assert [r.token_ids for r in together] == [r.token_ids for r in alone]
    base, a, b = (r.token_ids for r in together[:3])
    assert a != base and b != base and a != b
    assert base == generate(llama, rows[:1])[0].token_ids  # "__base__" rows = plain model


# Every stage, each in its own row, some combined; padded prompts of different lengths.
EVERY_STAGE = [
    req(PROMPTS[0], seed=11, typical_p=0.7, ignore_eos=True),
    req(PROMPTS[1], seed=12, epsilon_cutoff=0.01, eta_cutoff=0.01, min_keep=2),
    req(PROMPTS[2], seed=13, presence_penalty=1.0, frequency_penalty=0.5, repeat_last_n=6),
    req(PROMPTS[3], seed=14, no_repeat_ngram=2, temperature=0, max_new_tokens=20),
    req(PROMPTS[0], seed=15, dry_multiplier=0.8, dry_allowed_length=1, temperature=0.5),
    req(PROMPTS[1], seed=16, xtc_probability=0.5, xtc_threshold=0.05, ignore_eos=True),
    req(PROMPTS[2], seed=17, top_n_sigma=1.0, temperature=1.5),
    req(PROMPTS[3], seed=18, dynatemp_range=0.5, dynatemp_exponent=2.0),
    req(PROMPTS[0], seed=19, mirostat=2, mirostat_tau=3.0, ignore_eos=True),
    req(PROMPTS[1], seed=20, mirostat=1, mirostat_tau=4.0, mirostat_eta=0.2),
    req(PROMPTS[2], seed=21, min_tokens=10, temperature=0),
    req(PROMPTS[3], seed=22, logit_bias=[" the=-inf", "5=2.5", '"ox"=-3'], temperature=0.8),
    req(PROMPTS[0], seed=23, sampler_order="llama.cpp", top_k=20, top_p=0.9, temperature=1.3),
    req(PROMPTS[1], seed=24, repetition_penalty=1.3, repeat_last_n=4, temperature=0),
    req(PROMPTS[2], seed=25, sampler_order="min_p,temperature", min_p=0.1, temperature=2.0),
    req(PROMPTS[0], seed=26),
]


def test_every_stage_row_alone_equals_row_in_mixed_batch_and_any_chunking(loaded):
    together = generate(loaded, EVERY_STAGE)
    alone = [generate(loaded, [r])[0] for r in EVERY_STAGE]
    assert [r.token_ids for r in together] == [r.token_ids for r in alone]
    assert [r.text for r in together] == [r.text for r in alone]
    for size in (3, 7):
        chunked = generate(loaded, EVERY_STAGE, batch_size=size)
        assert [r.token_ids for r in chunked] == [r.token_ids for r in together]
    # the stages do something: no row equals the same row with its settings off
    plain = generate(loaded, [req(r.prompt, seed=r.seed, max_new_tokens=r.params.max_new_tokens,
                                  ignore_eos=r.params.ignore_eos) for r in EVERY_STAGE[:-1]])
    assert sum(a.token_ids != b.token_ids for a, b in zip(together, plain, strict=False)) >= 12


def test_reading_tokens_every_few_steps_changes_nothing(loaded, monkeypatch):
    from genlab.core.generation import decode

    every = generate(loaded, EVERY_STAGE, top_n=3)
    _, events = run(loaded, EVERY_STAGE, top_n=3)
    monkeypatch.setattr(decode, "SYNC_EVERY", {"cpu": 4})
    blocked, blocked_events = run(loaded, EVERY_STAGE, top_n=3)
    assert [r.token_ids for r in blocked] == [r.token_ids for r in every]
    assert [r.reason for r in blocked] == [r.reason for r in every]
    tokens = [e for e in events if isinstance(e, TokenSampled)]
    assert sorted(tokens, key=lambda e: (e.row, e.step)) == sorted(
        (e for e in blocked_events if isinstance(e, TokenSampled)), key=lambda e: (e.row, e.step))


def test_logit_bias_bans_a_text_and_min_tokens_holds_eos_back(tiny_llama):
    loaded = load_model(str(tiny_llama), device="cpu")
    greedy = generate(loaded, [req(temperature=0, max_new_tokens=12, ignore_eos=True)])[0]
    first = greedy.token_ids[0]
    text = loaded.tokenizer.decode([first])
    banned = generate(loaded, [req(temperature=0, max_new_tokens=12, ignore_eos=True,
                                   logit_bias=[(text, float("-inf"))])])[0]
    assert first not in banned.token_ids and banned.token_ids != greedy.token_ids
    by_id = generate(loaded, [req(temperature=0, max_new_tokens=12, ignore_eos=True,
                                  logit_bias=[(first, float("-inf"))])])[0]
    assert by_id.token_ids == banned.token_ids
    loaded.model.generation_config.eos_token_id = [loaded.tokenizer.eos_token_id, first]
    ends, held = generate(loaded, [req(temperature=0, max_new_tokens=8),
                                   req(temperature=0, max_new_tokens=8, min_tokens=4)])
    assert ends.reason == "eos" and ends.token_ids == (first,)
    assert first not in held.token_ids[:4] and len(held.token_ids) >= 4


def test_a_bad_logit_bias_token_is_a_config_error(loaded):
    with pytest.raises(ConfigError, match="logit_bias"):
        generate(loaded, [req(logit_bias=[(10**6, 1.0)])])
