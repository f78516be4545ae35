"""How likely the base model finds a generated text: the log-probability of its tokens.

Owns scoring continuations: each row is a prompt plus the token ids generated after it, and
the score is the sum of ``log p(token | prompt, earlier tokens)`` over the generated tokens,
under the base model (LoRA adapters switched off), from one batched forward pass per chunk.
Compare reports divide it by the token count (mean log-probability, perplexity): a quality
measure beside diversity, since high-temperature gibberish has distinct bigrams but a very low
log-probability under the model that produced it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genlab.core.configs import GenerationRequest
from genlab.core.generation.prompting import encode_requests
from genlab.core.modeling.loading import LoadedModel


@torch.inference_mode()
def score_continuations(loaded: LoadedModel, requests: Sequence[GenerationRequest],
                        continuations: Sequence[Sequence[int]], batch_size: int = 8
                        ) -> list[float | None]:
    """Sum of the base model's log-probabilities of each continuation's tokens.

    Args:
        loaded: The model (adapters, if any, are bypassed: this is the base model's view).
        requests: The request of each row; its prompt is encoded as the decode loop encodes
            it (chat template, context truncation), so the scores are of what was generated.
        continuations: The generated token ids of each row.
        batch_size: Rows per forward pass.

    Returns:
        One float per row (natural log), or None for a row without tokens.

    Raises:
        PromptError, ContextLimitError: As ``genlab.core.generation.prompting.encode_requests``.
    """
    prompt_ids = [e.ids for e in encode_requests(loaded, requests)]
    out: list[float | None] = []
    for first in range(0, len(prompt_ids), batch_size):
        rows = range(first, min(first + batch_size, len(prompt_ids)))
        out += _score_chunk(loaded, [prompt_ids[i] for i in rows],
                            [list(continuations[i]) for i in rows])
    return out


def _score_chunk(loaded: LoadedModel, prompts: list[list[int]], tails: list[list[int]]
                 ) -> list[float | None]:
    sequences = [p + t for p, t in zip(prompts, tails, strict=True)]
    width = max(len(s) for s in sequences)
    pad = loaded.tokenizer.pad_token_id or 0
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in sequences], device=loaded.device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences],
                        device=loaded.device)  # [B, L], left padding
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    extra = {}
    if loaded.adapters:  # the base model: every row skips the LoRA layers
        extra["adapter_names"] = ["__base__"] * len(sequences)
    logits = loaded.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                          **extra).logits.float()  # [B, L, V]
    logp = logits[:, :-1].log_softmax(dim=-1).gather(2, ids[:, 1:].unsqueeze(2)).squeeze(2)
    scores: list[float | None] = []
    for b, tail in enumerate(tails):
        if not tail:
            scores.append(None)
            continue
        scores.append(float(logp[b, width - 1 - len(tail):].sum()))  # [B, L - 1] positions
    return scores
