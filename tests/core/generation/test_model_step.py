"""The decode step's two forms: eager on a growing cache, compiled on a static one."""

from __future__ import annotations

import pytest
import torch

from genlab.core.configs import GenerationRequest, SamplingParams
from genlab.core.generation import model_step
from genlab.core.generation.decode import generate
from genlab.core.modeling.loading import ModelLoadError, load_model

ROWS = [("Once upon a time", 0.0, 14), ("Tom", 0.8, 5),
        ("The little dog ran to the park and", 1.0, 9)]
"""Prompts of different lengths (a padded batch) and rows that finish at different steps."""


def requests(**extra) -> list[GenerationRequest]:
    return [GenerationRequest(p, SamplingParams(temperature=t, max_new_tokens=n, top_p=0.9,
                                                **extra), seed=i, chat=False)
            for i, (p, t, n) in enumerate(ROWS)]


def tokens(loaded, reqs) -> list[tuple[int, ...]]:
    return [r.token_ids for r in generate(loaded, reqs)]


@pytest.fixture
def static_eager(monkeypatch):
    """The compiled path's static cache, masks and row bookkeeping, with eager forwards."""
    monkeypatch.setattr(model_step, "compiled_forward", lambda model, device: model.forward)


@pytest.mark.parametrize("extra", [{}, {"repetition_penalty": 1.3}])
def test_the_static_cache_path_gives_the_eager_tokens(tiny_model, static_eager, extra):
    eager = load_model(str(tiny_model), device="cpu", threads=1)
    static = load_model(str(tiny_model), device="cpu", threads=1, compile=True)
    assert tokens(static, requests(**extra)) == tokens(eager, requests(**extra))


def test_the_static_cache_path_chunks_the_prefill(tiny_llama, static_eager):
    from genlab.core.events import RowFinished
    from genlab.core.generation.decode import iter_generate

    eager = load_model(str(tiny_llama), device="cpu", threads=1)
    static = load_model(str(tiny_llama), device="cpu", threads=1, compile=True)

    def chunked(loaded):
        done = [e for e in iter_generate(loaded, requests(), prefill_chunk=3)
                if isinstance(e, RowFinished)]
        return [e.token_ids for e in sorted(done, key=lambda e: e.row)]

    assert chunked(static) == chunked(eager) == tokens(eager, requests())


def test_rows_that_finish_stay_in_the_static_batch(tiny_llama, static_eager, monkeypatch):
    """No recompiling batch size: the physical batch keeps every row, outputs are dropped."""
    seen = []
    real = model_step.ModelStep.decode

    def spy(self, tokens, positions):
        out = real(self, tokens, positions)
        seen.append((self.tokens.shape[0], out.shape[0]))
        return out

    monkeypatch.setattr(model_step.ModelStep, "decode", spy)
    static = load_model(str(tiny_llama), device="cpu", threads=1, compile=True)
    tokens(static, requests())
    assert {physical for physical, _ in seen} == {3}
    assert [live for _, live in seen][-1] == 1  # only the longest row is still going


def test_the_static_cache_length_is_bucketed(tiny_llama, static_eager, monkeypatch):
    lengths = []
    real = model_step.StaticCache

    def spy(**kwargs):
        lengths.append(kwargs["max_cache_len"])
        return real(**kwargs)

    monkeypatch.setattr(model_step, "StaticCache", spy)
    static = load_model(str(tiny_llama), device="cpu", threads=1, compile=True)
    tokens(static, requests())
    assert lengths and all(n % model_step.CACHE_BUCKET == 0 for n in lengths)


def test_adapter_rows_and_eager_models_do_not_compile(tiny_llama):
    loaded = load_model(str(tiny_llama), device="cpu", threads=1)
    assert not model_step.can_compile(loaded, {})
    loaded.compile = True
    assert model_step.can_compile(loaded, {})
    assert not model_step.can_compile(loaded, {"adapter_names": ["a"]})


def test_compile_with_quantize_is_refused(tiny_llama):
    with pytest.raises(ModelLoadError, match="--quantize int8 with --compile"):
        load_model(str(tiny_llama), device="cpu", quantize="int8", compile=True)


def test_compile_is_recorded(tiny_llama):
    loaded = load_model(str(tiny_llama), device="cpu", threads=1, compile=True)
    assert loaded.runtime["compile"] is True
    assert loaded.describe().endswith(", compiled)")


@pytest.mark.slow
def test_the_compiled_step_gives_the_eager_tokens(tiny_llama):
    """A real torch.compile (inductor): greedy and sampled rows as eager, run after run."""
    torch._dynamo.reset()
    eager = load_model(str(tiny_llama), device="cpu", threads=1)
    compiled = load_model(str(tiny_llama), device="cpu", threads=1, compile=True)
    want = tokens(eager, requests())
    assert tokens(compiled, requests()) == want
    assert tokens(compiled, requests()) == want  # the second run reuses the compiled step
