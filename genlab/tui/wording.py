"""Messages in the TUI's own words: field labels and keys, not CLI flags or dataclass names.

The core speaks to the command line (``--seq-len 256: ...``, ``resume it with --resume DIR``)
and its ``ConfigError`` names dataclass fields (``top_k='': must be ...``). A TUI user has
neither flags nor field names in front of them, so every message the TUI shows from the core
goes through ``tui_message``: each knob's flag becomes its form label in quotes (the label the
user sees next to the field), resuming becomes F6, and ``config_message`` turns a
``ConfigError`` into ``"top-k": must be an integer >= 0 (got 'x')``.
"""

from __future__ import annotations

import functools
import re

from genlab.core.configs import ConfigError, GenerationRequest, SamplingParams, TrainConfig
from genlab.core.configs.knobs import knob_fields

EXTRA_LABELS = {"adapter": "model", "seed": "seed", "model": "model"}
"""Field names whose label is not a knob's (or is shared by several screens)."""
PHRASES = (
    (re.compile(r"(?:resume (?:it )?with|continue with(?: genlab train)?|rerun with|pass) "
                r"--resume(?: [^\s:;,]+)?"), "F6 resumes it"),
    (re.compile(r"--resume(?: [^\s:;,]+)?"), "F6 (resume)"),
    (re.compile(r"--out(?: [^\s:;,]+)?"), "the run folder"),
    (re.compile(r"--force\b"), "another run name"),
    (re.compile(r"\bgenlab train\b"), "the Train screen"),
)


@functools.cache
def labels() -> dict[str, str]:
    """Field name -> the label the TUI shows for it (Train form first, then Sample)."""
    out: dict[str, str] = {}
    for cls in (TrainConfig, SamplingParams, GenerationRequest):
        for kf in knob_fields(cls):
            out.setdefault(kf.name, kf.label)
    out.update(EXTRA_LABELS)
    return out


@functools.cache
def _flag_words() -> tuple[tuple[re.Pattern, str], ...]:
    """``--seq-len`` -> ``"seq len"`` for every knob (longest flags first)."""
    pairs = []
    for cls in (TrainConfig, SamplingParams):
        for kf in knob_fields(cls):
            pairs.append((kf.flag, kf.label))
    pairs.sort(key=lambda p: -len(p[0]))
    return tuple((re.compile(re.escape(flag) + r"(?![\w-])"), f'"{label}"')
                 for flag, label in pairs)


def label_of(field: str) -> str:
    """The label of a field (its name with spaces when it has none)."""
    return labels().get(field, field.replace("_", " "))


def tui_message(text: str) -> str:
    """A core message rewritten for the TUI: flags become field labels, resume becomes F6."""
    for pattern, words in PHRASES:
        text = pattern.sub(words, text)
    for pattern, words in _flag_words():
        text = pattern.sub(words, text)
    return text


def config_message(err: ConfigError) -> str:
    """``"lr": must be a number > 0 (got 'abc')``; an empty value says it is required."""
    label = label_of(err.field)
    value = err.value
    if value in ("", None, ()):
        return f'"{label}": required: {err.expected}'
    shown = value if isinstance(value, str) else repr(value)
    return f'"{label}": must be {err.expected} (got {shown!r})' if isinstance(value, str) \
        else f'"{label}": must be {err.expected} (got {shown})'


def model_not_ready(state: str, text: str) -> str:
    """Why nothing can run yet, and what to do about it."""
    if state == "loading":
        return "The model is still loading; this runs once it is ready."
    return (f"No model: {tui_message(text)}. Ctrl+L loads another model (a hub id or a "
            "local directory), or restart with genlab tui --model ID|DIR.")
