"""A deterministic, torch-free event source for tests, demos and latency measurements.

``FakeSource`` yields the same event types as the core. Its text depends on each row's seed
and settings (so a changed knob visibly changes a column), its timings come from a fake
clock (so snapshots are stable), and ``token_delay_s`` / ``endless`` make it a slow or
never-ending producer for responsiveness tests. Training writes nothing to disk unless
``write_runs`` is set, in which case it leaves a real run directory (via
``genlab.core.training.run_dir``) that the Runs screen can list.
"""

from __future__ import annotations

import math
import random
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.core.configs import GenerationRequest, TrainConfig
from genlab.core.errors import GenlabError
from genlab.core.events import (
    EvalResult,
    GenerationFinished,
    LrFindFinished,
    LrFindStarted,
    LrFindStep,
    RowFinished,
    RunFinished,
    RunStarted,
    StopToken,
    TokenAlternative,
    TokenSampled,
    TrainStep,
)
from genlab.core.io import write_json_atomic
from genlab.core.training import run_dir as runs
from genlab.core.training.schedules import lr_at
from genlab.tui.fake_experiments import FakeExperiments

WORDS = ("the", "fox", "ran", "over", "a", "green", "hill", "and", "saw", "bird", "sky",
         "was", "blue", "little", "tree", "happy", "park", "moon", "stars", "book", ".", ",")
FAKE_STEP_S = 0.01
"""Fake seconds per decode step (tokens/s shown = rows / FAKE_STEP_S)."""


@dataclass
class FakeLoaded:
    """Stands in for ``LoadedModel``: no chat template unless given, a 256-token context."""

    name: str
    adapters: dict[str, str] = field(default_factory=dict)
    template: str = ""
    context_length: int = 256

    def describe(self) -> str:
        return f"{self.name} (1.2M params, cpu, float32)"


