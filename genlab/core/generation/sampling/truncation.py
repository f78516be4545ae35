"""Truncation samplers: top-k, top-p, min-p, typical-p, epsilon, eta and top-nσ kernels.

Each kernel gets ``[n, vocab]`` logits of the rows that use it (a private copy it may change in
place) and their parameters shaped ``[n, 1]``, and sets the tokens it drops to -inf. The ones
transformers has match its warpers bit for bit (ties and ``min_tokens_to_keep`` included); the
tests use them as oracles. ``keep`` is ``(min_keep [n, 1], its max)`` for rows whose min-keep
is above 1, else None.
"""

from __future__ import annotations

import torch

from genlab.core.generation.sampling.common import (
    NEG_INF,
    finite_count,
    kth_largest,
    protect_top,
    sort_with_indices,
    sorted_values,
)
from genlab.core.generation.sampling.nucleus import top_p_threshold


def top_k_kernel(x: torch.Tensor, k: torch.Tensor, k_max: int) -> torch.Tensor:
    """``TopKLogitsWarper``: drop tokens below each row's k-th largest logit (``k`` [n, 1]).

    ``k`` already includes min-keep (``max(k, min_keep)``, as transformers does). One
    ``topk`` of the largest ``k_max`` values replaces a sort of the whole vocabulary.
    """
    return x.masked_fill_(x < kth_largest(x, k, k_max), NEG_INF)


def filter_kernel(x: torch.Tensor, kth_index: torch.Tensor | None, cut: torch.Tensor,
                  keep_count: torch.Tensor | None) -> torch.Tensor:
    """Top-k (optional) then top-p from one sort of each row, bit-identical to the HF warpers.

    Args:
        x: ``[n, vocab]`` logits.
        kth_index: ``[n, 1]`` ascending-order position of each row's k-th largest value
            (``vocab - k``; 0 = keep all), or None when no row uses top-k.
        cut: ``[n, 1]`` float32 ``1 - top_p`` (-1 = off).
        keep_count: ``[n, 1]`` min-keep of rows above 1 (top-p never drops the largest ones),
            or None.
    """
    s = None
    if kth_index is not None:
        s = sorted_values(x)  # [n, vocab] ascending
        threshold = s.gather(1, kth_index)  # TopKLogitsWarper drops x < k-th largest value
        s.masked_fill_(s < threshold, NEG_INF)  # = the sorted top-k-filtered row
        x.masked_fill_(x < threshold, NEG_INF)
    kept_min = top_p_threshold(x, cut, keep_count, s)
    if kept_min is None:  # equal values straddle the cut: transformers' own sort decides
        return top_p_by_sort(x, cut, keep_count)
    return x.masked_fill_(x < kept_min, NEG_INF)


def top_p_by_sort(x: torch.Tensor, cut: torch.Tensor, keep_count: torch.Tensor | None
                  ) -> torch.Tensor:
    """``TopPLogitsWarper``'s own ops (index sort and scatter), with per-row min-keep."""
    sorted_x, sorted_idx = torch.sort(x, descending=False)
    sorted_remove = sorted_x.softmax(dim=-1).cumsum(dim=-1) <= cut
    vocab = x.shape[-1]
    if keep_count is None:
        sorted_remove[:, -1] = False  # min_tokens_to_keep = 1
    else:
        positions = torch.arange(vocab, device=x.device)
        sorted_remove &= positions < vocab - keep_count
    return x.masked_fill(sorted_remove.scatter(1, sorted_idx, sorted_remove), NEG_INF)


def min_p_kernel(x: torch.Tensor, min_p: torch.Tensor, keep: tuple | None) -> torch.Tensor:
    """``MinPLogitsWarper``: drop tokens below ``min_p`` x the top token's probability."""
    probs = x.softmax(dim=-1)
    remove = probs < min_p * probs.amax(dim=-1, keepdim=True)  # the top token always stays
    if keep is not None:  # transformers keeps the min_keep most likely by index
        k = min(keep[1], x.shape[-1])
        top = probs.topk(k, dim=-1).indices  # [n, k]
        protected = torch.arange(k, device=x.device) < keep[0]
        remove.scatter_(1, top, remove.gather(1, top) & ~protected)
    return x.masked_fill_(remove, NEG_INF)


