"""Logit bias: TOKEN=BIAS entries resolved to token ids, and the per-batch table of them.

A token id stays itself; a text becomes its ids (tokenised without special tokens, exactly as
written: ``" the"`` and ``"the"`` are different tokens in most vocabularies). A text of one
token biases that token; a text of several biases its last token when the context ends with
the others (transformers' ``sequence_bias``). ``resolve_logit_bias`` raises ``ConfigError``
(field ``logit_bias``) for an id outside the vocabulary or a text of no tokens, so faces can
check entries right after the model loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from genlab.core.configs import ConfigError
from genlab.core.configs.sampler_text import format_bias

Entry = tuple[tuple[int, ...], float]


def resolve_logit_bias(tokenizer: Any, entries: Sequence[tuple[int | str, float]],
                       vocab: int) -> tuple[Entry, ...]:
    """``((ids...), bias)`` for each ``(token, bias)`` entry (ids checked against ``vocab``)."""
    out: dict[tuple[int, ...], float] = {}
    for token, bias in entries:
        if isinstance(token, int):
            ids: tuple[int, ...] = (token,)
        else:
            ids = tuple(tokenizer(token, add_special_tokens=False)["input_ids"])
            if not ids:
                raise ConfigError("logit_bias", format_bias(((token, bias),)),
                                  "a text that is at least one token")
        bad = [i for i in ids if not 0 <= i < vocab]
        if bad:
            raise ConfigError("logit_bias", format_bias(((token, bias),)),
                              f"token ids in 0..{vocab - 1} (this model's vocabulary)")
        out.pop(ids, None)
        out[ids] = bias
    return tuple(out.items())


@dataclass(frozen=True)
class BiasTable:
    """Every row's entries as rectangular tensors (rows with fewer entries padded).

    Attributes:
        last: ``[B, E]`` the biased token of each entry.
        bias: ``[B, E]`` float32 its bias (0 for padding).
        prefix: ``[B, E, P]`` the tokens before it, right-aligned (-1 where none).
        prefix_mask: ``[B, E, P]`` True on the positions ``prefix`` fills.
        same_last: ``[B, E, E]`` float32, 1 where two entries bias the same token.
    """

    last: torch.Tensor
    bias: torch.Tensor
    prefix: torch.Tensor
    prefix_mask: torch.Tensor
    same_last: torch.Tensor

    def select(self, index: torch.Tensor) -> BiasTable:
        """Keep only the rows in ``index``."""
        return BiasTable(*(t.index_select(0, index) for t in (
            self.last, self.bias, self.prefix, self.prefix_mask, self.same_last)))


def build_bias_table(rows: Sequence[Sequence[Entry]], device: torch.device | str) -> BiasTable:
    """The ``BiasTable`` of every row's resolved entries (one-token entries first)."""
    ordered = [sorted(entries, key=lambda e: len(e[0]) > 1) for entries in rows]
    width = max([len(e) for e in ordered] + [1])
    longest = max([len(ids) - 1 for entries in ordered for ids, _ in entries] + [0])
    last, bias, prefix, mask = [], [], [], []
    for entries in ordered:
        padded = list(entries) + [(entries[0][0] if entries else (0,), 0.0)] * (
            width - len(entries))
        last.append([ids[-1] for ids, _ in padded])
        bias.append([b if i < len(entries) else 0.0 for i, (_, b) in enumerate(padded)])
        prefix.append([[-1] * (longest - len(ids) + 1) + list(ids[:-1]) for ids, _ in padded])
        mask.append([[False] * (longest - len(ids) + 1) + [i < len(entries)] * (len(ids) - 1)
                     for i, (ids, _) in enumerate(padded)])
    last_t = torch.tensor(last, dtype=torch.long, device=device)
    return BiasTable(
        last=last_t,
        bias=torch.tensor(bias, dtype=torch.float32, device=device),
        prefix=torch.tensor(prefix, dtype=torch.long, device=device).reshape(
            len(rows), width, longest),
        prefix_mask=torch.tensor(mask, dtype=torch.bool, device=device).reshape(
            len(rows), width, longest),
        same_last=(last_t.unsqueeze(2) == last_t.unsqueeze(1)).float(),
    )
