"""Per-row sampling parameters of a batch, as ``[rows]`` tensors, and which rows use what.

``RowParams`` is built once per batch from each row's ``SamplingParams``: every number knob
becomes a float32 or int64 column on the logits' device. Greedy rows have every warper
switched off (they keep the processors: logit bias, penalties, DRY, no-repeat-ngram,
min-tokens) and take the argmax, as ``generate(do_sample=False)`` does. Rows may have
different sampler orders; ``order_groups`` says which rows share one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from genlab.core.configs import SamplingParams, knob_fields
from genlab.core.configs.sampler_text import STAGE_SWITCHES, WARPERS

NUMERIC = tuple(kf.name for kf in knob_fields(SamplingParams) if kf.kind in ("int", "float"))
"""Every number knob of ``SamplingParams``: one column each."""
DEFAULTS: dict[str, Any] = {kf.name: kf.default for kf in knob_fields(SamplingParams)}
_INTS = frozenset(kf.name for kf in knob_fields(SamplingParams) if kf.kind == "int")
_WARPER_SWITCHES = frozenset(k for s in WARPERS for k in STAGE_SWITCHES[s] if k != "temperature")


class RowParams:
    """Per-row sampling parameters as ``[rows]`` tensors on the logits' device.

    Attributes:
        cols: Knob name -> ``[rows]`` column (float32, or int64 for integer knobs). Read one
            as an attribute too (``params.top_k``). The temperature of a greedy row is 0.
        greedy: ``[rows]`` bool; True where the row takes the argmax.
        settings: Each row's ``SamplingParams`` (for the knobs that are not numbers).
        orders: Each row's stage order.
        uses: Names of the stages at least one row uses.
        any_greedy, any_sample: At least one row is greedy / samples.
    """

    def __init__(self, cols: dict[str, torch.Tensor], greedy: torch.Tensor,
                 settings: Sequence[SamplingParams]) -> None:
        self.cols = cols
        self.greedy = greedy
        self.settings = tuple(settings)
        self.orders = tuple(p.order() for p in self.settings)
        self.uses = frozenset(s for s in STAGE_SWITCHES if bool(self.on(s).any()))
        n_greedy = int(greedy.sum())
        self.any_greedy = n_greedy > 0
        self.any_sample = n_greedy < greedy.numel()
        self.cache: dict[Any, Any] = {}  # per-vocab plans, filled by the pipeline

    def __getattr__(self, name: str) -> torch.Tensor:
        cols = self.__dict__.get("cols", {})
        if name in cols:
            return cols[name]
        raise AttributeError(name)

    @property
    def rows(self) -> int:
        """Rows in the batch."""
        return self.greedy.numel()

    @property
    def device(self) -> torch.device:
        """Where the columns live."""
        return self.greedy.device

    @classmethod
    def from_params(cls, params: Sequence[SamplingParams],
                    device: torch.device | str = "cpu") -> RowParams:
        """Build the columns once per batch from each row's ``SamplingParams``."""

        def value(p: SamplingParams, name: str) -> Any:
            return DEFAULTS[name] if p.greedy and name in _WARPER_SWITCHES else getattr(p, name)

        cols = {name: torch.tensor([value(p, name) for p in params],
                                   dtype=torch.int64 if name in _INTS else torch.float32,
                                   device=device)
                for name in NUMERIC}
        greedy = torch.tensor([p.greedy for p in params], dtype=torch.bool, device=device)
        return cls(cols, greedy, params)

    def on(self, stage: str) -> torch.Tensor:
        """``[rows]`` bool: the rows that use ``stage``."""
        if stage == "logit_bias":
            return torch.tensor([bool(p.logit_bias) for p in self.settings], dtype=torch.bool,
                                device=self.device)
        if stage == "temperature":
            t = self.cols["temperature"]
            return ((t != 1.0) | (self.cols["dynatemp_range"] > 0)) & (t > 0)
        out = torch.zeros_like(self.greedy)
        for name in STAGE_SWITCHES[stage]:
            out |= self.cols[name] != DEFAULTS[name]
        return out

    def order_groups(self) -> list[tuple[tuple[str, ...], torch.Tensor | None]]:
        """``(order, rows)`` per distinct sampler order (rows None = every row)."""
        distinct = list(dict.fromkeys(self.orders))
        if len(distinct) == 1:
            return [(distinct[0], None)]
        return [(order, torch.tensor([i for i, o in enumerate(self.orders) if o == order],
                                     dtype=torch.long, device=self.device))
                for order in distinct]

    def select(self, index: torch.Tensor) -> RowParams:
        """Keep only the rows in ``index`` (for compacting a batch)."""
        kept = [self.settings[i] for i in index.tolist()]
        return RowParams({n: c.index_select(0, index) for n, c in self.cols.items()},
                         self.greedy.index_select(0, index), kept)
