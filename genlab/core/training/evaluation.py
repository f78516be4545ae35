"""Loss arithmetic and evaluation for the training loop.

This module owns how a loss is counted and what an evaluation measures:

* ``token_nll_sum`` is the summed next-token negative log-likelihood (nats) over the positions
  whose label is not -100. Training and evaluation both divide sums by token counts, so every
  loss genlab reports is a mean over loss tokens (not a mean of per-batch means).
* ``evaluate`` returns eval loss, perplexity (exp of it) and bits per byte
  (``sum of nats / ln 2 / eval bytes``); with ``eval_max_batches`` only part of the eval set is
  scored and its byte count is taken as the same fraction of ``eval_bytes`` as its loss tokens.
* ``generate_samples`` generates ``config.sample_prompts`` with the current weights, with a
  fixed seed, on the main process; it never disturbs the training RNG.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from genlab.core.configs import GenerationRequest, SamplingParams
from genlab.core.generation.decode import generate
from genlab.core.modeling.loading import LoadedModel

if TYPE_CHECKING:
    from genlab.core.training.setup import TrainingSetup

IGNORE_INDEX = -100


def token_nll_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy in nats over positions with a label.

    Args:
        logits: ``[batch, seq, vocab]``; position ``t`` predicts ``labels[:, t + 1]``.
        labels: ``[batch, seq]`` aligned with the inputs (HF convention), -100 = no loss.
    """
    vocab = logits.shape[-1]
    # Shift the labels, not the logits: slicing the logits would copy them (and their grad).
    targets = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX).reshape(-1)  # [batch * seq]
    flat = logits.reshape(-1, vocab).float()                                # [batch * seq, V]
    return F.cross_entropy(flat, targets, ignore_index=IGNORE_INDEX, reduction="sum")


def count_loss_tokens(labels: torch.Tensor) -> int:
    """Positions that ``token_nll_sum`` scores."""
    return int((labels[:, 1:] != IGNORE_INDEX).sum())


@dataclass(frozen=True)
class EvalStats:
    """One evaluation's numbers."""

    loss: float
    perplexity: float
    bits_per_byte: float | None
    loss_tokens: int


@torch.no_grad()
def evaluate(setup: TrainingSetup) -> EvalStats:
    """Token-weighted eval loss of the current weights, shared across processes."""
    acc, blocks = setup.accelerator, setup.data.eval
    batch = setup.config.batch_size
    n = len(blocks)
    if setup.config.eval_max_batches:
        n = min(n, setup.config.eval_max_batches * batch)
    # The bare model (autocast-patched by accelerate), not the DDP wrapper: processes may get
    # different numbers of eval batches, and DDP forwards would wait on each other.
    model = setup.unwrapped
    model.eval()
    nats = torch.zeros((), dtype=torch.float64, device=acc.device)
    tokens = torch.zeros((), dtype=torch.float64, device=acc.device)
    rank, world = acc.process_index, acc.num_processes
    for start in range(rank * batch, n, world * batch):  # each process scores its own batches
        sl = slice(start, min(start + batch, n))
        input_ids = blocks.input_ids[sl].to(acc.device)
        labels = blocks.labels[sl].to(acc.device)
        logits = model(input_ids=input_ids,
                       attention_mask=blocks.attention_mask[sl].to(acc.device)).logits
        nats += token_nll_sum(logits, labels).double()
        tokens += count_loss_tokens(labels)
    model.train()
    if world > 1:
        nats, tokens = acc.reduce(nats, "sum"), acc.reduce(tokens, "sum")
    nats_f, tokens_i = float(nats), int(tokens)
    loss = nats_f / max(1, tokens_i)
    bpb = None
    if setup.data.eval_bytes > 0 and tokens_i > 0:
        scored_bytes = setup.data.eval_bytes * tokens_i / max(1, blocks.num_loss_tokens)
        bpb = nats_f / math.log(2) / scored_bytes
    return EvalStats(loss=loss, perplexity=_safe_exp(loss), bits_per_byte=bpb,
                     loss_tokens=tokens_i)


def _safe_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def generate_samples(setup: TrainingSetup) -> tuple[dict[str, str], ...]:
    """Generate every sample prompt with the current weights (main process; else empty)."""
    config = setup.config
    if not config.sample_prompts or not setup.accelerator.is_main_process:
        return ()

    params = SamplingParams(temperature=config.sample_temperature,
                            max_new_tokens=config.sample_max_new_tokens)
    # Conversation data: the prompts are user turns through the template; else raw text.
    requests = [GenerationRequest(prompt=p, params=params, seed=config.seed,
                                  chat=setup.data.chat) for p in config.sample_prompts]
    model = setup.generation_model
    dtype = next(model.parameters()).dtype
    loaded = LoadedModel(model, setup.tokenizer, config.model, setup.device, dtype, adapters={})
    devices = [setup.device] if setup.device.type == "cuda" else []
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=devices), _autocast(setup):
            rows = generate(loaded, requests)
    finally:
        model.train(was_training)
    pairs = zip(config.sample_prompts, rows, strict=True)
    return tuple({"prompt": p, "text": r.text} for p, r in pairs)


def _autocast(setup: TrainingSetup) -> Any:
    if setup.accelerator.mixed_precision == "no":
        return contextlib.nullcontext()
    return setup.accelerator.autocast()
