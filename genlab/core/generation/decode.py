"""The decode loop: batched generation with a KV cache, per-row settings, streamed as events.

This module owns turning ``GenerationRequest`` rows into tokens and text. It runs its own loop
(never ``model.generate``): a left-padded prefill, then one forward per step over the last
tokens with a ``DynamicCache``. Each row keeps its own sampling settings, seed, adapter, stop
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
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import DynamicCache

from genlab.core.configs import ConfigError, GenerationRequest
from genlab.core.events import (
    FinishReason,
    GenerationFinished,
    RowFinished,
    StopToken,
    TokenAlternative,
    TokenSampled,
)
from genlab.core.generation.prompting import EncodedPrompt, encode_requests
from genlab.core.generation.sampling import (
    RowParams,
    fill_history_padding,
    pick_with_uniforms,
    process_logits,
)
from genlab.core.generation.streaming_text import RowText
from genlab.core.modeling.loading import LoadedModel
from genlab.core.modeling.threads import use_threads

Event = TokenSampled | RowFinished | GenerationFinished
PREFILL_CHUNK = 512
"""Prompt tokens per prefill forward pass (longer prompts are prefilled in several)."""


def generate(loaded: LoadedModel, requests: Sequence[GenerationRequest], **kwargs: Any
             ) -> list[RowFinished]:
    """Run ``iter_generate`` to the end; return every row's ``RowFinished``, ordered by row."""
    done = [e for e in iter_generate(loaded, requests, **kwargs) if isinstance(e, RowFinished)]
    return sorted(done, key=lambda r: r.row)


