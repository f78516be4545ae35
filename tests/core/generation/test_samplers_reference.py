"""Stages transformers lacks, against loop-per-row references of their published definitions.

The references below are written from the definitions (OpenAI's presence/frequency penalties,
llama.cpp's sampler descriptions, the DRY and XTC write-ups by p-e-w, the top-nσ and mirostat
papers), one row and one token at a time in float64, independent of the batched kernels. Each
batch mixes settings (and rows where the stage is off); draws are checked with chi-square.
"""

from __future__ import annotations

import math

import pytest
import torch
from draw_stats import chi_square_p_value
from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

from genlab.core.configs import SamplingParams
from genlab.core.generation import sampling as S

NEG = float("-inf")
VOCAB = 40


def logits(rows: int, seed: int, scale: float = 2.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(rows, VOCAB, generator=gen) * scale


def replay(settings: list[SamplingParams], prompt: list[list[int]], generated: list[list[int]],
           **kwargs) -> tuple[S.RowParams, S.SamplerState]:
    """A state after ``prompt`` (left-padded) and ``generated`` (same length per row)."""
    params = S.RowParams.from_params(settings)
    width = max(len(p) for p in prompt)
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompt])
    mask = torch.tensor([[False] * (width - len(p)) + [True] * len(p) for p in prompt])
    steps = max(len(g) for g in generated) + 2
    state = S.SamplerState(params, ids, mask if not mask.all() else None, steps, VOCAB,
                           **kwargs)
    for t in range(len(generated[0])):
        state.update(torch.tensor([g[t] for g in generated]), None)
    return params, state


