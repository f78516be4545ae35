"""The sampler pipeline: which stages run, on which rows, in which order; ``process_logits``.

Plans are computed once per batch (and after the batch is compacted): for each group of rows
sharing a sampler order, the stages some row of the group uses, each with the rows that use it
and its kernel arguments. A stage no row uses costs nothing; a stage a few rows use runs on
those rows only. Top-k directly followed by top-p (the default order) shares one sort.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from genlab.core.generation.sampling.rows import RowParams
from genlab.core.generation.sampling.stages import STAGES, Pick, Stage, fused_filter_args


@dataclass(frozen=True)
class Plan:
    """One stage of one group: its rows (in the group; None = all) and kernel arguments."""

    stage: Stage
    rows: torch.Tensor | None
    absolute: torch.Tensor | None
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Group:
    """Rows sharing a sampler order (None = every row) and their plans, in order."""

    rows: torch.Tensor | None
    plans: tuple[Plan, ...]


def plans_for(params: RowParams, vocab: int) -> tuple[Group, ...]:
    """The groups and plans of ``params`` for a vocabulary of ``vocab`` (cached)."""
    key = ("plans", vocab)
    if key not in params.cache:
        params.cache[key] = tuple(_group(params, order, rows, vocab)
                                  for order, rows in params.order_groups())
    return params.cache[key]


def _group(params: RowParams, order: tuple[str, ...], rows: torch.Tensor | None,
           vocab: int) -> Group:
    cols = params.cols if rows is None else {n: c.index_select(0, rows)
                                             for n, c in params.cols.items()}
    on = {s: (params.on(s) if rows is None else params.on(s).index_select(0, rows))
          for s in order if s in params.uses}
    names = [s for s in order if s in on and bool(on[s].any())]
    plans = []
    i = 0
    while i < len(names):
        name = names[i]
        if name == "top_k" and i + 1 < len(names) and names[i + 1] == "top_p":
            both = on["top_k"] | on["top_p"]
            plans.append(_plan(STAGES["top_p"], cols, both, rows, vocab, fused_filter_args))
            i += 2
            continue
        plans.append(_plan(STAGES[name], cols, on[name], rows, vocab))
        i += 1
    return Group(rows, tuple(plans))


def _plan(stage: Stage, cols: dict[str, torch.Tensor], on: torch.Tensor,
          group_rows: torch.Tensor | None, vocab: int, build: Any = None) -> Plan:
    index = on.nonzero().squeeze(1)
    rows = None if stage.batch_wide or index.numel() == on.numel() else index
    args = (build or stage.build)(Pick(cols, on, rows, vocab))
    absolute = rows if group_rows is None or rows is None else group_rows.index_select(0, rows)
    if rows is None and group_rows is not None:
        absolute = group_rows
    return Plan(stage, rows, absolute, args)


def process_logits(logits: torch.Tensor, params: RowParams, state: Any = None) -> torch.Tensor:
    """Apply every stage each row uses, in the row's order; ``logits`` is never modified.

    Args:
        logits: ``[rows, vocab]`` float32 raw logits.
        params: Per-row settings.
        state: The batch's ``SamplerState``; required when a row uses a stage that reads the
            history or keeps state (penalties, DRY, XTC, mirostat, logit bias, min-tokens).
    """
    out = logits
    for group in plans_for(params, logits.shape[-1]):
        x = logits if group.rows is None else logits.index_select(0, group.rows)
        owned = group.rows is not None
        for plan in group.plans:
            x = _run(x, plan, state, owned)
            owned = owned or x is not logits
        if group.rows is None:
            out = x
        else:
            out = (out.clone() if out is logits else out).index_copy_(0, group.rows, x)
    return out


def _run(x: torch.Tensor, plan: Plan, state: Any, owned: bool) -> torch.Tensor:
    """One kernel on its rows (``owned``: ``x`` is a private copy it may change in place)."""
    stage = plan.stage
    inputs: tuple = ()
    shared: tuple = ()
    if stage.needs_state:
        if state is None:
            raise ValueError(f"process_logits: a row uses {stage.name}; pass its SamplerState")
        if stage.live is not None and not stage.live(state, plan.args):
            return x
        if stage.inputs is not None:
            inputs = stage.inputs(state)
            if plan.absolute is not None:
                inputs = tuple(t if t is None else t.index_select(0, plan.absolute)
                               for t in inputs)
        if stage.shared is not None:
            shared = stage.shared(state)
    if plan.rows is None:
        return stage.kernel(x if owned or stage.fresh else x.clone(), *inputs, *plan.args,
                            *shared)
    part = stage.kernel(x.index_select(0, plan.rows), *inputs, *plan.args, *shared)
    out = x if owned else x.clone()
    return out.index_copy_(0, plan.rows, part)
