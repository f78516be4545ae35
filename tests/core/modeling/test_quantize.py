"""--quantize: one vocabulary, clear errors where a choice does not fit, int8 close to float32."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from genlab import assets
from genlab.core.configs import ConfigError, GenerationRequest, SamplingParams, TrainConfig
from genlab.core.generation.decode import generate
from genlab.core.modeling.loading import ModelLoadError, load_model
from genlab.core.modeling.quantize import (
    QuantizeError,
    check_quantize,
    int8_layers,
    quantize_int8,
)

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
STORY = ("Once upon a time, there was a little girl named Lily. She loved to play outside in "
         "the park with her friends. One day, she saw a big red ball under a tree. She ran to "
         "get it, but a dog got there first. The dog wagged its tail and Lily laughed.")


@pytest.mark.parametrize(("quantize", "device", "dtype", "message"), [
    ("int8", CUDA, torch.float32, r"int8 is dynamic int8 for the CPU; on cuda use --quantize "
                                  r"8bit or 4bit"),
    ("int8", CPU, torch.bfloat16, r"int8 layers compute in float32 on the CPU, but --dtype is "
                                  r"bfloat16"),
    ("4bit", CPU, torch.float32, r"needs a CUDA GPU, but this is cpu; on the CPU use "
                                 r"--quantize int8"),
    ("8bit", torch.device("mps"), torch.float32, r"needs a CUDA GPU, but this is mps"),
    ("int4", CPU, torch.float32, r"unknown choice; use one of none, int8, 8bit, 4bit"),
])
def test_a_choice_that_does_not_fit_says_the_fix(quantize, device, dtype, message):
    with pytest.raises(QuantizeError, match=f"^--quantize {quantize}: .*{message}"):
        check_quantize(quantize, device, dtype)


def test_fitting_choices_pass():
    check_quantize("none", CPU, torch.bfloat16)
    check_quantize("int8", CPU, torch.float32)
    check_quantize("int8", CPU, torch.float32, gguf=True)  # dequantized GGUF, then int8
    check_quantize("4bit", CUDA, torch.bfloat16)
    with pytest.raises(QuantizeError, match="a GGUF base is loaded dequantized"):
        check_quantize("4bit", CUDA, torch.bfloat16, gguf=True)


def test_load_model_turns_a_misfit_into_one_line(tiny_llama):
    with pytest.raises(ModelLoadError, match=r"^--quantize 4bit: bitsandbytes"):
        load_model(str(tiny_llama), device="cpu", quantize="4bit")
    with pytest.raises(ModelLoadError, match=r"^--quantize int8: int8 layers compute in "
                                             r"float32"):
        load_model(str(tiny_llama), device="cpu", dtype="float16", quantize="int8")


def test_training_refuses_int8_and_names_what_it_takes():
    with pytest.raises(ConfigError) as err:
        TrainConfig(model="m", data="d", quantize="int8")
    assert err.value.field == "quantize"
    assert "none, 4bit or 8bit for training" in err.value.expected
    assert "inference only" in err.value.expected
    TrainConfig(model="m", data="d", quantize="4bit")  # QLoRA's choices stay


def test_int8_replaces_every_linear_and_records_it(tiny_llama):
    dense = load_model(str(tiny_llama), device="cpu", threads=1)
    loaded = load_model(str(tiny_llama), device="cpu", quantize="int8", threads=1)
    assert not [m for m in loaded.model.modules() if type(m) is torch.nn.Linear]
    assert len(int8_layers(loaded.model)) == sum(
        type(m) is torch.nn.Linear for m in dense.model.modules())
    assert loaded.quantize == "int8"
    assert loaded.runtime["quantize"] == "int8"
    assert "int8 weights, float32 compute" in loaded.describe()
    assert loaded.num_parameters == dense.num_parameters  # the tied head is counted once
    assert loaded.weight_bytes < dense.weight_bytes


def _story_logits(model, tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    ids = tokenizer(STORY, return_tensors="pt").input_ids
    with torch.no_grad():
        return model(ids).logits[0].float(), ids[0]


def test_int8_logits_stay_close_to_float32_on_the_shipped_model():
    """Teacher-forced on a story: top-1 agreement, KL and the loss change stay small."""
    path = assets.resolve_model(None)
    ref = load_model(path, device="cpu", threads=1)
    q = load_model(path, device="cpu", quantize="int8", threads=1)
    ref_logits, ids = _story_logits(ref.model, ref.tokenizer)
    q_logits, _ = _story_logits(q.model, q.tokenizer)
    agree = (q_logits.argmax(-1) == ref_logits.argmax(-1)).float().mean().item()
    kl = torch.nn.functional.kl_div(q_logits.log_softmax(-1), ref_logits.log_softmax(-1),
                                    log_target=True, reduction="batchmean").item()

    def nll(logits):
        return torch.nn.functional.cross_entropy(logits[:-1], ids[1:]).item()

    assert agree >= 0.85, agree
    assert kl < 0.05, kl
    assert abs(nll(q_logits) - nll(ref_logits)) < 0.05 * nll(ref_logits)


def test_genlab_greedy_on_an_int8_model_equals_transformers_generate():
    """The decode loop runs an int8 model exactly as generate() does (same model, oracle)."""
    path = assets.resolve_model(None)
    loaded = load_model(path, device="cpu", quantize="int8", threads=1)
    request = GenerationRequest("Once upon a time", SamplingParams(
        temperature=0, max_new_tokens=24, ignore_eos=True), chat=False)
    ours = generate(loaded, [request])[0].token_ids
    ids = loaded.tokenizer("Once upon a time", return_tensors="pt").input_ids
    with torch.no_grad():
        theirs = loaded.model.generate(ids, do_sample=False, max_new_tokens=24,
                                       min_new_tokens=24, pad_token_id=0)[0, ids.shape[1]:]
    assert list(ours) == theirs.tolist()


def test_int8_with_an_adapter_keeps_the_adapter_in_float32(tiny_llama, tmp_path):
    """LoRA matrices stay float; a mixed batch's adapter row stays close to the float one."""
    from peft import LoraConfig, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    adapters = {"a": str(tmp_path / "adapter")}
    dense = load_model(str(tiny_llama), device="cpu", adapters=adapters, threads=1)
    q = load_model(str(tiny_llama), device="cpu", adapters=adapters, quantize="int8",
                   threads=1)
    lora = [m for n, m in q.model.named_modules() if "lora_A" in n and type(m) is
            torch.nn.Linear]
    assert lora  # LoRA matrices were not quantized
    ids = torch.tensor([[1, 5, 9, 12, 7, 3]] * 2)
    with torch.no_grad():
        want = dense.model(ids, adapter_names=["a", "__base__"]).logits
        got = q.model(ids, adapter_names=["a", "__base__"]).logits
    assert not torch.allclose(want[0], want[1])  # the adapter row differs from the base row
    rel = (got - want).norm() / want.norm()
    assert rel < 0.1, rel


