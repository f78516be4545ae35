"""Temperature, fixed or dynamic (llama.cpp's dynatemp), and XTC.

Fixed temperature divides the logits by T. Dynamic temperature picks, per row and step, a T
in ``[max(0, T - range), T + range]`` from the normalised entropy of the tokens still in play
(entropy / log(their count)), raised to ``exponent``: an unsure model gets a hotter T, a sure
one a colder T. A row with at most one token in play is unchanged; a dynamic T of 0 keeps only
the top token (as llama.cpp's temperature 0).

XTC (Exclude Top Choices, p-e-w): with probability ``xtc_probability`` per token, if at least
two tokens have probability >= threshold, remove all of them but the least likely (ties at
that probability all stay), unless fewer than min-keep tokens would remain. The chance comes
from the row's own random stream (``SamplerState``), so a row's draws stay its own.
"""

from __future__ import annotations

import torch

from genlab.core.generation.sampling.common import NEG_INF, finite_count


def temperature_kernel(x: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """``TemperatureLogitsWarper``: x / T (x / 1.0 is exact, so rows at 1 may share the op)."""
    return x.div_(temperature)


def dynatemp_kernel(x: torch.Tensor, temperature: torch.Tensor, spread: torch.Tensor,
                    exponent: torch.Tensor) -> torch.Tensor:
    """Dynamic temperature (all ``[n, 1]`` float32; ``spread`` > 0)."""
    count = finite_count(x)  # [n, 1]
    probs = x.softmax(dim=-1)
    logp = torch.where(probs > 0, probs.log(), 0.0)
    entropy = -(probs * logp).sum(dim=-1, keepdim=True)
    max_entropy = count.clamp(min=2).to(x.dtype).log()
    low = (temperature - spread).clamp(min=0.0)
    high = temperature + spread
    dyn = low + (high - low) * (entropy / max_entropy).clamp(0.0, 1.0).pow(exponent)
    greedy = torch.where(x == x.amax(dim=-1, keepdim=True), x, NEG_INF)
    scaled = torch.where(dyn > 0, x / dyn.clamp(min=1e-30), greedy)
    return torch.where(count > 1, scaled, x)


def xtc_kernel(x: torch.Tensor, chance: torch.Tensor, probability: torch.Tensor,
               threshold: torch.Tensor, min_keep: torch.Tensor) -> torch.Tensor:
    """XTC for ``[n, vocab]`` rows; ``chance`` ``[n]`` float64 uniforms of this step."""
    acts = (chance.unsqueeze(1) < probability.double())  # [n, 1]
    probs = x.softmax(dim=-1)
    above = probs >= threshold
    lowest = torch.where(above, probs, 2.0).amin(dim=-1, keepdim=True)  # least likely above
    remove = above & (probs > lowest)
    removed = remove.sum(dim=-1, keepdim=True)
    acts &= (above.sum(dim=-1, keepdim=True) >= 2) & (finite_count(x) - removed >= min_keep)
    return x.masked_fill_(remove & acts, NEG_INF)
