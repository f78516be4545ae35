"""DRY ("Don't Repeat Yourself", p-e-w): penalise tokens that would extend a repeat.

For every earlier position i of the context whose token equals the last one, the match
length m(i) counts how far the text ending at i equals the text ending now, going backwards
and stopping at a sequence breaker (a token whose text contains one of the breaker strings).
The token that followed position i would extend that repeat; if ``m >= allowed_length`` it
loses ``multiplier x base^(m - allowed_length)`` (the largest m counts when several positions
lead to the same token). Breaker tokens are never penalised, and a context ending on a
breaker penalises nothing. The exponent is capped so the penalty stays finite (as llama.cpp).

The match lengths are state, updated in O(length) per step instead of recomputed: when a
token y is appended, ``m'(i) = 1 + m(i - 1)`` where token i equals y (and y is no breaker),
else 0. ``initial_matches`` computes them once for the prompt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

FLOAT32_MAX_LOG = math.log(torch.finfo(torch.float32).max)


def breaker_table(token_texts: Sequence[str], breakers: tuple[str, ...],
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """``[vocab]`` bool: True for every token whose text contains a breaker string."""
    flags = [any(b in text for b in breakers) for text in token_texts] if breakers else \
        [False] * len(token_texts)
    return torch.tensor(flags, dtype=torch.bool, device=device)


def initial_matches(history: torch.Tensor, real: torch.Tensor, breakers: torch.Tensor
                    ) -> torch.Tensor:
    """``[B, length]`` int32 match lengths of every position against the last one.

    Args:
        history: ``[B, length]`` ids (prompt, left-padded).
        real: ``[B, length]`` bool, False on padding.
        breakers: ``[B, vocab]`` bool breaker table of each row.
    """
    rows, length = history.shape
    ok = real & ~breakers.gather(1, history)  # [B, length]: tokens a match may cover
    out = torch.zeros(rows, length, dtype=torch.int32, device=history.device)
    alive = torch.ones(rows, length, dtype=torch.bool, device=history.device)
    for k in range(length - 1):  # compare position i - k with position length - 1 - k
        shifted_ids = torch.full_like(history, -1)
        shifted_ok = torch.zeros_like(ok)
        shifted_ids[:, k:] = history[:, : length - k]
        shifted_ok[:, k:] = ok[:, : length - k]
        end_id = history[:, length - 1 - k: length - k]  # [B, 1]
        end_ok = ok[:, length - 1 - k: length - k]
        alive &= (shifted_ids == end_id) & shifted_ok & end_ok
        if not bool(alive.any()):
            break
        out += alive.int()
    out[:, length - 1] = 0  # the last position matches itself: never counted
    return out


def advance_matches(matches: torch.Tensor, history: torch.Tensor, real: torch.Tensor | None,
                    breakers: torch.Tensor, length: int) -> None:
    """Update ``matches[:, :length]`` in place after ``history[:, length - 1]`` was appended.

    Args:
        matches: ``[B, capacity]`` int32 match lengths against the old last token.
        history: ``[B, capacity]`` ids, ``length`` of them filled.
        real: ``[B, capacity]`` bool or None (no padding).
        breakers: ``[B, vocab]`` bool.
    """
    new = history[:, length - 1: length]  # [B, 1]
    new_ok = ~breakers.gather(1, new)  # [B, 1]
    equal = (history[:, : length - 1] == new) & new_ok  # [B, length - 1]
    if real is not None:
        equal &= real[:, : length - 1]
    previous = torch.zeros_like(matches[:, : length - 1])
    previous[:, 1:] = matches[:, : length - 2]
    matches[:, : length - 1] = torch.where(equal, previous + 1, 0)
    matches[:, length - 1] = 0


def dry_kernel(x: torch.Tensor, history: torch.Tensor, matches: torch.Tensor,
               breakers: torch.Tensor, multiplier: torch.Tensor, base: torch.Tensor,
               allowed: torch.Tensor) -> torch.Tensor:
    """Subtract each candidate's DRY penalty.

    Args:
        x: ``[n, vocab]`` logits.
        history: ``[n, length]`` ids; ``matches``: ``[n, length]`` int32 match lengths.
        breakers: ``[n, vocab]`` bool.
        multiplier, base: ``[n, 1]`` float32; ``allowed``: ``[n, 1]`` int64.
    """
    if history.shape[1] < 2:
        return x
    nxt = history[:, 1:]  # [n, length - 1]: the token that followed each position
    m = matches[:, :-1].long()
    penalised = (m >= allowed) & ~breakers.gather(1, nxt)
    cap = torch.where(base > 1, FLOAT32_MAX_LOG / torch.log(base).clamp(min=1e-30),
                      torch.inf)  # [n, 1]
    exponent = torch.minimum((m - allowed).to(x.dtype), cap)
    penalty = torch.where(penalised, multiplier * base ** exponent, 0.0)
    return x.scatter_reduce_(1, nxt, x.gather(1, nxt) - penalty, reduce="amin",
                             include_self=True)
