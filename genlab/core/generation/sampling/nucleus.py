"""Top-p's cut: the smallest logit each row keeps, as ``TopPLogitsWarper`` decides it.

transformers sorts each row ascending, takes ``cumsum(softmax(sorted))`` and drops the positions
where it is ``<= 1 - p`` (the last ``min_keep`` positions always stay). On the same sorted values
these ops give the same floats, so the dropped set is "every token below the smallest kept
value", unless equal values straddle the cut: then the sort order decides which of them
survive, and the caller must use the index sort itself (``top_p_threshold`` returns None).

On the CPU the one sort is NumPy's (several times faster than torch's there). Elsewhere
(CUDA, MPS) ``top_p_threshold`` returns None at once, so the caller runs transformers' index
sort directly: no data-dependent branch, nothing waits for the device. It does the same for
logits that hold only 16-bit values (a float16 or bfloat16 model's): among tens of thousands
of them equal values nearly always straddle the cut, so the NumPy sort would be wasted work
before the index sort (measured on the 135M benchmark: ~2 ms a row per step). A sort-free
search (a partial selection of either end of the distribution, with the boundary certified
against transformers' rounding) was tried and measured slower in the decode loop: the cumulative
mass must be exact to the last bit at the cut, and transformers' softmax normaliser depends on
the sorted order, so most of a sort's work remains.
"""

from __future__ import annotations

import torch

from genlab.core.generation.sampling.common import sorted_values


def sixteen_bit_values(x: torch.Tensor) -> bool:
    """True when every value of float32 ``x`` is a float16 or a bfloat16 number."""
    if x.dtype != torch.float32:
        return False
    return bool(torch.equal(x.to(torch.float16).float(), x)
                or torch.equal(x.to(torch.bfloat16).float(), x))


def top_p_threshold(x: torch.Tensor, cut: torch.Tensor, keep_count: torch.Tensor | None,
                    s: torch.Tensor | None = None) -> torch.Tensor | None:
    """``[n, 1]`` smallest kept logit per row, or None when ties straddle some row's cut.

    Args:
        x: ``[n, vocab]`` logits.
        cut: ``[n, 1]`` float32 ``1 - top_p`` (-1 keeps every token).
        keep_count: ``[n, 1]`` min-keep above 1, or None.
        s: ``x`` sorted ascending, when the caller has it.
    """
    if x.device.type != "cpu" or sixteen_bit_values(x):
        return None
    s = sorted_values(x) if s is None else s
    vocab = s.shape[-1]
    cum = s.softmax(dim=-1).cumsum(dim=-1)
    m = torch.searchsorted(cum, cut, right=True)  # [n, 1] positions dropped
    limit = vocab - (1 if keep_count is None else keep_count)
    m = torch.minimum(m, torch.as_tensor(limit, device=m.device))
    kept_min = s.gather(1, m)
    if bool((torch.searchsorted(s, kept_min) != m).any()):
        return None
    return kept_min
