"""The small Llama of ``genlab pretrain``: built from a ``ModelShape``, saved as a plain HF dir.

``build_model`` makes a randomly initialised ``LlamaForCausalLM`` for a tokenizer's vocabulary;
``save_model_dir`` writes the ``config.json`` + ``model.safetensors`` +
``generation_config.json`` + tokenizer layout that plain ``transformers`` loads without genlab;
``count_parameters`` sizes a shape before anything is built.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

from genlab.core.configs import ModelShape
from genlab.core.io import apply_umask, write_json_atomic

GENERATION_DEFAULTS = {"do_sample": True, "temperature": 0.8, "top_p": 0.95,
                       "max_new_tokens": 256}
"""Sampling defaults written to ``generation_config.json``; genlab's own faces pass explicit
settings, these are for plain ``model.generate`` users (greedy decoding of tiny models loops)."""



def count_parameters(shape: ModelShape, vocab_size: int, *, tie_embeddings: bool = True) -> int:
    """Parameters of the Llama model ``build_model`` makes (no biases, RMSNorm weights only)."""
    d, head_dim = shape.hidden, shape.hidden // shape.heads
    attention = d * head_dim * (2 * shape.heads + 2 * shape.kv_heads)  # q, o + k, v
    per_layer = attention + 3 * d * shape.mlp + 2 * d  # gate/up/down + two norms
    head = 0 if tie_embeddings else vocab_size * d
    return vocab_size * d + shape.layers * per_layer + d + head


def build_model(
    tokenizer: Any,
    *,
    layers: int,
    hidden: int,
    heads: int,
    kv_heads: int,
    mlp: int,
    context: int,
    tie_embeddings: bool = True,
    seed: int = 0,
    initializer_range: float = 0.02,
) -> Any:
    """A randomly initialised ``LlamaForCausalLM`` for ``tokenizer``'s vocabulary.

    HF's Llama init (normal(0, initializer_range) for linears and embeddings, ones for the
    norms) is used; 0.02 keeps the initial logits near uniform (loss ~ ln vocab) at these widths.

    Args:
        tokenizer: A tokenizer with eos, bos and pad tokens (see ``train_tokenizer``).
        layers, hidden, heads, kv_heads, mlp, context: See ``ModelShape``.
        tie_embeddings: Share the input embedding and output projection (saves vocab x hidden).
        seed: Seeds the initial weights.
        initializer_range: Std of the normal init.
    """

    shape = ModelShape(layers, hidden, heads, kv_heads, mlp, context)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden,
        intermediate_size=shape.mlp,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=shape.context,
        rope_theta=10000.0,
        rms_norm_eps=1e-5,
        initializer_range=initializer_range,
        tie_word_embeddings=tie_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return model


def save_model_dir(model: Any, tokenizer: Any, out_dir: str | Path) -> Path:
    """Write ``model`` and ``tokenizer`` as a standard HF directory loadable without genlab.

    Writes ``config.json``, ``model.safetensors``, ``generation_config.json`` (eos/bos/pad ids
    plus ``GENERATION_DEFAULTS``) and the tokenizer files.
    """

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **GENERATION_DEFAULTS,
    )
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    make_tokenizer_config_portable(out, int(model.config.max_position_embeddings))
    apply_umask(out)  # safetensors writes 0600
    return out


def make_tokenizer_config_portable(model_dir: str | Path, context: int) -> None:
    """Name ``PreTrainedTokenizerFast`` (loads in transformers 4 and 5; 5 writes its own
    ``TokenizersBackend``) and the model's context as ``model_max_length``."""
    path = Path(model_dir) / "tokenizer_config.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["tokenizer_class"] = "PreTrainedTokenizerFast"
    data["model_max_length"] = context
    write_json_atomic(path, data)


