"""Memory-mapped loading: the stored dtype, a cast that matches from_pretrained, page release."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from genlab.core.modeling.loading import load_model
from genlab.core.modeling.mapped import PageReleaser, convert_dtype, stored_dtype

ROOT = Path(__file__).resolve().parents[3]


def test_stored_dtype_reads_the_safetensors_headers(tiny_llama, tmp_path):
    assert stored_dtype(str(tiny_llama)) == torch.float32
    half = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.bfloat16)
    half.save_pretrained(tmp_path / "bf16")
    assert stored_dtype(str(tmp_path / "bf16")) == torch.bfloat16
    assert stored_dtype(str(tmp_path / "missing")) is None
    assert stored_dtype(str(tmp_path)) is None  # no weight files


def test_stored_dtype_is_none_for_mixed_or_damaged_files(tmp_path):
    def header(path: Path, entries: dict) -> None:
        raw = json.dumps(entries).encode()
        path.write_bytes(struct.pack("<Q", len(raw)) + raw)

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    header(mixed / "model.safetensors", {
        "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        "b": {"dtype": "BF16", "shape": [1], "data_offsets": [4, 6]},
        "__metadata__": {"format": "pt"}})
    assert stored_dtype(str(mixed)) is None
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "model.safetensors").write_bytes(b"\x05")
    assert stored_dtype(str(damaged)) is None


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_a_cast_load_equals_from_pretrained_in_that_dtype(tiny_model, dtype):
    """Weights, buffers and logits are exactly transformers' own 16-bit load."""
    torch_dtype = getattr(torch, dtype)
    loaded = load_model(str(tiny_model), device="cpu", dtype=dtype)
    reference = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch_dtype).eval()
    ours, theirs = loaded.model.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    for name, tensor in theirs.items():
        assert ours[name].dtype == tensor.dtype, name
        assert torch.equal(ours[name], tensor), name
    out = loaded.model.get_output_embeddings().weight
    assert out is loaded.model.get_input_embeddings().weight or not \
        reference.config.tie_word_embeddings  # tied weights stay tied
    ids = torch.tensor([[1, 5, 9, 12, 7]])
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, reference(ids).logits)
    assert loaded.model.config.dtype == torch_dtype


def test_convert_dtype_keeps_modules_a_model_keeps_in_float32(tiny_llama):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    model._keep_in_fp32_modules = {"norm"}
    convert_dtype(model, torch.bfloat16)
    assert model.model.norm.weight.dtype == torch.float32
    assert model.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16


def test_page_release_never_touches_memory_outside_weight_files():
    """An anonymous tensor is left as it is (releasing it would zero its pages)."""
    tensor = torch.arange(1 << 20, dtype=torch.float32)
    releaser = PageReleaser()
    releaser.release(tensor)
    assert releaser.released == 0
    assert torch.equal(tensor, torch.arange(1 << 20, dtype=torch.float32))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_released_file_pages_read_back_the_same_values(tiny_llama):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)  # memory-mapped float32
    weight = model.model.embed_tokens.weight.data
    before = weight.clone()
    releaser = PageReleaser()
    releaser.release(weight)
    assert releaser.ranges  # the weights are a mapping of the .safetensors file
    assert torch.equal(weight, before)  # refaulted from the file


PEAK_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from genlab.core.modeling.loading import load_model
    from genlab.core.modeling.memory import peak_process_memory
    path, how = sys.argv[1], sys.argv[2]
    AutoModelForCausalLM.from_pretrained(path)  # warm the imports (lazy, mapped: ~no pages)
    AutoTokenizer.from_pretrained(path)
    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * 4096
    before = rss()
    if how == "genlab":
        model = load_model(path, device="cpu", dtype="bfloat16", threads=1).model
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16)
    peak = peak_process_memory()  # this program's own high-water mark (VmHWM)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    print(json.dumps({"growth": peak - before, "weights": size}))
""")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS from /proc")
def test_a_16_bit_load_does_not_hold_the_float32_file_too(tiny_llama, tmp_path):
    """Peak memory of a bfloat16 load from a float32 checkpoint: about the bf16 weights."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=4096, hidden_size=512, intermediate_size=1408,
                         num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=4,
                         tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "m")  # ~80 MB float32
    AutoTokenizer.from_pretrained(tiny_llama).save_pretrained(tmp_path / "m")
    script = tmp_path / "peak.py"
    script.write_text(PEAK_SCRIPT)

    def measure(how: str) -> dict:
        out = subprocess.run([sys.executable, str(script), str(tmp_path / "m"), how],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        return json.loads(out.stdout.strip().splitlines()[-1])

    ours, theirs = measure("genlab"), measure("transformers")
    assert ours["growth"] <= 1.5 * ours["weights"], ours
    assert ours["growth"] < 0.75 * theirs["growth"], (ours, theirs)
