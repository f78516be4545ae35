"""Time-boxed pretraining: warmup-stable-decay in two ``iter_train`` runs that end on a deadline.

Owns the part of ``genlab pretrain --time-limit`` that is about time rather than models. CPU
throughput on shared machines is too unpredictable to size a cosine schedule in steps, so a
time-boxed run is split in two ordinary ``iter_train`` runs:

* ``run-stable/`` trains at the constant peak lr (after the usual warmup) until
  ``1 - decay_fraction`` of the time is used, then is stopped through its stop token (a normal,
  checkpointed ``stopped`` run);
* ``run/`` continues from those weights with a fresh optimizer (``DECAY_WARMUP_STEPS`` warmup
  steps rebuild its moments) and a linear decay to 0 whose length is sized, from the step rate
  measured in the stable run, to end on the deadline; the deadline also stops it if the machine
  slows down.

Both are standard run directories, so each can be inspected with ``genlab report`` and resumed.
``iter_pretrain`` calls ``iter_time_boxed``; nothing here is public API beyond that and
``drain``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from genlab.core.events import RunFinished, StopToken
from genlab.core.pretrain.setup import (
    INIT_DIR,
    RUN_DIR,
    STABLE_DIR,
    PretrainConfig,
    prepare_pretrain_dir,
    read_eval_plan,
)
from genlab.core.training.train import iter_train

DECAY_WARMUP_STEPS = 20
"""Warmup steps of the decay run: its fresh AdamW needs a few steps to estimate moments."""
OPEN_ENDED_STEPS = 10**9
"""``max_steps`` of the stable run, which only its stop token ends (renderers may spot it)."""


def iter_time_boxed(config: PretrainConfig, out: Path, stop: StopToken,
                    resume: bool = False, replace_out: bool = False) -> Iterator[Any]:
    """Yield both runs' events; return the last ``RunFinished`` (None when there was none).

    With ``resume``, the time limit counts from now: a started decay run (``run/``) continues
    from its latest checkpoint, capped by the new deadline; otherwise the stable run continues
    from its latest checkpoint and the decay run follows as usual.
    """

    t0 = time.monotonic()
    limit = float(config.time_limit_s or 0)
    deadline = t0 + limit
    if resume and (out / RUN_DIR).exists():
        with _stop_at(stop, deadline):
            return (yield from drain(iter_train(None, stop_token=stop,
                                                resume_from=out / RUN_DIR)))
    plan = read_eval_plan(out) if resume else prepare_pretrain_dir(config, out, replace=replace_out)
    base = plan.train_config(config, out / INIT_DIR)

    # --- phase 1: constant lr until the switch time (or the caller's stop)
    stable_stop = StopToken()
    switch = t0 + (1 - config.decay_fraction) * limit
    rate = _StepRate()
    finished = None
    setup_s, began = 0.0, time.monotonic()
    if resume:
        events = iter_train(None, stop_token=stable_stop, resume_from=out / STABLE_DIR)
    else:
        stable = replace(base, schedule="constant", max_steps=OPEN_ENDED_STEPS,
                         name=f"{base.name}-stable")
        events = iter_train(stable, out_dir=out / STABLE_DIR, stop_token=stable_stop)
    with _stop_at(stable_stop, switch), _relay(stop, stable_stop):
        for event in events:
            rate.see(event)
            if type(event).__name__ == "RunStarted":
                setup_s = time.monotonic() - began  # the decay run pays it again
            if isinstance(event, RunFinished):
                finished = event
            yield event
    if finished is None or finished.status != "stopped" or stop.stopped:
        return finished

    # --- phase 2: linear decay to 0, sized from the measured step rate to end on time
    left = (deadline - time.monotonic() - 2 * setup_s) * 0.97  # setup, final eval and save
    steps = max(DECAY_WARMUP_STEPS + 1, int(rate.per_second() * left))
    decay = replace(base, model=finished.output_dir, schedule="linear", min_lr_ratio=0.0,
                    warmup_steps=DECAY_WARMUP_STEPS, warmup_ratio=0.0, max_steps=steps,
                    seed=base.seed + 1)
    with _stop_at(stop, deadline):
        return (yield from drain(iter_train(decay, out_dir=out / RUN_DIR, stop_token=stop)))


def earlier_phase_totals(out: Path, finished: RunFinished) -> dict[str, Any]:
    """``train_tokens`` and ``wall_time_s`` of the stable run plus the decay run ``finished``."""

    tokens, wall = finished.tokens, finished.wall_time_s
    summary = out / STABLE_DIR / "summary.json"
    if Path(finished.run_dir).resolve() != (out / STABLE_DIR).resolve() and summary.is_file():
        stable = json.loads(summary.read_text(encoding="utf-8"))
        tokens += int(stable.get("tokens") or 0)
        wall += float(stable.get("wall_time_s") or 0.0)
    return {"train_tokens": tokens, "wall_time_s": wall}


def drain(events: Iterator[Any]) -> Iterator[Any]:
    """Yield every event; return the ``RunFinished`` (None when there was none)."""
    finished = None
    for event in events:
        if isinstance(event, RunFinished):
            finished = event
        yield event
    return finished


class _StepRate:
    """Optimizer steps per second over the most recent steps (evals and checkpoints included)."""

    def __init__(self, window: int = 200) -> None:
        self.window = window
        self.times: list[tuple[int, float]] = []

    def see(self, event: Any) -> None:
        if type(event).__name__ == "TrainStep":
            self.times.append((event.step, time.monotonic()))
            self.times = self.times[-self.window:]

    def per_second(self) -> float:
        if len(self.times) < 2:
            return 0.0
        (s0, t0), (s1, t1) = self.times[0], self.times[-1]
        return (s1 - s0) / max(1e-9, t1 - t0)


@contextlib.contextmanager
def _stop_at(stop: StopToken, when: float) -> Iterator[None]:
    """Set ``stop`` at monotonic time ``when`` (unless the block ends first)."""
    timer = threading.Timer(max(0.0, when - time.monotonic()), stop.stop)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@contextlib.contextmanager
def _relay(source: StopToken, target: StopToken) -> Iterator[None]:
    """Forward a stop of ``source`` (the caller's) to ``target`` while the block runs."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            if source.stopped:
                target.stop()
                return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
