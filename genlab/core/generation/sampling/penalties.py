"""Processors on the raw logits: repetition, presence and frequency penalties, no-repeat-ngram,
min-tokens and logit bias.

Each kernel gets the ``[n, vocab]`` logits of the rows that use it (a private copy it may
change in place), the per-step state it needs from ``SamplerState`` (histories, counts) and
its parameters shaped ``[n, 1]``. They touch only the token ids in play (gather/scatter over
the history), never a dense ``[n, vocab]`` buffer, and write each id's new value exactly once
(repeated ids write the same value), so results do not depend on scatter order on any device.
"""

from __future__ import annotations

import torch

from genlab.core.generation.sampling.common import NEG_INF, POS_INF


def repetition_kernel(x: torch.Tensor, history: torch.Tensor, penalty: torch.Tensor
                      ) -> torch.Tensor:
    """``RepetitionPenaltyLogitsProcessor`` (CTRL): push the logits of seen ids toward 0.

    ``history`` ``[n, length]`` holds only ids the penalty applies to (padding and tokens
    outside ``repeat_last_n`` already replaced by an id that is in play); ``penalty`` 1 = off.
    """
    scores = x.gather(1, history)  # [n, length]
    scores = torch.where(scores < 0, scores * penalty, scores / penalty)
    return x.scatter_(1, history, scores)


def presence_frequency_kernel(x: torch.Tensor, generated: torch.Tensor, counts: torch.Tensor,
                              presence: torch.Tensor, frequency: torch.Tensor) -> torch.Tensor:
    """OpenAI's penalties: ``logit - (presence x [count > 0] + frequency x count)``.

    Args:
        generated: ``[n, t]`` every id generated so far (the ones outside the window have a
            count of 0 there, so they come out unchanged).
        counts: ``[n, vocab]`` float32 times each id was generated inside the window.
    """
    c = counts.gather(1, generated)  # [n, t]
    values = x.gather(1, generated) - (presence * (c > 0).to(x.dtype) + frequency * c)
    return x.scatter_(1, generated, values)


def no_repeat_ngram_kernel(x: torch.Tensor, history: torch.Tensor, real: torch.Tensor | None,
                           groups: tuple[tuple[torch.Tensor | None, int], ...]) -> torch.Tensor:
    """``NoRepeatNGramLogitsProcessor``: ban every token that would repeat an n-gram.

    An n-gram of the row's prompt + output whose first n-1 tokens equal the last n-1 tokens
    bans its n-th token. ``groups`` holds each distinct n with its rows (None = all rows).

    Args:
        history: ``[n, length]`` ids; ``real``: ``[n, length]`` bool, False on padding (None =
            no padding).
    """
    for rows, n in groups:
        h = history if rows is None else history.index_select(0, rows)
        r = real if real is None or rows is None else real.index_select(0, rows)
        banned = _ngram_bans(h, r, n)
        if banned is None:
            continue
        ids, values = banned  # [g, windows]
        if rows is None:
            x.scatter_reduce_(1, ids, values, reduce="amin", include_self=True)
        else:
            part = x.index_select(0, rows).scatter_reduce_(1, ids, values, reduce="amin",
                                                           include_self=True)
            x.index_copy_(0, rows, part)
    return x


def _ngram_bans(h: torch.Tensor, real: torch.Tensor | None, n: int
                ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(``[g, windows]`` each window's last id, -inf where banned else +inf), or None."""
    length = h.shape[1]
    if length < n:
        return None
    windows = h.unfold(1, n, 1)  # [g, length - n + 1, n]
    if n > 1:
        prefix = h[:, length - n + 1:]  # [g, n - 1]: the last n - 1 tokens
        match = (windows[:, :, : n - 1] == prefix.unsqueeze(1)).all(dim=-1)
    else:
        match = torch.ones(windows.shape[:2], dtype=torch.bool, device=h.device)
    if real is not None:  # every token of the window and of the prefix must be real
        match &= real.unfold(1, n, 1).all(dim=-1)
        match &= real[:, length - n + 1:].all(dim=-1, keepdim=True)
    values = torch.full(match.shape, POS_INF, device=h.device).masked_fill_(match, NEG_INF)
    return windows[:, :, n - 1], values


def min_tokens_kernel(x: torch.Tensor, min_tokens: torch.Tensor, eos: torch.Tensor,
                      step: int) -> torch.Tensor:
    """``MinNewTokensLengthLogitsProcessor``: EOS is -inf while fewer than N tokens exist."""
    active = min_tokens > step  # [n, 1]
    columns = x.index_select(1, eos)  # [n, e]
    return x.index_copy_(1, eos, torch.where(active, NEG_INF, columns))


def logit_bias_kernel(x: torch.Tensor, tail: torch.Tensor, tail_real: torch.Tensor,
                      last: torch.Tensor, bias: torch.Tensor, prefix: torch.Tensor,
                      prefix_mask: torch.Tensor, same_last: torch.Tensor) -> torch.Tensor:
    """Add each entry's bias to its last token when its prefix ends the context.

    ``SequenceBiasLogitsProcessor``'s rule: a one-token entry always applies; a longer entry
    applies when its first tokens equal the context's last ones. Entries with the same last
    token add up.

    Args:
        tail: ``[n, P]`` the context's last P ids (P = the longest prefix); ``tail_real``:
            ``[n, P]`` bool, False where the context is shorter.
        last, bias: ``[n, E]`` each entry's biased token and its bias.
        prefix, prefix_mask: ``[n, E, P]`` each entry's earlier tokens, right-aligned, and
            True on the positions they fill.
        same_last: ``[n, E, E]`` float, 1 where two entries bias the same token.
    """
    if prefix.shape[-1]:
        equal = (prefix == tail.unsqueeze(1)) & tail_real.unsqueeze(1)  # [n, E, P]
        match = (equal | ~prefix_mask).all(dim=-1)  # [n, E]
        bias = torch.where(match, bias, 0.0)
    total = (same_last * bias.unsqueeze(1)).nansum(dim=-1) if same_last.shape[-1] > 1 else bias
    return x.scatter_(1, last, x.gather(1, last) + total)
