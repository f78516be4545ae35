"""Write a Hugging Face Llama as a GGUF file in the layout llama.cpp's converter produces.

Test-only helper (no downloads): ``write_llama_gguf`` mirrors ``convert_hf_to_gguf.py`` for a
Llama with a byte-level BPE tokenizer: the ``llama.*`` hyperparameter keys, the ``gpt2``
tokenizer (tokens, types, merges, special ids, chat template), tensor names ``blk.N.attn_q``...
and the q/k row permutation llama.cpp applies (transformers undoes it when loading; a file
written without it loads fine but computes something else). 2-D weights are stored as
``qtype`` (F32, F16, BF16, Q8_0, Q4_0...); 1-D norms stay F32, as llama.cpp keeps them.
``rounded_state_dict`` gives the weights a reader gets back, so an HF reference model can hold
exactly the same numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

_BLOCK_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}
_TOP_NAMES = {"model.embed_tokens.weight": "token_embd.weight",
              "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}


def gguf_tensor_name(name: str) -> str:
    """``model.layers.3.self_attn.q_proj.weight`` -> ``blk.3.attn_q.weight``."""
    if name in _TOP_NAMES:
        return _TOP_NAMES[name]
    parts = name.split(".")
    return f"blk.{parts[2]}.{_BLOCK_NAMES['.'.join(parts[3:-1])]}.{parts[-1]}"


def permute_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's q/k permutation: HF's rotate-half rope layout -> GGML's interleaved one."""
    return (w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def _tokenizer_lists(gguf: Any, tokenizer: Any, vocab_size: int) -> tuple[list, list, list]:
    vocab = tokenizer.get_vocab()
    by_id = {i: t for t, i in vocab.items()}
    added = {t.content: t.special
             for t in tokenizer.backend_tokenizer.get_added_tokens_decoder().values()}
    tokens, types = [], []
    for i in range(vocab_size):
        token = by_id.get(i, f"[PAD{i}]")
        tokens.append(token)
        if i not in by_id:
            types.append(gguf.TokenType.UNUSED)
        elif token in added:
            types.append(gguf.TokenType.CONTROL if added[token] else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    return tokens, types, [m if isinstance(m, str) else " ".join(m) for m in merges]


def write_llama_gguf(path: str | Path, model: Any, tokenizer: Any, *, qtype: str = "F32",
                     architecture: str = "llama") -> Path:
    """Write ``model`` (a ``LlamaForCausalLM``) and its tokenizer as a GGUF at ``path``."""
    import gguf

    cfg, qt = model.config, gguf.GGMLQuantizationType[qtype]
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name("tiny-llama")
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_freq_base(float(cfg.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_vocab_size(cfg.vocab_size)
    tokens, types, merges = _tokenizer_lists(gguf, tokenizer, cfg.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    vocab = tokenizer.get_vocab()
    writer.add_bos_token_id(vocab[tokenizer.bos_token])
    writer.add_eos_token_id(vocab[tokenizer.eos_token])
    writer.add_pad_token_id(vocab[tokenizer.pad_token])
    writer.add_add_bos_token(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)
    tied = cfg.tie_word_embeddings
    for name, tensor in model.state_dict().items():
        if tied and name == "lm_head.weight":
            continue  # a tied model has no output.weight: llama.cpp reuses token_embd
        a = tensor.detach().float().numpy()
        if name.endswith("q_proj.weight"):
            a = permute_rows(a, cfg.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            a = permute_rows(a, cfg.num_key_value_heads)
        if a.ndim == 1 or qtype == "F32":
            writer.add_tensor(gguf_tensor_name(name), a.astype(np.float32))
        elif qtype == "F16":
            writer.add_tensor(gguf_tensor_name(name), a.astype(np.float16))
        else:
            writer.add_tensor(gguf_tensor_name(name), gguf.quants.quantize(a, qt), raw_dtype=qt)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)


def round_weights(model: Any, qtype: str) -> None:
    """Round ``model``'s 2-D weights through ``qtype`` in place (what a GGUF reader gets)."""
    import gguf

    if qtype == "F32":
        return
    qt = gguf.GGMLQuantizationType[qtype]
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                a = p.detach().float().numpy()
                back = gguf.quants.dequantize(gguf.quants.quantize(a, qt), qt) if qtype != "F16" \
                    else a.astype(np.float16).astype(np.float32)
                p.copy_(torch.from_numpy(np.ascontiguousarray(back, dtype=np.float32)))
