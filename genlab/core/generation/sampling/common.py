"""Small tensor helpers every sampler stage shares: sorting, selection, argmax, min-keep floors.

On the CPU NumPy sorts, selects (``np.partition``) and takes argmaxes several times faster than
torch on decode-sized tensors (``torch.topk`` on real logits often costs more than NumPy's full
sort), so the helpers use it there and torch everywhere else; results are the same values.
"""

from __future__ import annotations

import numpy as np
import torch

NEG_INF = float("-inf")
POS_INF = float("inf")


def numpy_ok(x: torch.Tensor) -> bool:
    """True for CPU float tensors (NumPy's sort and argmax are faster there)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


def sorted_values(x: torch.Tensor) -> torch.Tensor:
    """Each row's values in ascending order (no indices: tied values are interchangeable)."""
    if numpy_ok(x):
        return torch.from_numpy(np.sort(x.detach().numpy(), axis=-1))
    return torch.sort(x, dim=-1).values


def sort_with_indices(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values, indices)`` of each row sorted ascending (ties in any order among equals)."""
    if numpy_ok(x):
        idx = np.argsort(x.detach().numpy(), axis=-1)
        return torch.from_numpy(np.take_along_axis(x.detach().numpy(), idx, -1)), \
            torch.from_numpy(idx)
    return torch.sort(x, dim=-1)


def argmax(x: torch.Tensor) -> torch.Tensor:
    """Row-wise argmax, the first index on ties (as ``torch.argmax``)."""
    if numpy_ok(x):
        return torch.from_numpy(x.detach().numpy().argmax(axis=-1))
    return x.argmax(dim=-1)


def extreme_values(x: torch.Tensor, k: int, largest: bool = True) -> torch.Tensor:
    """``[n, k]`` each row's ``k`` largest values in descending order (or smallest, ascending)."""
    k = min(k, x.shape[-1])
    if not numpy_ok(x):
        return x.topk(k, dim=-1, largest=largest).values
    a, vocab = x.detach().numpy(), x.shape[-1]
    if largest:
        part = np.partition(a, vocab - k, axis=-1)[:, vocab - k:] if k < vocab else a
        return torch.from_numpy(np.ascontiguousarray(np.sort(part, axis=-1)[:, ::-1]))
    part = np.partition(a, k - 1, axis=-1)[:, :k] if k < vocab else a
    return torch.from_numpy(np.sort(part, axis=-1))


def kth_largest(x: torch.Tensor, k: torch.Tensor, k_max: int) -> torch.Tensor:
    """``[n, 1]``: each row's k-th largest value (``k`` ``[n, 1]`` int64 in 1..``k_max``)."""
    k_max = min(k_max, x.shape[-1])
    if numpy_ok(x) and bool((k == k_max).all()):  # one k for every row: a single partition
        vocab = x.shape[-1]
        return torch.from_numpy(np.partition(x.detach().numpy(), vocab - k_max, axis=-1)
                                [:, vocab - k_max: vocab - k_max + 1].copy())
    return extreme_values(x, k_max).gather(1, (k.clamp(max=k_max) - 1))


def kth_largest_any(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``kth_largest`` for a ``k`` only the device knows: no host sync off the CPU."""
    if numpy_ok(x):
        return kth_largest(x, k, int(k.max()))
    descending = torch.sort(x, dim=-1, descending=True).values
    return descending.gather(1, k.clamp(1, x.shape[-1]) - 1)


def protect_top(remove: torch.Tensor, x: torch.Tensor, min_keep: tuple | None) -> torch.Tensor:
    """``remove`` without each row's ``min_keep`` largest logits (ties with the last kept).

    Args:
        remove: ``[n, vocab]`` bool, True where a stage would drop the token.
        x: ``[n, vocab]`` the logits the stage saw.
        min_keep: ``(k [n, 1], k_max)`` for rows with min_keep > 1, or None (keep the top 1,
            which every stage keeps by its own definition).
    """
    if min_keep is None:
        return remove
    return remove & (x < kth_largest(x, *min_keep))


def finite_count(x: torch.Tensor) -> torch.Tensor:
    """``[n, 1]`` number of tokens still in play (logit > -inf)."""
    return (x > NEG_INF).sum(dim=-1, keepdim=True)
