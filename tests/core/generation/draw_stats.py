"""Draw statistics shared by the sampling tests: a chi-square goodness-of-fit p-value."""

from __future__ import annotations

import torch


def chi_square_p_value(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson chi-square p-value; bins expected below 5 draws are pooled into one."""
    observed, expected = counts.double(), probs * counts.sum()
    small = (expected < 5) & (probs > 0)
    big = expected >= 5
    obs = torch.cat([observed[big], observed[small].sum().reshape(1)])
    exp = torch.cat([expected[big], expected[small].sum().reshape(1)])
    if not small.any():
        obs, exp = obs[:-1], exp[:-1]
    try:
        from scipy.stats import chisquare
    except ImportError:  # pragma: no cover - compare with the p = 0.001 critical value
        stat = float(((obs - exp) ** 2 / exp).sum())
        critical = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52, 6: 22.46, 7: 24.32}
        return 1.0 if stat < critical[len(obs) - 1] else 0.0
    return float(chisquare(obs.numpy(), exp.numpy()).pvalue)
