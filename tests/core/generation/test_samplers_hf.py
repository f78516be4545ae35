"""The new stages transformers also has, against its processors as oracles, row by row.

Every batch mixes rows with different settings (and rows where the stage is off); each row of
genlab's output must equal the transformers processor's output on that row alone, bit for bit
(``torch.equal``), except where noted.
"""

from __future__ import annotations

import pytest
import torch
from transformers.generation.logits_process import (
    EpsilonLogitsWarper,
    EtaLogitsWarper,
    MinNewTokensLengthLogitsProcessor,
    MinPLogitsWarper,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    SequenceBiasLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)

from genlab.core.configs import SamplingParams
from genlab.core.generation import sampling as S

VOCAB = 97


def logits(rows: int, seed: int, ties: bool = True) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, VOCAB, generator=gen) * 3
    if ties:
        x[:, 7] = x[:, 8]
        x[::3, :12] = 1.5
    return x


def run(x: torch.Tensor, settings: list[SamplingParams], history: torch.Tensor | None = None,
        mask: torch.Tensor | None = None, **state_kwargs) -> torch.Tensor:
    params = S.RowParams.from_params(settings)
    if history is None:
        history = torch.zeros(len(settings), 1, dtype=torch.long)
    state = S.SamplerState(params, history, mask, steps=4, vocab=x.shape[-1], **state_kwargs)
    before = x.clone()
    out = S.process_logits(x, params, state)
    assert torch.equal(x, before)  # the input is never modified
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("knob, warper", [
    ("typical_p", lambda v, k: TypicalLogitsWarper(v, min_tokens_to_keep=k)),
    ("epsilon_cutoff", lambda v, k: EpsilonLogitsWarper(v, min_tokens_to_keep=k)),
    ("eta_cutoff", lambda v, k: EtaLogitsWarper(v, min_tokens_to_keep=k)),
])
def test_typical_epsilon_eta_match_hf_in_mixed_batches(seed, knob, warper):
    values = {"typical_p": [1.0, 0.2, 0.5, 0.9, 0.99, 0.05, 1.0, 0.7],
              "epsilon_cutoff": [0.0, 3e-4, 1e-2, 0.05, 0.2, 0.9, 0.0, 3e-3],
              "eta_cutoff": [0.0, 3e-4, 1e-2, 0.05, 0.2, 0.9, 0.0, 3e-3]}[knob]
    keeps = [1, 1, 3, 1, 2, 5, 1, 1]
    settings = [SamplingParams(**{knob: v}, min_keep=k) for v, k in zip(values, keeps,
                                                                        strict=True)]
    x = logits(len(settings), seed)
    out = run(x, settings)
    for i, (v, k) in enumerate(zip(values, keeps, strict=True)):
        row = x[i: i + 1]
        off = v == SamplingParams().__getattribute__(knob)
        expected = row if off else warper(v, k)(None, row.clone())
        assert torch.equal(out[i: i + 1], expected), f"{knob} row {i} ({v}, keep {k})"


@pytest.mark.parametrize("seed", [0, 1])
def test_min_keep_matches_hf_for_top_k_top_p_min_p(seed):
    cases = [(dict(top_k=2), lambda k: TopKLogitsWarper(2, min_tokens_to_keep=k)),
             (dict(top_p=0.2), lambda k: TopPLogitsWarper(0.2, min_tokens_to_keep=k)),
             (dict(min_p=0.5), lambda k: MinPLogitsWarper(0.5, min_tokens_to_keep=k))]
    for knobs, warper in cases:
        keeps = [1, 4, 9, 1, 30]
        settings = [SamplingParams(**knobs, min_keep=k) for k in keeps]
        x = logits(len(keeps), seed, ties=False)
        out = run(x, settings)
        for i, k in enumerate(keeps):
            expected = warper(k)(None, x[i: i + 1].clone())
            assert torch.equal(out[i: i + 1], expected), f"{knobs} keep {k}"


