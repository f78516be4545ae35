"""Optimizer construction: decay groups, optimizer kinds and the update/param ratio."""

from __future__ import annotations

import pytest
import torch

from genlab.core.configs import TrainConfig
from genlab.core.training.optimizers import UpdateTracker, build_optimizer, split_decay_groups


def _config(**kw) -> TrainConfig:
    return TrainConfig(model="m", data="d", **kw)


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.proj = torch.nn.Linear(4, 4)
        self.norm = torch.nn.LayerNorm(4)
        self.head = torch.nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight  # tied
        self.frozen = torch.nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def test_decay_groups_skip_biases_norms_embeddings_and_frozen():
    model = _Tiny()
    decay, no_decay = split_decay_groups(model)
    assert [id(p) for p in decay] == [id(model.proj.weight)]
    assert {id(p) for p in no_decay} == {id(model.embed.weight), id(model.proj.bias),
                                          id(model.norm.weight), id(model.norm.bias)}


def test_decay_groups_on_gpt2(tiny_gpt2):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2)
    decay, no_decay = split_decay_groups(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim == 2 for p in decay)
    assert not any("wte" in names[id(p)] or "wpe" in names[id(p)] for p in decay)
    assert any("wte" in names[id(p)] for p in no_decay)
    assert any(names[id(p)].endswith("c_attn.weight") for p in decay)


@pytest.mark.parametrize("kind,cls", [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam),
                                      ("sgd", torch.optim.SGD)])
def test_build_optimizer_kinds(kind, cls):
    config = _config(optimizer=kind, weight_decay=0.1, momentum=0.9, betas=(0.8, 0.95))
    opt = build_optimizer(_Tiny(), config, lr=0.01)
    assert type(opt) is cls
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert all(g["lr"] == 0.01 for g in opt.param_groups)
    if kind == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.9 and not opt.param_groups[0]["nesterov"]
    else:
        assert opt.param_groups[0]["betas"] == (0.8, 0.95)


def test_update_ratio_is_relative_step_size():
    p = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    q = torch.nn.Parameter(torch.zeros(2))
    tracker = UpdateTracker([p, q])
    tracker.before_step()
    with torch.no_grad():
        p.add_(torch.tensor([0.3, 0.4]))
        q.add_(torch.tensor([0.0, 0.0]))
    assert tracker.ratio() == pytest.approx(0.5 / 5.0)
    tracker.before_step()
    assert tracker.ratio() == 0.0  # nothing moved
