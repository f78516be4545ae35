"""LoRA target detection, validation and PEFT wrapping on the tiny Llama and GPT-2 models."""

from __future__ import annotations

import pytest

from genlab.core.modeling import lora
from genlab.core.training.setup import TrainSetupError, resolve_targets

LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _load(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path)


@pytest.fixture(scope="module")
def llama(tiny_llama):
    return _load(tiny_llama)


@pytest.fixture(scope="module")
def gpt2(tiny_gpt2):
    return _load(tiny_gpt2)


def test_default_targets_are_attention_and_mlp_projections(llama, gpt2):
    assert lora.default_target_modules(llama) == LLAMA_TARGETS
    assert lora.default_target_modules(gpt2) == ("c_attn", "c_proj", "c_fc")


def test_available_names_include_the_head(llama):
    names = lora.available_target_names(llama)
    assert set(LLAMA_TARGETS) <= set(names)
    assert "lm_head" in names


def test_unknown_targets_match_like_peft(llama):
    assert lora.unknown_targets(llama, ["q_proj", "self_attn.v_proj"]) == []
    assert lora.unknown_targets(llama, ["q_proj", "query", "mlp"]) == ["query", "mlp"]


def test_resolve_targets_lists_available_names(llama):
    assert resolve_targets(llama, None) == LLAMA_TARGETS
    assert resolve_targets(llama, ("q_proj",)) == ("q_proj",)
    with pytest.raises(TrainSetupError) as info:
        resolve_targets(llama, ("c_attn",))
    message = str(info.value)
    assert "\n" not in message
    assert "c_attn" in message and "q_proj" in message and "down_proj" in message


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_apply_lora_trains_only_the_adapter(arch, tiny_llama, tiny_gpt2):
    import torch

    model = _load(tiny_llama if arch == "llama" else tiny_gpt2)
    targets = lora.default_target_modules(model)
    torch.manual_seed(0)
    peft_model = lora.apply_lora(model, rank=4, alpha=8, dropout=0.0, targets=targets,
                                 rslora=True)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    cfg = peft_model.peft_config["default"]
    assert cfg.r == 4 and cfg.use_rslora and set(cfg.target_modules) == set(targets)
    assert cfg.fan_in_fan_out == (arch == "gpt2")
    # rslora scaling alpha / sqrt(r)
    from peft.tuners.lora import LoraLayer

    layer = next(m for m in peft_model.modules() if isinstance(m, LoraLayer))
    assert layer.scaling["default"] == pytest.approx(8 / 4 ** 0.5)
    # B starts at zero: the wrapped model computes what the base computed
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        base_logits = _load(tiny_llama if arch == "llama" else tiny_gpt2)(ids).logits
        assert torch.allclose(peft_model(input_ids=ids).logits, base_logits, atol=1e-6)
