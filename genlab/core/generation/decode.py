"""The decode loop: batched generation with a KV cache, per-row settings, streamed as events.

This module owns turning ``GenerationRequest`` rows into tokens and text. It runs its own loop
(never ``model.generate``): a left-padded prefill, then one forward per step over the last
tokens (``generation.model_step``: a growing ``DynamicCache``, or with ``--compile`` a static
cache and a compiled step). Each row keeps its own sampling settings, seed, adapter, stop
strings and length, so a grid of settings runs as one batch. A row's tokens depend only on its
own request: padding is masked, positions are explicit, its random numbers come from its own
generator (see ``genlab.core.generation.sampling``), and finished rows leave the batch.

Text is streamed as deltas whose concatenation is exactly the row's final text: a character
split across tokens and text that could still become a stop string are held back until decided
(``genlab.core.generation.streaming_text``).

Prompts are encoded before the first event (``genlab.core.generation.prompting``: the chat
template, the end-of-turn token, the context-length check), so a prompt that cannot run fails
the whole call up front. Long prompts are prefilled in chunks of ``PREFILL_CHUNK`` tokens, so
a 4k-token prompt never materialises 4k x 4k attention scores or 4k rows of MLP activations at
once; memory for a grid is bounded by ``batch_size`` rows (one chunk of rows, and its KV cache,
at a time).

Stateful samplers (penalties, DRY, mirostat, XTC, logit bias, min-tokens) keep their per-row
state in a ``SamplerState`` that follows the batch. On CUDA the loop never waits for the device
per token: each step's ids and log-probs are copied asynchronously into a pinned host buffer,
and the host reads them every ``SYNC_EVERY["cuda"]`` steps (rows that ended meanwhile drop the
extra tokens they computed, so every row's output is the same as with a sync per step).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from genlab.core.configs import ConfigError, GenerationRequest
from genlab.core.events import (
    FinishReason,
    GenerationFinished,
    RowFinished,
    StopToken,
    TokenAlternative,
    TokenSampled,
)
from genlab.core.generation.model_call import cache_argument, eos_ids, forward_kwargs, vocab_size
from genlab.core.generation.model_step import ModelStep
from genlab.core.generation.prompting import EncodedPrompt, encode_requests
from genlab.core.generation.readback import HostBuffer
from genlab.core.generation.sampling import (
    RowParams,
    SamplerState,
    draw_uniforms,
    pick_with_uniforms,
    process_logits,
    resolve_logit_bias,
)
from genlab.core.generation.streaming_text import RowText
from genlab.core.modeling.loading import LoadedModel
from genlab.core.modeling.threads import use_threads

Event = TokenSampled | RowFinished | GenerationFinished
PREFILL_CHUNK = 512
"""Prompt tokens per prefill forward pass (longer prompts are prefilled in several)."""
SYNC_EVERY = {"cuda": 8}
"""Steps between host reads of the sampled ids, by device type (1 when absent: on the CPU
there is nothing to wait for, and a finished row stops costing at once)."""
_TOKEN_TEXTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def generate(loaded: LoadedModel, requests: Sequence[GenerationRequest], **kwargs: Any
             ) -> list[RowFinished]:
    """Run ``iter_generate`` to the end; return every row's ``RowFinished``, ordered by row.

    No per-token events are built (``token_events=False``): the rows are the same.
    """
    kwargs.setdefault("token_events", False)
    done = [e for e in iter_generate(loaded, requests, **kwargs) if isinstance(e, RowFinished)]
    return sorted(done, key=lambda r: r.row)


def iter_generate(
    loaded: LoadedModel,
    requests: Sequence[GenerationRequest],
    *,
    top_n: int = 0,
    batch_size: int | None = None,
    stop_token: StopToken | None = None,
    token_events: bool = True,
    prefill_chunk: int = PREFILL_CHUNK,
) -> Iterator[TokenSampled | RowFinished | GenerationFinished]:
    """Generate every request, yielding events as tokens are chosen.

    Args:
        loaded: Model and tokenizer from ``genlab.core.modeling.loading.load_model``.
        requests: One row each; ``row`` in the events is the index into this list.
        top_n: How many top tokens (by raw probability) each ``TokenSampled`` lists in
            ``alternatives``; 0 skips that work.
        batch_size: Rows per batch (chunks run one after another); None = all rows at once.
        stop_token: Once set, unfinished rows end with reason ``cancelled`` at the next step.
        token_events: False skips the ``TokenSampled`` events (and ``top_n``), for callers
            that only want finished rows; every row's tokens and text are the same.
        prefill_chunk: Prompt tokens per prefill forward (the prompt's KV cache is filled in
            chunks of this size).

    Yields:
        ``TokenSampled`` per row per step (unless ``token_events`` is False), one
        ``RowFinished`` per row, then one ``GenerationFinished``.

    Raises:
        ConfigError: ``top_n``/``batch_size`` out of range or an unknown adapter name.
        PromptError: A chat row without a chat template, or a conversation it refuses.
        ContextLimitError: A prompt plus its new tokens does not fit the model's context.
    """
    _validate(loaded, requests, top_n, batch_size)
    if getattr(loaded, "threads", None) is not None:  # torch counts threads per OS thread
        use_threads(loaded.threads)
    if not isinstance(prefill_chunk, int) or prefill_chunk < 1:
        raise ConfigError("prefill_chunk", prefill_chunk, "an integer >= 1")
    encoded = encode_requests(loaded, requests)
    start = time.perf_counter()
    size = batch_size or max(len(requests), 1)
    total, cancelled = 0, False
    for first in range(0, len(requests), size):
        rows = list(range(first, min(first + size, len(requests))))
        if cancelled:  # rows of later chunks never started
            for row in rows:
                yield RowFinished(row, "cancelled", "", (), time.perf_counter() - start)
            continue
        new, cancelled = yield from _iter_chunk(loaded, requests, encoded, rows,
                                                top_n if token_events else 0, stop_token, start,
                                                prefill_chunk, token_events)
        total += new
    yield GenerationFinished(len(requests), total, time.perf_counter() - start, cancelled)


def _validate(loaded: LoadedModel, requests: Sequence[GenerationRequest], top_n: int,
              batch_size: int | None) -> None:
    if not isinstance(top_n, int) or top_n < 0:
        raise ConfigError("top_n", top_n, "an integer >= 0")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError("batch_size", batch_size, "an integer >= 1 (or None for one batch)")
    for req in requests:
        if req.adapter is not None and req.adapter not in loaded.adapters:
            known = ", ".join(sorted(loaded.adapters)) or "none loaded"
            raise ConfigError("adapter", req.adapter, f"a loaded adapter name ({known})")
    configs = getattr(loaded.model, "peft_config", {}) if loaded.adapters else {}
    for name in loaded.adapters:
        if getattr(configs.get(name), "use_dora", False):  # PEFT: no DoRA in mixed batches
            raise ConfigError("adapter", name, "a LoRA adapter without DoRA: PEFT cannot run "
                              "DoRA in a mixed-adapter batch; fold it into the base with "
                              "genlab merge and sample the merged model")



def _iter_chunk(loaded: LoadedModel, all_requests: Sequence[GenerationRequest],
                encoded: Sequence[EncodedPrompt], rows: list[int], top_n: int,
                stop_token: StopToken | None, start: float, prefill_chunk: int = PREFILL_CHUNK,
                token_events: bool = True) -> Iterator[Event]:
    """Decode one chunk of rows; returns ``(new_tokens, cancelled)`` through ``yield from``."""
    requests = [all_requests[r] for r in rows]
    eos = eos_ids(loaded)
    ends = [eos | encoded[r].end_ids for r in rows]  # a chat row also ends at end of turn

    def cancel_all() -> Iterator[Event]:
        for row, text in zip(rows, texts, strict=True):
            yield RowFinished(row, "cancelled", text.text, tuple(text.token_ids),
                              time.perf_counter() - start)

    # Phase 1: tensors and per-row text state, then the prompts' prefill.
    batch = _Batch(loaded, requests, [encoded[r].ids for r in rows], frozenset().union(*ends),
                   top_n)
    texts = [RowText(loaded.tokenizer, p, r.params.stop)
             for p, r in zip(batch.prompts, requests, strict=True)]
    if stop_token is not None and stop_token.stopped:
        yield from cancel_all()
        return 0, True
    batch.prefill(prefill_chunk)
    # Per row, what the loop checks every step: its row, text, length limit, the ids that end
    # it (EOS, and a chat row's end of turn; none with ignore_eos), whether it is greedy.
    info = [(row, text, r.params.max_new_tokens, frozenset() if r.params.ignore_eos else end,
             r.params.greedy)
            for row, text, r, end in zip(rows, texts, requests, ends, strict=True)]
    new_tokens, step = 0, 0
    while step < batch.steps:
        # Phase 2: a block of steps on the device, then their tokens read back at once.
        count = batch.run_block(step, stop_token)
        keep = list(range(len(info)))
        for offset, (tokens, logprobs, sampled_lps, alts) in enumerate(batch.flush()):
            # Phase 3: the events of each step (Python work), for the rows still going.
            still: list[int] = []
            for b in keep:
                row, text, limit, row_ends, greedy = info[b]
                token_id = tokens[b]
                delta, hit_stop = text.push(token_id)
                reason: FinishReason | None = None
                if hit_stop:
                    reason = "stop"
                elif token_id in row_ends:
                    reason = "eos"
                elif len(text.token_ids) >= limit:
                    reason = "length"
                if reason is not None and reason != "stop":
                    delta += text.flush()
                if token_events:
                    yield TokenSampled(row, step + offset, token_id, delta, logprobs[b],
                                       0.0 if greedy else sampled_lps[b],
                                       batch.alternatives(alts[b]) if alts is not None else ())
                if reason is None:
                    still.append(b)
                else:
                    yield RowFinished(row, reason, text.text, tuple(text.token_ids),
                                      time.perf_counter() - start)
            new_tokens += len(keep)
            keep = still
        step += count

        # Phase 4: finished rows leave the batch (cache included); honour the stop token.
        if not keep:
            break
        if len(keep) < len(info):
            batch.compact(keep)
            info = [info[b] for b in keep]
            rows, texts = [i[0] for i in info], [i[1] for i in info]
        if stop_token is not None and stop_token.stopped:
            yield from cancel_all()
            return new_tokens, True
    return new_tokens, False


class _Batch:
    """Tensor state of one chunk of rows: KV cache, mask, positions, settings and randomness.

    Each method enters ``torch.inference_mode`` itself, so the mode never leaks into the
    consumer while the generator is suspended at a ``yield``.
    """

    @torch.inference_mode()
    def __init__(self, loaded: LoadedModel, requests: list[GenerationRequest],
                 prompts: list[list[int]], end_ids: frozenset[int], top_n: int):
        self.model, self.device, self.top_n = loaded.model, loaded.device, top_n
        self.tokenizer = loaded.tokenizer
        self.prompts = prompts
        width = max(len(p) for p in self.prompts)
        pad = self.tokenizer.pad_token_id or 0
        ids = [[pad] * (width - len(p)) + p for p in self.prompts]  # left padding
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in self.prompts],
                            device=self.device)  # [B, L]
        self.input_ids = torch.tensor(ids, device=self.device)  # [B, L]
        self.positions = (mask.cumsum(-1) - 1).clamp(min=0)  # [B, L]: pads share position 0
        self.next_pos = self.positions[:, -1:] + 1  # [B, 1]
        # Without padding the model's own causal mask is exact and cheaper to build.
        self.mask = mask if any(len(p) < width for p in self.prompts) else None
        self.params = RowParams.from_params([r.params for r in requests], self.device)
        self.steps = max(r.params.max_new_tokens for r in requests)
        self.uniforms, self.xtc_uniforms = draw_uniforms(requests, self.steps,
                                                          "xtc" in self.params.uses)
        if self.device.type == "mps":  # no float64 there; keep u < 1 after rounding
            self.uniforms = self.uniforms.float().clamp_(max=1 - 2**-24)
        self.uniforms = self.uniforms.to(self.device)
        extra = forward_kwargs(loaded, requests)
        self.vocab = vocab_size(loaded)
        self.bias = [resolve_logit_bias(self.tokenizer, r.params.logit_bias, self.vocab)
                     for r in requests] if "logit_bias" in self.params.uses else None
        self.eos = sorted(end_ids)  # min-tokens bans every id that ends a row (EOS, end of turn)
        self.cache_arg = cache_argument(loaded)

        self.step = ModelStep(loaded, len(requests), width + self.steps, self.mask,
                              self.cache_arg, extra)
        self.state: SamplerState | None = None
        self.logits = self.last_tokens = torch.empty(0)
        self.token_texts: dict[int, str] = {}
        self.sync_every = SYNC_EVERY.get(self.device.type, 1)
        self.pending: list[tuple[torch.Tensor, ...]] = []
        self.host = HostBuffer(len(requests), self.sync_every, top_n, self.device)

    @torch.inference_mode()
    def prefill(self, chunk: int = PREFILL_CHUNK) -> None:
        """Run the prompts through the model, ``chunk`` positions per forward, filling the
        cache; start the samplers.

        Each chunk attends to the cache of the chunks before it, so the result is the one-shot
        prefill's (up to float rounding) with memory for ``chunk`` positions of activations.
        """
        self.logits = self.step.prefill(self.input_ids, self.positions, chunk)
        if self.params.uses:
            self.state = SamplerState(
                self.params, self.input_ids, None if self.mask is None else self.mask.bool(),
                self.steps, self.logits.shape[-1], eos_ids=self.eos,
                token_texts=lambda: _token_texts(self.tokenizer, self.logits.shape[-1]),
                bias=self.bias, xtc_uniforms=self.xtc_uniforms)

    def _advance(self) -> None:
        """One forward over the tokens chosen last; every row moves one position on."""
        self.logits = self.step.decode(self.last_tokens, self.next_pos)
        self.next_pos = self.next_pos + 1

    @torch.inference_mode()
    def run_block(self, step: int, stop_token: StopToken | None) -> int:
        """Sample ``sync_every`` steps from ``step`` (fewer at the end or once stopped).

        Each step but the very first starts with the forward over the previous step's tokens.
        """
        count = min(self.sync_every, self.steps - step)
        for offset in range(count):
            if step + offset > 0:
                self._advance()
            self.sample(step + offset)
            if stop_token is not None and stop_token.stopped:
                return offset + 1
        return count

    def sample(self, step: int) -> None:
        """Choose this step's token for every row; the results wait in ``pending``."""
        logits, params = self.logits, self.params  # [B, V] float32
        processed = process_logits(logits, params, self.state)
        tokens, probs = pick_with_uniforms(processed, params.greedy, self.uniforms[:, step],
                                           any_greedy=params.any_greedy,
                                           any_sample=params.any_sample)
        chosen = tokens.unsqueeze(1)  # [B, 1]
        chosen_p = None if probs is None else probs.gather(1, chosen).squeeze(1)
        if chosen_p is not None and processed is logits:  # no stage ran: the same distribution
            raw_lp = chosen_p.log()
        else:
            raw_lp = logits.log_softmax(dim=-1).gather(1, chosen).squeeze(1)  # [B]
        if self.state is not None:
            self.state.update(tokens, chosen_p)
        self.last_tokens = tokens
        sampled_lp = raw_lp if chosen_p is None else chosen_p.log()
        alts: tuple[torch.Tensor, ...] = ()
        if self.top_n:
            raw_top, ids = logits.softmax(dim=-1).topk(min(self.top_n, logits.shape[-1]), dim=-1)
            sampled = (ids == chosen).float()  # [B, n]: a greedy row's post-sampler probs
            if probs is not None:
                sampled = torch.where(params.greedy.unsqueeze(1), sampled, probs.gather(1, ids))
            alts = (ids, raw_top, sampled)
        self.host.put(len(self.pending), tokens, torch.stack([raw_lp, sampled_lp]), alts)
        self.pending.append(())

    def flush(self) -> list[tuple[list[int], list[float], list[float], list | None]]:
        """Per pending step: token ids, raw log-probs, post-transform log-probs (meaningless
        for greedy rows) and per row ``(ids, raw_probs, sampled_probs)`` of the top-n
        alternatives (None when top_n is 0); one host read for the whole block."""
        steps, self.pending = len(self.pending), []
        return self.host.read(steps, self.last_tokens.shape[0])

    def alternatives(self, row_alts: tuple[list[int], list[float], list[float]]
                     ) -> tuple[TokenAlternative, ...]:
        """``TokenAlternative``s of one row, each token's text decoded once and cached."""
        out = []
        for token_id, raw, sampled in zip(*row_alts, strict=True):
            text = self.token_texts.get(token_id)
            if text is None:
                text = self.token_texts[token_id] = self.tokenizer.decode([token_id])
            out.append(TokenAlternative(token_id, text, raw, sampled))
        return tuple(out)

    @torch.inference_mode()
    def compact(self, keep: list[int]) -> None:
        """Keep only the rows at positions ``keep`` in every tensor (cache included)."""
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        self.step.select(index)
        for name in ("next_pos", "uniforms", "last_tokens"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.index_select(0, index))
        self.params = self.params.select(index)
        if self.state is not None:
            self.state.select(index, self.params)




def _token_texts(tokenizer: Any, vocab: int) -> list[str]:
    """Every token's text (for DRY's breakers), decoded once per tokenizer."""
    texts = _TOKEN_TEXTS.get(tokenizer)
    if texts is None or len(texts) < vocab:
        size = min(vocab, len(tokenizer))
        texts = tokenizer.batch_decode([[i] for i in range(size)])
        texts += [""] * (vocab - size)
        _TOKEN_TEXTS[tokenizer] = texts
    return texts
