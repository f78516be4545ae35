"""One transform at a time on raw tensors: ``apply_temperature(logits, t)`` and friends.

Handy in notebooks and tests; the decode loop goes through ``process_logits``, which runs the
same kernels. Each takes ``[rows, vocab]`` logits and a ``[rows]`` parameter tensor, returns
new logits (the input is never modified) and leaves rows at the "off" value untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from genlab.core.generation.sampling import penalties, truncation
from genlab.core.generation.sampling.state import fill_history_padding
from genlab.core.generation.sampling.temperature import temperature_kernel


def _on_rows(logits: torch.Tensor, on: torch.Tensor, kernel: Callable[..., torch.Tensor],
             *params: torch.Tensor) -> torch.Tensor:
    """Run ``kernel`` on the rows where ``on`` holds, with each ``[rows]`` param as [n, 1]."""
    index = on.nonzero().squeeze(1)
    out = logits.clone()
    if index.numel() == 0:
        return out
    part = kernel(logits.index_select(0, index), *(p.index_select(0, index).unsqueeze(1)
                                                   for p in params))
    return out.index_copy_(0, index, part)


def apply_temperature(logits: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """Divide each row by its temperature; rows at 1 or 0 (greedy) stay unscaled."""
    on = (temperature != 1.0) & (temperature > 0)
    divisor = torch.where(on, temperature, 1.0).unsqueeze(1)
    return temperature_kernel(logits.clone(), divisor)


def apply_top_k(logits: torch.Tensor, top_k: torch.Tensor) -> torch.Tensor:
    """Keep each row's ``k`` largest logits (ties with the k-th kept, as HF); 0 = off."""
    k = top_k.clamp(max=logits.shape[-1])
    on = top_k > 0
    k_max = int(k.max()) if bool(on.any()) else 1
    return _on_rows(logits, on, lambda x, kk: truncation.top_k_kernel(x, kk, k_max), k)


def apply_top_p(logits: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Nucleus filtering as ``TopPLogitsWarper``: drop the low tail of mass <= 1 - p; 1 = off."""
    cut = (1.0 - top_p.double()).float()
    return _on_rows(logits, top_p < 1.0,
                    lambda x, c: truncation.filter_kernel(x, None, c, None), cut)


def apply_min_p(logits: torch.Tensor, min_p: torch.Tensor) -> torch.Tensor:
    """Drop tokens less likely than ``min_p`` x the top token's probability; 0 = off."""
    return _on_rows(logits, min_p > 0, lambda x, m: truncation.min_p_kernel(x, m, None), min_p)


def apply_repetition_penalty(
    logits: torch.Tensor,
    token_history_ids: torch.Tensor,
    penalty: torch.Tensor,
    history_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """CTRL repetition penalty (as ``RepetitionPenaltyLogitsProcessor``), per row.

    Positive logits of tokens in the row's history are divided by the penalty, negative ones
    multiplied. 1 = off.

    Args:
        logits: ``[rows, vocab]`` float logits.
        token_history_ids: ``[rows, length]`` prompt + output ids, padded.
        penalty: ``[rows]`` penalty.
        history_mask: ``[rows, length]`` True for real (non-padding) entries; None = all real.
    """
    history = token_history_ids
    if history_mask is not None:
        history = fill_history_padding(history, history_mask)
        penalty = torch.where(history_mask.bool().any(dim=1), penalty, 1.0)  # nothing to punish
    return penalties.repetition_kernel(logits.clone(), history, penalty.unsqueeze(1))