def ngram_history(seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 6, (6, 14), generator=gen)  # a small alphabet: many repeats
    base[0, -4:] = base[0, :4]  # a sure repeat
    return base


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_repeat_ngram_matches_hf_with_padding_and_mixed_n(seed):
    history = ngram_history(seed)
    lengths = [14, 9, 3, 14, 1, 12]
    mask = torch.zeros_like(history, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, 14 - n:] = True  # left padding, as prompts are padded
    history = torch.where(mask, history, 5)  # pad id 5 is also a real id elsewhere
    sizes = [2, 3, 1, 0, 2, 4]
    settings = [SamplingParams(no_repeat_ngram=n) for n in sizes]
    x = logits(len(sizes), seed)
    out = run(x, settings, history, mask)
    for i, n in enumerate(sizes):
        real = history[i, 14 - lengths[i]:].unsqueeze(0)
        expected = x[i: i + 1] if n == 0 else NoRepeatNGramLogitsProcessor(n)(
            real, x[i: i + 1].clone())
        assert torch.equal(out[i: i + 1], expected), f"row {i} n={n}"


def test_min_tokens_matches_hf_step_by_step():
    eos = [3, 11]
    settings = [SamplingParams(min_tokens=n, max_new_tokens=8) for n in (0, 1, 3, 5)]
    params = S.RowParams.from_params(settings)
    prompt = torch.tensor([[4, 5, 6]] * 4)
    state = S.SamplerState(params, prompt, None, steps=8, vocab=VOCAB, eos_ids=eos)
    generated: list[list[int]] = [[] for _ in settings]
    for step in range(6):
        x = logits(4, step)
        out = S.process_logits(x, params, state)
        for i, p in enumerate(settings):
            ids = torch.tensor([[4, 5, 6] + generated[i]])
            hf = MinNewTokensLengthLogitsProcessor(3, p.min_tokens, eos)(ids, x[i: i + 1])
            expected = x[i: i + 1] if p.min_tokens == 0 else hf
            assert torch.equal(out[i: i + 1], expected), f"step {step} row {i}"
        tokens = torch.tensor([20 + step] * 4)
        state.update(tokens, None)
        for g in generated:
            g.append(20 + step)


def test_logit_bias_matches_sequence_bias_processor():
    entries = [
        [((5,), -2.5), ((9,), float("-inf"))],
        [((40,), 3.0), ((1, 2), 1.5), ((2, 3, 4), -4.0)],  # multi-token: matched at the end
        [],
        [((7, 8), 2.0), ((8,), -1.0)],  # the pair's prefix 7 does not end the context
        [((1, 2), 1.5)],
    ]
    history = torch.tensor([[0, 0, 1, 2, 3],
                            [0, 1, 2, 3, 4],
                            [0, 1, 2, 3, 4],
                            [0, 1, 2, 3, 8],
                            [9, 9, 9, 9, 1]])
    settings = [SamplingParams(logit_bias=[(e[0][0][-1], 1.0)]) if e else SamplingParams()
                for e in entries]  # marks the rows that use logit bias
    x = logits(len(entries), 3, ties=False)
    out = run(x, settings, history, bias=entries)
    for i, row_entries in enumerate(entries):
        if not row_entries:
            assert torch.equal(out[i], x[i])
            continue
        hf = SequenceBiasLogitsProcessor([[list(ids), b] for ids, b in row_entries])
        assert torch.equal(out[i: i + 1], hf(history[i: i + 1], x[i: i + 1].clone())), i


def test_logit_bias_entries_on_the_same_token_add_up():
    entries = [[((4,), 1.25), ((3, 4), 2.5), ((2, 3, 4), -0.75)]]
    history = torch.tensor([[1, 2, 3]])
    x = logits(1, 4)
    out = run(x, [SamplingParams(logit_bias=[(4, 1.0)])], history, bias=entries)
    hf = SequenceBiasLogitsProcessor([[list(ids), b] for ids, b in entries[0]])
    assert torch.allclose(out, hf(history, x.clone()), atol=1e-6)
    assert torch.equal(out[0, :4], x[0, :4]) and torch.equal(out[0, 5:], x[0, 5:])


HF_COMBOS = [
    SamplingParams(),
    SamplingParams(typical_p=0.6, temperature=0.8),
    SamplingParams(top_k=20, top_p=0.9, typical_p=0.9, epsilon_cutoff=1e-3),
    SamplingParams(repetition_penalty=1.3, no_repeat_ngram=2, eta_cutoff=2e-3),
    SamplingParams(temperature=1.4, min_p=0.05, eta_cutoff=1e-2, min_keep=3),
    SamplingParams(temperature=0, no_repeat_ngram=3, repetition_penalty=1.2),
    SamplingParams(temperature=0, typical_p=0.5),  # greedy: warpers off
    SamplingParams(top_p=0.5, typical_p=0.95, epsilon_cutoff=3e-4, eta_cutoff=3e-4),
]