class FakeSource(FakeExperiments):
    """Deterministic fake of ``CoreSource`` (experiments: ``fake_experiments``).

    Args:
        token_delay_s: Real seconds slept per decode step (0 = as fast as possible).
        endless: Generate forever (until stopped), whatever max_new_tokens says.
        load_delay_s: Real seconds ``load_model`` takes.
        fail_load: ``load_model`` raises this message.
        train_steps: Optimizer steps of a fake training run.
        step_delay_s: Real seconds slept per training step (and per sweep trial step).
        write_runs: Fake training writes a real run directory.
    """

    def __init__(self, *, token_delay_s: float = 0.0, endless: bool = False,
                 load_delay_s: float = 0.0, fail_load: str | None = None,
                 train_steps: int = 40, step_delay_s: float = 0.0,
                 write_runs: bool = False, template: str = "") -> None:
        self.token_delay_s = token_delay_s
        self.endless = endless
        self.load_delay_s = load_delay_s
        self.fail_load = fail_load
        self.train_steps = train_steps
        self.step_delay_s = step_delay_s
        self.write_runs = write_runs
        self.template = template
        self.generations = 0
        self._stopped_at: dict[str, int] = {}
        self._sweep_rows: dict[str, dict[int, dict]] = {}

    # ------------------------------------------------------------------ models

    def load_model(self, name: str, *, adapters: dict[str, str], device: str = "auto",
                   dtype: str = "auto", on_progress: Any = None, threads: int | None = None,
                   quantize: str = "none", compile: bool = False) -> FakeLoaded:
        if on_progress is not None:
            on_progress("reading the weights")
        if self.load_delay_s:
            time.sleep(self.load_delay_s)
        if self.fail_load:
            raise GenlabError(self.fail_load)
        return FakeLoaded(name, dict(adapters), self.template)

    def prompt_info(self, loaded: FakeLoaded) -> tuple[str, int | None]:
        return loaded.template, loaded.context_length

    def max_new_room(self, loaded: FakeLoaded, request: GenerationRequest) -> int | None:
        """One token per word, plus 4 per message of template overhead when chatting."""
        words = max(1, len(request.prompt.split()))
        chat = bool(loaded.template) and request.chat is not False
        overhead = 4 * (1 + bool(request.system)) + len((request.system or "").split()) \
            if chat else 0
        return loaded.context_length - words - overhead

    def attach_adapter(self, loaded: FakeLoaded, name: str, adapter_dir: str) -> None:
        if name in loaded.adapters:
            raise GenlabError(f"--adapter {name}={adapter_dir}: the name {name!r} is taken")
        loaded.adapters[name] = adapter_dir

    # -------------------------------------------------------------- generation

    def iter_generate(self, loaded: FakeLoaded, requests: list[GenerationRequest], *,
                      top_n: int, stop_token: StopToken) -> Iterator[Any]:
        self.generations += 1
        rngs = [random.Random(_row_seed(r)) for r in requests]
        texts: list[list[str]] = [[] for _ in requests]
        ids: list[list[int]] = [[] for _ in requests]
        live = list(range(len(requests)))
        step = 0
        while live:
            if stop_token.stopped:
                for row in live:
                    yield RowFinished(row, "cancelled", "".join(texts[row]), tuple(ids[row]),
                                      (step + 1) * FAKE_STEP_S)
                break
            for row in list(live):
                req = requests[row]
                token = _fake_token(rngs[row], req, row, step, top_n)
                texts[row].append(token.text)
                ids[row].append(token.token_id)
                yield token
                if not self.endless and step + 1 >= req.params.max_new_tokens:
                    live.remove(row)
                    yield RowFinished(row, "length", "".join(texts[row]), tuple(ids[row]),
                                      (step + 1) * FAKE_STEP_S)
            step += 1
            if self.token_delay_s:
                time.sleep(self.token_delay_s)
        yield GenerationFinished(len(requests), sum(len(i) for i in ids), step * FAKE_STEP_S,
                                 cancelled=stop_token.stopped)

    # ---------------------------------------------------------------- training

    def iter_train(self, config: TrainConfig | None, *, out_dir: str | Path | None,
                   stop_token: StopToken, resume_from: str | Path | None) -> Iterator[Any]:
        start = 0
        if resume_from is not None:
            config = runs.read_config(resume_from) if self.write_runs else config
            start = self._stopped_at.get(str(resume_from), self.train_steps // 2)
        assert config is not None
        run_dir = Path(resume_from or out_dir or runs.default_run_dir(config))
        metrics = self._open_run(run_dir, config, resume_from is not None)
        total = config.max_steps or self.train_steps
        yield RunStarted(str(run_dir), total, start, resume_from is not None, config.method,
                         1000, 100000, "cpu", "float32", 1, config.effective_batch,
                         config.lr, config.warmup_steps, 64, 8, 10000, config=config.to_dict())
        best, best_step, status = math.inf, None, "completed"
        if config.eval_every and config.eval_at_start and start == 0:  # the step-0 baseline
            best, best_step = 4.2, 0
            baseline = EvalResult(0, 4.2, math.exp(4.2), None, True, tuple(
                {"prompt": p, "text": " (base model)"}
                for p in config.sample_prompts or ("Once upon a time",)))
            metrics(baseline, "eval")
            yield baseline
        speed = (config.lr / 2e-4) ** 0.5  # a higher lr learns faster, as it should
        loss = math.nan
        step = start
        for step in range(start + 1, total + 1):
            loss = 3.0 * math.exp(-step * speed / 15) + 1.0 + 0.15 * math.sin(step * 1.7)
            lr = config.scaled_lr * lr_at(step - 1, total, config)
            event = TrainStep(step, step / total, loss, lr, 1.0 + 0.5 * math.cos(step),
                              1e-3, step * 256, 2560.0, step * 0.1)
            metrics(event, "train")
            yield event
            if config.eval_every and step % config.eval_every == 0 or step == total:
                ev = 3.0 * math.exp(-step * speed / 20) + 1.2
                is_best = ev < best
                if is_best:
                    best, best_step = ev, step
                samples = tuple({"prompt": p, "text": f" step {step} says hi"}
                                for p in config.sample_prompts or ("Once upon a time",))
                result = EvalResult(step, ev, math.exp(ev), None, is_best, samples)
                metrics(result, "eval")
                yield result
            if self.step_delay_s:
                time.sleep(self.step_delay_s)
            if stop_token.stopped and step < total:
                status = "stopped"
                self._stopped_at[str(run_dir)] = step
                break
        finished = RunFinished(status, str(run_dir), step, step * 256, step * 0.1,
                               None if best_step is None else best, best_step,
                               f"fake run {status} at step {step}", final_train_loss=loss,
                               output_dir=str(run_dir / runs.ADAPTER_DIR))
        self._close_run(run_dir, finished)
        yield finished

    def iter_lr_find(self, config: TrainConfig, find: Any, *, out_dir: str | Path | None,
                     stop_token: StopToken) -> Iterator[Any]:
        """A deterministic range test: the loss falls fastest near lr 1e-3, explodes at 0.1."""
        steps = 40
        out = str(out_dir or "runs/lr-find-fake")
        yield LrFindStarted(out, steps, 1e-7, 10.0, "cpu", 1000)
        for i in range(steps):
            if stop_token.stopped:
                break
            lr = 1e-7 * (1e8 ** (i / (steps - 1)))
            loss = 4.0 - 3.0 / (1 + math.exp(-2.5 * (math.log10(lr) + 3))) + (
                20.0 if lr > 0.1 else 0.0)
            yield LrFindStep(i + 1, lr, loss, loss)
            if self.step_delay_s:
                time.sleep(self.step_delay_s)
        yield LrFindFinished(out, steps, 1e-3, 1e-3, 1e-2, 1e-3, "exploded",
                             f"{out}/lr_find.png", f"{out}/lr_find.jsonl", 0.1)

    def _open_run(self, run_dir: Path, config: TrainConfig, resumed: bool):
        if not self.write_runs:
            return lambda event, kind: None
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resumed:
            runs.write_config(run_dir, config, {"total_steps": self.train_steps})
        writer = runs.JsonlWriter(run_dir / runs.METRICS_FILE)
        samples = runs.JsonlWriter(run_dir / runs.SAMPLES_FILE)

        def write(event: Any, kind: str) -> None:
            record = {k: v for k, v in vars(event).items() if k != "samples"}
            writer.write({"type": kind, **record})
            for sample in getattr(event, "samples", ()):
                samples.write({"step": event.step, **sample})

        return write

    def _close_run(self, run_dir: Path, finished: RunFinished) -> None:
        if not self.write_runs:
            return
        write_json_atomic(run_dir / runs.SUMMARY_FILE, {
            "status": finished.status, "message": finished.message, "steps": finished.steps,
            "tokens": finished.tokens, "wall_time_s": finished.wall_time_s,
            "best_eval_loss": finished.best_eval_loss, "best_step": finished.best_step,
            "final_train_loss": finished.final_train_loss, "output_dir": finished.output_dir})


def _row_seed(req: GenerationRequest) -> int:
    p = req.params
    key = (req.seed, req.adapter, p.temperature, p.top_k, p.top_p, p.min_p,
           p.repetition_penalty)
    return zlib.crc32(repr(key).encode())  # stable across processes, unlike hash()


def _fake_token(rng: random.Random, req: GenerationRequest, row: int, step: int,
                top_n: int) -> TokenSampled:
    """One fake token with a made-up but consistent distribution over WORDS."""
    p = req.params
    raw = [math.exp(-0.35 * i) for i in range(len(WORDS))]
    order = list(range(len(WORDS)))
    rng.shuffle(order)
    total = sum(raw)
    raw_probs = {order[i]: raw[i] / total for i in range(len(WORDS))}
    kept = sorted(raw_probs, key=raw_probs.get, reverse=True)
    if p.top_k:
        kept = kept[: p.top_k]
    if p.temperature == 0:
        sampled = {kept[0]: 1.0}
        chosen = kept[0]
    else:
        logits = {k: math.log(raw_probs[k]) / p.temperature for k in kept}
        top = max(logits.values())
        scaled = {k: math.exp(v - top) for k, v in logits.items()}
        norm = sum(scaled.values())
        sampled = {k: v / norm for k, v in scaled.items()}
        sampled = _cut_tail(sampled, p.top_p, p.min_p)
        r, acc, chosen = rng.random(), 0.0, kept[-1]
        for k in kept:
            acc += sampled[k]
            if r <= acc:
                chosen = k
                break
    word = WORDS[chosen]
    text = word if word in ".," or step == 0 else " " + word
    by_raw = sorted(raw_probs, key=raw_probs.get, reverse=True)[:top_n]
    alts = tuple(TokenAlternative(k, WORDS[k], raw_probs[k], sampled.get(k, 0.0))
                 for k in by_raw)
    sampled_lp = 0.0 if p.temperature == 0 else math.log(sampled[chosen])
    return TokenSampled(row, step, chosen, text, math.log(raw_probs[chosen]), sampled_lp, alts)


def _cut_tail(probs: dict[int, float], top_p: float, min_p: float) -> dict[int, float]:
    """Apply top-p and min-p to a {token: prob} dict (sorted by prob, descending)."""
    kept, total = [], 0.0
    top = max(probs.values())
    for k in sorted(probs, key=probs.get, reverse=True):
        if kept and (total >= top_p or probs[k] < min_p * top):
            break
        kept.append(k)
        total += probs[k]
    return {k: probs[k] / total for k in kept}
