"""Run a ``SamplePlan``'s rows through the core generator and collect ``SampleResult``s.

Owns the consumer side of ``genlab.core.generation.decode.iter_generate`` for the CLI: one call for
the whole grid (every prompt, setting, adapter and sample, chunked into forward passes of
``batch_size`` rows), progress updates, per-token logprob records when asked, and the
stop token that Ctrl-C sets. Imported inside the command, so torch loads only for real runs.
"""

from __future__ import annotations

import math
from typing import Any

from genlab.cli.render import EventRenderer, renders
from genlab.cli.sample_args import SamplePlan
from genlab.cli.sample_output import SampleResult, finite_or_none
from genlab.cli.sample_progress import RunProgress
from genlab.core.configs.sampling import message_dicts
from genlab.core.events import GenerationFinished, RowFinished, StopToken, TokenSampled
from genlab.core.generation import decode as core_generate
from genlab.core.generation.prompting import sent_messages, uses_chat


def run_plan(loaded: Any, plan: SamplePlan, *, stop: StopToken,
             progress: RunProgress) -> tuple[list[SampleResult], bool]:
    """Generate every row of ``plan``; return results in row order and whether it was cut.

    A cancelled run still returns a result for each row (the engine finishes unfinished rows
    with reason ``cancelled``); the caller decides what to write.
    """
    top_n = min(plan.logprobs, len(loaded.tokenizer)) if plan.logprobs is not None else 0
    collected = _Collected(progress, _TokenDecoder(loaded.tokenizer) if plan.logprobs is not None
                           else None)
    events = core_generate.iter_generate(
        loaded, [r.request for r in plan.rows], top_n=top_n,
        batch_size=plan.batch_size, stop_token=stop,
    )
    for event in events:
        collected.handle(event)
    finished = collected.finished
    cancelled = collected.cancelled or stop.stopped or len(finished) < len(plan.rows)
    results = [
        SampleResult(row, fin.text, tuple(fin.token_ids), fin.reason,
                     collected.logprobs.get(i, []) if plan.logprobs is not None else None,
                     _sent(loaded, row.request), getattr(loaded, "runtime", None))
        for i, row in enumerate(plan.rows)
        if (fin := finished.get(i)) is not None
    ]
    return results, cancelled


def _sent(loaded: Any, request: Any) -> list[dict[str, str]] | None:
    """The conversation a chat row sent (None for a raw-text row)."""
    if not uses_chat(loaded.tokenizer, request):
        return None
    return message_dicts(sent_messages(request))


class _Collected(EventRenderer):
    """What the generation events add up to: finished rows, logprob records, progress."""

    def __init__(self, progress: RunProgress, decode: _TokenDecoder | None) -> None:
        self.progress = progress
        self.decode = decode
        self.logprobs: dict[int, list[dict[str, Any]]] = {}
        self.finished: dict[int, RowFinished] = {}
        self.cancelled = False

    @renders(TokenSampled)
    def _on_token(self, event: TokenSampled) -> None:
        self.progress.token()
        if self.decode is not None:
            self.logprobs.setdefault(event.row, []).append(_logprob_record(event, self.decode))

    @renders(RowFinished)
    def _on_row(self, event: RowFinished) -> None:
        self.finished[event.row] = event
        self.progress.row()
        self.cancelled = self.cancelled or event.reason == "cancelled"

    @renders(GenerationFinished)
    def _on_done(self, event: GenerationFinished) -> None:
        self.cancelled = self.cancelled or bool(event.cancelled)


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
