"""Sampling math: hand-checked transforms, the HF warpers as oracles, and draw statistics."""

from __future__ import annotations

import math

import pytest
import torch
from draw_stats import chi_square_p_value
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from genlab.core.configs import SamplingParams
from genlab.core.generation import sampling as S

NEG = float("-inf")


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# ------------------------------------------------------------------- hand-written logits


def test_temperature_scales_and_off_rows_are_untouched():
    x = t([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.3, -0.7, 0.1]])
    out = S.apply_temperature(x, t([2.0, 1.0, 0.0]))
    assert torch.equal(out[0], t([0.5, 1.0, 1.5]))
    assert torch.equal(out[1:], x[1:])  # 1 = off, 0 = greedy: unscaled


def test_top_k_keeps_ties_with_the_kth():
    x = t([[1.0, 3.0, 2.0, 3.0]] * 4)
    out = S.apply_top_k(x, torch.tensor([1, 3, 0, 10]))
    assert torch.equal(out[0], t([NEG, 3.0, NEG, 3.0]))  # both 3s tie for first
    assert torch.equal(out[1], t([NEG, 3.0, 2.0, 3.0]))
    assert torch.equal(out[2], x[2])  # 0 = off
    assert torch.equal(out[3], x[3])  # k beyond the vocabulary keeps everything


def test_top_p_keeps_smallest_nucleus_and_at_least_one_token():
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    x = torch.stack([logits] * 3)
    out = S.apply_top_p(x, t([0.75, 0.01, 1.0]))
    assert torch.equal(out[0], torch.where(logits >= math.log(0.3), logits, NEG))
    assert torch.equal(out[1], t([logits[0].item(), NEG, NEG, NEG]))  # min_tokens_to_keep
    assert torch.equal(out[2], x[2])


def test_min_p_scales_with_the_top_probability():
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    out = S.apply_min_p(torch.stack([logits] * 3), t([0.5, 1.0, 0.0]))
    assert torch.equal(out[0], t([logits[0].item(), logits[1].item(), NEG, NEG]))
    assert torch.equal(out[1], t([logits[0].item(), NEG, NEG, NEG]))
    assert torch.equal(out[2], logits)


def test_repetition_penalty_over_padded_histories():
    x = t([[2.0, -2.0, 1.0]] * 4)
    history = torch.tensor([[0, 1, 0], [0, 2, 2], [0, 1, 2], [0, 0, 0]])
    mask = torch.tensor([[1, 1, 0], [0, 1, 1], [1, 1, 1], [0, 0, 0]], dtype=torch.bool)
    out = S.apply_repetition_penalty(x, history, t([2.0, 2.0, 1.0, 2.0]), mask)
    assert torch.equal(out[0], t([1.0, -4.0, 1.0]))
    assert torch.equal(out[1], t([2.0, -2.0, 0.5]))  # the pad's id 0 is not penalised
    assert torch.equal(out[2], x[2])  # 1 = off
    assert torch.equal(out[3], x[3])  # nothing in the history


def state_of(params: S.RowParams, history: torch.Tensor, mask: torch.Tensor | None = None,
             vocab: int = 97) -> S.SamplerState:
    """A sampler state whose context is ``history`` (as if it were the prompt)."""
    return S.SamplerState(params, history, mask, steps=1, vocab=vocab)


def test_process_logits_with_everything_off_is_identity():
    x = torch.randn(3, 17)
    params = S.RowParams.from_params([SamplingParams()] * 3)
    before = x.clone()
    assert params.uses == frozenset()
    assert torch.equal(S.process_logits(x, params), x)
    assert torch.equal(x, before)


def test_greedy_rows_keep_penalty_and_skip_warpers():
    x = torch.randn(1, 20)
    params = S.RowParams.from_params([SamplingParams(temperature=0, top_k=1, top_p=0.1,
                                                     repetition_penalty=1.5)])
    expected = RepetitionPenaltyLogitsProcessor(1.5)(torch.tensor([[3]]), x.clone())
    state = state_of(params, torch.tensor([[3]]), vocab=20)
    assert torch.equal(S.process_logits(x, params, state), expected)


