"""Chat templates: conversations in, the token ids a chat model expects out.

Owns everything genlab knows about a tokenizer's chat template, for generation and training:

* **Conversations** are OpenAI-style ``[{"role": ..., "content": ...}]`` lists (the format TRL,
  LLaMA-Factory and axolotl accept). ``parse_messages`` checks one from a file or spec and
  returns ``(role, content)`` pairs; ``conversation`` builds one from a prompt and an optional
  system message.
* **Rendering** goes through ``tokenizer.apply_chat_template`` (the model's own template, as
  ``transformers`` and every serving stack apply it). In transformers 5 that call returns a
  ``BatchEncoding`` by default, so ids are asked for with ``return_dict=False``.
* **End of turn.** ``tokenizer.eos_token`` is often the *document* end (Llama 3 base:
  ``<|end_of_text|>``) while the template closes a turn with another token (``<|eot_id|>``).
  ``end_of_turn_text`` finds the token the template writes right after an assistant message,
  whatever its name, so generation can stop there and training can teach it.
* **Names.** ``template_name`` says which family a template belongs to (ChatML, Llama 3, ...),
  for status lines.

Every failure is a ``ChatError`` with one line saying what is wrong; faces add their flag.
The assistant-only loss masks for training live in ``genlab.core.data.chat_masks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genlab.core.errors import GenlabError

ROLES = ("system", "user", "assistant", "tool")
"""The roles a conversation may use (OpenAI's, as chat templates expect them)."""
Pairs = tuple[tuple[str, str], ...]
_SENTINEL = "GENLAB_END_OF_TURN_PROBE"
_FAMILIES = (  # (marker in the template, name shown), most specific first
    ("<|start_header_id|>", "Llama 3"),
    ("<|im_start|>", "ChatML"),
    ("<start_of_turn>", "Gemma"),
    ("[INST]", "[INST] (Llama 2 / Mistral)"),
    ("<|im_sep|>", "Phi-4"),
    ("<|assistant|>", "Zephyr / Phi-3"),
    ("<|Assistant|>", "DeepSeek"),
)


class ChatError(GenlabError, ValueError):
    """A conversation or chat template cannot be used; the message is one line."""


def parse_messages(value: Any) -> Pairs:
    """Validate an OpenAI-style message list and return it as ``(role, content)`` pairs.

    Raises:
        ChatError: Not a non-empty list of ``{"role", "content"}`` objects with a known role
            and string content (names the first bad message by its index).
    """
    if not isinstance(value, list) or not value:
        raise ChatError('"messages" must be a non-empty list of {"role", "content"} objects')
    pairs = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ChatError(f'messages[{i}] must be an object like {{"role": "user", '
                            '"content": "Hi"}')
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise ChatError(f"messages[{i}]: role {role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise ChatError(f'messages[{i}]: "content" must be a string')
        pairs.append((role, content))
    return tuple(pairs)


def conversation(prompt: str, system: str | None = None,
                 messages: Sequence[tuple[str, str]] | None = None) -> Pairs:
    """The conversation a chat row sends: ``messages`` (or a user turn of ``prompt``), with
    ``system`` in front unless the conversation already starts with a system message."""
    pairs = tuple(messages) if messages else (("user", prompt),)
    if system and pairs[0][0] != "system":
        pairs = (("system", system), *pairs)
    return pairs


def as_dicts(pairs: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """``[{"role": ..., "content": ...}]``: the form ``apply_chat_template`` takes."""
    return [{"role": role, "content": content} for role, content in pairs]


def has_chat_template(tokenizer: Any) -> bool:
    """True when the tokenizer carries a chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def template_name(tokenizer: Any) -> str:
    """The template's family (``ChatML``, ``Llama 3``, ... or ``custom``); "" without one."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return ""
    if isinstance(template, dict):  # named templates: the default one is what is applied
        template = template.get("default") or next(iter(template.values()), "")
    return next((name for marker, name in _FAMILIES if marker in template), "custom")


def describe_template(tokenizer: Any) -> str:
    """``ChatML template, turns end with <|im_end|>``; "" without a template."""
    name = template_name(tokenizer)
    if not name:
        return ""
    end = end_of_turn_text(tokenizer)
    return f"{name} template" + (f", turns end with {end}" if end else "")


def render_text(tokenizer: Any, pairs: Sequence[tuple[str, str]], *,
                generation_prompt: bool) -> str:
    """The conversation as the template writes it (a string, nothing tokenized).

    Args:
        tokenizer: A tokenizer with a chat template.
        pairs: ``(role, content)`` messages.
        generation_prompt: End with the assistant header so the model writes the reply.

    Raises:
        ChatError: No template, or the template refuses the conversation (e.g. roles that
            must alternate).
    """
    return _apply(tokenizer, pairs, add=generation_prompt, cont=False, tokenize=False)


def render_prompt_ids(tokenizer: Any, pairs: Sequence[tuple[str, str]]) -> list[int]:
    """Token ids a reply is generated from: the conversation plus the assistant header.

    ``apply_chat_template(..., add_generation_prompt=True, return_dict=False)``. A
    conversation that ends with an assistant message is continued instead (that message is the
    start of the reply: ``continue_final_message``).

    Raises:
        ChatError: As ``render_text``.
    """
    cont = bool(pairs) and pairs[-1][0] == "assistant"
    return list(_apply(tokenizer, pairs, add=not cont, cont=cont, tokenize=True))


def _apply(tokenizer: Any, pairs: Sequence[tuple[str, str]], *, add: bool, cont: bool,
           tokenize: bool) -> Any:
    if not has_chat_template(tokenizer):
        raise ChatError("the tokenizer has no chat template")
    kwargs: dict[str, Any] = {"tokenize": tokenize, "add_generation_prompt": add}
    if cont:
        kwargs["continue_final_message"] = True
    if tokenize:
        kwargs["return_dict"] = False
    try:
        return tokenizer.apply_chat_template(as_dicts(pairs), **kwargs)
    except Exception as err:  # jinja2 TemplateError from raise_exception(), TypeError, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ChatError(f"the chat template refused the conversation ({first[:200]})") from None


def end_of_turn_text(tokenizer: Any) -> str | None:
    """The added token the template writes right after an assistant message, or None.

    Found by rendering a probe reply and reading the longest added (or special) token that the
    text after it starts with: ``<|im_end|>`` for ChatML, ``<|eot_id|>`` for Llama 3,
    ``<end_of_turn>`` for Gemma, ``</s>`` for Mistral.
    """
    if not has_chat_template(tokenizer):
        return None
    probe = (("user", "Hi"), ("assistant", _SENTINEL))
    try:
        text = render_text(tokenizer, probe, generation_prompt=False)
    except ChatError:
        return None
    if _SENTINEL not in text:
        return None
    tail = text[text.index(_SENTINEL) + len(_SENTINEL):].lstrip()
    added = sorted((t for t in tokenizer.get_added_vocab() if t.strip()), key=len, reverse=True)
    return next((t for t in added if tail.startswith(t)), None)


def end_of_turn_ids(tokenizer: Any) -> tuple[int, ...]:
    """The end-of-turn token's id (empty when the template has none)."""
    text = end_of_turn_text(tokenizer)
    if text is None:
        return ()
    token_id = tokenizer.convert_tokens_to_ids(text)
    return (int(token_id),) if isinstance(token_id, int) else ()
