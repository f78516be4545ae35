"""From-scratch pretraining of a tiny Llama model (``genlab pretrain``): the shipped default model.

``iter_pretrain`` runs the pipeline: tokenizer -> initial model dir (``pretrain.setup``) ->
``training.train.iter_train(method="full")`` (one run, or the two runs of the time box in
``pretrain.timebox``) -> whole-story bits per byte (``pretrain.bpb``); it yields the training
events plus one ``PretrainFinished``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from genlab.core.configs import PretrainConfig
from genlab.core.configs.pretrain import PRETRAIN_TRAINING
from genlab.core.events import RunFinished, StopToken
from genlab.core.io import write_json_atomic
from genlab.core.modeling.loading import load_model
from genlab.core.pretrain.bpb import bits_per_byte
from genlab.core.pretrain.setup import (
    EVAL_FILE,
    INIT_DIR,
    PRETRAIN_FILE,
    RUN_DIR,
    prepare_pretrain_dir,
    read_eval_plan,
)
from genlab.core.pretrain.stories import read_stories
from genlab.core.pretrain.timebox import drain, earlier_phase_totals, iter_time_boxed
from genlab.core.training.train import iter_train


@dataclass(frozen=True)
class PretrainFinished:
    """``iter_pretrain`` is done; mirrors ``pretrain.json`` in the output directory.

    Attributes:
        model_dir: The trained model (standard HF directory).
        status: The training run's status (``completed``, ``stopped``, ...).
        params: Parameters of the model.
        vocab_size: Tokenizer vocabulary size.
        bits_per_byte: Whole-story bits per byte on the held-out stories (None when nothing
            was held out).
        eval_stories: Stories scored.
        eval_bytes: Their UTF-8 bytes.
        eval_nats: Their summed negative log-likelihood.
        train_tokens: Tokens the model was trained on (epochs included).
        wall_time_s: Training wall time.
    """

    model_dir: str
    status: str
    params: int
    vocab_size: int
    bits_per_byte: float | None
    eval_stories: int
    eval_bytes: int
    eval_nats: float | None
    train_tokens: int
    wall_time_s: float
    eval_source: str = "none"
    """``eval_data`` (its first stories), ``split`` (held out of ``data`` by ``eval_split``) or
    ``none``."""
    no_eval_reason: str = ""
    """Why nothing was scored (``eval_source == "none"``)."""


def iter_pretrain(
    config: PretrainConfig,
    out_dir: str | Path,
    *,
    stop_token: StopToken | None = None,
    resume: bool = False,
    replace_out: bool = False,
) -> Iterator[Any]:
    """Pretrain a tokenizer and a Llama from scratch; yield train events, then PretrainFinished.

    Layout of ``out_dir``: ``init/`` (tokenizer + initial weights, a valid HF model dir),
    ``eval_stories.txt`` (the held-out stories), ``eval_split.json`` (where they come from),
    ``run/`` (the ``iter_train`` run directory, final
    weights in ``run/model/``) and ``pretrain.json`` (the ``PretrainFinished`` record plus the
    shape and settings, for the model card).

    Without ``time_limit_s`` this is one ``iter_train`` run with ``training``'s schedule. With
    it, the run is time-boxed as warmup-stable-decay (``run-stable/`` then ``run/``; see
    ``pretrain_timebox``), because CPU throughput on shared machines is too unpredictable to
    size a cosine schedule in steps.

    Args:
        config: What to train.
        out_dir: Output directory (created).
        stop_token: Ends training at the next step boundary (checkpointed); the final
            evaluation still runs on the weights reached.
        resume: Continue ``out_dir/run`` from its latest checkpoint instead of starting over
            (time-boxed: continue ``run-stable/``, or ``run/`` once the decay has started,
            with ``time_limit_s`` counted from now).
        replace_out: ``out_dir`` holds something the user chose to replace (``--force``): its
            contents are deleted once the corpus has been read.
    """

    out = Path(out_dir)
    stop = stop_token or StopToken()
    if config.time_limit_s is not None:
        finished = yield from iter_time_boxed(config, out, stop, resume=resume,
                                                replace_out=replace_out)
    elif resume:
        plan = read_eval_plan(out)
        events = iter_train(plan.train_config(config, out / INIT_DIR), stop_token=stop,
                            resume_from=out / RUN_DIR)
        finished = yield from drain(events)
    else:
        plan = prepare_pretrain_dir(config, out, replace=replace_out)
        events = iter_train(plan.train_config(config, out / INIT_DIR),
                            out_dir=out / RUN_DIR, stop_token=stop)
        finished = yield from drain(events)
    if finished is None or not finished.output_dir:
        return
    yield finish_pretrain(config, out, finished)


def finish_pretrain(config: PretrainConfig, out: Path, finished: RunFinished) -> PretrainFinished:
    """Score the trained model whole-story and write ``pretrain.json``.

    Tokens and wall time count every run of the pipeline (time-boxed: both phases).
    """

    loaded = load_model(finished.output_dir, device="cpu", dtype="float32",
                        threads=config.training_settings().get("threads"))
    plan = read_eval_plan(out)
    bpb = None
    stories: list[str] = []
    if (out / EVAL_FILE).is_file():  # the held-out stories, whichever their source
        stories = read_stories(out / EVAL_FILE, separator=config.doc_separator)
    elif config.eval_data:  # a directory prepared before eval_stories.txt was kept
        stories = read_stories(config.eval_data, config.eval_stories,
                               separator=config.doc_separator)
    if stories:
        bpb = bits_per_byte(loaded.model, loaded.tokenizer, stories, batch_size=16,
                            context=config.shape.context)
    result = PretrainFinished(
        model_dir=finished.output_dir, status=finished.status,
        params=loaded.num_parameters, vocab_size=len(loaded.tokenizer),
        bits_per_byte=bpb.bpb if bpb else None, eval_stories=len(stories),
        eval_bytes=bpb.bytes if bpb else 0, eval_nats=bpb.nats if bpb else None,
        **earlier_phase_totals(out, finished) if config.time_limit_s else {
            "train_tokens": finished.tokens, "wall_time_s": finished.wall_time_s},
        eval_source=plan.source if stories else "none",
        no_eval_reason="" if stories else (plan.reason or "no held-out text"),
    )
    record = {**asdict(result), "shape": asdict(config.shape),
              "tie_embeddings": config.tie_embeddings, "data": str(config.data),
              "eval_data": str(config.eval_data) if config.eval_data else None,
              "training": {**PRETRAIN_TRAINING, **config.training},
              "time_limit_s": config.time_limit_s, "decay_fraction": config.decay_fraction,
              "schedule": ("warmup-stable-decay (time-boxed: run-stable/ then run/)"
                           if config.time_limit_s else
                           {**PRETRAIN_TRAINING, **config.training}["schedule"]),
              "bpb_definition": "whole story from its start: -sum log2 p(story tokens + EOS | "
                                "BOS) / UTF-8 bytes of the story (genlab.core.pretrain.bpb)"}
    write_json_atomic(out / PRETRAIN_FILE, record)
    return result


