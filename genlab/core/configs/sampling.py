"""Per-row sampling settings and one row of a batched generation.

``SamplingParams`` is the one place a sampling knob is declared: its type, range, "off" value,
CLI flag and help, TUI label and learner hint (see ``configs.knobs``). ``genlab sample``'s grid
flags, the TUI's column settings, compare specs' keys and the JSONL ``params`` object all come
from these fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from genlab.core.configs import sampler_text as text
from genlab.core.configs.knobs import ConfigError, knob, knob_fields, validate_knobs

GRID_PANEL = ("Sampling grid (each takes one value or a comma-separated list; columns = cross "
              "product)")
ADVANCED_PANEL = "Advanced samplers (numbers: one value or a comma list; docs/sampling.md)"
_ADV = {"panel": ADVANCED_PANEL, "advanced": True}
_GRID_ADV = {**_ADV, "grid": True}
PROMPT_PANEL = "Prompts"
TRUNCATE_CHOICES = ("error", "left")
ROLE_CONTENT = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SamplingParams:
    """Per-row sampling settings. Each "off" value (the default) leaves the logits untouched.

    Transforms apply in ``sampler_order`` (default: transformers' order, see
    ``genlab.core.generation.sampling`` and docs/sampling.md): logit bias, penalties, DRY and
    min-tokens on the raw logits, then temperature, then the truncation samplers; the row then
    draws from the softmax of what is left (or takes the argmax when temperature is 0).
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

    typical_p: float = knob(
        1.0, short="typ", low=0, low_open=True, high=1, note="1 = off", metavar="P[,P...]",
        label="typical-p", **_GRID_ADV,
        intuition="locally typical sampling: keep the tokens whose surprise is closest to the "
                  "average surprise, until they hold p of the mass. 1 = off.")
    """Locally typical sampling (as transformers' TypicalLogitsWarper): keep the tokens whose
    -log p is closest to the distribution's entropy, up to a total probability of P."""
    epsilon_cutoff: float = knob(
        0.0, short="eps", low=0, high=1, high_open=True, note="0 = off", metavar="E[,E...]",
        label="epsilon", **_GRID_ADV,
        intuition="drop every token less likely than epsilon (e.g. 3e-4): a fixed floor. "
                  "0 = off.")
    """Drop tokens with probability below E (truncation sampling; EpsilonLogitsWarper)."""
    eta_cutoff: float = knob(
        0.0, short="eta", low=0, high=1, high_open=True, note="0 = off", metavar="E[,E...]",
        label="eta", **_GRID_ADV,
        intuition="like epsilon, but the floor drops when the model is unsure (high entropy): "
                  "min(eta, sqrt(eta) x exp(-entropy)). 0 = off.")
    """Drop tokens below min(E, sqrt(E) x exp(-entropy)) (EtaLogitsWarper)."""
    top_n_sigma: float = knob(
        0.0, short="nsigma", low=0, note="0 = off", metavar="N[,N...]", label="top-nσ",
        **_GRID_ADV,
        intuition="keep tokens whose logit is within n standard deviations of the best one; "
                  "the same set at any temperature. 0 = off.")
    """Keep tokens whose logit is at least max - N x std of the logits (top-nσ)."""
    min_keep: int = knob(
        1, short="keep", low=1, note="1 = off", metavar="N[,N...]", label="min keep",
        **_GRID_ADV,
        intuition="no truncation sampler may leave fewer than this many tokens.")
    """Every truncation sampler keeps at least N tokens (transformers' min_tokens_to_keep)."""
    presence_penalty: float = knob(
        0.0, short="pres", low=-2, high=2, note="0 = off", metavar="P[,P...]",
        label="presence", **_GRID_ADV,
        intuition="subtract p from every token already generated once or more (OpenAI); "
                  "pushes toward new topics. 0 = off.")
    """Subtract P from the logit of every token generated so far (OpenAI's definition)."""
    frequency_penalty: float = knob(
        0.0, short="freq", low=-2, high=2, note="0 = off", metavar="F[,F...]",
        label="frequency", **_GRID_ADV,
        intuition="subtract f x (times generated) from each token: the more a token was used, "
                  "the less likely again. 0 = off.")
    """Subtract F x count from the logit of every token generated count times (OpenAI)."""
    repeat_last_n: int = knob(
        0, short="last-n", low=0, note="0 = the whole text", metavar="N[,N...]",
        label="last n", **_GRID_ADV,
        intuition="the repetition, presence and frequency penalties look only at the last n "
                  "tokens. 0 = the whole text.")
    """Window of the repetition, presence and frequency penalties: the last N tokens."""
    no_repeat_ngram: int = knob(
        0, short="no-rep", low=0, note="0 = off", metavar="N[,N...]", label="no-rep n-gram",
        **_GRID_ADV,
        intuition="ban any token that would repeat an n-gram already in the text; a hard "
                  "stop for loops. 0 = off.")
    """Ban tokens that would repeat an N-gram of the prompt or output
    (NoRepeatNGramLogitsProcessor)."""
    dry_multiplier: float = knob(
        0.0, short="dry", low=0, note="0 = off", metavar="M[,M...]", label="DRY mult",
        **_GRID_ADV,
        intuition="DRY: penalise a token that would extend a repeat of earlier text, more the "
                  "longer the repeat (e.g. 0.8). 0 = off.")
    """DRY (Don't Repeat Yourself): subtract M x base^(length - allowed length) from a token that
    would continue a repeat of at least the allowed length."""
    dry_base: float = knob(
        1.75, short="dry-base", low=1, metavar="B[,B...]", label="DRY base", **_GRID_ADV,
        intuition="how fast the DRY penalty grows with each extra repeated token.")
    """Growth factor of the DRY penalty per repeated token."""
    dry_allowed_length: int = knob(
        2, short="dry-len", low=1, metavar="N[,N...]", label="DRY allowed", **_GRID_ADV,
        intuition="repeats up to this many tokens are not penalised by DRY (names, phrases).")
    """Longest repeat DRY leaves alone."""
    dry_sequence_breakers: tuple[str, ...] = knob(
        text.DEFAULT_BREAKERS, short="dry-brk", metavar='"S", "S"...', label="DRY breakers",
        verbatim=True, **_ADV,
        intuition="a repeat DRY measures stops at a token containing one of these strings.")
    """Strings that end a repeat DRY measures (a token containing one breaks it): JSON strings
    separated by commas, as text-generation-webui writes them; none for no breakers."""
    xtc_probability: float = knob(
        0.0, short="xtc-p", low=0, high=1, note="0 = off", metavar="P[,P...]", label="XTC prob",
        **_GRID_ADV,
        intuition="XTC: with this chance per token, remove the likeliest choices (all above "
                  "the threshold but the least likely of them). 0 = off.")
    """XTC (Exclude Top Choices): the chance per token that XTC acts."""
    xtc_threshold: float = knob(
        0.1, short="xtc-t", low=0, low_open=True, high=0.5, metavar="T[,T...]",
        label="XTC thresh", **_GRID_ADV,
        intuition="XTC removes tokens above this probability, when at least two are above it.")
    """When XTC acts and at least two tokens have probability >= T, remove all of them but the
    least likely."""
    dynatemp_range: float = knob(
        0.0, short="dyn", low=0, note="0 = off", metavar="R[,R...]", label="dynatemp",
        **_GRID_ADV,
        intuition="dynamic temperature: T moves within T +- range, higher when the model is "
                  "unsure (high entropy). 0 = off.")
    """Dynamic temperature: use a temperature in [T - R, T + R] that grows with the
    distribution's normalised entropy (llama.cpp's dynatemp)."""
    dynatemp_exponent: float = knob(
        1.0, short="dyn-exp", low=0, low_open=True, metavar="E[,E...]", label="dyn exp",
        **_GRID_ADV,
        intuition="shape of dynatemp's map from entropy to temperature; > 1 stays cooler.")
    """Exponent applied to the normalised entropy before it picks the dynamic temperature."""
    mirostat: int = knob(
        0, short="miro", low=0, high=2, note="0 = off, 1 or 2 = version", metavar="0|1|2",
        label="mirostat", **_GRID_ADV,
        intuition="mirostat: steer each token's surprise toward tau bits by adapting the cut "
                  "as it goes (1 = Zipf-estimated top-k, 2 = surprise cut). 0 = off.")
    """Mirostat version: 1 (top-k from an estimated Zipf exponent) or 2 (drop tokens more
    surprising than mu); mu adapts after each token toward the target surprise tau."""
    mirostat_tau: float = knob(
        5.0, short="tau", low=0, low_open=True, metavar="TAU[,TAU...]", label="miro tau",
        **_GRID_ADV,
        intuition="mirostat's target surprise in bits per token: lower = more focused.")
    """Mirostat's target surprise (bits per token)."""
    mirostat_eta: float = knob(
        0.1, short="miro-eta", low=0, low_open=True, metavar="E[,E...]", label="miro eta",
        **_GRID_ADV,
        intuition="how fast mirostat corrects mu toward the target.")
    """Mirostat's learning rate for mu."""
    min_tokens: int = knob(
        0, short="min-tok", low=0, note="0 = off", metavar="N[,N...]", label="min tokens",
        **_GRID_ADV,
        intuition="end-of-text is impossible until this many tokens are generated.")
    """Mask the end-of-sequence tokens until N tokens are generated
    (MinNewTokensLengthLogitsProcessor)."""
    logit_bias: tuple[tuple[int | str, float], ...] = knob(
        (), short="bias", metavar="TOKEN=BIAS", label="logit bias", repeat=True, **_ADV,
        intuition='add BIAS to a token\'s logit, e.g. " the"=-inf bans " the", 42=2 favours '
                  "token 42.")
    """Add BIAS to TOKEN's logit (a token id, a "quoted" text or bare text; -inf bans it). A
    text of several tokens biases its last token when the others were just generated
    (transformers' sequence_bias). Repeatable."""
    sampler_order: str = knob(
        text.DEFAULT_ORDER, short="order", metavar="NAME|S,S...", label="order", **_ADV,
        intuition="the order of the stages; transformers (default) or llama.cpp (temperature "
                  "after the truncation samplers).")
    """Order of the sampler stages: transformers (default), llama.cpp, or stage names separated
    by commas (see docs/sampling.md)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", tuple(self.stop))
        self._normalize("logit_bias", text.normalize_logit_bias, text.BIAS_WORDS)
        self._normalize("dry_sequence_breakers", text.normalize_breakers, text.BREAKER_WORDS)
        self._normalize("sampler_order", text.canonical_order, text.ORDER_WORDS)
        validate_knobs(self)
        if not all(isinstance(s, str) and s for s in self.stop):
            raise ConfigError("stop", self.stop, "non-empty strings")
        if self.min_tokens > self.max_new_tokens:
            raise ConfigError("min_tokens", self.min_tokens,
                              f"<= max_new_tokens ({self.max_new_tokens})")
        missing = [s for s in self.stages_used() if s not in self.order()]
        if missing:
            raise ConfigError("sampler_order", self.sampler_order,
                              "a list naming every stage these settings use (add "
                              + ", ".join(missing) + ")")

    def _normalize(self, name: str, parse: Any, words: str) -> None:
        try:
            object.__setattr__(self, name, parse(getattr(self, name)))
        except ValueError as err:
            raise ConfigError(name, getattr(self, name), str(err) or words) from None

    def order(self) -> tuple[str, ...]:
        """The stages in the order this row applies them (``sampler_order`` resolved)."""
        return text.parse_sampler_order(self.sampler_order)

    def stages_used(self) -> tuple[str, ...]:
        """The stages whose knobs are on, in default order (greedy rows skip the warpers)."""
        defaults = _DEFAULTS
        return tuple(stage for stage, switches in text.STAGE_SWITCHES.items()
                     if any(getattr(self, k) != defaults[k] for k in switches)
                     and not (self.greedy and stage in text.WARPERS))

    @property
    def greedy(self) -> bool:
        """True when the row takes the argmax instead of sampling."""
        return self.temperature == 0

    def to_dict(self) -> dict[str, Any]:
        """Every parameter by name, JSON-able (tuples as lists, a -inf bias as ``"-inf"``)."""
        data = asdict(self)
        data["stop"] = list(self.stop)
        data["dry_sequence_breakers"] = list(self.dry_sequence_breakers)
        data["logit_bias"] = text.bias_to_json(self.logit_bias)
        return data


_DEFAULTS = {kf.name: kf.default for kf in knob_fields(SamplingParams)}
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
