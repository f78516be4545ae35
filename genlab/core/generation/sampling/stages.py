"""The stage registry: for each sampler stage, its kernel, its arguments and its inputs.

A stage's ``build`` turns the columns of the rows that use it into the kernel's arguments
(computed once per batch); ``inputs`` names the per-step state it reads (sliced to its rows);
``shared`` gives per-step values that are not per row; ``live`` lets a stage sit out a step
without a host sync (min-tokens once every row is past its N). ``batch_wide`` stages are cheap
enough to run on every row of their group with neutral parameters (x / 1 and x * 1 are exact),
which beats gathering the rows that use them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from genlab.core.generation.sampling import dry, mirostat, penalties, temperature, truncation

Args = tuple[Any, ...]


class Pick:
    """The columns of one stage's rows, shaped ``[n, 1]`` for its kernel."""

    def __init__(self, cols: dict[str, torch.Tensor], on: torch.Tensor, rows: torch.Tensor | None,
                 vocab: int) -> None:
        self.cols, self.on, self.rows, self.vocab = cols, on, rows, vocab

    def __call__(self, name: str) -> torch.Tensor:
        column = self.cols[name]
        return (column if self.rows is None else column.index_select(0, self.rows)).unsqueeze(1)

    def where_on(self, name: str, off: float) -> torch.Tensor:
        """``[n, 1]`` the column where the stage is on, ``off`` elsewhere (batch-wide stages)."""
        column = self.cols[name]
        return torch.where(self.on, column, torch.full_like(column, off)).unsqueeze(1)

    def keep(self) -> tuple[torch.Tensor, int] | None:
        """``(min_keep [n, 1], max)`` when some row keeps more than one token, else None."""
        k = self("min_keep")
        k_max = int(k.max())
        return None if k_max <= 1 else (k, k_max)

    def keep_count(self) -> torch.Tensor | None:
        keep = self.keep()
        return None if keep is None else keep[0]


@dataclass(frozen=True)
class Stage:
    """One sampler stage (see the module docstring)."""

    name: str
    kernel: Callable[..., torch.Tensor]
    build: Callable[[Pick], Args]
    inputs: Callable[[Any], tuple[torch.Tensor | None, ...]] | None = None
    shared: Callable[[Any], tuple[Any, ...]] | None = None
    live: Callable[[Any, Args], bool] | None = None
    batch_wide: bool = False
    needs_state: bool = False
    fresh: bool = False
    """The kernel returns a new tensor and never writes its input (no defensive copy)."""


def _temperature_args(pick: Pick) -> Args:
    dyn = pick.cols["dynatemp_range"] > 0
    static = pick.on & ~dyn
    divisor = torch.where(static, pick.cols["temperature"], 1.0).unsqueeze(1)
    rows = (pick.on & dyn).nonzero().squeeze(1)
    if rows.numel() == 0:
        return divisor, None
    sub = Pick(pick.cols, pick.on, rows, pick.vocab)
    return divisor, (rows, sub("temperature"), sub("dynatemp_range"), sub("dynatemp_exponent"))


def _temperature_kernel(x: torch.Tensor, divisor: torch.Tensor, dyn: tuple | None
                        ) -> torch.Tensor:
    x = x / divisor  # a new tensor: x / 1.0 is exact, so rows at 1 share the op
    if dyn is not None:
        rows, *args = dyn
        x.index_copy_(0, rows, temperature.dynatemp_kernel(x.index_select(0, rows), *args))
    return x


def _top_k_args(pick: Pick) -> Args:
    k = torch.maximum(pick("top_k"), pick("min_keep")).clamp(max=pick.vocab)
    return k, int(k.max())


def _ngram_args(pick: Pick) -> Args:
    n = pick("no_repeat_ngram").squeeze(1)
    groups = []
    for value in sorted(set(n.tolist())):
        rows = (n == value).nonzero().squeeze(1)
        groups.append((None if rows.numel() == n.numel() else rows, value))
    return (tuple(groups),)