def softmax(row: list[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(v - top) if v > NEG else 0.0 for v in row]
    total = sum(exps)
    return [e / total for e in exps]


# ----------------------------------------------------------- presence, frequency, window


def presence_frequency_ref(row: list[float], prompt: list[int], generated: list[int],
                           p: SamplingParams) -> list[float]:
    """OpenAI: logit - (presence * [count > 0] + frequency * count), generated tokens only."""
    context = prompt + generated
    window = context[-p.repeat_last_n:] if p.repeat_last_n else context
    counted = generated[-min(len(generated), len(window)):] if generated else []
    counts: dict[int, int] = {}
    for token in counted:
        counts[token] = counts.get(token, 0) + 1
    out = list(row)
    for token, c in counts.items():
        out[token] -= p.presence_penalty * (c > 0) + p.frequency_penalty * c
    return out


def test_presence_and_frequency_follow_openai_with_windows():
    settings = [SamplingParams(presence_penalty=1.5),
                SamplingParams(frequency_penalty=0.7),
                SamplingParams(presence_penalty=-0.5, frequency_penalty=1.2, repeat_last_n=4),
                SamplingParams(),
                SamplingParams(frequency_penalty=2.0, repeat_last_n=2),
                SamplingParams(presence_penalty=0.3, temperature=0)]  # greedy rows keep it
    prompt = [[1, 2, 3], [4, 4], [5], [1], [6, 7, 8, 9], [2, 2]]
    generated = [[3, 3, 1, 3, 9], [4, 2, 2, 2, 7], [5, 5, 6, 5, 5], [1, 1, 1, 1, 1],
                 [9, 9, 3, 9, 9], [2, 10, 11, 10, 2]]
    params, state = replay(settings, prompt, generated)
    x = logits(len(settings), 0)
    out = S.process_logits(x, params, state)
    for i, p in enumerate(settings):
        expected = torch.tensor(presence_frequency_ref(x[i].tolist(), prompt[i],
                                                       generated[i], p))
        assert torch.allclose(out[i], expected, atol=1e-5), f"row {i}"


def test_repetition_penalty_window_is_hf_on_the_last_n_tokens():
    settings = [SamplingParams(repetition_penalty=1.8, repeat_last_n=n) for n in (0, 1, 3, 6)]
    prompt = [[1, 2, 3, 4]] * 4
    generated = [[5, 6, 1, 7]] * 4
    params, state = replay(settings, prompt, generated)
    x = logits(4, 1)
    out = S.process_logits(x, params, state)
    context = prompt[0] + generated[0]
    for i, p in enumerate(settings):
        window = context[-p.repeat_last_n:] if p.repeat_last_n else context
        hf = RepetitionPenaltyLogitsProcessor(p.repetition_penalty)(
            torch.tensor([window]), x[i: i + 1].clone())
        assert torch.equal(out[i: i + 1], hf), f"last {p.repeat_last_n}"


# ------------------------------------------------------------------------------ DRY

TEXTS = [f"t{i}" for i in range(VOCAB)]
TEXTS[9] = "\n"
TEXTS[13] = "a:b"  # contains a breaker


def dry_ref(row: list[float], context: list[int], p: SamplingParams) -> list[float]:
    """p-e-w's DRY: the longest repeat each next token would extend, penalised past allowed."""
    breakers = {i for i, text in enumerate(TEXTS) if any(b in text for b in
                                                          p.dry_sequence_breakers)}
    out = list(row)
    last = len(context) - 1
    if context[last] in breakers:
        return out
    longest: dict[int, int] = {}
    for i in range(last):
        following = context[i + 1]
        if context[i] != context[last] or following in breakers:
            continue
        length = 0
        while (i - length >= 0 and context[i - length] == context[last - length]
               and context[last - length] not in breakers):
            length += 1
        longest[following] = max(longest.get(following, 0), length)
    for token, length in longest.items():
        if length >= p.dry_allowed_length:
            out[token] -= p.dry_multiplier * p.dry_base ** (length - p.dry_allowed_length)
    return out


@pytest.mark.parametrize("split", [0, 3, 7])
def test_dry_matches_the_reference_with_breakers_padding_and_incremental_state(split):
    contexts = [
        [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3],  # a loop: 4 follows a long repeat
        [5, 6, 9, 5, 6, 9, 5, 6],  # "\n" breaks every match
        [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7],  # self-overlapping repeat
        [3, 13, 3, 4, 3, 13, 3, 4, 3],  # a token with ":" inside breaks
        [2, 4, 2, 4, 2, 4, 2, 4, 9, 2, 4],
        [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2],
    ]
    settings = [SamplingParams(dry_multiplier=0.8),
                SamplingParams(dry_multiplier=1.0, dry_base=2.0, dry_allowed_length=1),
                SamplingParams(dry_multiplier=0.5, dry_allowed_length=3),
                SamplingParams(dry_multiplier=0.8),
                SamplingParams(dry_multiplier=0.8, dry_sequence_breakers="none"),
                SamplingParams()]
    prompt = [c[: max(1, len(c) - 8 + split)] for c in contexts]
    generated = [c[len(p):] for c, p in zip(contexts, prompt, strict=True)]
    width = min(len(g) for g in generated)
    prompt = [c[: len(c) - width] for c in contexts]
    generated = [c[len(c) - width:] for c in contexts]
    params, state = replay(settings, prompt, generated, token_texts=lambda: TEXTS)
    x = logits(len(settings), 2)
    out = S.process_logits(x, params, state)
    for i, p in enumerate(settings):
        expected = x[i] if p.dry_multiplier == 0 else torch.tensor(
            dry_ref(x[i].tolist(), contexts[i], p))
        assert torch.allclose(out[i], expected, atol=1e-4), f"row {i}: {contexts[i]}"
    assert out[0, 4] < x[0, 4] - 1  # the loop's next token is pushed down hard


# ------------------------------------------------------------------------------ XTC


def xtc_ref(row: list[float], chance: float, p: SamplingParams) -> list[float]:
    """XTC: if it fires, remove every token >= threshold except the least likely of them."""
    if chance >= p.xtc_probability:
        return list(row)
    probs = softmax(row)
    above = [i for i, q in enumerate(probs) if q >= p.xtc_threshold]
    if len(above) < 2:
        return list(row)
    least = min(above, key=lambda i: probs[i])
    alive = sum(1 for v in row if v > NEG)
    if alive - (len(above) - 1) < p.min_keep:
        return list(row)
    return [NEG if i in above and i != least else v for i, v in enumerate(row)]


def test_xtc_matches_the_reference_and_uses_each_rows_chance():
    settings = [SamplingParams(xtc_probability=1.0, xtc_threshold=0.1),
                SamplingParams(xtc_probability=0.5, xtc_threshold=0.05),
                SamplingParams(xtc_probability=0.5, xtc_threshold=0.05),
                SamplingParams(xtc_probability=1.0, xtc_threshold=0.5),
                SamplingParams(xtc_probability=1.0, xtc_threshold=0.01, min_keep=39),
                SamplingParams()]
    chances = torch.tensor([[0.3], [0.2], [0.7], [0.0], [0.1], [0.0]], dtype=torch.float64)
    params, state = replay(settings, [[1]] * 6, [[]] * 6, xtc_uniforms=chances)
    x = logits(6, 3, scale=1.5)
    out = S.process_logits(x, params, state)
    for i, p in enumerate(settings):
        expected = x[i] if p.xtc_probability == 0 else torch.tensor(
            xtc_ref(x[i].tolist(), float(chances[i, 0]), p))
        assert torch.equal(out[i], expected), f"row {i}"
    assert torch.equal(out[2], x[2]) and not torch.equal(out[1], x[1])  # chance decides


# ------------------------------------------------------------------------- top-n-sigma


def top_n_sigma_ref(row: list[float], n: float) -> list[float]:
    """Top-nσ: keep logits >= max - n * std, std over the tokens still in play."""
    alive = [v for v in row if v > NEG]
    if len(alive) <= 1:
        return list(row)
    mean = sum(alive) / len(alive)
    std = math.sqrt(sum((v - mean) ** 2 for v in alive) / len(alive))
    floor = max(alive) - n * std
    return [v if v >= floor else NEG for v in row]


def test_top_n_sigma_matches_the_reference_and_ignores_temperature():
    ns = [0.5, 1.0, 2.0, 0.0, 3.0]
    x = logits(len(ns), 4)
    x[1, :10] = NEG  # tokens already out of play do not count in the std
    out = S.process_logits(x, S.RowParams.from_params([SamplingParams(top_n_sigma=n)
                                                       for n in ns]))
    for i, n in enumerate(ns):
        expected = x[i] if n == 0 else torch.tensor(top_n_sigma_ref(x[i].tolist(), n))
        assert torch.equal(out[i], expected), f"n={n}"
    hot = S.process_logits(x, S.RowParams.from_params(
        [SamplingParams(top_n_sigma=n, temperature=2.5) for n in ns]))
    assert torch.equal(torch.isinf(hot), torch.isinf(out))  # the same set at any temperature


# ------------------------------------------------------------------- dynamic temperature


def dynatemp_ref(row: list[float], p: SamplingParams) -> list[float]:
    """llama.cpp's dynatemp: T from the normalised entropy of the tokens in play."""
    alive = [v for v in row if v > NEG]
    if len(alive) <= 1:
        return list(row)
    probs = softmax(row)
    entropy = -sum(q * math.log(q) for q in probs if q > 0)
    low = max(0.0, p.temperature - p.dynatemp_range)
    high = p.temperature + p.dynatemp_range
    t = low + (high - low) * (entropy / math.log(len(alive))) ** p.dynatemp_exponent
    return [v / t for v in row]


def test_dynatemp_matches_the_reference():
    settings = [SamplingParams(dynatemp_range=0.5), SamplingParams(temperature=0.7),
                SamplingParams(temperature=0.8, dynatemp_range=0.6, dynatemp_exponent=2.0),
                SamplingParams(temperature=1.5, dynatemp_range=1.4, dynatemp_exponent=0.5),
                SamplingParams(top_k=5, dynatemp_range=1.0, sampler_order="llama.cpp")]
    x = logits(len(settings), 5)
    out = S.process_logits(x, S.RowParams.from_params(settings))
    for i, p in enumerate(settings[:4]):
        expected = torch.tensor(dynatemp_ref(x[i].tolist(), p)) if p.dynatemp_range else \
            x[i] / p.temperature
        assert torch.allclose(out[i], expected, rtol=1e-5), f"row {i}"
    top5 = torch.where(x[4] >= x[4].topk(5).values[-1], x[4], NEG)  # llama.cpp: k then T
    assert torch.allclose(out[4], torch.tensor(dynatemp_ref(top5.tolist(), settings[4])),
                          rtol=1e-5)


# ------------------------------------------------------------------------------ mirostat


def mirostat_ref(row: list[float], version: int, mu: float) -> list[float]:
    """Mirostat's truncation at ``mu`` (v2: surprise cut; v1: Zipf-estimated top-k)."""
    probs = softmax(row)
    if version == 2:
        top = max(probs)
        return [v if (-math.log2(q) <= mu if q > 0 else False) or q == top else NEG
                for v, q in zip(row, probs, strict=True)]
    ranked = sorted((q for q in probs if q > 0), reverse=True)
    m = min(100, len(ranked))
    num = den = 0.0
    for i in range(m - 1):
        t = math.log((i + 2) / (i + 1))
        num += t * math.log(ranked[i] / ranked[i + 1])
        den += t * t
    s = num / den
    eps = s - 1
    k = ((eps * 2 ** mu) / (1 - len(probs) ** (-eps))) ** (1 / s)
    k = max(1, min(len(probs), int(k)))
    floor = sorted(probs, reverse=True)[k - 1]
    return [v if q >= floor else NEG for v, q in zip(row, probs, strict=True)]


def test_mirostat_truncation_matches_the_reference():
    settings = [SamplingParams(mirostat=2, mirostat_tau=t) for t in (1.0, 3.0, 5.0)] + \
               [SamplingParams(mirostat=1, mirostat_tau=t) for t in (1.0, 3.0, 5.0)] + \
               [SamplingParams()]
    params, state = replay(settings, [[1]] * 7, [[]] * 7)
    x = logits(7, 6, scale=3.0)
    out = S.process_logits(x, params, state)
    for i, p in enumerate(settings[:6]):
        expected = torch.tensor(mirostat_ref(x[i].tolist(), p.mirostat, 2 * p.mirostat_tau))
        assert torch.equal(torch.isinf(out[i]), torch.isinf(expected)), f"row {i}"
    assert torch.equal(out[6], x[6])


def test_mirostat_steers_the_observed_surprise_toward_tau():
    tau, rows, steps = 3.0, 64, 150
    settings = [SamplingParams(mirostat=v, mirostat_tau=tau, mirostat_eta=0.1) for v in (1, 2)]
    params, state = replay([settings[i % 2] for i in range(rows)], [[1]] * rows, [[]] * rows)
    ranks = torch.arange(1, VOCAB + 1, dtype=torch.float32)
    x = (-1.1 * ranks.log()).expand(rows, -1)  # a Zipf-like distribution, 6+ bits of entropy
    gens = [torch.Generator().manual_seed(i) for i in range(rows)]
    surprise = torch.zeros(rows)
    for step in range(steps):
        processed = S.process_logits(x, params, state)
        u = torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in gens])
        tokens, probs = S.pick_with_uniforms(processed, params.greedy, u)
        chosen = probs.gather(1, tokens.unsqueeze(1)).squeeze(1)
        mu_before = state.mu.clone()
        state.update(tokens, chosen)
        expected_mu = mu_before - 0.1 * (-torch.log2(chosen) - tau)
        assert torch.allclose(state.mu, expected_mu, atol=1e-5)
        if step >= 50:
            surprise += -torch.log2(chosen)
    mean = surprise / (steps - 50)
    for version in (0, 1):  # rows of v1 and of v2
        assert abs(float(mean[version::2].mean()) - tau) < 0.35


