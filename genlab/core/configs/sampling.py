"""Per-row sampling settings and one row of a batched generation.

``SamplingParams`` is the one place a sampling knob is declared: its type, range, "off" value,
CLI flag and help, TUI label and learner hint (see ``configs.knobs``). ``genlab sample``'s grid
flags, the TUI's column settings, compare specs' keys and the JSONL ``params`` object all come
from these fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from genlab.core.configs.knobs import ConfigError, knob, knob_fields, validate_knobs

GRID_PANEL = ("Sampling grid (each takes one value or a comma-separated list; columns = cross "
              "product)")
PROMPT_PANEL = "Prompts"
TRUNCATE_CHOICES = ("error", "left")
ROLE_CONTENT = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SamplingParams:
    """Per-row sampling settings. Each "off" value leaves the logits untouched.

    Transforms apply in this order (see ``genlab.core.generation.sampling``): repetition penalty
    on the raw logits, then temperature, then top-k, then top-p, then min-p; the row then draws
    from the softmax of what is left (or takes the argmax when temperature is 0).
    """

    temperature: float = knob(
        1.0, short="T", low=0, note="0 = greedy", panel=GRID_PANEL, metavar="T[,T...]", grid=True,
        aliases=("--temp", "-t"), label="temp",
        intuition="divides the logits before sampling. Low: safe and repetitive; high: "
                  "varied, may derail. 0 = greedy (always the likeliest token).")
    """Divide the logits by T (0 = greedy: argmax)."""
    top_k: int = knob(
        0, short="k", low=0, note="0 = off", panel=GRID_PANEL, metavar="K[,K...]", grid=True,
        label="top-k",
        intuition="only the k likeliest tokens can be drawn; small k = safer, duller. 0 = off.")
    """Keep the K most likely tokens."""
    top_p: float = knob(
        1.0, short="p", low=0, low_open=True, high=1, note="1 = off", panel=GRID_PANEL,
        metavar="P[,P...]", grid=True, label="top-p",
        intuition="nucleus sampling: draw only from the likeliest tokens whose probabilities "
                  "add up to p; lower = safer. 1 = off.")
    """Nucleus: keep the smallest set of tokens whose probability reaches P."""
    min_p: float = knob(
        0.0, short="min-p", low=0, high=1, note="0 = off", panel=GRID_PANEL,
        metavar="P[,P...]", grid=True, label="min-p",
        intuition="drop tokens less likely than min-p x the top token's probability; cuts "
                  "more when the model is sure. 0 = off.")
    """Drop tokens below P x the top token's probability."""
    repetition_penalty: float = knob(
        1.0, short="rep", low=0, low_open=True, note="1 = off", panel=GRID_PANEL,
        metavar="R[,R...]", grid=True, label="rep pen",
        intuition="tokens already in the prompt or output become less likely; >1 breaks "
                  "loops, too high garbles. 1 = off.")
    """Penalise tokens already in prompt or output (CTRL style: divide a positive logit by R,
    multiply a negative one)."""
    max_new_tokens: int = knob(
        64, short="max", low=1, panel=GRID_PANEL, metavar="N[,N...]", grid=True, label="max new",
        intuition="the longest continuation; a column ends earlier at end-of-text.")
    """Most new tokens per sample."""
    stop: tuple[str, ...] = knob(
        (), short="stop", panel=GRID_PANEL, metavar="STR", label="stop", repeat=True,
        intuition="text that ends a sample when generated (not included).")
    """End a sample when it generates STR (not included in the text). Repeatable; \\n means a
    newline."""
    ignore_eos: bool = knob(
        False, short="ignore-eos", panel=GRID_PANEL, label="ignore eos",
        intuition="keep generating past end-of-text (for length studies).")
    """Keep generating past the end-of-sequence token."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", tuple(self.stop))
        validate_knobs(self)
        if not all(isinstance(s, str) and s for s in self.stop):
            raise ConfigError("stop", self.stop, "non-empty strings")

    @property
    def greedy(self) -> bool:
        """True when the row takes the argmax instead of sampling."""
        return self.temperature == 0

    def to_dict(self) -> dict[str, Any]:
        """Every parameter by name, JSON-able (``stop`` as a list)."""
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


SAMPLING_FIELDS = tuple(kf.name for kf in knob_fields(SamplingParams))
"""Every sampling knob's name, in declaration (and JSONL ``params``) order."""
GRID_FIELDS = tuple(kf.name for kf in knob_fields(SamplingParams) if kf.knob.grid)
"""The sampling knobs that take a list of values (a grid axis), in cross-product order."""
SHORT_NAMES = {kf.name: kf.knob.short or kf.name for kf in knob_fields(SamplingParams)}
"""Compact labels for column headers (``T=0.7 k=40``)."""


