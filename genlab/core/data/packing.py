"""Training data for the training loop: documents -> tokens -> packed blocks, plus the eval split.

``prepare_data(config, tokenizer)`` is the one entry point of the training loop. Loading files
lives in ``genlab.core.data.sources`` (re-exported here); this module owns the choices that
decide what the model is trained and evaluated on:

* **Token stream.** Every document is encoded with the fast tokenizer in one batch call
  (``add_special_tokens=False``) and laid out as ``[start] tokens [EOS]``. ``start`` is the BOS
  token when the tokenizer has one distinct from EOS, else EOS itself (GPT-2 style), so every
  document, the first included, follows the same start token. Prompts at generation time
  should start the same way: genlab's and Llama tokenizers prepend BOS themselves
  (``tokenizer(text)``); for others prepend ``document_start_id(tokenizer)``.
* **Labels.** The start token never carries loss (it is predictable, and a whole document can't
  be conditioned on nothing). In prompt/completion mode the prompt tokens carry none either: the
  loss is on the completion and its EOS. Labels follow the Hugging Face convention: aligned with
  ``input_ids``; the model shifts them.
* **Conversations** (``messages`` rows, or prompt/completion rows with ``chat``) are laid out as
  the model's chat template renders them, with no extra start or EOS token (templates write
  their own BOS and turn markers), and carry loss on the assistant turns only: each reply and
  its end-of-turn token, never the assistant header, system, user or tool turns
  (``genlab.core.data.chat_masks``). The labels travel with their tokens through packing, so a
  conversation cut across two blocks keeps every turn boundary where it was.
* **Packing.** The stream is cut into ``seq_len`` blocks that overlap by one token (stride
  ``seq_len - 1``), and the first label of each block is -100. The model predicts position ``i``
  from positions ``< i``, so a block's first token can never be a target; the overlap makes it
  the last target of the previous block instead. Every token after the first is therefore
  scored exactly once, which makes ``eval_bytes`` exact. Documents run across block boundaries
  (no compute goes to padding); only the final remainder block is padded (pad id, label -100,
  mask 0). It is kept whenever it holds a token that carries loss, so no training document is
  silently dropped; training needs at least one full block. A block in which no token carries
  loss (all prompt, in prompt/completion data) is dropped: every block has loss tokens.
* **Eval.** ``eval_data`` when given, else ``eval_split`` of the documents held out: a shuffle
  with ``config.seed`` picks them (at least 1 when eval_split > 0), both parts keep file order.
  ``eval_split == 0`` without ``eval_data`` means no eval set.
* **Bits per byte.** ``eval_bytes`` counts the UTF-8 bytes of every scored text (documents, or
  completions) and 0 bytes for the EOS tokens, whose loss still counts: knowing where a document
  ends is part of modelling it. This is the definition of ``genlab.core.pretrain.bpb``, so the two
  numbers compare. ``bits/byte = sum of eval nats / ln 2 / eval_bytes``.
* **Order.** Blocks come out in document order; the training loop shuffles them per epoch.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from genlab.core.configs import TrainConfig
from genlab.core.data.chat import ChatError, has_chat_template
from genlab.core.data.chat_masks import assistant_token_mask
from genlab.core.data.sources import (
    SUPPORTED_SUFFIXES,
    DataError,
    Document,
    load_documents,
)

__all__ = [
    "SUPPORTED_SUFFIXES",
    "DataError",
    "Document",
    "PreparedData",
    "TokenBlocks",
    "TokenStream",
    "document_start_id",
    "eval_byte_count",
    "load_documents",
    "pack_tokens",
    "prepare_data",
    "split_documents",
    "tokenize_documents",
]

IGNORE_INDEX = -100
"""Label of a position that carries no loss (PyTorch's cross-entropy ``ignore_index``)."""


@dataclass(frozen=True)
class TokenBlocks:
    """Packed fixed-length sequences ready for a causal LM.

    Attributes:
        input_ids: ``[n, seq_len]`` int64 token ids.
        labels: ``[n, seq_len]`` int64 targets aligned with ``input_ids`` (the model shifts
            them); -100 where there is no loss: padding, start tokens, prompts, block starts.
        attention_mask: ``[n, seq_len]`` int64; 0 only on padding.
    """

    input_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def num_loss_tokens(self) -> int:
        """Positions that carry loss (labels != -100)."""
        return int((self.labels != IGNORE_INDEX).sum())


@dataclass(frozen=True)
class PreparedData:
    """Everything the training loop needs from the data, tokenised and packed.

    Attributes:
        train: Training blocks in document order (the loop shuffles them).
        eval: Eval blocks, or None when there is no eval set.
        train_documents: Documents in the training part.
        eval_documents: Documents in the eval part (0 without eval).
        eval_bytes: UTF-8 bytes of the scored eval text (documents or completions; EOS
            tokens count 0 bytes): the denominator of bits per byte.
        train_tokens: Tokens in the training stream (document tokens plus start/EOS tokens).
        chat: True when the documents are conversations rendered by the chat template.
    """

    train: TokenBlocks
    eval: TokenBlocks | None
    train_documents: int
    eval_documents: int
    eval_bytes: int
    train_tokens: int
    chat: bool = False


@dataclass(frozen=True)
class TokenStream:
    """Documents tokenised and concatenated: one 1-D id tensor and its aligned labels."""

    input_ids: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def document_start_id(tokenizer: Any) -> int:
    """The token placed before every document: BOS when distinct from EOS, else EOS.

    Raises:
        DataError: The tokenizer has no EOS token.
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise DataError("--model: the tokenizer has no EOS token, so documents cannot be "
                        "separated; add eos_token to its tokenizer_config.json")
    bos = tokenizer.bos_token_id
    return int(bos) if bos is not None and bos != eos else int(eos)


def tokenize_documents(documents: Sequence[Document], tokenizer: Any) -> TokenStream:
    """Encode documents as ``[start] (prompt) text [EOS]`` each, concatenated in order.

    Labels are -100 on start tokens and prompt tokens, the token id elsewhere. Conversations
    are encoded by ``tokenize_conversations`` instead.
    """
    if any(d.is_conversation for d in documents):
        return tokenize_conversations(documents, tokenizer)
    start, eos = document_start_id(tokenizer), int(tokenizer.eos_token_id)
    texts = _encode([d.text for d in documents], tokenizer)
    prompts = _encode([d.prompt or "" for d in documents], tokenizer) if any(
        d.is_pair for d in documents) else [[] for _ in documents]
    # Per document four segments: start (1), prompt (P), text (T), eos (1); role codes 0..3.
    seg_lengths = np.empty((len(documents), 4), dtype=np.int64)
    seg_lengths[:, 0] = 1
    seg_lengths[:, 1] = [len(p) for p in prompts]
    seg_lengths[:, 2] = [len(t) for t in texts]
    seg_lengths[:, 3] = 1
    roles = np.repeat(np.tile(np.arange(4, dtype=np.int8), len(documents)), seg_lengths.ravel())
    pieces = itertools.chain.from_iterable(zip(prompts, texts, strict=True))
    content = np.fromiter(itertools.chain.from_iterable(pieces), dtype=np.int64,
                          count=int(seg_lengths[:, 1:3].sum()))
    ids = np.empty(roles.shape[0], dtype=np.int64)
    ids[roles == 0] = start
    ids[roles == 3] = eos
    ids[(roles == 1) | (roles == 2)] = content
    labels = ids.copy()
    labels[roles <= 1] = IGNORE_INDEX
    return TokenStream(torch.from_numpy(ids), torch.from_numpy(labels))


def tokenize_conversations(documents: Sequence[Document], tokenizer: Any) -> TokenStream:
    """Encode conversations through the chat template, loss on assistant tokens only.

    Raises:
        DataError: A document that is not a conversation, no chat template, or a template
            that refuses a conversation (named by its number).
    """
    if not has_chat_template(tokenizer):
        raise DataError("--data: the rows are conversations (messages), but the model's "
                        "tokenizer has no chat template; train a chat model, or use text or "
                        "prompt/completion rows")
    ids: list[int] = []
    labels: list[int] = []
    for number, doc in enumerate(documents, start=1):
        if doc.messages is None:
            raise DataError(f"--data: document {number} is not a conversation; a data set "
                            "must not mix conversations with text rows")
        try:
            doc_ids, mask = assistant_token_mask(tokenizer, doc.messages)
        except ChatError as err:
            raise DataError(f"--data: conversation {number}: {err}") from None
        ids += doc_ids
        labels += [t if m else IGNORE_INDEX for t, m in zip(doc_ids, mask, strict=True)]
    return TokenStream(torch.tensor(ids, dtype=torch.int64),
                       torch.tensor(labels, dtype=torch.int64))


def as_conversations(documents: Sequence[Document]) -> list[Document]:
    """Prompt/completion documents as a user turn and an assistant reply (``--chat``)."""
    return [Document.conversation((("user", d.prompt or ""), ("assistant", d.text)))
            if d.is_pair else d for d in documents]


def _encode(texts: list[str], tokenizer: Any) -> list[list[int]]:
    if not texts:
        return []
    # verbose=False keeps the "sequence longer than model_max_length" warning out: packing
    # cuts long documents into blocks anyway.
    return tokenizer(texts, add_special_tokens=False, return_attention_mask=False,
                     verbose=False)["input_ids"]


def pack_tokens(stream: TokenStream, seq_len: int, pad_id: int) -> TokenBlocks:
    """Cut a token stream into ``seq_len`` blocks overlapping by one token (see module doc).

    The final partial block is padded. Blocks without any scored token (the tail, or a block
    that holds only prompt tokens) are dropped, so every block carries loss.
    """
    total = len(stream)
    stride = seq_len - 1
    n_full = (total - seq_len) // stride + 1 if total >= seq_len else 0
    ids = stream.input_ids.unfold(0, seq_len, stride)[:n_full] if n_full else None
    labels = stream.labels.unfold(0, seq_len, stride)[:n_full] if n_full else None
    id_parts = [ids] if ids is not None else []
    label_parts = [labels.clone()] if labels is not None else []
    mask_parts = [torch.ones(n_full, seq_len, dtype=torch.int64)] if n_full else []
    rest = n_full * stride
    tail_labels = stream.labels[rest:].clone()
    if tail_labels.numel():
        tail_labels[0] = IGNORE_INDEX
    if (tail_labels != IGNORE_INDEX).any():
        size = total - rest
        block_ids = torch.full((1, seq_len), pad_id, dtype=torch.int64)
        block_labels = torch.full((1, seq_len), IGNORE_INDEX, dtype=torch.int64)
        block_mask = torch.zeros(1, seq_len, dtype=torch.int64)
        block_ids[0, :size] = stream.input_ids[rest:]
        block_labels[0, :size] = tail_labels
        block_mask[0, :size] = 1
        id_parts.append(block_ids)
        label_parts.append(block_labels)
        mask_parts.append(block_mask)
    if not id_parts:
        empty = torch.empty(0, seq_len, dtype=torch.int64)
        return TokenBlocks(empty, empty.clone(), empty.clone())
    out_labels = torch.cat(label_parts)
    out_labels[:, 0] = IGNORE_INDEX  # predicted as the previous block's last target
    keep = (out_labels != IGNORE_INDEX).any(dim=1)  # e.g. a block of prompt tokens only
    return TokenBlocks(torch.cat(id_parts)[keep].contiguous(), out_labels[keep],
                       torch.cat(mask_parts)[keep])


def split_documents(
    documents: Sequence[Document], fraction: float, seed: int
) -> tuple[list[Document], list[Document]]:
    """Hold out ``fraction`` of the documents (at least one) chosen by a ``seed`` shuffle.

    Both parts keep the original document order.

    Raises:
        DataError: Fewer than two documents, so nothing can be held out.
    """
    n = len(documents)
    if n < 2:
        raise DataError(f"--eval-split {fraction}: the data has only {n} document, too few to "
                        "hold any out for evaluation; pass --eval-data FILE or --eval-split 0")
    n_eval = min(n - 1, max(1, round(n * fraction)))
    order = list(range(n))
    random.Random(seed).shuffle(order)
    held = set(order[:n_eval])
    train = [d for i, d in enumerate(documents) if i not in held]
    evals = [d for i, d in enumerate(documents) if i in held]
    return train, evals


def eval_byte_count(documents: Sequence[Document]) -> int:
    """UTF-8 bytes of the scored text of ``documents`` (their EOS tokens count 0 bytes)."""
    return sum(len(d.text.encode("utf-8")) for d in documents)


def prepare_data(config: TrainConfig, tokenizer: Any) -> PreparedData:
    """Load, split, tokenise and pack the training (and eval) data of ``config``.

    Args:
        config: Uses ``data``, ``eval_data``, ``eval_split``, ``text_field``,
            ``prompt_field``, ``completion_field``, ``doc_separator``, ``seq_len``, ``seed``.
        tokenizer: A Hugging Face tokenizer with an EOS token (a fast one is much faster).

    Raises:
        DataError: One line naming the flag, the problem and the fix.
    """
    fields = dict(text_field=config.text_field, prompt_field=config.prompt_field,
                  completion_field=config.completion_field, doc_separator=config.doc_separator,
                  messages_field=config.messages_field, data_format=config.data_format)
    documents = _loaded(config, config.data, "--data", fields)
    if config.eval_data:
        train_docs = documents
        eval_docs = _loaded(config, config.eval_data, "--eval-data", fields)
    elif config.eval_split > 0:
        train_docs, eval_docs = split_documents(documents, config.eval_split, config.seed)
    else:
        train_docs, eval_docs = documents, []
    pad_id = tokenizer.pad_token_id
    pad_id = int(tokenizer.eos_token_id if pad_id is None else pad_id)
    train_stream = tokenize_documents(train_docs, tokenizer)
    _require_full_block(len(train_stream), config.seq_len)
    train = pack_tokens(train_stream, config.seq_len, pad_id)
    evals = None
    if eval_docs:
        evals = pack_tokens(tokenize_documents(eval_docs, tokenizer), config.seq_len, pad_id)
    return PreparedData(
        train=train,
        eval=evals,
        train_documents=len(train_docs),
        eval_documents=len(eval_docs),
        eval_bytes=eval_byte_count(eval_docs),
        train_tokens=len(train_stream),
        chat=any(d.is_conversation for d in train_docs),
    )


def _loaded(config: TrainConfig, source: str, flag: str, fields: dict[str, Any]
            ) -> list[Document]:
    """``load_documents``, turned into conversations with ``config.chat``."""
    documents = load_documents(source, flag=flag, **fields)
    if config.chat:
        if not any(d.is_pair or d.is_conversation for d in documents):
            raise DataError(f"--chat: {flag} {source} holds text rows; --chat renders "
                            "prompt/completion rows (--prompt-field/--completion-field) or "
                            "conversations through the chat template")
        documents = as_conversations(documents)
    return documents


def _require_full_block(tokens: int, seq_len: int) -> None:
    if tokens >= seq_len:
        return
    fix = "add more training data"
    if tokens >= 8:
        fix = f"use --seq-len {1 << (tokens.bit_length() - 1)} or less, or add more data"
    raise DataError(f"--seq-len {seq_len}: the training data has only {tokens} tokens, less "
                    f"than one full block of {seq_len}; {fix}")