# ------------------------------------------------------------------- chi-square on draws

ROWS = 3000
DIST = torch.tensor([2.0, 1.6, 1.2, 0.9, 0.5, 0.2, 0.0, -0.4, -1.0, -2.5])


def draw_counts(settings: SamplingParams, **state_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Counts of ``ROWS`` draws from ``DIST`` under ``settings``, and the processed row 0."""
    x = DIST.expand(ROWS, -1)
    params = S.RowParams.from_params([settings] * ROWS)
    state = S.SamplerState(params, torch.zeros(ROWS, 1, dtype=torch.long), None, 2,
                           len(DIST), **state_kwargs)
    processed = S.process_logits(x, params, state)
    gens = [torch.Generator().manual_seed(5000 + i) for i in range(ROWS)]
    tokens = S.pick_tokens(processed, params.greedy, gens)
    return torch.bincount(tokens, minlength=len(DIST)), processed[0]


def reference_probs(row: list[float]) -> torch.Tensor:
    return torch.tensor(softmax(row), dtype=torch.float64)


@pytest.mark.parametrize("settings, reference", [
    (SamplingParams(typical_p=0.6), None),
    (SamplingParams(epsilon_cutoff=0.05), None),
    (SamplingParams(eta_cutoff=0.08), None),
    (SamplingParams(top_n_sigma=1.0), lambda row: top_n_sigma_ref(row, 1.0)),
    (SamplingParams(dynatemp_range=0.8, temperature=1.2),
     lambda row: dynatemp_ref(row, SamplingParams(dynatemp_range=0.8, temperature=1.2))),
    (SamplingParams(mirostat=2, mirostat_tau=1.2), lambda row: mirostat_ref(row, 2, 2.4)),
    (SamplingParams(mirostat=1, mirostat_tau=1.5), lambda row: mirostat_ref(row, 1, 3.0)),
], ids=["typical", "epsilon", "eta", "top-n-sigma", "dynatemp", "mirostat2", "mirostat1"])
def test_draws_follow_the_processed_distribution(settings, reference):
    counts, processed = draw_counts(settings)
    row = reference(DIST.tolist()) if reference is not None else processed.tolist()
    probs = reference_probs(row)
    if settings.dynatemp_range:  # reshapes without cutting
        assert not torch.allclose(probs, reference_probs(DIST.tolist()), atol=1e-3)
    else:
        assert (probs > 0).sum() < len(DIST)  # the stage cut something
    assert counts[probs == 0].sum() == 0, "a removed token was drawn"
    assert chi_square_p_value(counts, probs) > 1e-3


def test_xtc_draws_are_a_mixture_of_cut_and_uncut():
    settings = SamplingParams(xtc_probability=0.4, xtc_threshold=0.1)
    chances = torch.cat([torch.rand(1, 2, generator=torch.Generator().manual_seed(i),
                                    dtype=torch.float64) for i in range(ROWS)])
    counts, _ = draw_counts(settings, xtc_uniforms=chances)
    plain = reference_probs(DIST.tolist())
    cut = reference_probs(xtc_ref(DIST.tolist(), 0.0, settings))
    mixture = 0.4 * cut + 0.6 * plain
    assert chi_square_p_value(counts, mixture) > 1e-3
