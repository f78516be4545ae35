"""Run a ``SamplePlan``'s rows through the core generator and collect ``SampleResult``s.

Owns the consumer side of ``genlab.core.generation.decode.iter_generate`` for the CLI: one call for
the whole grid (every prompt, setting, adapter and sample, chunked into forward passes of
``batch_size`` rows), progress updates, per-token logprob records when asked, and the
stop token that Ctrl-C sets. Imported inside the command, so torch loads only for real runs.
"""

from __future__ import annotations

import math
from typing import Any

from genlab.cli.sample_args import SamplePlan
from genlab.cli.sample_output import SampleResult, finite_or_none
from genlab.cli.sample_progress import RunProgress
from genlab.core.events import RowFinished, StopToken, TokenSampled
from genlab.core.generation import decode as core_generate


def run_plan(loaded: Any, plan: SamplePlan, *, stop: StopToken,
             progress: RunProgress) -> tuple[list[SampleResult], bool]:
    """Generate every row of ``plan``; return results in row order and whether it was cut.

    A cancelled run still returns a result for each row (the engine finishes unfinished rows
    with reason ``cancelled``); the caller decides what to write.
    """
    top_n = min(plan.logprobs, len(loaded.tokenizer)) if plan.logprobs is not None else 0
    want_logprobs = plan.logprobs is not None
    token_logprobs: dict[int, list[dict[str, Any]]] = {}
    finished: dict[int, RowFinished] = {}
    decode = _TokenDecoder(loaded.tokenizer)
    cancelled = False
    events = core_generate.iter_generate(
        loaded, [r.request for r in plan.rows], top_n=top_n,
        batch_size=plan.batch_size, stop_token=stop,
    )
    for event in events:
        if isinstance(event, TokenSampled):
            progress.token()
            if want_logprobs:
                token_logprobs.setdefault(event.row, []).append(_logprob_record(event, decode))
        elif isinstance(event, RowFinished):
            finished[event.row] = event
            progress.row()
            cancelled = cancelled or event.reason == "cancelled"
        else:  # GenerationFinished
            cancelled = cancelled or bool(getattr(event, "cancelled", False))
    cancelled = cancelled or stop.stopped or len(finished) < len(plan.rows)
    results = [
        SampleResult(row, fin.text, tuple(fin.token_ids), fin.reason,
                     token_logprobs.get(i, []) if want_logprobs else None)
        for i, row in enumerate(plan.rows)
        if (fin := finished.get(i)) is not None
    ]
    return results, cancelled


def _logprob_record(event: TokenSampled, decode: _TokenDecoder) -> dict[str, Any]:
    """``{token_id, token, logprob, top: [{token_id, token, logprob, sampled_prob}]}``."""
    top = [
        {"token_id": alt.token_id, "token": alt.text,
         "logprob": math.log(alt.raw_prob) if alt.raw_prob > 0 else None,
         "sampled_prob": alt.sampled_prob}
        for alt in event.alternatives
    ]
    chosen = next((a.text for a in event.alternatives if a.token_id == event.token_id), None)
    return {
        "token_id": event.token_id,
        "token": chosen if chosen is not None else decode(event.token_id),
        "logprob": finite_or_none(event.logprob),
        "top": top,
    }


class _TokenDecoder:
    """Decode single token ids on their own, with a cache (the same ids recur a lot)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.cache: dict[int, str] = {}

    def __call__(self, token_id: int) -> str:
        if token_id not in self.cache:
            self.cache[token_id] = self.tokenizer.decode([token_id])
        return self.cache[token_id]