# ------------------------------------------------------------------- HF warpers as oracle

SETTINGS = [
    SamplingParams(),
    SamplingParams(temperature=0.7),
    SamplingParams(temperature=1.3, top_k=5),
    SamplingParams(top_k=1),
    SamplingParams(top_k=64),
    SamplingParams(top_p=0.9),
    SamplingParams(top_p=0.3, temperature=0.5),
    SamplingParams(min_p=0.1),
    SamplingParams(min_p=0.5, temperature=2.0),
    SamplingParams(repetition_penalty=1.3),
    SamplingParams(repetition_penalty=0.8, temperature=0.9),
    SamplingParams(temperature=0.8, top_k=20, top_p=0.95, min_p=0.05, repetition_penalty=1.2),
    SamplingParams(top_k=10, top_p=0.5),
    SamplingParams(temperature=0),
    SamplingParams(temperature=0, repetition_penalty=1.4),
]


def oracle_row(logits: torch.Tensor, history: torch.Tensor, p: SamplingParams) -> torch.Tensor:
    """One row through the HF processors/warpers that ``generate`` would build for it."""
    x = logits.unsqueeze(0).clone()
    ids = history.unsqueeze(0)
    if p.repetition_penalty != 1.0:
        x = RepetitionPenaltyLogitsProcessor(float(p.repetition_penalty))(ids, x)
    if p.greedy:
        return x[0]
    if p.temperature != 1.0:
        x = TemperatureLogitsWarper(float(p.temperature))(ids, x)
    if p.top_k:
        x = TopKLogitsWarper(p.top_k)(ids, x)
    if p.top_p < 1.0:
        x = TopPLogitsWarper(p.top_p)(ids, x)
    if p.min_p:
        x = MinPLogitsWarper(p.min_p)(ids, x)
    return x[0]


def random_logits(rows: int, vocab: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, vocab, generator=gen) * 3
    x[:, 7] = x[:, 8]  # ties
    x[::3, :12] = 1.5  # a block of ties
    return x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_process_logits_matches_hf_row_by_row(seed):
    vocab, rows = 97, len(SETTINGS)
    x = random_logits(rows, vocab, seed)
    gen = torch.Generator().manual_seed(seed + 100)
    lengths = torch.randint(1, 9, (rows,), generator=gen)
    history = torch.randint(0, vocab, (rows, 8), generator=gen)
    mask = torch.arange(8).unsqueeze(0) < lengths.unsqueeze(1)  # ragged histories, padded
    params = S.RowParams.from_params(SETTINGS)
    before = x.clone()
    # Right-padded histories: the state fills padding wherever it is.
    out = S.process_logits(x, params, state_of(params, history, mask))
    assert torch.equal(x, before)  # the input is never modified
    for i, p in enumerate(SETTINGS):
        expected = oracle_row(x[i], history[i, : lengths[i]], p)
        assert torch.equal(out[i], expected), f"row {i}: {p}"


@pytest.mark.parametrize("seed", [0, 1])
def test_each_transform_matches_its_hf_warper_with_mixed_rows(seed):
    x = random_logits(8, 64, seed)
    temps = [0.5, 1.0, 1.7, 0.0, 0.9, 1.0, 3.0, 0.2]
    ks = [0, 1, 3, 5, 64, 100, 0, 13]
    ps = [1.0, 0.9, 0.5, 0.05, 0.99, 0.7, 1.0, 0.3]
    min_ps = [0.0, 0.1, 0.5, 1.0, 0.05, 0.3, 0.0, 0.9]
    cases = [
        (S.apply_temperature, temps, lambda v: TemperatureLogitsWarper(v), lambda v: v in (0, 1)),
        (S.apply_top_k, ks, lambda v: TopKLogitsWarper(v), lambda v: v == 0),
        (S.apply_top_p, ps, lambda v: TopPLogitsWarper(v), lambda v: v == 1.0),
        (S.apply_min_p, min_ps, lambda v: MinPLogitsWarper(v), lambda v: v == 0.0),
    ]
    for apply, values, warper, is_off in cases:
        dtype = torch.int64 if apply is S.apply_top_k else torch.float32
        out = apply(x, torch.tensor(values, dtype=dtype))
        for i, v in enumerate(values):
            row = x[i : i + 1]
            expected = row if is_off(v) else warper(v)(None, row.clone())
            assert torch.equal(out[i : i + 1], expected), f"{apply.__name__} row {i} ({v})"


