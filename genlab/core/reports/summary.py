"""The numbers a report shows, without the report: trial order and per-cell summaries.

Kept apart from ``report`` (which draws plots with matplotlib) so that faces can sort a live
sweep's trials and summarise a compare's cells exactly as the report will, cheaply.
"""

from __future__ import annotations

import math
from typing import Any

ORDER = {"completed": 0, "early-stopped": 0, "pruned": 1, "diverged": 2, "failed": 3}


def sort_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Completed by objective, then pruned (by best eval loss), diverged, failed."""
    def key(r: dict[str, Any]) -> tuple:
        value = r.get("objective")
        if value is None:
            value = r.get("best_eval_loss")
        return (ORDER.get(r.get("status", ""), 4),
                value if value is not None else math.inf, r.get("trial", 0))

    return sorted(rows, key=key)


def cell_mean_tokens(row: dict[str, Any]) -> str:
    """Mean new tokens over the cell's outputs."""
    outs = row.get("outputs", [])
    return f"{sum(o.get('new_tokens', 0) for o in outs) / max(1, len(outs)):.1f}"


def cell_endings(row: dict[str, Any]) -> str:
    """How the cell's outputs ended: ``eos 3, length 1``."""
    counts: dict[str, int] = {}
    for o in row.get("outputs", []):
        counts[o.get("finish_reason", "?")] = counts.get(o.get("finish_reason", "?"), 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def cell_distinct2(row: dict[str, Any]) -> str:
    """Unique word bigrams / all word bigrams over the cell's outputs (1 = no repetition)."""
    grams = []
    for o in row.get("outputs", []):
        words = o.get("text", "").split()
        grams += list(zip(words, words[1:], strict=False))
    return f"{len(set(grams)) / len(grams):.2f}" if grams else "-"


def cell_quality(row: dict[str, Any]) -> tuple[str, str]:
    """Token-weighted mean log-prob of the cell's outputs under the base model, perplexity."""
    scored = [(o["base_logprob"], o.get("new_tokens", 0)) for o in row.get("outputs", [])
              if o.get("base_logprob") is not None and o.get("new_tokens")]
    tokens = sum(n for _, n in scored)
    if not tokens:
        return "-", "-"
    mean = sum(lp for lp, _ in scored) / tokens
    return f"{mean:.3f}", f"{math.exp(-mean):.1f}"
