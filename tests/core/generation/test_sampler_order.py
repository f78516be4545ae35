"""Sampler orders: transformers' by default, llama.cpp's by name, any list; mixed in a batch."""

from __future__ import annotations

import torch
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

from genlab.core.configs import SamplingParams
from genlab.core.generation import sampling as S


def run(x: torch.Tensor, settings: list[SamplingParams]) -> torch.Tensor:
    return S.process_logits(x, S.RowParams.from_params(settings))


def test_llama_cpp_order_truncates_before_temperature():
    x = torch.randn(1, 200, generator=torch.Generator().manual_seed(0)) * 2
    hf = run(x, [SamplingParams(temperature=2.0, top_p=0.5)])
    llama = run(x, [SamplingParams(temperature=2.0, top_p=0.5, sampler_order="llama.cpp")])
    expected_hf = TopPLogitsWarper(0.5)(None, TemperatureLogitsWarper(2.0)(None, x.clone()))
    expected_llama = TemperatureLogitsWarper(2.0)(None, TopPLogitsWarper(0.5)(None, x.clone()))
    assert torch.equal(hf, expected_hf) and torch.equal(llama, expected_llama)
    # a hot temperature first flattens the distribution, so top-p keeps more tokens
    assert torch.isfinite(llama).sum() < torch.isfinite(hf).sum()


def test_rows_with_different_orders_share_a_batch():
    x = torch.randn(6, 120, generator=torch.Generator().manual_seed(1)) * 2
    settings = [SamplingParams(temperature=1.7, top_k=30, top_p=0.6, min_p=0.05),
                SamplingParams(temperature=1.7, top_k=30, top_p=0.6, min_p=0.05,
                               sampler_order="llama.cpp"),
                SamplingParams(temperature=0.6, min_p=0.2, sampler_order="temperature,min_p"),
                SamplingParams(temperature=0.6, min_p=0.2, sampler_order="min_p;temp"),
                SamplingParams(top_p=0.8, top_k=5, sampler_order="top_p,top_k"),
                SamplingParams()]
    together = run(x, settings)
    for i, p in enumerate(settings):
        assert torch.equal(together[i: i + 1], run(x[i: i + 1], [p])), f"row {i}"
    assert not torch.equal(together[0], together[1])
    assert torch.equal(together[2], run(x[2:3], [SamplingParams(temperature=0.6,
                                                                 min_p=0.2)])[0])


def test_stage_names_and_presets():
    assert SamplingParams().order()[:2] == ("logit_bias", "repetition_penalty")
    llama = SamplingParams(sampler_order="llama.cpp").order()
    assert llama.index("temperature") > llama.index("min_p") > llama.index("top_p")
    assert llama.index("top_n_sigma") < llama.index("top_k") < llama.index("typical_p")
    custom = SamplingParams(sampler_order="penalties;dry;top_k;typ_p;temp")
    assert custom.order() == ("repetition_penalty", "presence_frequency", "dry", "top_k",
                              "typical_p", "temperature")
    assert custom.sampler_order == "repetition_penalty,presence_frequency,dry,top_k," \
                                   "typical_p,temperature"
    assert SamplingParams(sampler_order="HF").sampler_order == "transformers"
