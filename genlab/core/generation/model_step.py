"""The model side of the decode loop: KV cache, chunked prefill, the one-token forward.

``ModelStep`` owns one chunk of rows' KV cache and every model call the loop makes:

* eager (the default): a ``DynamicCache`` that grows by one position per step, read only as far
  as it is filled; rows that finish leave the batch, cache included (``select``).
* compiled (``--compile``, ``LoadedModel.compile``): a preallocated ``StaticCache`` of
  prompt + new tokens (rounded up to ``CACHE_BUCKET``), a full-length attention mask and
  fixed-size input buffers, so every decode step has the same shapes and the one
  ``torch.compile``d forward (``compiled_forward``, shared by every run in the process;
  inductor also caches its kernels on disk across runs) runs them without recompiling (a new
  batch size or cache length compiles once more). Rows that finish stay in the physical batch
  (their outputs are dropped), since a smaller batch would mean another compile. On CUDA the
  compile uses CUDA graphs (``mode="reduce-overhead"``): one launch per step instead of one
  per kernel. The prompt's prefill always runs eagerly (its length differs per call).

Batches with per-row LoRA adapters run eagerly (PEFT routes rows in Python), so do int8 and
bitsandbytes models (their quantized layers compile to slower code than they run eagerly).
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache, StaticCache

from genlab.core.modeling.loading import LoadedModel

_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
CACHE_BUCKET = 32
"""A static cache's length is rounded up to a multiple of this, so runs of nearby lengths
share one compiled step (each new shape compiles again)."""


def compiled_forward(model: Any, device: torch.device) -> Any:
    """``torch.compile(model.forward)`` with static shapes, made once per model."""
    fn = _COMPILED.get(model)
    if fn is None:
        mode = "reduce-overhead" if device.type == "cuda" else None  # CUDA graphs there
        fn = _COMPILED[model] = torch.compile(model.forward, dynamic=False, mode=mode)
    return fn


def can_compile(loaded: LoadedModel, extra: dict[str, Any]) -> bool:
    """True when this batch's decode step may use the compiled forward."""
    return (bool(getattr(loaded, "compile", False)) and "adapter_names" not in extra
            and getattr(loaded, "quantize", "none") == "none"
            and getattr(loaded.model, "_can_compile_fullgraph", True) is not False)


class ModelStep:
    """KV cache and forward calls of one chunk of rows (see the module docstring)."""

    def __init__(self, loaded: LoadedModel, rows: int, max_len: int, mask: torch.Tensor | None,
                 cache_arg: str, extra: dict[str, Any]) -> None:
        self.model, self.device = loaded.model, loaded.device
        self.cache_arg, self.extra = cache_arg, extra
        self.compiled = compiled_forward(self.model, self.device) \
            if can_compile(loaded, extra) else None
        self.filled = 0  # cache positions written
        if self.compiled is None:
            self.cache: Any = DynamicCache(config=self.model.config)
            self.mask = mask  # [B, filled]: grows by a column per step
            return
        max_len = -(-max_len // CACHE_BUCKET) * CACHE_BUCKET
        self.cache = StaticCache(config=self.model.config, max_cache_len=max_len)
        width = mask.shape[1] if mask is not None else 0
        self.mask = None if mask is None else F.pad(mask, (0, max_len - width), value=1)
        self.live = torch.arange(rows, device=self.device)  # physical rows still going
        self.tokens = torch.zeros(rows, 1, dtype=torch.long, device=self.device)
        self.positions = torch.zeros(rows, 1, dtype=torch.long, device=self.device)

    @property
    def static(self) -> bool:
        """True when the decode step runs compiled on a ``StaticCache``."""
        return self.compiled is not None

    def _call(self, fn: Any, ids: torch.Tensor, positions: torch.Tensor,
              mask: torch.Tensor | None, **kwargs: Any) -> torch.Tensor:
        masked = {} if mask is None else {"attention_mask": mask}
        out = fn(input_ids=ids, position_ids=positions, use_cache=True,
                 **{self.cache_arg: self.cache}, **masked, **self.extra, **kwargs)
        return out.logits[:, -1, :].float()  # [B, V]

    def prefill(self, ids: torch.Tensor, positions: torch.Tensor, chunk: int) -> torch.Tensor:
        """Run the prompts, ``chunk`` positions per forward; the last position's logits."""
        width = ids.shape[1]
        logits = torch.empty(0)
        for begin in range(0, width, chunk):
            end = min(begin + chunk, width)
            if self.static:  # explicit cache slots; the mask covers the whole cache
                slots = torch.arange(begin, end, device=self.device)
                logits = self._call(self.model, ids[:, begin:end], positions[:, begin:end],
                                    self.mask, cache_position=slots)
            else:
                mask = None if self.mask is None else self.mask[:, :end]  # cache + chunk
                logits = self._call(self.model, ids[:, begin:end], positions[:, begin:end],
                                    mask)
        self.filled = width
        return logits

    def decode(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """One forward over each live row's last token (``[b]``) at ``positions`` (``[b, 1]``)."""
        if not self.static:
            if self.mask is not None:
                ones = self.mask.new_ones(self.mask.shape[0], 1)
                self.mask = torch.cat([self.mask, ones], dim=1)  # [B, filled + 1]
            self.filled += 1
            return self._call(self.model, tokens.unsqueeze(1), positions, self.mask)
        self.tokens[self.live, 0] = tokens
        self.positions[self.live] = positions
        slot = torch.full((1,), self.filled, dtype=torch.long, device=self.device)
        self.filled += 1
        if self.device.type == "cuda":  # a new CUDA-graph step: earlier outputs may be reused
            torch.compiler.cudagraph_mark_step_begin()
        logits = self._call(self.compiled, self.tokens, self.positions, self.mask,
                            cache_position=slot)
        return logits.index_select(0, self.live)  # a copy: the graph's buffer is reused

    def select(self, index: torch.Tensor) -> None:
        """Keep only the live rows at ``index`` (positions among the live rows)."""
        if self.static:
            self.live = self.live.index_select(0, index)
            return
        self.cache.batch_select_indices(index)
        if self.mask is not None:
            self.mask = self.mask.index_select(0, index)
        if "adapter_names" in self.extra:  # PEFT routes rows by this list
            names = self.extra["adapter_names"]
            self.extra = {**self.extra, "adapter_names": [names[i] for i in index.tolist()]}
