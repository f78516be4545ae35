"""Pure, vectorised per-row logits transforms and the token picker.

This module owns the sampling math of genlab. Every transform takes logits ``[rows, vocab]``
and per-row parameter tensors ``[rows]`` and returns new logits; a row whose parameter is "off"
comes back bit-for-bit unchanged, so one batch can mix any settings. The math matches the
Hugging Face processors (``RepetitionPenaltyLogitsProcessor``, ``TemperatureLogitsWarper``,
``TopKLogitsWarper``, ``TopPLogitsWarper``, ``MinPLogitsWarper``, ``min_tokens_to_keep=1``)
row by row, ties included; the tests use them as oracles.

Order (the order ``transformers`` uses when all are set): repetition penalty on the raw
logits -> temperature -> top-k -> top-p -> min-p. Greedy rows (temperature 0) keep their
repetition penalty, skip the warpers (like ``do_sample=False``) and take the argmax.

Sampling rows draw by inverse CDF from one uniform number per row per step. The uniforms come
from each row's own ``torch.Generator``, so a row's tokens depend on its seed only, never on
which other rows share the batch.

Each transform is a "kernel"; a "plan" (which rows need it, their parameters shaped for the
kernel) is computed once per batch by ``RowParams``, so the decode loop pays per step only for
the transforms its rows ask for, and the costly ones (sorting) only on those rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from genlab.core.configs import SamplingParams

NEG_INF = float("-inf")

TRANSFORMS = ("repetition_penalty", "temperature", "top_k", "top_p", "min_p")  # in order
_STAGES = ("repetition_penalty", "temperature", "filter", "min_p")  # filter = top-k + top-p

_OFF = {"repetition_penalty": 1.0, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0}

Plan = tuple[torch.Tensor | None, tuple]
"""(row index, or None for every row; the kernel's extra arguments for those rows)."""


# ---------------------------------------------------------------------------- kernels
# Each kernel gets a private copy of the rows that use its transform (it may write in place);
# parameters arrive shaped [n, 1].


def _penalty_kernel(x: torch.Tensor, history: torch.Tensor, penalty: torch.Tensor
                    ) -> torch.Tensor:
    # RepetitionPenaltyLogitsProcessor's gather/scatter over the history ids; repeated ids
    # write the same value, so padding may repeat any id of its row.
    scores = x.gather(1, history)  # [n, length]
    scores = torch.where(scores < 0, scores * penalty, scores / penalty)  # CTRL: toward 0
    return x.scatter_(1, history, scores)


def _temperature_kernel(x: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    return x.div_(temperature)  # x / 1.0 is exact, so rows at 1 may share the batch op


def _numpy_ok(x: torch.Tensor) -> bool:
    # NumPy's sort and argmax are several times faster than torch's on small CPU tensors.
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


def _sorted_values(x: torch.Tensor) -> torch.Tensor:
    """Each row's values in ascending order (no indices: tied values are interchangeable)."""
    if _numpy_ok(x):
        return torch.from_numpy(np.sort(x.detach().numpy(), axis=-1))
    return torch.sort(x, dim=-1).values


def _argmax(x: torch.Tensor) -> torch.Tensor:
    """Row-wise argmax, the first index on ties (as ``torch.argmax``)."""
    if _numpy_ok(x):
        return torch.from_numpy(x.detach().numpy().argmax(axis=-1))
    return x.argmax(dim=-1)


def _filter_kernel(x: torch.Tensor, kth_index: torch.Tensor | None,
                   cut: torch.Tensor | None) -> torch.Tensor:
    """Top-k then top-p from one sort of each row, bit-identical to the HF warpers.

    Args:
        x: ``[n, vocab]`` logits.
        kth_index: ``[n, 1]`` ascending-order position of each row's k-th largest value
            (``vocab - k``; 0 = keep all), or None when no row uses top-k.
        cut: ``[n, 1]`` float32 ``1 - top_p`` (-1 = off), or None when no row uses top-p.
    """
    s = _sorted_values(x)  # [n, vocab] ascending
    threshold = None
    if kth_index is not None:
        threshold = s.gather(1, kth_index)  # [n, 1]; TopKLogitsWarper drops x < k-th value
        if cut is not None:
            s.masked_fill_(s < threshold, NEG_INF)  # = sorted top-k-filtered row
    if cut is not None:
        # TopPLogitsWarper drops the m smallest tokens, where m counts sorted positions with
        # cumsum(softmax(sorted)) <= 1 - p (the last position always stays). On the same sorted
        # values these ops give the same floats, so "x < m-th smallest kept value" is the same
        # set, unless equal values straddle the cut: then HF's sort order decides, so do that.
        cum = s.softmax(dim=-1).cumsum(dim=-1)
        m = torch.searchsorted(cum, cut, right=True).clamp_(max=s.shape[-1] - 1)  # [n, 1]
        kept_min = s.gather(1, m)
        if bool((torch.searchsorted(s, kept_min) != m).any()):
            if kth_index is not None:
                x.masked_fill_(x < threshold, NEG_INF)
            return _top_p_by_sort(x, cut)
        threshold = kept_min if threshold is None else torch.maximum(threshold, kept_min)
    return x.masked_fill_(x < threshold, NEG_INF)


def _top_p_by_sort(x: torch.Tensor, cut: torch.Tensor) -> torch.Tensor:
    """TopPLogitsWarper's own ops (index sort and scatter), for ties across the cut."""
    sorted_x, sorted_idx = torch.sort(x, descending=False)
    sorted_remove = sorted_x.softmax(dim=-1).cumsum(dim=-1) <= cut
    sorted_remove[:, -1] = False  # min_tokens_to_keep = 1
    return x.masked_fill(sorted_remove.scatter(1, sorted_idx, sorted_remove), NEG_INF)


def _min_p_kernel(x: torch.Tensor, min_p: torch.Tensor) -> torch.Tensor:
    probs = x.softmax(dim=-1)
    # The top token always survives (min_p <= 1): HF's min_tokens_to_keep=1 needs no extra op.
    return x.masked_fill_(probs < min_p * probs.amax(dim=-1, keepdim=True), NEG_INF)


_KERNELS: dict[str, Callable[..., torch.Tensor]] = {
    "repetition_penalty": _penalty_kernel,
    "temperature": _temperature_kernel,
    "filter": _filter_kernel,
    "min_p": _min_p_kernel,
}


def _plan(stage: str, cols: dict[str, torch.Tensor], vocab: int) -> Plan | None:
    """Which rows need ``stage`` and its kernel arguments for them; None if no row does."""
    if stage == "filter":
        on_k, on_p = cols["top_k"] > 0, cols["top_p"] < 1.0
        on = on_k | on_p
    else:
        values = cols[stage]
        on = values != _OFF[stage]
        if stage == "temperature":
            on = on & (values > 0)  # 0 = greedy: left unscaled
    index = on.nonzero().squeeze(1)  # [n]
    if index.numel() == 0:
        return None
    if stage in ("temperature", "repetition_penalty"):
        # Cheap batch-wide ops beat gathering rows; x * 1 and x / 1 are exact, so rows at 1
        # (and greedy rows' temperature 0, mapped to 1) still come out unchanged.
        return None, (torch.where(on, values, torch.ones_like(values)).unsqueeze(1),)
    rows = None if index.numel() == on.numel() else index

    def pick(t: torch.Tensor) -> torch.Tensor:
        return (t if rows is None else t.index_select(0, rows)).unsqueeze(1)  # [n, 1]

    if stage != "filter":
        return rows, (pick(values),)
    kth = cut = None
    if bool(on_k.any()):  # ascending position of the k-th largest; 0 keeps every token
        kth = torch.where(on_k, vocab - cols["top_k"].clamp(max=vocab), 0)
        kth = pick(kth)
    if bool(on_p.any()):  # HF compares with the Python float 1 - p, i.e. rounded to float32
        cut = pick(torch.where(on_p, 1.0 - cols["top_p"].double(), -1.0).float())
    return rows, (kth, cut)


def _run(logits: torch.Tensor, name: str, plan: Plan, *leading: torch.Tensor,
         owned: bool = False) -> torch.Tensor:
    """Apply one kernel to the planned rows (``owned``: ``logits`` may be changed in place)."""
    index, args = plan
    kernel = _KERNELS[name]
    if index is None:
        return kernel(logits if owned else logits.clone(), *leading, *args)
    part = kernel(logits.index_select(0, index),
                  *[t.index_select(0, index) for t in leading], *args)  # [n, vocab]
    out = logits if owned else logits.clone()
    return out.index_copy_(0, index, part)


# --------------------------------------------------------------------------- per-row params


@dataclass(frozen=True)
class RowParams:
    """Per-row sampling parameters as ``[rows]`` tensors on the logits' device.

    Greedy rows have every warper switched off but keep their repetition penalty.

    Attributes:
        temperature: float32 divisor; 1 = off, 0 = greedy.
        top_k: int64; 0 = off.
        top_p: float32; 1 = off.
        min_p: float32; 0 = off.
        repetition_penalty: float32; 1 = off.
        greedy: bool; True where the row takes the argmax.
        any_greedy: At least one row is greedy.
        any_sample: At least one row samples.
        uses: Names (from ``TRANSFORMS``) of the transforms at least one row uses.
    """

    temperature: torch.Tensor
    top_k: torch.Tensor
    top_p: torch.Tensor
    min_p: torch.Tensor
    repetition_penalty: torch.Tensor
    greedy: torch.Tensor
    any_greedy: bool = field(init=False, compare=False)
    any_sample: bool = field(init=False, compare=False)
    uses: frozenset[str] = field(init=False, compare=False)
    _plans: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n_greedy = int(self.greedy.sum())
        on = {name: getattr(self, name) != _OFF[name] for name in TRANSFORMS}
        on["temperature"] &= self.temperature > 0  # greedy rows' 0 leaves logits unscaled
        used = {name for name, rows in on.items() if bool(rows.any())}
        object.__setattr__(self, "any_greedy", n_greedy > 0)
        object.__setattr__(self, "any_sample", n_greedy < self.greedy.numel())
        object.__setattr__(self, "uses", frozenset(used))
        object.__setattr__(self, "_plans", {})

    @classmethod
    def from_params(
        cls, params: Sequence[SamplingParams], device: torch.device | str = "cpu"
    ) -> RowParams:
        """Build the tensors once per batch from each row's ``SamplingParams``."""

        def column(name: str, dtype: torch.dtype) -> torch.Tensor:
            values = [_OFF[name] if p.greedy and name not in ("repetition_penalty",
                                                              "temperature")
                      else getattr(p, name) for p in params]
            return torch.tensor(values, dtype=dtype, device=device)

        return cls(*(column(n, torch.int64 if n == "top_k" else torch.float32)
                     for n in ("temperature", "top_k", "top_p", "min_p", "repetition_penalty")),
                   greedy=torch.tensor([p.greedy for p in params], dtype=torch.bool,
                                       device=device))

    def plans(self, vocab: int) -> dict[str, Plan]:
        """Stage name -> plan, for the stages some row uses (computed once per vocab size)."""
        if vocab not in self._plans:
            cols = {n: getattr(self, n) for n in TRANSFORMS}
            plans = {stage: _plan(stage, cols, vocab) for stage in _STAGES}
            self._plans[vocab] = {n: p for n, p in plans.items() if p is not None}
        return self._plans[vocab]

    def select(self, index: torch.Tensor) -> RowParams:
        """Keep only the rows in ``index`` (for compacting a batch)."""
        return RowParams(*(getattr(self, f).index_select(0, index) for f in (
            "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "greedy")))


# ------------------------------------------------------------------- public transforms


def fill_history_padding(token_history_ids: torch.Tensor, history_mask: torch.Tensor
                         ) -> torch.Tensor:
    """Replace each row's padding by a repeat of that row's first real id.

    The penalty only looks at which ids occur, so repeats are harmless and every row keeps a
    rectangular ``[rows, length]`` history. Rows without any real id are left as they are.

    Args:
        token_history_ids: ``[rows, length]`` int64 ids (prompt + output), padded anywhere.
        history_mask: ``[rows, length]`` bool, True for real tokens.
    """
    mask = history_mask.bool()
    first_real = mask.int().argmax(dim=1, keepdim=True)  # [rows, 1]
    return torch.where(mask, token_history_ids, token_history_ids.gather(1, first_real))


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
    return _apply(logits, "repetition_penalty", {"repetition_penalty": penalty}, history)


def apply_temperature(logits: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """Divide each row by its temperature; rows at 1 or 0 (greedy) stay unscaled."""
    return _apply(logits, "temperature", {"temperature": temperature})


def apply_top_k(logits: torch.Tensor, top_k: torch.Tensor) -> torch.Tensor:
    """Keep each row's ``k`` largest logits (ties with the k-th kept, as HF); 0 = off."""
    return _apply(logits, "filter", {"top_k": top_k, "top_p": torch.ones_like(top_k)})


def apply_top_p(logits: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Nucleus filtering as ``TopPLogitsWarper``: drop the low tail of mass <= 1 - p; 1 = off."""
    return _apply(logits, "filter", {"top_k": torch.zeros_like(top_p), "top_p": top_p})


def apply_min_p(logits: torch.Tensor, min_p: torch.Tensor) -> torch.Tensor:
    """Drop tokens less likely than ``min_p`` x the top token's probability; 0 = off."""
    return _apply(logits, "min_p", {"min_p": min_p})


def _apply(logits: torch.Tensor, stage: str, cols: dict[str, torch.Tensor],
           *leading: torch.Tensor) -> torch.Tensor:
    plan = _plan(stage, cols, logits.shape[-1])
    return logits if plan is None else _run(logits, stage, plan, *leading)


def process_logits(
    logits: torch.Tensor, params: RowParams, history: torch.Tensor | None = None
) -> torch.Tensor:
    """Apply every transform in order: penalty -> temperature -> top-k -> top-p -> min-p.

    Transforms run only on the rows that use them; ``logits`` itself is never modified.

    Args:
        logits: ``[rows, vocab]`` float32 raw logits.
        params: Per-row settings.
        history: ``[rows, length]`` ids of each row's prompt + output so far, padding filled
            by ``fill_history_padding``; required when a row uses the repetition penalty.
    """
    out = logits
    for name, plan in params.plans(logits.shape[-1]).items():
        leading = ()
        if name == "repetition_penalty":
            if history is None:
                raise ValueError("process_logits: a row uses repetition_penalty; pass history")
            leading = (history,)
        out = _run(out, name, plan, *leading, owned=out is not logits)
    return out


# ------------------------------------------------------------------------------ choice


def sample_from_probs(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw of one token per row from ``[rows, vocab]`` probabilities.

    A token of probability 0 is never chosen: the CDF is flat across it, and the target
    ``u * total`` stays strictly below the total because ``u`` is at most the largest float
    below 1 (in float64, or float32 on MPS) and the total mass of a softmax is near 1.
    """
    dtype = torch.float32 if probs.device.type == "mps" else torch.float64  # MPS lacks f64
    cdf = probs.cumsum(dim=-1, dtype=dtype)  # [rows, vocab]
    target = (uniforms.to(dtype) * cdf[:, -1]).unsqueeze(1)  # [rows, 1]
    return torch.searchsorted(cdf, target, right=True).squeeze(1)  # [rows]


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
        return _argmax(processed_logits), None
    probs = processed_logits.softmax(dim=-1)
    drawn = sample_from_probs(probs, uniforms)
    if any_greedy:
        drawn = torch.where(greedy_mask, _argmax(processed_logits), drawn)
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
