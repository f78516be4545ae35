"""Pretrain genlab's shipped default model (tinystories-1.4m) on TinyStories, time-boxed.

The committed, reproducible form of the run that produced ``genlab/assets/tinystories-1.4m``.
Same settings as that run: a 2,048-token byte-level BPE and a 6-layer Llama (hidden 128, 4 heads,
2 KV heads, MLP 384, context 256, tied embeddings: 1.44M parameters), AdamW lr 2.5e-3, batch
32 x 256 tokens, 100 warmup steps, trained as warmup-stable-decay until a deadline
(``genlab.core.pretrain.pipeline.iter_pretrain`` with ``time_limit_s``), then scored whole on
the first 300 validation stories (bits per byte). Equivalent to::

    genlab pretrain --data DATA/train.txt --eval-data DATA/valid.txt --time-limit 2h \\
        --decay-fraction 0.25 --sample-prompt "Once upon a time" --device cpu --out OUT

plus the thread chooser below and a plain log (one line per 10 steps) for ``nohup`` use.

Usage::

    python scripts/pretrain_default_model.py --data-dir ../shared/data/tinystories \\
        --out /tmp/pretrain --time-limit 2h            # or: --deadline 2026-11-23T00:10Z
    python scripts/pretrain_default_model.py --data-dir ... --out /tmp/pretrain \\
        --deadline 2026-11-23T00:10Z --resume          # after an interruption

``--resume`` continues ``OUT/run-stable`` (or a started decay run) from its latest checkpoint;
the time left is counted from now and the decay phase gets the last ``--decay-minutes`` of it
(at most half). Then install it with ``scripts/write_model_card.py``.

Why a thread chooser: the run is sized for a 2-core CPU that other jobs share. With both cores
free, 2 torch threads are ~1.4x faster than 1; with another busy process on the machine, 2
threads can be 2-3x *slower* (each matmul waits for the slower core). ``ThreadPicker`` keeps an
exponential moving average of tokens/s for 1 and for 2 threads, uses the faster, and tries the
other for two steps every 25 steps so its estimate follows the machine's load. On a dedicated
machine pass ``--threads N`` to fix the count instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "tinystories"
DEFAULT_DECAY_FRACTION = 0.25
SETTINGS = {
    "vocab_size": 2048, "eval_stories": 300,
    "shape": {"layers": 6, "hidden": 128, "heads": 4, "kv_heads": 2, "mlp": 384,
              "context": 256},
    "training": {"lr": 2.5e-3, "batch_size": 32, "warmup_steps": 100, "eval_every": 100,
                 "save_every": 100, "sample_prompts": ("Once upon a time",),
                 "sample_max_new_tokens": 40, "device": "cpu", "seed": 0},
}
"""The shipped model's settings (the run's ``pretrain_config.json`` records them too)."""


class ThreadPicker:
    """Greedy 1-vs-2 torch threads on per-step tokens/s EMAs; tries the other every 25 steps."""

    def __init__(self, torch: object) -> None:
        self.torch = torch
        self.rate = {1: 1500.0, 2: 1000.0}  # optimistic priors: start on 1, try 2 soon
        self.current = 1
        self.count = 0
        torch.set_num_threads(self.current)

    def see(self, tokens_per_s: float) -> None:
        self.rate[self.current] = 0.6 * self.rate[self.current] + 0.4 * tokens_per_s
        self.count += 1
        if self.count % 25 == 0:
            self.set(3 - self.current)  # explore (at least 2 steps: see the next line)
        elif self.count % 25 != 1:
            self.set(max(self.rate, key=self.rate.get))

    def set(self, n: int) -> None:
        if n != self.current:
            self.current = n
            self.torch.set_num_threads(n)


def log(msg: str) -> None:
    print(f"{dt.datetime.now(dt.timezone.utc):%H:%M:%S} {msg}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="Folder with TinyStories train.txt and valid.txt "
                             f"(default: {DEFAULT_DATA_DIR}).")
    parser.add_argument("--out", type=Path, required=True, help="Output directory.")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--deadline", help="UTC end time, ISO 8601 (e.g. 2026-11-23T00:10Z).")
    when.add_argument("--time-limit", help="Duration from now: 90m, 2h, 1h30m, 45s, seconds.")
    parser.add_argument("--resume", action="store_true",
                        help="Continue OUT from its latest checkpoint.")
    parser.add_argument("--decay-minutes", type=float, default=30.0,
                        help="With --resume: minutes of lr decay at the end (default 30; at "
                             "most half the time left).")
    parser.add_argument("--threads", type=int, default=0,
                        help="Fixed torch thread count; 0 = choose 1 or 2 as the run goes.")
    return parser.parse_args(argv)


def time_limit_s(args: argparse.Namespace) -> float:
    """Seconds from now until ``--deadline``, or ``--time-limit`` parsed."""
    if args.time_limit:
        from genlab.cli.common import UsageError
        from genlab.cli.pretrain_cmd import parse_duration

        try:
            return parse_duration(args.time_limit)
        except UsageError as err:
            sys.exit(f"error: {err}")
    deadline = dt.datetime.fromisoformat(args.deadline.replace("Z", "+00:00"))
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=dt.timezone.utc)
    limit = (deadline - dt.datetime.now(dt.timezone.utc)).total_seconds()
    if limit <= 60:
        sys.exit(f"error: --deadline {args.deadline} is less than a minute away")
    return limit


def build_config(args: argparse.Namespace, limit: float) -> object:
    from genlab.core.configs import ModelShape, PretrainConfig

    decay = (min(0.5, args.decay_minutes * 60 / limit) if args.resume
             else DEFAULT_DECAY_FRACTION)
    return PretrainConfig(
        data=str(args.data_dir / "train.txt"), eval_data=str(args.data_dir / "valid.txt"),
        vocab_size=SETTINGS["vocab_size"], shape=ModelShape(**SETTINGS["shape"]),
        eval_stories=SETTINGS["eval_stories"], time_limit_s=limit, decay_fraction=decay,
        training=dict(SETTINGS["training"]),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name in ("train.txt", "valid.txt"):
        if not (args.data_dir / name).is_file():
            sys.exit(f"error: --data-dir {args.data_dir}: no {name} there")
    import torch

    from genlab.core.events import to_dict
    from genlab.core.pretrain.pipeline import iter_pretrain

    limit = time_limit_s(args)
    config = build_config(args, limit)
    log(f"time limit {limit:.0f}s, resume {args.resume}, config {config}")
    picker = None
    if args.threads:
        torch.set_num_threads(args.threads)
    else:
        picker = ThreadPicker(torch)
    for event in iter_pretrain(config, args.out, resume=args.resume):
        name = type(event).__name__
        if name == "TrainStep":
            if picker is not None:
                picker.see(event.tokens_per_s)
            if event.step % 10 == 0 or event.step <= 3:
                threads = picker.current if picker else args.threads
                log(f"step {event.step} loss {event.loss:.4f} lr {event.lr:.2e} "
                    f"tok/s {event.tokens_per_s:.0f} threads {threads} tokens {event.tokens} "
                    f"epoch {event.epoch:.2f}")
        else:
            data = to_dict(event) if name != "PretrainFinished" else dict(event.__dict__)
            data.pop("config", None)
            log(f"{name} {json.dumps(data, default=str)}")
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
