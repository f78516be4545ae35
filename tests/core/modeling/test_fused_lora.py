"""The fused LoRA layer against PEFT's own: same outputs, same gradients, same dropout masks."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from genlab.assets import resolve_model
from genlab.core.modeling.fused_lora import install_fused_lora, remove_fused_lora


def _peft_model(dropout: float, dtype=torch.float32):
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(resolve_model(None), dtype=dtype)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout,
                                            target_modules=["q_proj", "v_proj", "down_proj"],
                                            task_type="CAUSAL_LM"))
    with torch.no_grad():  # a non-zero B so that the LoRA path matters
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    model.train()
    return model


def _loss_and_grads(model, ids, seed):
    torch.manual_seed(seed)
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                             ids[:, 1:].reshape(-1))
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.item(), logits.detach(), grads


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_fused_matches_peft_forward_and_backward(dropout):
    model = _peft_model(dropout)
    ids = torch.randint(0, 2048, (3, 24), generator=torch.Generator().manual_seed(1))
    loss_ref, logits_ref, grads_ref = _loss_and_grads(model, ids, seed=7)
    assert install_fused_lora(model) == 18  # 6 layers x 3 targets
    loss, logits, grads = _loss_and_grads(model, ids, seed=7)
    assert loss == pytest.approx(loss_ref, abs=1e-6)
    assert torch.allclose(logits, logits_ref, atol=1e-5)
    assert grads.keys() == grads_ref.keys()
    for name, grad in grads.items():
        assert torch.allclose(grad, grads_ref[name], rtol=1e-4, atol=1e-6), name
    # A different seed draws different dropout masks, so the check above can fail.
    if dropout:
        other, _, _ = _loss_and_grads(model, ids, seed=8)
        assert other != pytest.approx(loss_ref, abs=1e-6)


def test_eval_mode_and_removal_use_peft_forward():
    model = _peft_model(0.1)
    install_fused_lora(model)
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    assert "forward" in vars(layer)
    model.eval()
    ids = torch.randint(0, 2048, (2, 10))
    with torch.no_grad():
        fused_eval = model(input_ids=ids).logits
    remove_fused_lora(model)
    assert "forward" not in vars(layer)
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, fused_eval)


def test_bf16_autocast_matches_peft_closely():
    model = _peft_model(0.0)
    ids = torch.randint(0, 2048, (2, 16), generator=torch.Generator().manual_seed(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss_ref, _, grads_ref = _loss_and_grads(model, ids, seed=0)
        install_fused_lora(model)
        loss, _, grads = _loss_and_grads(model, ids, seed=0)
    assert loss == pytest.approx(loss_ref, rel=2e-2)
    for name, grad in grads.items():
        assert grad.dtype == torch.float32  # fp32 master weights keep fp32 gradients
        cos = torch.nn.functional.cosine_similarity(grad.flatten(), grads_ref[name].flatten(),
                                                    dim=0)
        assert cos > 0.98, name


def test_dora_layers_keep_peft_forward():
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(resolve_model(None))
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"], use_dora=True,
                                            task_type="CAUSAL_LM"))
    model.train()
    ids = torch.randint(0, 2048, (2, 8))
    torch.manual_seed(0)
    ref = model(input_ids=ids).logits
    install_fused_lora(model)
    torch.manual_seed(0)
    assert torch.equal(model(input_ids=ids).logits, ref)
