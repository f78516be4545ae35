"""Training the byte-level BPE tokenizer of a from-scratch model (``genlab pretrain``).

Owns the tokenizer half of pretraining: a GPT-2-style byte-level BPE trained with
``tokenizers`` on the corpus, wrapped as a ``PreTrainedTokenizerFast`` and saved in the standard
layout (``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json``) so that plain
``AutoTokenizer.from_pretrained`` loads it with EOS, BOS and PAD set.

Choices (kept in the model card):

* **Byte-level, no unknown token, no normalisation.** Every UTF-8 string encodes and decodes
  back to itself exactly; the few curly quotes and dashes of TinyStories cost a byte token or two
  each instead of needing an ASCII mapping that users' prompts would also have to go through.
* **Special tokens** (ids 0, 1, 2): ``<|endoftext|>`` is EOS and the TinyStories document
  separator; ``<|bos|>`` starts every encoded text (a post-processor prepends it, as Llama
  tokenizers do, so ``tokenizer(text)`` is ``[bos] + tokens``; pass ``add_special_tokens=False``
  to get the bare tokens); ``<|pad|>`` pads batches and is never trained on.
* No prefix space is added: a story's first word is encoded as it is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

EOS_TOKEN = "<|endoftext|>"
BOS_TOKEN = "<|bos|>"
PAD_TOKEN = "<|pad|>"
SPECIAL_TOKENS = (EOS_TOKEN, BOS_TOKEN, PAD_TOKEN)
MIN_VOCAB = 256 + len(SPECIAL_TOKENS)


def train_tokenizer(
    documents: Iterable[str],
    vocab_size: int,
    out_dir: str | Path | None = None,
    *,
    min_frequency: int = 2,
) -> Any:
    """Train a byte-level BPE tokenizer on ``documents`` and optionally save it.

    Args:
        documents: The training texts (one story each); separators must already be removed.
        vocab_size: Final vocabulary size, special tokens and the 256 byte tokens included;
            >= 259.
        out_dir: Where to save the tokenizer files; None = do not save.
        min_frequency: Merges seen fewer times than this are not learned.

    Returns:
        A ``transformers.PreTrainedTokenizerFast`` with eos, bos and pad tokens set.
    """

    if vocab_size < MIN_VOCAB:
        raise ValueError(f"vocab_size={vocab_size}: must be >= {MIN_VOCAB} "
                         "(256 byte tokens + 3 special tokens)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_non_empty(documents), trainer=trainer)
    bos_id = tok.token_to_id(BOS_TOKEN)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A",
        pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B",
        special_tokens=[(BOS_TOKEN, bos_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        bos_token=BOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=1_000_000,
        clean_up_tokenization_spaces=False,
    )
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        fast.save_pretrained(str(out_dir))
    return fast


def _non_empty(documents: Iterable[str]) -> Iterator[str]:
    for doc in documents:
        if doc:
            yield doc
