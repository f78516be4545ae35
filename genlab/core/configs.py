"""Typed, frozen, validated configuration objects shared by every face of genlab.

Each config validates itself once in ``__post_init__`` and raises ``ConfigError`` naming the
field, the bad value and the valid range. Faces translate the field name into their own
vocabulary (``top_p`` -> ``--top-p`` for the CLI, ``base.top_p`` for a spec file) with
``ConfigError.field``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration value is out of range or of the wrong kind.

    Attributes:
        field: Name of the offending field (snake_case, as in the dataclass).
        value: The rejected value.
        expected: Human description of the valid range, e.g. ``"in (0, 1]"``.
    """

    def __init__(self, field: str, value: Any, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field}={value!r}: must be {expected}")


def _require(ok: bool, name: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(name, value, expected)


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class SamplingParams:
    """Per-row sampling settings. Each "off" value leaves the logits untouched.

    Transforms apply in this order (see ``genlab.core.sampling``): repetition penalty on the
    raw logits, then temperature, then top-k, then top-p, then min-p; the row then draws
    from the softmax of what is left (or takes the argmax when temperature is 0).
    """

    temperature: float = 1.0
    """Divides the logits. 0 means greedy (argmax); must be >= 0."""
    top_k: int = 0
    """Keep only the k most likely tokens. 0 = off; must be >= 0."""
    top_p: float = 1.0
    """Keep the smallest set of tokens whose probability sums to >= p. 1 = off; in (0, 1]."""
    min_p: float = 0.0
    """Drop tokens less likely than min_p x the top token's probability. 0 = off; in [0, 1]."""
    repetition_penalty: float = 1.0
    """CTRL-style penalty on tokens already in prompt or output. 1 = off; must be > 0."""
    max_new_tokens: int = 64
    """Most new tokens to generate; must be >= 1."""
    stop: tuple[str, ...] = ()
    """Strings that end the row when generated; the stop string itself is not returned."""
    ignore_eos: bool = False
    """Keep generating past the end-of-sequence token (useful for length studies)."""

    def __post_init__(self) -> None:
        _require(_finite(self.temperature) and self.temperature >= 0,
                 "temperature", self.temperature, ">= 0 (0 = greedy)")
        _require(isinstance(self.top_k, int) and not isinstance(self.top_k, bool)
                 and self.top_k >= 0, "top_k", self.top_k, "an integer >= 0 (0 = off)")
        _require(_finite(self.top_p) and 0 < self.top_p <= 1,
                 "top_p", self.top_p, "in (0, 1] (1 = off)")
        _require(_finite(self.min_p) and 0 <= self.min_p <= 1,
                 "min_p", self.min_p, "in [0, 1] (0 = off)")
        _require(_finite(self.repetition_penalty) and self.repetition_penalty > 0,
                 "repetition_penalty", self.repetition_penalty, "> 0 (1 = off)")
        _require(isinstance(self.max_new_tokens, int) and not isinstance(self.max_new_tokens, bool)
                 and self.max_new_tokens >= 1, "max_new_tokens", self.max_new_tokens,
                 "an integer >= 1")
        _require(all(isinstance(s, str) and s for s in self.stop),
                 "stop", self.stop, "non-empty strings")
        object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def greedy(self) -> bool:
        """True when the row takes the argmax instead of sampling."""
        return self.temperature == 0

    def to_dict(self) -> dict[str, Any]:
        """Every parameter by name, JSON-able (``stop`` as a list)."""
        return {
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "min_p": self.min_p,
            "repetition_penalty": self.repetition_penalty,
            "max_new_tokens": self.max_new_tokens,
            "stop": list(self.stop),
            "ignore_eos": self.ignore_eos,
        }


@dataclass(frozen=True)
class GenerationRequest:
    """One row of a batched generation: a prompt, its settings, its seed and its adapter.

    A row's output depends only on these fields, never on the other rows of the batch.
    """

    prompt: str
    params: SamplingParams = field(default_factory=SamplingParams)
    seed: int = 0
    """Seeds the row's own ``torch.Generator``; must be >= 0."""
    adapter: str | None = None
    """Name of a loaded LoRA adapter for this row, or None for the base model."""

    def __post_init__(self) -> None:
        _require(isinstance(self.prompt, str), "prompt", self.prompt, "a string")
        _require(isinstance(self.seed, int) and 0 <= self.seed < 2**63,
                 "seed", self.seed, "an integer in [0, 2**63)")
