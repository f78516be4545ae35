"""The structured sampling knobs in words: sampler orders, logit-bias entries, DRY breakers.

Owns the names of the sampler stages, the two named orders (``transformers``, the default,
and ``llama.cpp``), which knobs switch each stage on, and the text forms users type for the
three knobs that are not plain numbers:

* ``sampler_order``: a preset name, or stage names separated by commas or semicolons
  (``top_k,temperature`` or llama.cpp's ``top_k;typ_p;top_p;min_p;temperature``);
* ``logit_bias``: ``TOKEN=BIAS`` entries, where TOKEN is a token id (``42``), a JSON string
  (``"42"``, ``" the"``: exactly that text) or bare text (everything before the last ``=``),
  and BIAS a number or ``-inf`` (a ban); or a mapping / pairs where an int is an id and a
  string is always a text (YAML ``42: -5`` vs ``"42": -5``);
* ``dry_sequence_breakers``: JSON strings separated by commas, as text-generation-webui writes
  them (``"\\n", ":", "\\"", "*"``), optionally in brackets; ``none`` for no breakers.

Every parser raises ``ValueError`` with a message that completes "must be ..."; the config
turns it into a ``ConfigError`` naming the field. Standard library only (``--help`` time).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

STAGES = ("logit_bias", "repetition_penalty", "presence_frequency", "no_repeat_ngram", "dry",
          "min_tokens", "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff",
          "eta_cutoff", "top_n_sigma", "xtc", "mirostat")
"""Every stage, in the default (``transformers``) order."""

WARPERS = frozenset(STAGES[STAGES.index("temperature"):])
"""Stages a greedy row skips (as ``generate(do_sample=False)`` skips the logits warpers)."""

PRESETS: dict[str, tuple[str, ...]] = {
    # transformers' _get_logits_processor: sequence bias, repetition penalty, no-repeat-ngram,
    # min new tokens, then temperature, top-k, top-p, min-p, typical, epsilon, eta; the stages
    # transformers lacks sit beside their kin (penalties with penalties, truncation last).
    "transformers": STAGES,
    # llama.cpp's default chain (logit bias; penalties;dry;top_n_sigma;top_k;typ_p;top_p;min_p;
    # xtc;temperature; mirostat after temperature); genlab's placement for what it lacks.
    "llama.cpp": ("logit_bias", "repetition_penalty", "presence_frequency", "dry",
                  "no_repeat_ngram", "min_tokens", "top_n_sigma", "top_k", "typical_p", "top_p",
                  "min_p", "epsilon_cutoff", "eta_cutoff", "xtc", "temperature", "mirostat"),
}
DEFAULT_ORDER = "transformers"

ALIASES: dict[str, tuple[str, ...]] = {
    "penalties": ("repetition_penalty", "presence_frequency"),
    "temp": ("temperature",), "temp_ext": ("temperature",), "dynatemp": ("temperature",),
    "typ_p": ("typical_p",), "typical": ("typical_p",), "typ": ("typical_p",),
    "epsilon": ("epsilon_cutoff",), "eta": ("eta_cutoff",), "sequence_bias": ("logit_bias",),
    "presence_penalty": ("presence_frequency",), "frequency_penalty": ("presence_frequency",),
    "sigma": ("top_n_sigma",), "min_new_tokens": ("min_tokens",),
}

STAGE_SWITCHES: dict[str, tuple[str, ...]] = {
    "logit_bias": ("logit_bias",), "repetition_penalty": ("repetition_penalty",),
    "presence_frequency": ("presence_penalty", "frequency_penalty"),
    "no_repeat_ngram": ("no_repeat_ngram",), "dry": ("dry_multiplier",),
    "min_tokens": ("min_tokens",), "temperature": ("temperature", "dynatemp_range"),
    "top_k": ("top_k",), "top_p": ("top_p",), "min_p": ("min_p",), "typical_p": ("typical_p",),
    "epsilon_cutoff": ("epsilon_cutoff",), "eta_cutoff": ("eta_cutoff",),
    "top_n_sigma": ("top_n_sigma",), "xtc": ("xtc_probability",), "mirostat": ("mirostat",),
}
"""The knobs whose non-default value switches each stage on."""

DEFAULT_BREAKERS = ("\n", ":", '"', "*")
ORDER_WORDS = ("transformers (default), llama.cpp, or stage names separated by commas: "
               + ", ".join(STAGES))


def parse_sampler_order(text: str | Sequence[str]) -> tuple[str, ...]:
    """The stages of a preset name or a list of stage names (aliases allowed), in order; the
    list may be one comma-separated text or a sequence of names (a spec's YAML list)."""
    if isinstance(text, (list, tuple)) and text and all(isinstance(n, str) for n in text):
        text = ",".join(text)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(ORDER_WORDS)
    key = text.strip().lower()
    if key in PRESETS:
        return PRESETS[key]
    if key in ("hf", "default"):
        return PRESETS[DEFAULT_ORDER]
    if key in ("llamacpp", "llama_cpp", "llama-cpp"):
        return PRESETS["llama.cpp"]
    stages: list[str] = []
    for name in (n.strip().replace("-", "_") for n in re.split(r"[,;]", key)):
        if not name:
            continue
        for stage in ALIASES.get(name, (name,)):
            if stage not in STAGES:
                raise ValueError(f"{ORDER_WORDS} ({name!r} is not one)")
            if stage in stages:
                raise ValueError(f"a list naming each stage once ({stage} is named twice)")
            stages.append(stage)
    if not stages:
        raise ValueError(ORDER_WORDS)
    return tuple(stages)


def canonical_order(text: str | Sequence[str]) -> str:
    """The preset name when ``text`` means a preset, else the stage names joined by commas."""
    stages = parse_sampler_order(text)
    for name, preset in PRESETS.items():
        if stages == preset:
            return name
    return ",".join(stages)


# ------------------------------------------------------------------------------ logit bias

Token = int | str
BIAS_WORDS = ("TOKEN=BIAS entries: TOKEN a token id, a quoted \"text\" or bare text, BIAS a "
              "number or -inf")


def parse_bias_value(value: Any) -> float:
    """A bias: any finite number, or -inf (``"-inf"`` as text) to ban the token."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{BIAS_WORDS} ({value.strip()!r} is not a number)") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{BIAS_WORDS} (got {value!r})")
    value = float(value)
    if math.isnan(value) or value == math.inf:
        raise ValueError(f"{BIAS_WORDS} ({value} is not allowed; -inf bans a token)")
    return value


def parse_bias_entry(entry: str) -> tuple[Token, float]:
    """``42=-5`` -> ``(42, -5.0)``; ``"the"=2`` and ``the=2`` -> ``("the", 2.0)``."""
    token, sep, bias = entry.rpartition("=")
    if not sep or not token:
        raise ValueError(f"{BIAS_WORDS} ({entry!r} has no TOKEN=)")
    return parse_token(token, digits_are_ids=True), parse_bias_value(bias)


def parse_token(token: Any, digits_are_ids: bool = False) -> Token:
    """A token id (an int; digits too in ``TOKEN=BIAS`` text), or a text (a JSON string
    literal, or bare text). In mappings and pairs a string is always a text, so ``"42"``
    round-trips through JSON as the text 42."""
    if isinstance(token, bool):
        raise ValueError(f"{BIAS_WORDS} (got {token!r})")
    if isinstance(token, int):
        if token < 0:
            raise ValueError(f"{BIAS_WORDS} (token id {token} is negative)")
        return token
    if not isinstance(token, str) or token == "":
        raise ValueError(f"{BIAS_WORDS} (got {token!r})")
    if digits_are_ids and token.strip().isdigit():
        return int(token.strip())
    stripped = token.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == '"':
        try:
            text = json.loads(stripped)
        except ValueError:
            raise ValueError(f"{BIAS_WORDS} ({stripped} is not a valid quoted string)") from None
        if not text:
            raise ValueError(f"{BIAS_WORDS} (an empty text names no token)")
        return text
    return token


def split_bias_text(text: str) -> list[str]:
    """Entries of a comma-separated logit-bias text (commas inside quotes do not split)."""
    entries, current, quoted, escaped = [], "", False, False
    for char in text:
        if char == "," and not quoted:
            entries.append(current)
            current = ""
            continue
        current += char
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
    entries.append(current)
    return [e.strip() for e in entries if e.strip()]


def normalize_logit_bias(value: Any) -> tuple[tuple[Token, float], ...]:
    """Any accepted form -> ``((token, bias), ...)``; a token given twice keeps its last bias.

    Accepted: a mapping ``{token: bias}``, pairs ``[[token, bias], ...]``, ``TOKEN=BIAS``
    strings (one per item), or one comma-separated string of them.
    """
    if isinstance(value, str):
        value = split_bias_text(value)
    if isinstance(value, Mapping):
        items: Iterable[Any] = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise ValueError(f"{BIAS_WORDS} (got {value!r})")
    out: dict[Token, float] = {}
    for item in items:
        if isinstance(item, str):
            token, bias = parse_bias_entry(item)
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            token, bias = parse_token(item[0]), parse_bias_value(item[1])
        else:
            raise ValueError(f"{BIAS_WORDS} (got {item!r})")
        out.pop(token, None)
        out[token] = bias
    return tuple(out.items())


def bias_to_json(entries: tuple[tuple[Token, float], ...]) -> list[list[Any]]:
    """``[[token, bias], ...]`` with -inf as the string ``"-inf"`` (strict JSON has no -inf)."""
    return [[token, "-inf" if bias == -math.inf else bias] for token, bias in entries]


def format_bias(entries: tuple[tuple[Token, float], ...]) -> str:
    """``42=-5, " the"=-inf``: the entries as one line (texts quoted)."""
    return ", ".join(f"{json.dumps(t, ensure_ascii=False) if isinstance(t, str) else t}="
                     f"{'-inf' if b == -math.inf else f'{b:g}'}" for t, b in entries)


# ------------------------------------------------------------------------- DRY breakers

BREAKER_WORDS = ('JSON strings separated by commas, e.g. "\\n", ":", "\\"", "*" (or none)')


def normalize_breakers(value: Any) -> tuple[str, ...]:
    """Sequence breakers from a list of strings, or a text of JSON strings (``none`` = ())."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none", "[]"):
            return ()
        if not text.startswith("["):
            text = f"[{text}]"
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError(BREAKER_WORDS) from None
    if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) and s for s in value):
        raise ValueError(BREAKER_WORDS)
    return tuple(dict.fromkeys(value))


def format_breakers(breakers: tuple[str, ...]) -> str:
    """The text form of ``normalize_breakers`` (``none`` for no breakers)."""
    return ", ".join(json.dumps(b, ensure_ascii=False) for b in breakers) or "none"