def _mirostat_args(pick: Pick) -> Args:
    version = pick("mirostat")
    return version, pick.keep(), bool((version == 1).any())


def _min_tokens_live(state: Any, args: Args) -> bool:
    return state.step < args[1]


def _min_tokens_kernel(x: torch.Tensor, min_tokens: torch.Tensor, _most: int,
                       eos: torch.Tensor, step: int) -> torch.Tensor:
    return penalties.min_tokens_kernel(x, min_tokens, eos, step)


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("logit_bias", penalties.logit_bias_kernel, lambda pick: (),
          inputs=lambda state: state.bias_inputs(), needs_state=True),
    Stage("repetition_penalty", penalties.repetition_kernel,
          lambda pick: (pick.where_on("repetition_penalty", 1.0),),
          inputs=lambda state: (state.penalty_history(),), batch_wide=True, needs_state=True),
    Stage("presence_frequency", penalties.presence_frequency_kernel,
          lambda pick: (pick("presence_penalty"), pick("frequency_penalty")),
          inputs=lambda state: (state.generated(), state.counts),
          live=lambda state, args: state.step > 0, needs_state=True),
    Stage("no_repeat_ngram", penalties.no_repeat_ngram_kernel, _ngram_args,
          inputs=lambda state: (state.history_view(), state.real_view()), needs_state=True),
    Stage("dry", dry.dry_kernel,
          lambda pick: (pick("dry_multiplier"), pick("dry_base"), pick("dry_allowed_length")),
          inputs=lambda state: (state.history_view(), state.dry_view(), state.breakers),
          live=lambda state, args: state.length >= 2, needs_state=True),
    Stage("min_tokens", _min_tokens_kernel,
          lambda pick: (pick("min_tokens"), int(pick("min_tokens").max())),
          shared=lambda state: (state.eos, state.step), live=_min_tokens_live,
          needs_state=True),
    Stage("temperature", _temperature_kernel, _temperature_args, batch_wide=True, fresh=True),
    Stage("top_k", truncation.top_k_kernel, _top_k_args),
    Stage("top_p", truncation.filter_kernel,
          lambda pick: (None, _cut(pick), pick.keep_count())),
    Stage("min_p", truncation.min_p_kernel, lambda pick: (pick("min_p"), pick.keep())),
    Stage("typical_p", truncation.typical_kernel,
          lambda pick: (pick("typical_p"), pick.keep_count())),
    Stage("epsilon_cutoff", truncation.epsilon_kernel,
          lambda pick: (pick("epsilon_cutoff"), pick.keep())),
    Stage("eta_cutoff", truncation.eta_kernel, lambda pick: (pick("eta_cutoff"), pick.keep())),
    Stage("top_n_sigma", truncation.top_n_sigma_kernel,
          lambda pick: (pick("top_n_sigma"), pick.keep())),
    Stage("xtc", temperature.xtc_kernel,
          lambda pick: (pick("xtc_probability"), pick("xtc_threshold"), pick("min_keep")),
          inputs=lambda state: (state.xtc_chance(),), needs_state=True),
    Stage("mirostat", mirostat.mirostat_kernel, _mirostat_args,
          inputs=lambda state: (state.mu,), needs_state=True),
)}


def _cut(pick: Pick) -> torch.Tensor:
    """``[n, 1]`` float32 ``1 - top_p`` (as transformers rounds the Python float); -1 = off."""
    top_p = pick("top_p").double()
    return torch.where(top_p < 1.0, 1.0 - top_p, -1.0).float()


def fused_filter_args(pick: Pick) -> Args:
    """Top-k then top-p from one sort (both adjacent in the order): the kernel's arguments."""
    k = pick("top_k")
    kth = None
    if bool((k > 0).any()):  # ascending position of the k-th largest; 0 keeps every token
        k_eff = torch.maximum(k, pick("min_keep")).clamp(max=pick.vocab)
        kth = torch.where(k > 0, pick.vocab - k_eff, 0)
    return kth, _cut(pick), pick.keep_count()
