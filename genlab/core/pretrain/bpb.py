"""Whole-document bits per byte: the tokenizer-independent quality number of a causal LM.

Owns one definition, used by ``genlab pretrain``'s final report and the model card:

    bpb = -sum_docs sum_t log p(x_t | x_<t) / ln 2 / sum_docs utf8_bytes(doc)

where each document is scored **whole, from its start**: the model sees ``[bos] + doc tokens
+ [eos]`` and every token after the BOS is scored, the closing EOS included (knowing where a
story ends is part of modelling it). The byte count is the UTF-8 length of the document text
alone (no separator), so models with different tokenizers compare directly.

A document longer than ``context`` tokens is scored with a sliding window: the first window
scores its first ``context`` positions, and each later window moves ``stride`` tokens on and
scores only its new tokens, each conditioned on ``context - stride`` tokens or more. All windows
of all documents are sorted by length and run in right-padded batches under ``inference_mode``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch


class BitsPerByte(NamedTuple):
    """Result of ``bits_per_byte``: unpacks as ``(bpb, nats, bytes)``."""

    bpb: float
    """Bits per UTF-8 byte."""
    nats: float
    """Total negative log-likelihood in nats over every scored token."""
    bytes: int
    """Total UTF-8 bytes of the documents."""


def document_windows(
    ids: list[int], context: int, stride: int
) -> list[tuple[list[int], int]]:
    """Split one token sequence into ``(window_ids, first_scored_position)`` pairs.

    Position ``j`` of a window is scored against the logits at ``j - 1``; every position of
    ``ids`` after the first is scored exactly once over all windows.
    """
    if len(ids) <= context:
        return [(ids, 1)]
    windows = [(ids[:context], 1)]
    scored_to = context
    while scored_to < len(ids):
        end = min(scored_to + stride, len(ids))
        start = end - context
        windows.append((ids[start:end], scored_to - start))
        scored_to = end
    return windows


def bits_per_byte(
    model: Any,
    tokenizer: Any,
    stories: list[str],
    *,
    batch_size: int = 16,
    context: int | None = None,
    stride: int | None = None,
    prefix_token_id: int | None = None,
) -> BitsPerByte:
    """Score each story whole from its start and return bits per byte over all of them.

    Args:
        model: A causal LM returning ``.logits`` (any device; left in the mode it came in).
        tokenizer: Its tokenizer; must have an EOS token.
        stories: Document texts, without separators.
        batch_size: Windows per forward pass.
        context: Longest window in tokens; None = the model's ``max_position_embeddings``.
        stride: Tokens a window moves on for long documents; None = ``context // 2``.
        prefix_token_id: Token the model is conditioned on before each story; None = BOS
            (EOS when the tokenizer has no BOS).
    """

    if not stories:
        raise ValueError("bits_per_byte: no stories to score")
    context = context or int(model.config.max_position_embeddings)
    stride = stride or max(1, context // 2)
    if not 1 <= stride < context:
        raise ValueError(f"stride={stride}: must be in [1, context={context})")
    prefix = prefix_token_id
    if prefix is None:
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None \
            else tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    encoded = tokenizer(list(stories), add_special_tokens=False)["input_ids"]
    windows = [w for ids in encoded
               for w in document_windows([prefix, *ids, tokenizer.eos_token_id], context, stride)]
    windows.sort(key=lambda w: len(w[0]))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_nats = 0.0
    try:
        with torch.inference_mode():
            for i in range(0, len(windows), batch_size):
                total_nats += _batch_nats(model, windows[i:i + batch_size], pad, device)
    finally:
        model.train(was_training)
    n_bytes = sum(len(s.encode("utf-8")) for s in stories)
    return BitsPerByte(total_nats / math.log(2) / n_bytes, total_nats, n_bytes)


def _batch_nats(model: Any, batch: list[tuple[list[int], int]], pad: int, device: Any) -> float:
    """Summed NLL (nats) of the scored positions of right-padded windows."""

    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
    scored = torch.zeros((len(batch), width), dtype=torch.bool)  # [B, T]: position is a target
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, first) in enumerate(batch):
        input_ids[row, :len(ids)] = torch.tensor(ids)
        attention[row, :len(ids)] = 1
        scored[row, first:len(ids)] = True
    input_ids, scored, attention = input_ids.to(device), scored.to(device), attention.to(device)
    logits = model(input_ids=input_ids, attention_mask=attention).logits  # [B, T, V]
    logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # [B, T-1, V] predicts 1..T-1
    target_lp = logprobs.gather(-1, input_ids[:, 1:, None]).squeeze(-1)  # [B, T-1]
    return float(-(target_lp * scored[:, 1:]).sum())
