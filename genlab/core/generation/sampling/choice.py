"""Choosing the token: the argmax for greedy rows, an inverse-CDF draw for the others.

A sampling row draws one uniform number per step from its own ``torch.Generator`` (drawn up
front for the whole run by ``draw_uniforms``), so its tokens depend on its seed only, never on
which other rows share the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genlab.core.configs import GenerationRequest
from genlab.core.generation.sampling.common import argmax


def sample_from_probs(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw of one token per row from ``[rows, vocab]`` probabilities.

    A token of probability 0 is never chosen: the CDF is flat across it, and the target
    ``u * total`` stays strictly below the total because ``u`` is at most the largest float
    below 1 (in float64, or float32 on MPS) and the total mass of a softmax is near 1. A row
    whose every token was banned (NaN probabilities) gets a valid id rather than a crash.
    """
    dtype = torch.float32 if probs.device.type == "mps" else torch.float64  # MPS lacks f64
    cdf = probs.cumsum(dim=-1, dtype=dtype)  # [rows, vocab]
    target = (uniforms.to(dtype) * cdf[:, -1]).unsqueeze(1)  # [rows, 1]
    drawn = torch.searchsorted(cdf, target, right=True).squeeze(1)  # [rows]
    return drawn.clamp_(max=probs.shape[-1] - 1)


def pick_with_uniforms(
    processed_logits: torch.Tensor,
    greedy_mask: torch.Tensor,
    uniforms: torch.Tensor,
    *,
    any_greedy: bool = True,
    any_sample: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Choose tokens: argmax for greedy rows, inverse-CDF draw for the others.

    Args:
        processed_logits: ``[rows, vocab]`` output of ``process_logits``.
        greedy_mask: ``[rows]`` bool.
        uniforms: ``[rows]`` float64 in [0, 1), one per row (ignored for greedy rows).
        any_greedy: False skips the argmax (no greedy row in the batch).
        any_sample: False skips the softmax and the draw (every row is greedy).

    Returns:
        The ``[rows]`` chosen ids and the post-transform probabilities (None if no row samples).
    """
    if not any_sample:
        return argmax(processed_logits), None
    probs = processed_logits.softmax(dim=-1)
    drawn = sample_from_probs(probs, uniforms)
    if any_greedy:
        drawn = torch.where(greedy_mask, argmax(processed_logits), drawn)
    return drawn, probs


def pick_tokens(
    processed_logits: torch.Tensor,
    greedy_mask: torch.Tensor,
    generators: Sequence[torch.Generator],
) -> torch.Tensor:
    """Choose one token per row, each sampling row drawing from its own generator.

    Args:
        processed_logits: ``[rows, vocab]`` output of ``process_logits``.
        greedy_mask: ``[rows]`` bool; True rows take the argmax.
        generators: One ``torch.Generator`` per row.

    Returns:
        ``[rows]`` int64 token ids.
    """
    uniforms = torch.cat([torch.rand(1, generator=g, dtype=torch.float64, device=g.device)
                          for g in generators]).to(processed_logits.device)  # [rows]
    tokens, _ = pick_with_uniforms(processed_logits, greedy_mask, uniforms,
                                   any_greedy=bool(greedy_mask.any()),
                                   any_sample=not bool(greedy_mask.all()))
    return tokens


def draw_uniforms(requests: list[GenerationRequest], steps: int, xtc: bool
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``[rows, steps]`` float64 uniforms, one per step, each row from its own seeded generator.

    Drawn on the CPU once per run: a row's draws are then the same on every device and
    independent of the batch. Rows shorter than ``steps`` are zero-padded (never read). With
    ``xtc``, each XTC row then draws its XTC chances from the same generator, after its token
    uniforms: switching XTC on leaves a row's token draws as they were.
    """
    out = torch.zeros(len(requests), steps, dtype=torch.float64)
    chances = torch.ones(len(requests), steps, dtype=torch.float64) if xtc else None
    for i, req in enumerate(requests):
        gen = torch.Generator(device="cpu").manual_seed(req.seed)
        n = req.params.max_new_tokens
        out[i, :n] = torch.rand(n, generator=gen, dtype=torch.float64)
        if chances is not None and req.params.xtc_probability > 0 and not req.params.greedy:
            chances[i, :n] = torch.rand(n, generator=gen, dtype=torch.float64)
    return out, chances
