"""How the decode loop calls a model: the forward's keyword arguments and the ids that end a row.

Owns what differs between the models genlab loads (plain or PEFT-wrapped, old or new
transformers): the KV-cache keyword, last-position logits only, per-row adapter names, the
logits' width, and the end-of-sequence ids of the tokenizer and the generation config.
"""

from __future__ import annotations

import inspect
from typing import Any

from genlab.core.configs import GenerationRequest
from genlab.core.modeling.loading import LoadedModel


def eos_ids(loaded: LoadedModel) -> frozenset[int]:
    """Token ids that end a row: the tokenizer's EOS and the generation config's."""
    ids = {loaded.tokenizer.eos_token_id}
    extra = getattr(getattr(loaded.model, "generation_config", None), "eos_token_id", None)
    ids.update(extra if isinstance(extra, (list, tuple)) else [extra])
    return frozenset(i for i in ids if i is not None)


def vocab_size(loaded: LoadedModel) -> int:
    """Width of the model's logits (its config's vocabulary size, else the tokenizer's)."""
    size = getattr(getattr(loaded.model, "config", None), "vocab_size", None)
    return int(size) if size else len(loaded.tokenizer)


def cache_argument(loaded: LoadedModel) -> str:
    """The forward's KV-cache keyword: ``cache`` where the model takes it (transformers >= 5.2
    deprecates ``past_key_values`` with a FutureWarning on every call), else
    ``past_key_values``."""
    base = loaded.model.get_base_model() if loaded.adapters else loaded.model
    params = inspect.signature(base.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def forward_kwargs(loaded: LoadedModel, requests: list[GenerationRequest]) -> dict[str, Any]:
    """Extra forward arguments: last-position logits only, and per-row PEFT adapters."""
    base = loaded.model.get_base_model() if loaded.adapters else loaded.model
    extra: dict[str, Any] = {}
    if "logits_to_keep" in inspect.signature(base.forward).parameters:
        extra["logits_to_keep"] = 1
    if loaded.adapters:  # PEFT mixed-adapter batch; "__base__" rows skip every LoRA layer
        extra["adapter_names"] = [r.adapter or "__base__" for r in requests]
    return extra
