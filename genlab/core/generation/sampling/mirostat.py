"""Mirostat (Basu et al., 2021): steer each token's surprise toward a target tau.

Each row keeps ``mu`` (starts at 2 x tau). Per step, on the probabilities of the tokens still in
play:

* **v2** drops every token whose surprise ``-log2 p`` exceeds mu (the top token stays);
* **v1** estimates the Zipf exponent ``s`` of the distribution from its 100 most likely
  tokens (least squares of ``log(p_i / p_i+1)`` on ``log((i + 2) / (i + 1))``), turns mu into
  ``k = ((e 2^mu) / (1 - V^-e))^(1 / s)`` with ``e = s - 1``, and keeps the top k.

After the draw, the observed surprise ``-log2 p(token)`` (under the distribution drawn from)
moves mu: ``mu -= eta x (surprise - tau)``; ``update_mu`` does that in ``SamplerState``.
"""

from __future__ import annotations

import torch

from genlab.core.generation.sampling.common import (
    NEG_INF,
    extreme_values,
    finite_count,
    kth_largest_any,
    protect_top,
)

ZIPF_TOKENS = 100


def mirostat_kernel(x: torch.Tensor, mu: torch.Tensor, version: torch.Tensor,
                    keep: tuple | None, has_v1: bool) -> torch.Tensor:
    """Mirostat v1 / v2 truncation.

    Args:
        x: ``[n, vocab]`` logits; ``mu``: ``[n]`` each row's current mu.
        version: ``[n, 1]`` int64, 1 or 2; ``has_v1``: some row is version 1.
        keep: min-keep above 1, or None.
    """
    probs = x.softmax(dim=-1)
    mu = mu.unsqueeze(1).to(x.dtype)  # [n, 1]
    # v2: surprise -log2 p above mu goes (p below 2^-mu); the most likely token always stays.
    floor = torch.minimum(torch.exp2(-mu), probs.amax(dim=-1, keepdim=True))
    remove = probs < floor
    if has_v1:
        k = zipf_top_k(probs, mu, finite_count(x))  # [n, 1]
        kth = kth_largest_any(probs, k)
        remove = torch.where(version == 1, probs < kth, remove)
    return x.masked_fill_(protect_top(remove, x, keep), NEG_INF)


def zipf_top_k(probs: torch.Tensor, mu: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """``[n, 1]`` int64 mirostat v1's k from the top-100 probabilities (at least 1).

    ``alive`` ``[n, 1]``: how many tokens are still in play (earlier stages may have cut some).
    Torch ops only, so nothing waits for the device.
    """
    vocab = probs.shape[-1]
    m = min(ZIPF_TOKENS, vocab)
    top = extreme_values(probs, m).double()  # [n, m] descending
    count = alive.clamp(max=m)  # tokens in play among the top m
    i = torch.arange(m - 1, device=probs.device, dtype=torch.float64)
    t = torch.log((i + 2) / (i + 1))  # [m - 1]
    pairs = i.unsqueeze(0) < (count - 1)  # [n, m - 1] both p_i and p_i+1 in play
    b = torch.where(pairs, torch.log(top[:, :-1] / top[:, 1:]), 0.0)
    s_hat = (t * b).sum(dim=-1, keepdim=True) / (torch.where(pairs, t * t, 0.0)
                                                .sum(dim=-1, keepdim=True).clamp(min=1e-300))
    eps = s_hat - 1
    k = ((eps * torch.pow(2.0, mu.double())) / (1 - torch.pow(float(vocab), -eps))
         ).pow(1 / s_hat)
    k = torch.nan_to_num(k, nan=float(vocab), posinf=float(vocab), neginf=1.0)
    return k.clamp(1, vocab).floor().long()


def update_mu(mu: torch.Tensor, chosen_prob: torch.Tensor, tau: torch.Tensor,
              eta: torch.Tensor, on: torch.Tensor) -> torch.Tensor:
    """mu after a draw: ``mu - eta x (-log2 p(chosen) - tau)`` on mirostat rows (all ``[B]``)."""
    surprise = -torch.log2(chosen_prob.to(mu.dtype).clamp(min=1e-45))
    return torch.where(on, mu - eta * (surprise - tau), mu)


def initial_mu(tau: torch.Tensor) -> torch.Tensor:
    """mu before the first token: twice the target surprise."""
    return 2.0 * tau