def test_top_p_ties_across_the_cut_follow_hf():
    x = torch.zeros(3, 10)
    x[1, :5] = 1.0
    x[2, ::2] = 2.0
    ps = [0.5, 0.3, 0.45]
    out = S.apply_top_p(x, t(ps))
    for i, p in enumerate(ps):
        assert torch.equal(out[i : i + 1], TopPLogitsWarper(p)(None, x[i : i + 1].clone()))


# --------------------------------------------------------------------------- statistics

DIST_LOGITS = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0])


def expected_probs(p: SamplingParams) -> torch.Tensor:
    """The distribution each setting should sample from, computed from the definitions."""
    probs = torch.softmax(DIST_LOGITS.double() / p.temperature, dim=-1)  # logits are sorted
    keep = torch.ones(len(probs), dtype=torch.bool)
    if p.top_k:
        keep[p.top_k :] = False
    probs = torch.where(keep, probs, 0.0)
    probs = probs / probs.sum()
    if p.top_p < 1.0:  # smallest prefix of the sorted tokens with mass >= p
        mass_before = torch.cumsum(probs, 0) - probs
        keep &= mass_before < p.top_p
    probs = torch.where(keep, probs, 0.0)
    probs = probs / probs.sum()
    if p.min_p:
        keep &= probs >= p.min_p * probs.max()
    probs = torch.where(keep, probs, 0.0)
    return probs / probs.sum()


@pytest.mark.parametrize("params", [
    SamplingParams(),
    SamplingParams(temperature=0.5),
    SamplingParams(temperature=2.0),
    SamplingParams(top_k=3),
    SamplingParams(top_p=0.8),
    SamplingParams(temperature=1.5, top_p=0.6),
    SamplingParams(min_p=0.2),
], ids=lambda p: f"T{p.temperature}-k{p.top_k}-p{p.top_p}-m{p.min_p}")
def test_draws_match_the_analytic_distribution(params):
    draws = 3000
    logits = DIST_LOGITS.expand(draws, -1)
    row_params = S.RowParams.from_params([params] * draws)
    processed = S.process_logits(logits, row_params)
    generators = [torch.Generator().manual_seed(1000 + i) for i in range(draws)]
    tokens = S.pick_tokens(processed, row_params.greedy, generators)
    counts = torch.bincount(tokens, minlength=len(DIST_LOGITS))
    probs = expected_probs(params)
    assert counts[probs == 0].sum() == 0, "a filtered token was drawn"
    assert chi_square_p_value(counts, probs) > 1e-3


def test_filtered_tokens_are_never_drawn_even_at_extreme_uniforms():
    x = t([[NEG, 0.0, NEG, 1.0, NEG]] * 4)
    uniforms = torch.tensor([0.0, 1 - 2**-53, 0.5, 1e-300], dtype=torch.float64)
    tokens, _ = S.pick_with_uniforms(x, torch.zeros(4, dtype=torch.bool), uniforms)
    assert set(tokens.tolist()) <= {1, 3}
    assert tokens[0] == 1 and tokens[1] == 3


def test_draws_depend_only_on_each_rows_generator():
    x = torch.randn(6, 50)
    greedy = torch.tensor([False, True, False, False, True, False])

    def run(rows: list[int]) -> list[int]:
        gens = [torch.Generator().manual_seed(7 * r) for r in rows]
        return S.pick_tokens(x[rows], greedy[rows], gens).tolist()

    together = run(list(range(6)))
    assert together == [run([r])[0] for r in range(6)]
    assert together[1] == int(x[1].argmax()) and together[4] == int(x[4].argmax())
    assert together == run(list(range(6)))
