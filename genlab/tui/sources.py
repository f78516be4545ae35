"""Where the TUI's events come from: the real core, or a fake one in tests.

An event source is the TUI's whole view of model work: load a model, attach an adapter,
iterate a generation, a training run, a sweep or a compare spec, and estimate an experiment.
``CoreSource`` forwards to ``genlab.core`` and imports it (and so torch) only when called,
which happens inside bridge workers; the app module therefore paints before torch is loaded.
Tests pass ``genlab.tui.fake_source`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from genlab.core.configs import GenerationRequest, TrainConfig
from genlab.core.events import StopToken


class EventSource(Protocol):
    """The operations the TUI needs from the core."""

    def load_model(self, name: str, *, adapters: dict[str, str], device: str,
                   dtype: str, on_progress: Callable[[str], None] | None = None,
                   threads: int | None = None, quantize: str = "none",
                   compile: bool = False) -> Any:
        """Load a model (reporting its stages to ``on_progress``); the result has
        ``describe()`` and an ``adapters`` dict."""

    def attach_adapter(self, loaded: Any, name: str, adapter_dir: str) -> None:
        """Attach a LoRA adapter under ``name``."""

    def iter_generate(self, loaded: Any, requests: list[GenerationRequest], *, top_n: int,
                      stop_token: StopToken) -> Iterator[Any]:
        """Generation events (TokenSampled, RowFinished, GenerationFinished)."""

    def prompt_info(self, loaded: Any) -> tuple[str, int | None]:
        """The active chat template's description ("" for none) and the context length."""

    def max_new_room(self, loaded: Any, request: GenerationRequest) -> int | None:
        """New tokens that fit after ``request``'s prompt (None: no limit known)."""

    def iter_train(self, config: TrainConfig | None, *, out_dir: str | Path | None,
                   stop_token: StopToken, resume_from: str | Path | None) -> Iterator[Any]:
        """Training events (RunStarted, TrainStep, EvalResult, ..., RunFinished)."""

    def iter_sweep(self, spec: Any, *, out_dir: str | Path, stop_token: StopToken
                   ) -> Iterator[Any]:
        """Sweep events (SweepStarted, TrialStarted, TrialProgress, ..., SweepFinished)."""

    def iter_compare(self, spec: Any, *, out_dir: str | Path, stop_token: StopToken,
                     loaded: Any = None) -> Iterator[Any]:
        """Compare events (CompareStarted, RowFinished, CellFinished, CompareFinished)."""

    def iter_estimate(self, spec: Any, *, stop_token: StopToken, loaded: Any = None
                      ) -> Iterator[Any]:
        """Estimate events (PointMeasured..., EstimateFinished) from measured step times."""

    def iter_lr_find(self, config: TrainConfig, find: Any, *, out_dir: str | Path | None,
                     stop_token: StopToken) -> Iterator[Any]:
        """Learning-rate range test events (LrFindStarted, LrFindStep, LrFindFinished)."""


class CoreSource:
    """The real thing: ``genlab.core``, imported on first use (in a worker thread).

    The imports below are inside the methods on purpose: the app paints before torch loads.
    """

    def load_model(self, name: str, *, adapters: dict[str, str], device: str = "auto",
                   dtype: str = "auto", on_progress: Callable[[str], None] | None = None,
                   threads: int | None = None, quantize: str = "none",
                   compile: bool = False) -> Any:
        from genlab.core.modeling.loading import load_model

        return load_model(name, device=device, dtype=dtype, adapters=adapters,
                          on_progress=on_progress, threads=threads, quantize=quantize,
                          compile=compile)

    def attach_adapter(self, loaded: Any, name: str, adapter_dir: str) -> None:
        from genlab.core.modeling.loading import attach_adapter

        attach_adapter(loaded, name, adapter_dir)

    def iter_generate(self, loaded: Any, requests: list[GenerationRequest], *, top_n: int,
                      stop_token: StopToken) -> Iterator[Any]:
        from genlab.core.generation.decode import iter_generate

        return iter_generate(loaded, requests, top_n=top_n, stop_token=stop_token)

    def prompt_info(self, loaded: Any) -> tuple[str, int | None]:
        from genlab.core.data.chat import describe_template

        return describe_template(loaded.tokenizer), loaded.context_length

    def max_new_room(self, loaded: Any, request: GenerationRequest) -> int | None:
        from genlab.core.generation.prompting import max_new_room

        return max_new_room(loaded, request)

    def iter_train(self, config: TrainConfig | None, *, out_dir: str | Path | None,
                   stop_token: StopToken, resume_from: str | Path | None) -> Iterator[Any]:
        from genlab.core.training.train import iter_train

        return iter_train(config, out_dir=out_dir, stop_token=stop_token,
                          resume_from=resume_from)

    def iter_sweep(self, spec: Any, *, out_dir: str | Path, stop_token: StopToken
                   ) -> Iterator[Any]:
        from genlab.core.experiments.sweep import iter_sweep

        return iter_sweep(spec, out_dir, stop_token=stop_token)

    def iter_compare(self, spec: Any, *, out_dir: str | Path, stop_token: StopToken,
                     loaded: Any = None) -> Iterator[Any]:
        from genlab.core.experiments.compare import iter_compare

        return iter_compare(spec, out_dir, stop_token=stop_token, loaded=loaded)

    def iter_estimate(self, spec: Any, *, stop_token: StopToken, loaded: Any = None
                      ) -> Iterator[Any]:
        from genlab.core.experiments import estimate

        if spec.kind == "sweep":
            from genlab.core.specs.loader import resolve_model

            return estimate.iter_estimate_sweep(spec, resolve_model(spec.model), stop_token)
        if loaded is None:
            from genlab.core.modeling.loading import load_model
            from genlab.core.specs.loader import resolve_model

            loaded = load_model(resolve_model(spec.model), device=spec.device,
                                dtype=spec.dtype, adapters=dict(spec.adapters) or None)
        return estimate.iter_estimate_compare(spec, loaded, stop_token)

    def iter_lr_find(self, config: TrainConfig, find: Any, *, out_dir: str | Path | None,
                     stop_token: StopToken) -> Iterator[Any]:
        from genlab.core.training.lr_find import iter_lr_find

        return iter_lr_find(config, find, out_dir=out_dir, stop_token=stop_token)
