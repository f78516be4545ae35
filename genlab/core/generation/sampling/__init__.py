"""genlab's batched sampler: pure, vectorised per-row logits transforms and the token picker.

Every stage takes logits ``[rows, vocab]`` and per-row parameter tensors and returns new
logits; a row whose parameter is "off" comes back bit for bit unchanged, so one batch can mix
any settings, and a stage no row uses is skipped for the whole batch. Stateful stages (the
penalties' history and counts, DRY's match lengths, mirostat's mu, XTC's random stream) keep
per-row state in ``SamplerState`` across decode steps. Draws use one uniform per row per step
from the row's own generator, so a row's tokens depend only on its seed and settings.

Modules, one job each: ``rows`` (the per-row parameter columns), ``stages`` (the registry of
kernels), ``pipeline`` (plans and ``process_logits``), ``state`` (what carries across steps),
``penalties``, ``dry``, ``truncation`` with ``nucleus`` (top-p's cut), ``temperature`` (fixed,
dynamic, XTC), ``mirostat``, ``bias`` (logit bias) and ``choice`` (the draw).

The default order is transformers' (logit bias, repetition penalty, presence/frequency,
no-repeat-ngram, DRY, min-tokens, temperature, top-k, top-p, min-p, typical-p, epsilon, eta,
top-nσ, XTC, mirostat); ``sampler_order`` picks llama.cpp's or any other. The stages
transformers has match its processors and warpers bit for bit, row by row; the tests use them
as oracles, and check the rest against loop-per-row references of their published definitions.
"""

from genlab.core.generation.sampling.bias import resolve_logit_bias
from genlab.core.generation.sampling.choice import (
    draw_uniforms,
    pick_tokens,
    pick_with_uniforms,
    sample_from_probs,
)
from genlab.core.generation.sampling.common import NEG_INF
from genlab.core.generation.sampling.pipeline import process_logits
from genlab.core.generation.sampling.rows import RowParams
from genlab.core.generation.sampling.state import SamplerState, fill_history_padding
from genlab.core.generation.sampling.transforms import (
    apply_min_p,
    apply_repetition_penalty,
    apply_temperature,
    apply_top_k,
    apply_top_p,
)

__all__ = [
    "NEG_INF", "RowParams", "SamplerState", "apply_min_p", "apply_repetition_penalty",
    "apply_temperature", "apply_top_k", "apply_top_p", "draw_uniforms", "fill_history_padding",
    "pick_tokens", "pick_with_uniforms", "process_logits", "resolve_logit_bias",
    "sample_from_probs",
]