def test_an_adapter_cannot_attach_after_int8(tiny_llama, tmp_path):
    from genlab.core.modeling.loading import attach_adapter

    loaded = load_model(str(tiny_llama), device="cpu", quantize="int8", threads=1)
    with pytest.raises(ModelLoadError, match="int8-quantized; adapters attach when it loads"):
        attach_adapter(loaded, "a", str(tmp_path))


def test_quantize_int8_frees_the_float_weights(tiny_llama):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    original = copy.deepcopy(model)
    count = quantize_int8(model)
    assert count == len(int8_layers(model)) > 0
    assert sum(p.numel() for p in model.parameters()) < sum(
        p.numel() for p in original.parameters())
    with torch.no_grad():
        assert math.isfinite(float(model(torch.tensor([[1, 2, 3]])).logits.sum()))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_on_the_cpu_stays_close_to_float32(dtype):
    """--dtype float16/bfloat16 on the CPU: teacher-forced agreement with float32 and greedy
    equal to transformers' generate() on the same 16-bit model."""
    path = assets.resolve_model(None)
    ref = load_model(path, device="cpu", threads=1)
    low = load_model(path, device="cpu", dtype=dtype, threads=1)
    ref_logits, _ = _story_logits(ref.model, ref.tokenizer)
    low_logits, _ = _story_logits(low.model, low.tokenizer)
    agree = (low_logits.argmax(-1) == ref_logits.argmax(-1)).float().mean().item()
    assert agree >= 0.95, agree
    request = GenerationRequest("Once upon a time", SamplingParams(
        temperature=0, max_new_tokens=24, ignore_eos=True), chat=False)
    ours = generate(low, [request])[0].token_ids
    ids = low.tokenizer("Once upon a time", return_tensors="pt").input_ids
    with torch.no_grad():
        theirs = low.model.generate(ids, do_sample=False, max_new_tokens=24, min_new_tokens=24,
                                    pad_token_id=0)[0, ids.shape[1]:]
    assert list(ours) == theirs.tolist()
