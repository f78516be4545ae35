"""Shared fixtures: tiny random Llama and GPT-2 models with real trained BPE tokenizers.

Nothing is downloaded: each tokenizer is trained with ``tokenizers`` on text written here, and
each model is a randomly initialised ``transformers`` model saved in the standard HF layout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # genlab's default threads (load_model) follow it


def pytest_configure(config) -> None:
    """Tiny test models run fastest on one thread (and tests stay deterministic)."""
    import torch

    torch.set_num_threads(1)

CORPUS_LINES = [
    "Once upon a time there was a little fox who lived in a green forest.",
    "The fox liked to run and jump over the tall grass every morning.",
    "One day the fox met a small bird that could not fly very well.",
    "They became friends and played together under the big old tree.",
    "Tom and Lily went to the park to see the ducks on the pond.",
    "The sun was warm and the sky was blue, so everyone was happy.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12. Punctuation: , . ! ? ; : ' \" ( ) -",
    "Mia said, \"I want to read a book about stars and the moon.\"",
]
EOS = "<|endoftext|>"
BOS = "<|bos|>"
PAD = "<|pad|>"


def shared_data_dir() -> Path | None:
    """Where the team's corpora live (``$GENLAB_DATA_DIR`` or ../shared/data), or None."""
    env = os.environ.get("GENLAB_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


def build_tokenizer(out_dir: Path, vocab_size: int = 300):
    """Train a byte-level BPE tokenizer on CORPUS_LINES and save it as a fast HF tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, BOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS_LINES * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, bos_token=BOS, pad_token=PAD
    )
    fast.save_pretrained(out_dir)
    return fast


def build_tiny_model(out_dir: Path, arch: str, seed: int = 0) -> Path:
    """Save a tiny random ``arch`` ("llama" or "gpt2") causal LM plus tokenizer in ``out_dir``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    tok = build_tokenizer(out_dir)
    torch.manual_seed(seed)
    common = dict(
        vocab_size=len(tok),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    if arch == "llama":
        config = LlamaConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            tie_word_embeddings=True, **common,
        )
        model = LlamaForCausalLM(config)
    elif arch == "gpt2":
        config = GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=256, **common)
        model = GPT2LMHeadModel(config)
    else:
        raise ValueError(arch)
    # Random init gives near-uniform logits; sharpen them so sampling settings matter.
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(8.0)
    model.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """Directory of a tiny random Llama model with a trained BPE tokenizer."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    """Directory of a tiny random GPT-2 model with a trained BPE tokenizer."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-gpt2"), "gpt2")


@pytest.fixture(scope="session", params=["llama", "gpt2"])
def tiny_model(request, tiny_llama, tiny_gpt2) -> Path:
    """Each tiny architecture in turn."""
    return tiny_llama if request.param == "llama" else tiny_gpt2


CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""A ChatML template (what Qwen2.5 and SmolLM2 instruct models use), without system default."""
CHAT_LINES = [
    "What is the capital of France? The capital of France is Paris.",
    "What is two plus two? Two plus two is four.",
    "Tell me a story about a fox. Once upon a time a little fox ran in the forest.",
    "user assistant system Hi Hello! How can I help you today?",
]


def build_chat_tokenizer(vocab_size: int = 320):
    """A byte-level BPE with ChatML's special tokens and template (EOS = <|im_end|>)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator((CORPUS_LINES + CHAT_LINES) * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                   eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_chat_llama(seed: int = 0, max_positions: int = 256):
    """A tiny random Llama (in memory) whose tokenizer carries a ChatML template.

    Weights are drawn wide (std 0.3) so greedy decoding is decisive: exact comparisons with
    ``generate()`` and between GGUF and HF copies do not hinge on near-ties.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_chat_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
        rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0, 0.3)
            else:
                p.uniform_(0.5, 1.5)
    return model, tok


@pytest.fixture(scope="session")
def tiny_chat_llama(tmp_path_factory) -> Path:
    """Directory of a tiny random Llama whose tokenizer has a ChatML chat template."""
    model, tok = build_chat_llama()
    out = tmp_path_factory.mktemp("tiny-chat-llama")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory) -> dict[str, Path]:
    """The chat Llama twice: ``hf`` (an HF directory) and ``gguf`` (a directory holding only
    ``tiny-F32.gguf`` and ``tiny-Q8_0.gguf`` sits under ``multi``); the HF weights are exactly
    what the F32 file holds. ``q8`` is an HF directory holding the Q8_0-rounded weights."""
    from gguf_writer import round_weights, write_llama_gguf

    model, tok = build_chat_llama(seed=1)
    root = tmp_path_factory.mktemp("tiny-gguf")
    out = {"hf": root / "hf", "gguf": root / "gguf", "multi": root / "multi",
           "q8": root / "q8"}
    for d in out.values():
        d.mkdir()
    model.save_pretrained(out["hf"])
    tok.save_pretrained(out["hf"])
    write_llama_gguf(out["gguf"] / "tiny-F32.gguf", model, tok)
    write_llama_gguf(out["multi"] / "tiny-F32.gguf", model, tok)
    write_llama_gguf(out["multi"] / "tiny-Q8_0.gguf", model, tok, qtype="Q8_0")
    round_weights(model, "Q8_0")
    model.save_pretrained(out["q8"])
    tok.save_pretrained(out["q8"])
    return out


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared corpora directory; skips the test when it is absent."""
    d = shared_data_dir()
    if d is None:
        pytest.skip("shared corpora not found: set GENLAB_DATA_DIR or place them in ../shared/data")
    return d