def iter_generate(
    loaded: LoadedModel,
    requests: Sequence[GenerationRequest],
    *,
    top_n: int = 0,
    batch_size: int | None = None,
    stop_token: StopToken | None = None,
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
        prefill_chunk: Prompt tokens per prefill forward (the prompt's KV cache is filled in
            chunks of this size).

    Yields:
        ``TokenSampled`` per row per step, one ``RowFinished`` per row, then one
        ``GenerationFinished``.

    Raises:
        ConfigError: ``top_n``/``batch_size`` out of range or an unknown adapter name.
        PromptError: A chat row without a chat template, or a conversation it refuses.
        ContextLimitError: A prompt plus its new tokens does not fit the model's context.
    """
    _validate(loaded, requests, top_n, batch_size)
    use_threads(loaded.threads)  # torch keeps a thread count per OS thread: set it in this one
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
        new, cancelled = yield from _iter_chunk(loaded, requests, encoded, rows, top_n,
                                                stop_token, start, prefill_chunk)
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


def _eos_ids(loaded: LoadedModel) -> frozenset[int]:
    """Token ids that end a row: the tokenizer's EOS and the generation config's."""
    ids = {loaded.tokenizer.eos_token_id}
    extra = getattr(getattr(loaded.model, "generation_config", None), "eos_token_id", None)
    ids.update(extra if isinstance(extra, (list, tuple)) else [extra])
    return frozenset(i for i in ids if i is not None)


def _iter_chunk(loaded: LoadedModel, all_requests: Sequence[GenerationRequest],
                encoded: Sequence[EncodedPrompt], rows: list[int], top_n: int,
                stop_token: StopToken | None, start: float, prefill_chunk: int
                ) -> Iterator[Event]:
    """Decode one chunk of rows; returns ``(new_tokens, cancelled)`` through ``yield from``."""
    requests = [all_requests[r] for r in rows]
    eos = _eos_ids(loaded)
    ends = [eos | encoded[r].end_ids for r in rows]  # a chat row also ends at end of turn

    def cancel_all() -> Iterator[Event]:
        for row, text in zip(rows, texts, strict=True):
            yield RowFinished(row, "cancelled", text.text, tuple(text.token_ids),
                              time.perf_counter() - start)

    # Phase 1: tensors and per-row text state, then the prompts' prefill.
    batch = _Batch(loaded, requests, [encoded[r].ids for r in rows], top_n)
    texts = [RowText(loaded.tokenizer, p, r.params.stop)
             for p, r in zip(batch.prompts, requests, strict=True)]
    if stop_token is not None and stop_token.stopped:
        yield from cancel_all()
        return 0, True
    batch.prefill(prefill_chunk)
    new_tokens = 0
    for step in range(batch.steps):
        # Phase 2: choose a token per row (tensor work), then emit the events (Python work).
        tokens, logprobs, sampled_lps, alts = batch.sample(step)
        keep: list[int] = []
        for b, (row, req, text) in enumerate(zip(rows, requests, texts, strict=True)):
            token_id = tokens[b]
            delta, hit_stop = text.push(token_id)
            reason: FinishReason | None = "stop" if hit_stop else None
            if reason is None and token_id in ends[b] and not req.params.ignore_eos:
                reason = "eos"
            elif reason is None and len(text.token_ids) >= req.params.max_new_tokens:
                reason = "length"
            if reason in ("eos", "length"):
                delta += text.flush()
            yield TokenSampled(row, step, token_id, delta, logprobs[b],
                               0.0 if req.params.greedy else sampled_lps[b],
                               batch.alternatives(alts[b]) if alts is not None else ())
            if reason is None:
                keep.append(b)
            else:
                yield RowFinished(row, reason, text.text, tuple(text.token_ids),
                                  time.perf_counter() - start)
        new_tokens += len(rows)

        # Phase 3: finished rows leave the batch (cache included); honour the stop token.
        if not keep:
            break
        if len(keep) < len(rows):
            batch.compact(keep)
            rows, requests, texts, ends = ([xs[b] for b in keep]
                                           for xs in (rows, requests, texts, ends))
        if stop_token is not None and stop_token.stopped:
            yield from cancel_all()
            return new_tokens, True
        batch.advance()
    return new_tokens, False


class _Batch:
    """Tensor state of one chunk of rows: KV cache, mask, positions, settings and randomness.

    Each method enters ``torch.inference_mode`` itself, so the mode never leaks into the
    consumer while the generator is suspended at a ``yield``.
    """

    @torch.inference_mode()
    def __init__(self, loaded: LoadedModel, requests: list[GenerationRequest],
                 prompts: list[list[int]], top_n: int):
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
        self.uniforms = _draw_uniforms(requests, self.steps)  # [B, steps]
        if self.device.type == "mps":  # no float64 there; keep u < 1 after rounding
            self.uniforms = self.uniforms.float().clamp_(max=1 - 2**-24)
        self.uniforms = self.uniforms.to(self.device)
        self.extra = _forward_kwargs(loaded, requests)
        self.cache_arg = _cache_argument(loaded)

        self.cache = DynamicCache(config=self.model.config)
        self.history: torch.Tensor | None = None  # [B, L + steps] ids, if a row is penalised
        self.history_len = 0  # columns of ``history`` filled so far
        self.logits = self.last_tokens = torch.empty(0)
        self.token_texts: dict[int, str] = {}

    def _forward(self, input_ids: torch.Tensor, positions: torch.Tensor,
                 mask: torch.Tensor | None) -> torch.Tensor:
        masked = {} if mask is None else {"attention_mask": mask}
        out = self.model(input_ids=input_ids, position_ids=positions, use_cache=True,
                         **{self.cache_arg: self.cache}, **masked, **self.extra)
        return out.logits[:, -1, :].float()  # [B, V]

    @torch.inference_mode()
    def prefill(self, chunk: int = PREFILL_CHUNK) -> None:
        """Run the prompts through the model, ``chunk`` positions per forward, filling the cache.

        Each chunk attends to the cache of the chunks before it, so the result is the one-shot
        prefill's (up to float rounding) with memory for ``chunk`` positions of activations.
        """
        width = self.input_ids.shape[1]
        for begin in range(0, width, chunk):
            end = min(begin + chunk, width)
            mask = None if self.mask is None else self.mask[:, :end]  # [B, end]: cache + chunk
            self.logits = self._forward(self.input_ids[:, begin:end],
                                        self.positions[:, begin:end], mask)
        if "repetition_penalty" in self.params.uses:  # preallocated: one column per step
            prompt = self.input_ids if self.mask is None else \
                fill_history_padding(self.input_ids, self.mask)
            self.history_len = prompt.shape[1]
            self.history = prompt.new_empty(prompt.shape[0], self.history_len + self.steps)
            self.history[:, :self.history_len] = prompt

    @torch.inference_mode()
    def advance(self) -> None:
        """One forward over the tokens chosen last; every row moves one position on."""
        if self.mask is not None:
            ones = self.mask.new_ones(self.mask.shape[0], 1)
            self.mask = torch.cat([self.mask, ones], dim=1)  # [B, L + 1]
        self.logits = self._forward(self.last_tokens.unsqueeze(1), self.next_pos, self.mask)
        self.next_pos = self.next_pos + 1

    @torch.inference_mode()
    def sample(self, step: int) -> tuple[list[int], list[float], list[float], list | None]:
        """Choose this step's token for every row.

        Returns:
            Token ids, raw log-probs, post-transform log-probs (meaningless for greedy rows),
            and per row ``(ids, raw_probs, sampled_probs)`` of the top-n alternatives (None
            when top_n is 0).
        """
        logits, params = self.logits, self.params  # [B, V] float32
        history = None if self.history is None else self.history[:, :self.history_len]
        processed = process_logits(logits, params, history)
        tokens, probs = pick_with_uniforms(processed, params.greedy, self.uniforms[:, step],
                                           any_greedy=params.any_greedy,
                                           any_sample=params.any_sample)
        if self.history is not None:
            self.history[:, self.history_len] = tokens
            self.history_len += 1
        self.last_tokens = tokens
        chosen = tokens.unsqueeze(1)  # [B, 1]
        raw_lp = logits.log_softmax(dim=-1).gather(1, chosen).squeeze(1)  # [B]
        sampled_lp = raw_lp if probs is None else probs.gather(1, chosen).squeeze(1).log()
        alts = None
        if self.top_n:
            raw_top, ids = logits.softmax(dim=-1).topk(min(self.top_n, logits.shape[-1]), dim=-1)
            sampled = (ids == chosen).float()  # [B, n]: a greedy row's post-sampler probs
            if probs is not None:
                sampled = torch.where(params.greedy.unsqueeze(1), sampled, probs.gather(1, ids))
            alts = list(zip(ids.tolist(), raw_top.tolist(), sampled.tolist(), strict=True))
        raw_lps, sampled_lps = torch.stack([raw_lp, sampled_lp]).tolist()  # one transfer
        return tokens.tolist(), raw_lps, sampled_lps, alts

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
        self.cache.batch_select_indices(index)
        for name in ("mask", "next_pos", "uniforms", "last_tokens", "history"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.index_select(0, index))
        self.params = self.params.select(index)
        if "adapter_names" in self.extra:
            names = self.extra["adapter_names"]
            self.extra = {**self.extra, "adapter_names": [names[i] for i in keep]}


def _draw_uniforms(requests: list[GenerationRequest], steps: int) -> torch.Tensor:
    """``[rows, steps]`` float64 uniforms, one per step, each row from its own seeded generator.

    Drawn on the CPU once per run: a row's draws are then the same on every device and
    independent of the batch. Rows shorter than ``steps`` are zero-padded (never read).
    """
    out = torch.zeros(len(requests), steps, dtype=torch.float64)
    for i, req in enumerate(requests):
        gen = torch.Generator(device="cpu").manual_seed(req.seed)
        n = req.params.max_new_tokens
        out[i, :n] = torch.rand(n, generator=gen, dtype=torch.float64)
    return out


def _cache_argument(loaded: LoadedModel) -> str:
    """The forward's KV-cache keyword: ``cache`` where the model takes it (transformers >= 5.2
    deprecates ``past_key_values`` with a FutureWarning on every call), else
    ``past_key_values``."""
    base = loaded.model.get_base_model() if loaded.adapters else loaded.model
    params = inspect.signature(base.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _forward_kwargs(loaded: LoadedModel, requests: list[GenerationRequest]) -> dict[str, Any]:
    """Extra forward arguments: last-position logits only, and per-row PEFT adapters."""
    base = loaded.model.get_base_model() if loaded.adapters else loaded.model
    extra: dict[str, Any] = {}
    if "logits_to_keep" in inspect.signature(base.forward).parameters:
        extra["logits_to_keep"] = 1
    if loaded.adapters:  # PEFT mixed-adapter batch; "__base__" rows skip every LoRA layer
        extra["adapter_names"] = [r.adapter or "__base__" for r in requests]
    return extra
