"""Assistant-only loss masks: which tokens of a rendered conversation the model is trained on.

A conversation is rendered once with the model's chat template and tokenized once; a token
carries loss when its characters overlap what an assistant turn contributes: its content and
the end-of-turn token (so the model learns to stop), not the assistant header (``<|im_start|>
assistant\\n``), not system, user or tool turns.

Why character spans and one tokenization: diffing the token *lengths* of separately tokenized
prefixes (TRL's prompt/completion approach) breaks when BPE merges across the boundary (a
header's ``]`` and an answer's ``{`` becoming one ``]{`` token), and transformers'
``return_assistant_tokens_mask`` needs ``{% generation %}`` markers that almost no shipped
template has (without them it silently returns an all-zero mask). Here the span of assistant
message ``i`` starts where ``render(messages[:i], generation_prompt)`` ends and ends where
``render(messages[:i + 1])`` ends, both prefixes of the full render for templates that build a
conversation turn by turn (ChatML, Llama 3, Gemma, Mistral...). For templates that rewrite
history (Qwen3 drops earlier ``<think>`` blocks), the span falls back to locating the content
and the end-of-turn token after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genlab.core.data.chat import ChatError, end_of_turn_text, render_text


def assistant_spans(tokenizer: Any, pairs: Sequence[tuple[str, str]]
                    ) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the ``[start, end)`` character span of each assistant turn.

    Raises:
        ChatError: The template refuses the conversation, or an assistant turn cannot be found
            in the rendered text.
    """
    full = render_text(tokenizer, pairs, generation_prompt=False)
    spans: list[tuple[int, int]] = []
    cursor = 0
    for i, (role, content) in enumerate(pairs):
        if role != "assistant":
            continue
        start = _prefix_end(tokenizer, pairs[:i], full, generation_prompt=True)
        end = _prefix_end(tokenizer, pairs[:i + 1], full, generation_prompt=False)
        if start is None or start < cursor:
            start = _find_content(full, content, cursor, i)
        if end is None or end <= start:
            end = _turn_end(tokenizer, full, content, start)
        spans.append((start, end))
        cursor = end
    return full, spans


def _prefix_end(tokenizer: Any, pairs: Sequence[tuple[str, str]], full: str, *,
                generation_prompt: bool) -> int | None:
    """Where the render of ``pairs`` ends inside ``full``, if it is a prefix of it."""
    if not pairs:
        return None if generation_prompt else 0
    try:
        head = render_text(tokenizer, pairs, generation_prompt=generation_prompt)
    except ChatError:  # e.g. a template that insists on ending with a user turn
        return None
    return len(head) if full.startswith(head) else None


def _find_content(full: str, content: str, cursor: int, index: int) -> int:
    needle = content.strip()
    pos = full.find(needle, cursor) if needle else -1
    if pos < 0:
        raise ChatError(f"messages[{index}]: the assistant turn is not in the rendered "
                        "conversation; the chat template rewrites it")
    return pos


def _turn_end(tokenizer: Any, full: str, content: str, start: int) -> int:
    """End of an assistant turn found by content: through the end-of-turn token after it."""
    eot = end_of_turn_text(tokenizer)
    if eot:
        stop = full.find(eot, start)
        if stop >= 0:
            return stop + len(eot)
    tail = content.strip().split("</think>")[-1].strip()
    pos = full.find(tail, start) if tail else -1
    return pos + len(tail) if pos >= 0 else len(full)


def assistant_token_mask(tokenizer: Any, pairs: Sequence[tuple[str, str]]
                         ) -> tuple[list[int], list[int]]:
    """Token ids of the rendered conversation and a 0/1 mask: 1 on assistant tokens.

    The ids equal ``apply_chat_template(messages, tokenize=True, return_dict=False)``: the
    template's text tokenized with ``add_special_tokens=False`` (templates write their own
    BOS). Needs a fast tokenizer (character offsets).

    Raises:
        ChatError: As ``assistant_spans``, or a tokenizer without offsets.
    """
    full, spans = assistant_spans(tokenizer, pairs)
    try:
        enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError:
        raise ChatError("conversation training needs a fast tokenizer (one with character "
                        "offsets)") from None
    ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
    mask = [0] * len(ids)
    k = 0
    for j, (a, b) in enumerate(offsets):
        while k < len(spans) and a >= spans[k][1]:
            k += 1
        if k == len(spans):
            break
        if b > a and b > spans[k][0]:  # the token overlaps assistant span k
            mask[j] = 1
    return ids, mask