def hf_row(x: torch.Tensor, ids: torch.Tensor, p: SamplingParams) -> torch.Tensor:
    """One row through the processors ``generate`` would build, in transformers' order."""
    x, ids = x.unsqueeze(0).clone(), ids.unsqueeze(0)
    keep = p.min_keep
    if p.repetition_penalty != 1:
        x = RepetitionPenaltyLogitsProcessor(p.repetition_penalty)(ids, x)
    if p.no_repeat_ngram:
        x = NoRepeatNGramLogitsProcessor(p.no_repeat_ngram)(ids, x)
    if p.greedy:
        return x[0]
    warpers = [(p.temperature != 1, lambda: TemperatureLogitsWarper(p.temperature)),
               (p.top_k > 0, lambda: TopKLogitsWarper(p.top_k, min_tokens_to_keep=keep)),
               (p.top_p < 1, lambda: TopPLogitsWarper(p.top_p, min_tokens_to_keep=keep)),
               (p.min_p > 0, lambda: MinPLogitsWarper(p.min_p, min_tokens_to_keep=keep)),
               (p.typical_p < 1, lambda: TypicalLogitsWarper(p.typical_p,
                                                             min_tokens_to_keep=keep)),
               (p.epsilon_cutoff > 0, lambda: EpsilonLogitsWarper(p.epsilon_cutoff,
                                                                  min_tokens_to_keep=keep)),
               (p.eta_cutoff > 0, lambda: EtaLogitsWarper(p.eta_cutoff,
                                                          min_tokens_to_keep=keep))]
    for used, make in warpers:
        if used:
            x = make()(ids, x)
    return x[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_combined_stages_follow_transformers_order_row_by_row(seed):
    x = logits(len(HF_COMBOS), seed, ties=False)
    history = ngram_history(seed)[:, :10].repeat(2, 1)[: len(HF_COMBOS)]
    out = run(x, HF_COMBOS, history)
    for i, p in enumerate(HF_COMBOS):
        assert torch.equal(out[i], hf_row(x[i], history[i], p)), f"row {i}: {p}"


@pytest.mark.parametrize("vocab, scale", [(2048, 0.05), (2048, 1.0), (2048, 4.0), (5000, 2.0),
                                          (300, 8.0)])
def test_top_p_and_top_k_equal_hf_on_large_vocabularies(vocab, scale):
    gen = torch.Generator().manual_seed(vocab + int(scale * 10))
    x = torch.randn(64, vocab, generator=gen) * scale
    x[::9, : vocab // 3] = float("-inf")  # rows already cut by an earlier stage
    x[5::16, 10:20] = x[5::16, 9:10]  # ties
    ps = [0.05, 0.3, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999]
    keeps = [1, 1, 1, 3, 1, 1, 2, 1]
    settings = [SamplingParams(top_p=ps[i % 8], min_keep=keeps[i % 8],
                               top_k=[0, 0, 0, 50][i % 4]) for i in range(64)]
    out = S.process_logits(x, S.RowParams.from_params(settings))
    for i, p in enumerate(settings):
        row = x[i: i + 1].clone()
        if p.top_k:
            row = TopKLogitsWarper(p.top_k, min_tokens_to_keep=p.min_keep)(None, row)
        expected = TopPLogitsWarper(p.top_p, min_tokens_to_keep=p.min_keep)(None, row)
        assert torch.equal(out[i: i + 1], expected), f"row {i}: p={p.top_p} k={p.top_k}"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_top_p_equals_hf_on_16_bit_logits(dtype):
    """A float16/bfloat16 model's logits (dense ties): the index sort's path, still exact."""
    from genlab.core.generation.sampling.nucleus import sixteen_bit_values

    gen = torch.Generator().manual_seed(16)
    x = (torch.randn(24, 49152, generator=gen) * 0.5).to(dtype).float()
    assert sixteen_bit_values(x) and not sixteen_bit_values(x + 1e-4)
    settings = [SamplingParams(top_p=p, min_keep=k) for p, k in
                zip([0.5, 0.9, 0.95, 0.99] * 6, [1, 1, 2, 1] * 6, strict=True)]
    out = S.process_logits(x, S.RowParams.from_params(settings))
    for i, p in enumerate(settings):
        expected = TopPLogitsWarper(p.top_p, min_tokens_to_keep=p.min_keep)(None, x[i: i + 1])
        assert torch.equal(out[i: i + 1], expected), f"row {i}: p={p.top_p}"