def typical_kernel(x: torch.Tensor, mass: torch.Tensor, keep_count: torch.Tensor | None
                   ) -> torch.Tensor:
    """``TypicalLogitsWarper``: keep the tokens whose surprise is nearest the entropy.

    Sorted by ``|-log p - H|`` ascending, tokens are kept until their probabilities reach
    ``mass``; the first ``min_keep`` of that order always stay (as transformers).
    """
    normalized = torch.nn.functional.log_softmax(x, dim=-1)
    p = torch.exp(normalized)
    ent = -(normalized * p).nansum(-1, keepdim=True)
    shifted = torch.abs((-normalized) - ent)
    sorted_scores, sorted_idx = sort_with_indices(shifted)
    cumulative = x.gather(-1, sorted_idx).softmax(dim=-1).cumsum(dim=-1)
    last = (cumulative < mass).sum(dim=1).clamp_(max=x.shape[-1] - 1)
    sorted_remove = sorted_scores > sorted_scores.gather(1, last.view(-1, 1))
    positions = torch.arange(x.shape[-1], device=x.device)
    sorted_remove &= positions >= (1 if keep_count is None else keep_count)
    return x.masked_fill(sorted_remove.scatter(1, sorted_idx, sorted_remove), NEG_INF)


def epsilon_kernel(x: torch.Tensor, epsilon: torch.Tensor, keep: tuple | None) -> torch.Tensor:
    """``EpsilonLogitsWarper``: drop tokens with probability below ``epsilon``."""
    remove = x.softmax(dim=-1) < epsilon
    return x.masked_fill_(_keep_floor(remove, x, keep), NEG_INF)


def eta_kernel(x: torch.Tensor, eta: torch.Tensor, keep: tuple | None) -> torch.Tensor:
    """``EtaLogitsWarper``: drop tokens below ``min(eta, sqrt(eta) exp(-entropy))``."""
    probs = x.softmax(dim=-1)
    # torch.distributions.Categorical(logits=x).entropy(), op for op
    normalized = x - x.logsumexp(dim=-1, keepdim=True)
    clamped = torch.clamp(normalized, min=torch.finfo(x.dtype).min)
    entropy = -(clamped * torch.softmax(normalized, dim=-1)).sum(-1)
    floor = torch.min(eta, torch.sqrt(eta) * torch.exp(-entropy).unsqueeze(1))
    return x.masked_fill_(_keep_floor(probs < floor, x, keep), NEG_INF)


def _keep_floor(remove: torch.Tensor, x: torch.Tensor, keep: tuple | None) -> torch.Tensor:
    """transformers' ``scores < topk(scores, min_keep)[..., -1]`` guard (1 = the maximum)."""
    if keep is None:
        return remove & (x < x.amax(dim=-1, keepdim=True))
    return protect_top(remove, x, keep)


def top_n_sigma_kernel(x: torch.Tensor, n_sigma: torch.Tensor, keep: tuple | None
                       ) -> torch.Tensor:
    """Top-nσ: keep tokens with logit >= max - n x std (std over the tokens still in play).

    The standard deviation is the population one over finite logits (as llama.cpp); a row with
    at most one token left is unchanged.
    """
    finite = x > NEG_INF
    count = finite.sum(dim=-1, keepdim=True).clamp(min=1)  # [n, 1]
    values = torch.where(finite, x, 0.0)
    mean = values.sum(dim=-1, keepdim=True) / count
    var = (torch.where(finite, x - mean, 0.0) ** 2).sum(dim=-1, keepdim=True) / count
    top = x.amax(dim=-1, keepdim=True)
    remove = x < top - n_sigma * var.sqrt()
    remove &= finite_count(x) > 1
    return x.masked_fill_(protect_top(remove, x, keep), NEG_INF)
