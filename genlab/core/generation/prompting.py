"""What a row starts from: its prompt as token ids, the tokens that end it, and the context check.

Owns turning a ``GenerationRequest``'s prompt side into ``EncodedPrompt``:

* **Chat or raw text.** ``request.chat`` None means "chat when the tokenizer has a template"
  (what an instruct model needs: asked raw text, it tends to answer with an immediate end of
  text). A chat row's conversation is ``request.messages`` (or one user turn of ``prompt``),
  with ``request.system`` in front, rendered by ``genlab.core.data.chat``; its reply ends at
  the template's end-of-turn token as well as at EOS. A raw row is ``tokenizer(prompt)``, and
  an empty prompt starts from BOS (or EOS when there is no BOS).
* **Context.** Prompt tokens + ``max_new_tokens`` must fit the model's context length;
  otherwise ``ContextLimitError`` names both numbers and the limit, unless
  ``truncate_prompt="left"`` drops the prompt's oldest tokens to make room.

Every face calls the generator, which calls ``encode_requests`` before its first event, so a
bad row fails the whole run before any work, and the faces show the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from genlab.core.configs import GenerationRequest
from genlab.core.data.chat import (
    ChatError,
    conversation,
    end_of_turn_ids,
    has_chat_template,
    render_prompt_ids,
)
from genlab.core.errors import GenlabError
from genlab.core.modeling.loading import LoadedModel


class ContextLimitError(GenlabError, ValueError):
    """A prompt plus its new tokens does not fit the model's context.

    Attributes:
        prompt_tokens: Tokens of the (rendered) prompt.
        max_new_tokens: New tokens asked for.
        limit: The model's context length.
        row: Index of the request in its batch.
    """

    def __init__(self, prompt_tokens: int, max_new_tokens: int, limit: int, row: int = 0
                 ) -> None:
        self.prompt_tokens, self.max_new_tokens = prompt_tokens, max_new_tokens
        self.limit, self.row = limit, row
        total = f"prompt of {prompt_tokens} tokens + --max-new-tokens {max_new_tokens} = " \
                f"{prompt_tokens + max_new_tokens} tokens, more than the model's context of {limit}"
        room = limit - prompt_tokens
        if max_new_tokens >= limit:  # no truncation can help
            fix = f"lower --max-new-tokens to {limit - 1} or less"
        elif room >= 1:
            fix = (f"lower --max-new-tokens to {room} or less, shorten the prompt, or pass "
                   "--truncate-prompt left")
        else:
            fix = "shorten the prompt, or pass --truncate-prompt left"
        super().__init__(f"{total}; {fix}")


class PromptError(GenlabError, ValueError):
    """A row's prompt cannot be encoded (no chat template, a template that refuses it).

    Attributes:
        row: Index of the request in its batch (set by ``encode_requests``).
    """

    row: int | None = None


@dataclass(frozen=True)
class EncodedPrompt:
    """A row's prompt as the model sees it.

    Attributes:
        ids: Token ids the row starts from.
        end_ids: Token ids that end the row besides EOS (the chat template's end of turn).
        chat: Whether the chat template was applied.
        truncated: Prompt tokens dropped from the left to fit the context.
    """

    ids: list[int]
    end_ids: frozenset[int]
    chat: bool
    truncated: int = 0


def uses_chat(tokenizer: Any, request: GenerationRequest) -> bool:
    """Whether ``request`` goes through the chat template (None = when there is one).

    Raises:
        PromptError: Chat asked for (or a conversation given) but the tokenizer has no
            template.
    """
    has = has_chat_template(tokenizer)
    if request.chat is False and request.messages is not None:
        raise PromptError("a conversation (messages) needs the chat template; drop --no-chat")
    wanted = has if request.chat is None else request.chat
    if request.system is not None and not has:
        raise PromptError("--system: the model's tokenizer has no chat template, so there is "
                          "no system turn; drop --system or use a chat model")
    if request.system is not None and not wanted:
        raise PromptError("--system: a system message needs the chat template; drop --no-chat")
    if (wanted or request.messages is not None) and not has:
        what = "--chat" if request.chat else "a conversation (messages)"
        raise PromptError(f"{what}: the model's tokenizer has no chat template; send raw "
                          "text (--no-chat) or use a chat model")
    return wanted or request.messages is not None


def sent_messages(request: GenerationRequest) -> tuple[tuple[str, str], ...]:
    """The conversation a chat row sends (system message included)."""
    return conversation(request.prompt, request.system, request.messages)


def encode_prompt(loaded: LoadedModel, request: GenerationRequest, row: int = 0,
                  eot: tuple[int, ...] | None = None) -> EncodedPrompt:
    """Encode one request (see the module docstring).

    Args:
        loaded: The model (its tokenizer and context length).
        request: The row.
        row: Its index, named in errors.
        eot: The template's end-of-turn ids when already known (computed otherwise).

    Raises:
        PromptError: No template for a chat row, or the template refuses the conversation.
        ContextLimitError: The prompt plus ``max_new_tokens`` does not fit the context.
    """
    tokenizer = loaded.tokenizer
    chat = uses_chat(tokenizer, request)
    if chat:
        try:
            ids = render_prompt_ids(tokenizer, sent_messages(request))
        except ChatError as err:
            raise PromptError(str(err)) from None
        ends = frozenset(end_of_turn_ids(tokenizer) if eot is None else eot)
    else:
        ids = list(tokenizer(request.prompt)["input_ids"]) or [_start_id(tokenizer)]
        ends = frozenset()
    ids, dropped = fit_context(ids, request.params.max_new_tokens, loaded.context_length,
                               request.truncate_prompt, row)
    return EncodedPrompt(ids, ends, chat, dropped)


def encode_requests(loaded: LoadedModel, requests: Sequence[GenerationRequest]
                    ) -> list[EncodedPrompt]:
    """``encode_prompt`` for every row (identical prompts are encoded once)."""
    eot = end_of_turn_ids(loaded.tokenizer) if has_chat_template(loaded.tokenizer) else ()
    cache: dict[tuple, EncodedPrompt] = {}
    out = []
    for row, req in enumerate(requests):
        key = (req.prompt, req.messages, req.chat, req.system, req.truncate_prompt,
               req.params.max_new_tokens)
        if key not in cache:
            try:
                cache[key] = encode_prompt(loaded, req, row, eot)
            except PromptError as err:
                err.row = row
                raise
        out.append(cache[key])
    return out


def fit_context(ids: list[int], max_new_tokens: int, limit: int | None, truncate: str,
                row: int = 0) -> tuple[list[int], int]:
    """``ids`` (left-truncated when allowed) so that ``ids + max_new_tokens <= limit``.

    Returns:
        The ids and how many were dropped.

    Raises:
        ContextLimitError: It does not fit and ``truncate`` is not ``left``, or even one
            prompt token would not fit.
    """
    if limit is None or len(ids) + max_new_tokens <= limit:
        return ids, 0
    keep = limit - max_new_tokens
    if truncate != "left" or keep < 1:
        raise ContextLimitError(len(ids), max_new_tokens, limit, row)
    return ids[-keep:], len(ids) - keep


def max_new_room(loaded: LoadedModel, request: GenerationRequest) -> int | None:
    """How many new tokens fit after ``request``'s prompt (None: no known limit).

    For the TUI's live check; raises ``PromptError`` like ``encode_prompt``.
    """
    limit = loaded.context_length
    if limit is None:
        return None
    tokenizer = loaded.tokenizer
    if uses_chat(tokenizer, request):
        try:
            n = len(render_prompt_ids(tokenizer, sent_messages(request)))
        except ChatError as err:
            raise PromptError(str(err)) from None
    else:
        n = max(1, len(tokenizer(request.prompt)["input_ids"]))
    return limit - n


def _start_id(tokenizer: Any) -> int:
    """BOS, or EOS when there is no BOS: what an empty prompt starts from."""
    start = tokenizer.bos_token_id
    return tokenizer.eos_token_id if start is None else start