@dataclass(frozen=True)
class GenerationRequest:
    """One row of a batched generation: a prompt, its settings, its seed and its adapter.

    A row's output depends only on these fields, never on the other rows of the batch.
    """

    prompt: str
    params: SamplingParams = field(default_factory=SamplingParams)
    seed: int = knob(0, low=0, high=2**63, high_open=True, label="seed",
                     intuition="fixes this column's random draws. Same seed + same settings = "
                               "same text, so a change you make shows that knob's effect.")
    """Seeds the row's own ``torch.Generator``."""
    adapter: str | None = None
    """Name of a loaded LoRA adapter for this row, or None for the base model."""
    messages: ROLE_CONTENT | None = None
    """A whole conversation as ``(role, content)`` pairs, sent through the chat template; None:
    ``prompt`` alone (a user turn when chatting). ``{"role", "content"}`` dicts are accepted."""
    chat: bool | None = knob(
        None, panel=PROMPT_PANEL, label="chat",
        intuition="send the prompt as a user turn through the model's chat template and show "
                  "only the assistant's reply; off = raw text continuation")
    """Send each prompt through the model's chat template as a user turn (stopping at the
    template's end-of-turn token); --no-chat sends raw text. Not set: on when the model has a
    chat template."""
    system: str | None = knob(
        None, panel=PROMPT_PANEL, metavar="TEXT", label="system",
        intuition="a system message put before every conversation (chat only)")
    """System message put before each conversation when chatting (a conversation that starts
    with its own system message keeps it); \\n means a newline."""
    truncate_prompt: str = knob(
        "error", choices=TRUNCATE_CHOICES, panel=PROMPT_PANEL, metavar="error|left",
        label="truncate",
        intuition="prompt + max new tokens past the model's context: refuse, or drop the "
                  "prompt's oldest tokens")
    """When prompt tokens + max new tokens exceed the model's context: error (refuse, naming
    both numbers) or left (drop the prompt's oldest tokens to fit)."""

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str):
            raise ConfigError("prompt", self.prompt, "a string")
        if self.messages is not None:
            object.__setattr__(self, "messages", _role_pairs(self.messages))
        validate_knobs(self)

    def prompt_dict(self) -> dict[str, Any]:
        """The prompt side of the row, JSON-able (``messages`` as role/content dicts)."""
        return {"prompt": self.prompt, "messages": message_dicts(self.messages),
                "chat": self.chat, "system": self.system,
                "truncate_prompt": self.truncate_prompt}


def message_dicts(messages: ROLE_CONTENT | None) -> list[dict[str, str]] | None:
    """``[{"role": ..., "content": ...}]`` of ``(role, content)`` pairs (None stays None)."""
    if messages is None:
        return None
    return [{"role": role, "content": content} for role, content in messages]


def _role_pairs(messages: Any) -> ROLE_CONTENT:
    """``(role, content)`` string pairs from pairs or ``{"role", "content"}`` dicts."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ConfigError("messages", messages, "a non-empty list of {role, content} messages")
    pairs = []
    for item in messages:
        pair = (item.get("role"), item.get("content")) if isinstance(item, dict) else item
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2
                and all(isinstance(x, str) for x in pair) and pair[0]):
            raise ConfigError("messages", messages, "{role, content} messages with string "
                                                    "values")
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)
