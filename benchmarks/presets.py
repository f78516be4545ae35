"""Real-shape models for the benchmarks, built from random weights in seconds, no downloads.

``build_preset(name, out_dir)`` saves a standard Hugging Face model directory whose
architecture has the shape of a model users run, so speed and memory figures describe that
size rather than a 3.4M toy. The weights are random: the figures are about compute, not text.

* ``smollm2-135m-shape``: a Llama at SmolLM2-135M's shape: 30 layers, hidden 576, 9 attention
  heads / 3 KV heads (head dim 64), MLP 1536, vocab 49,152, tied embeddings, 2,048 positions,
  rope theta 100,000 (134.5M parameters). Its tokenizer is a byte-level BPE trained on the
  shared corpora (or a built-in text), filled up to 49,152 entries with reserved special
  tokens (as Llama 3 reserves some), with ChatML's ``<|im_start|>``/``<|im_end|>`` and a
  ChatML chat template, like SmolLM2-Instruct.

    from presets import build_preset
    model_dir = build_preset("smollm2-135m-shape", Path(tmp))

Shared by ``bench_sampling.py``, ``bench_train.py`` and later benchmarks.
"""

from __future__ import annotations

import os
from pathlib import Path

SHAPES = {
    "smollm2-135m-shape": dict(
        num_hidden_layers=30, hidden_size=576, num_attention_heads=9, num_key_value_heads=3,
        intermediate_size=1536, vocab_size=49152, tie_word_embeddings=True,
        max_position_embeddings=2048, rope_theta=100000.0, rms_norm_eps=1e-5),
}
"""Preset name -> ``LlamaConfig`` keyword arguments."""
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
FALLBACK_TEXT = ("Once upon a time there was a little fox who lived in a green forest. "
                 "The fox liked to run and jump over the tall grass every morning. ")


def corpus_lines() -> list[str]:
    """Tokenizer training text: the shared corpora when present, else a built-in paragraph."""
    root = Path(os.environ.get("GENLAB_DATA_DIR")
                or Path(__file__).resolve().parents[2] / "shared" / "data")
    lines: list[str] = []
    for rel in ("tinystories/valid.txt", "wikitext-2/valid.txt"):
        path = root / rel
        if path.is_file():
            lines += path.read_text(encoding="utf-8").splitlines()
    return lines or [FALLBACK_TEXT] * 200


def build_tokenizer(vocab_size: int):
    """A byte-level BPE with ChatML tokens and template, exactly ``vocab_size`` entries."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>",
                                   eos_token="<|im_end|>", pad_token="<|endoftext|>")
    missing = vocab_size - len(fast)
    if missing > 0:
        fast.add_tokens([f"<|reserved_{i}|>" for i in range(missing)], special_tokens=True)
    fast.chat_template = CHATML
    return fast


def build_preset(name: str, out_dir: Path, seed: int = 0, init_std: float | None = None
                 ) -> Path:
    """Save the random-init model ``name`` (a key of ``SHAPES``) and its tokenizer.

    ``init_std``: the weights' init std instead of transformers' 0.02 (at 0.02 a deep random
    model's logits are nearly flat; quality comparisons want a real argmax).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if name not in SHAPES:
        raise SystemExit(f"--preset {name}: unknown preset; choose one of {', '.join(SHAPES)}")
    shape = dict(SHAPES[name])
    tok = build_tokenizer(shape["vocab_size"])
    rope = {"rope_type": "default", "rope_theta": shape.pop("rope_theta")}
    if init_std is not None:
        shape["initializer_range"] = init_std
    config = LlamaConfig(**shape, rope_parameters=rope, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir
