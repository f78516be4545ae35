"""GGUF models: a tiny Llama written the way llama.cpp's converter writes it loads through
``load_model`` and generates exactly what the same weights do from an HF directory.

The fixture (``tests/gguf_writer.py``) applies llama.cpp's q/k permutation; a file written
without it is the negative control (it loads, but computes something else).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.core.configs import GenerationRequest, SamplingParams
from genlab.core.generation.decode import generate
from genlab.core.modeling.gguf import GgufError, check_gguf, find_gguf
from genlab.core.modeling.loading import ModelLoadError, load_model

PROMPTS = ["What is the capital of France?", "Tell me a story about a fox."]


def _greedy(loaded, n=20, chat=False):
    params = SamplingParams(temperature=0, max_new_tokens=n, ignore_eos=True)
    rows = generate(loaded, [GenerationRequest(p, params, chat=chat) for p in PROMPTS])
    return [r.token_ids for r in rows]


@pytest.fixture(scope="module")
def gguf_loaded(tiny_gguf):
    return load_model(str(tiny_gguf["gguf"] / "tiny-F32.gguf"), device="cpu")


def test_gguf_greedy_equals_hf_directory(tiny_gguf, gguf_loaded):
    hf = load_model(str(tiny_gguf["hf"]), device="cpu")
    assert gguf_loaded.gguf is not None and hf.gguf is None
    x = torch.tensor([hf.tokenizer(PROMPTS[0])["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(gguf_loaded.model(x).logits, hf.model(x).logits,
                                   atol=1e-5, rtol=1e-4)
    assert _greedy(gguf_loaded) == _greedy(hf)
    assert _greedy(gguf_loaded, chat=True) == _greedy(hf, chat=True)


def test_gguf_carries_tokenizer_template_and_context(tiny_gguf, gguf_loaded):
    hf = load_model(str(tiny_gguf["hf"]), device="cpu")
    tok = gguf_loaded.tokenizer
    assert tok.chat_template == hf.tokenizer.chat_template
    assert tok("hello <|im_start|>user\nhi<|im_end|>")["input_ids"] == \
        hf.tokenizer("hello <|im_start|>user\nhi<|im_end|>")["input_ids"]
    assert gguf_loaded.context_length == 256
    assert not getattr(gguf_loaded.model, "is_quantized", False)  # dequantized: can be saved


def test_quantized_gguf_equals_its_rounded_weights(tiny_gguf):
    q8 = load_model(str(tiny_gguf["multi"]), gguf_file="tiny-Q8_0.gguf", device="cpu")
    ref = load_model(str(tiny_gguf["q8"]), device="cpu")
    assert _greedy(q8) == _greedy(ref)


def test_bfloat16_load_of_gguf(tiny_gguf):
    loaded = load_model(str(tiny_gguf["gguf"]), device="cpu", dtype="bfloat16")
    assert loaded.dtype == torch.bfloat16
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
    assert len(_greedy(loaded, n=5)[0]) == 5


def test_find_gguf_rules(tiny_gguf, tmp_path):
    one, multi, hf = tiny_gguf["gguf"], tiny_gguf["multi"], tiny_gguf["hf"]
    assert find_gguf(str(one)).filename == "tiny-F32.gguf"  # a directory holding one
    assert find_gguf(str(one / "tiny-F32.gguf")).directory == str(one)
    assert find_gguf(str(multi), "tiny-Q8_0.gguf").filename == "tiny-Q8_0.gguf"
    assert find_gguf(str(hf)) is None
    assert find_gguf("org/some-repo-GGUF", "x.Q4_K_M.gguf").local is False
    with pytest.raises(GgufError, match=r"holds 2 GGUF files \(tiny-F32.gguf, tiny-Q8_0.gguf\)"
                                        r"; pick one with --gguf-file NAME"):
        find_gguf(str(multi))
    with pytest.raises(GgufError, match="--gguf-file nope.gguf: no such file"):
        find_gguf(str(multi), "nope.gguf")
    with pytest.raises(ModelLoadError, match="pick one with --gguf-file"):
        load_model(str(multi))


def test_unsupported_architecture_is_named(tmp_path):
    import gguf

    path = tmp_path / "odd.gguf"
    w = gguf.GGUFWriter(str(path), "mamba9")
    w.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(GgufError, match="GGUF architecture 'mamba9' is not supported by "
                                        r"transformers \(supported: .*llama"):
        check_gguf(str(path))
    with pytest.raises(ModelLoadError, match="'mamba9' is not supported"):
        load_model(str(path))


def test_unsupported_tensor_type_is_named(tmp_path):
    import gguf

    path = tmp_path / "q81.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    qt = gguf.GGMLQuantizationType.Q8_1
    w.add_tensor("blk.0.attn_q.weight", np.zeros((64, 2 * 40), dtype=np.uint8), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(GgufError, match="tensor type Q8_1 cannot be dequantized"):
        check_gguf(str(path))


def test_not_a_gguf_file(tmp_path):
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"this is not a model")
    with pytest.raises(ModelLoadError, match="not a readable GGUF file"):
        load_model(str(path))


def test_file_info(tiny_gguf):
    info = check_gguf(str(tiny_gguf["multi"] / "tiny-Q8_0.gguf"))
    assert (info.architecture, info.context_length) == ("llama", 256)
    assert info.tensor_types == ("F32", "Q8_0") and info.has_chat_template
    assert info.weight_dtype == "float32"
    assert check_gguf(str(tiny_gguf["gguf"] / "tiny-F32.gguf")).weight_dtype == "float32"


def test_without_the_permutation_the_model_differs(tiny_gguf, tmp_path):
    """Negative control: the fixture's q/k permutation is what makes the outputs equal."""
    import gguf_writer
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(tiny_gguf["hf"])
    tok = load_model(str(tiny_gguf["hf"]), device="cpu").tokenizer
    original = gguf_writer.permute_rows
    gguf_writer.permute_rows = lambda w, heads: w
    try:
        gguf_writer.write_llama_gguf(tmp_path / "noperm.gguf", hf, tok)
    finally:
        gguf_writer.permute_rows = original
    bad = load_model(str(tmp_path / "noperm.gguf"), device="cpu")
    x = torch.tensor([tok(PROMPTS[0])["input_ids"]])
    with torch.no_grad():
        assert not torch.allclose(bad.model(x).logits, hf(x).logits, atol=1e-3)
