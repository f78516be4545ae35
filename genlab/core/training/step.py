"""One optimizer step's arithmetic, shared by the training loop and the lr range test.

This module owns the parts of a step that touch tensors: the data order (``BlockOrder``), the
micro-batch forward/backward with the token-weighted loss (``StepRunner.forward_backward``),
the gradient norm, and ``PendingStep``: a step whose loss and gradient norm may still be on
the device. The loop (``training.loop``) decides when to read them back: every step on CPU,
every ``sync_every`` steps on a GPU, so the host never waits for the device in between (a
non-finite step is skipped on the device by the fused Adam/AdamW ``found_inf`` flag, see
``StepRunner.apply``).

What makes a step cheap without changing its numbers:

* per-block token and loss-token counts are counted once on the CPU, so a step's counts need
  no device work;
* on CUDA the packed blocks are copied to the GPU once, so a step copies only its block
  indices, from pinned memory (a pageable host-to-device copy would wait for the GPU);
* the loss (``evaluation.token_nll_sum``) shifts the labels instead of copying the logits.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from genlab.core.training.evaluation import IGNORE_INDEX, token_nll_sum

if TYPE_CHECKING:
    from genlab.core.training.setup import TrainingSetup

DEVICE_DATA_LIMIT = 1 << 30
"""Packed training blocks up to this many bytes are kept on the GPU for the whole run."""


class BlockOrder:
    """Block indices of seeded per-epoch shuffles laid end to end, read by position.

    Epoch ``e`` is ``torch.randperm(num_blocks)`` from a generator seeded ``seed + e``; the
    stream position (blocks consumed) is all a checkpoint needs to continue the same order.
    """

    def __init__(self, num_blocks: int, seed: int) -> None:
        self.num_blocks = num_blocks
        self.seed = seed
        self._cache: tuple[int, torch.Tensor] | None = None

    def permutation(self, epoch: int) -> torch.Tensor:
        """The shuffle of epoch ``epoch``."""
        if self._cache is None or self._cache[0] != epoch:
            gen = torch.Generator().manual_seed(self.seed + epoch)
            self._cache = (epoch, torch.randperm(self.num_blocks, generator=gen))
        return self._cache[1]

    def take(self, start: int, count: int) -> torch.Tensor:
        """The ``count`` block indices from stream position ``start`` (crossing epochs)."""
        parts, pos, end = [], start, start + count
        while pos < end:
            epoch, offset = divmod(pos, self.num_blocks)
            chunk = self.permutation(epoch)[offset:offset + end - pos]
            parts.append(chunk)
            pos += len(chunk)
        return torch.cat(parts)


@dataclass
class PendingStep:
    """A finished (or skipped) optimizer step whose numbers may still live on the device.

    Attributes:
        step: 1-based step number.
        lr: Learning rate of the first parameter group for this step.
        nats: Summed loss nats over the step's loss tokens (a 0-d tensor or a float).
        grad_norm: Gradient norm before clipping (tensor or float).
        ratio: Update/weight ratio (tensor or float).
        loss_tokens: Tokens scored by the loss.
        step_tokens: Tokens (attention-mask ones) in the step.
        consumed_before: Blocks consumed before this step (to rewind after a divergence).
        tokens_before: Tokens seen before this step.
        started_at: ``time.perf_counter()`` when the host began the step.
    """

    step: int
    lr: float
    nats: Any
    grad_norm: Any
    ratio: Any
    loss_tokens: int
    step_tokens: int
    consumed_before: int
    tokens_before: int
    started_at: float


def _without_cudnn_attention(device: torch.device) -> contextlib.AbstractContextManager:
    """On CUDA, keep training forwards off the cuDNN attention backend of SDPA.

    With torch 2.11 on an H100, its backward gave NaN gradients in bf16 for a batch holding a
    padded block (the LoRA demo fact set, step 25, at any lr), so healthy runs ended as
    "diverged"; the flash, memory-efficient and math backends give finite gradients there.
    The backward uses the kernel its forward chose, so guarding the forward is enough.
    """
    if device.type != "cuda":
        return contextlib.nullcontext()
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3 has no cuDNN attention backend either
        return contextlib.nullcontext()
    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                        SDPBackend.MATH])


class StepRunner:
    """Forward/backward, gradient norm and update of one step over ``setup``'s blocks."""

    def __init__(self, setup: TrainingSetup) -> None:
        self.setup = setup
        self.acc = setup.accelerator
        blocks = setup.data.train
        # Counted once on the CPU: a step's counts then need no device work.
        self.block_tokens = blocks.attention_mask.sum(dim=1).tolist()
        self.block_loss_tokens = (blocks.labels[:, 1:] != IGNORE_INDEX).sum(dim=1).tolist()
        self.tensors = (blocks.input_ids, blocks.attention_mask, blocks.labels)
        device = self.acc.device
        size = sum(t.numel() * t.element_size() for t in self.tensors)
        self.on_device = device.type == "cuda" and size <= DEVICE_DATA_LIMIT
        if self.on_device:
            self.tensors = tuple(t.to(device) for t in self.tensors)
        self.skip_flag: torch.Tensor | None = None  # device-side "a step was non-finite"

    def counts(self, indices: torch.Tensor) -> tuple[int, int]:
        """(tokens, loss tokens) of the blocks ``indices`` (host arithmetic only)."""
        ids = indices.tolist()
        tokens = sum(self.block_tokens[i] for i in ids)
        return tokens, max(1, sum(self.block_loss_tokens[i] for i in ids))

    def micro_batches(self, indices: torch.Tensor) -> list[torch.Tensor]:
        """This process's micro-batches of a step's global block indices."""
        cfg, acc = self.setup.config, self.acc
        b, world, rank = cfg.batch_size, acc.num_processes, acc.process_index
        return [indices[(m * world + rank) * b:(m * world + rank + 1) * b]
                for m in range(cfg.grad_accum)]

    def forward_backward(self, indices: torch.Tensor, loss_tokens: int) -> torch.Tensor:
        """Accumulate the gradients of a step; returns its summed nats (a device tensor).

        Gradients are scaled so that they are those of ``sum of nats / loss_tokens`` over
        every process; they sync on the last micro-batch only.
        """
        setup, acc = self.setup, self.acc
        device = acc.device
        micro = self.micro_batches(indices)
        nats = torch.zeros((), dtype=torch.float64, device=device)
        input_ids, attention_mask, labels_all = self.tensors
        for i, sel in enumerate(micro):
            if self.on_device:  # pinned, so the copy is queued without waiting for the GPU
                sel = sel.pin_memory().to(device, non_blocking=True)
            sync = contextlib.nullcontext() if i == len(micro) - 1 else acc.no_sync(setup.model)
            with sync, _without_cudnn_attention(device):
                labels = labels_all[sel].to(device, non_blocking=True)
                logits = setup.model(
                    input_ids=input_ids[sel].to(device, non_blocking=True),
                    attention_mask=attention_mask[sel].to(device, non_blocking=True)).logits
                batch_nats = token_nll_sum(logits, labels)
                # DDP averages gradients over processes; scale so the result is sum / tokens.
                acc.backward(batch_nats * (acc.num_processes / loss_tokens))
            nats += batch_nats.detach().double()
        if acc.num_processes > 1:
            nats = acc.reduce(nats, "sum")
        return nats

    def clip(self) -> torch.Tensor:
        """The global gradient norm before clipping (a device tensor); clips to the knob."""
        cfg = self.setup.config
        max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf
        return self.acc.clip_grad_norm_(self.setup.trainable, max_norm)

    def apply_unless_nonfinite(self, nats: torch.Tensor, grad_norm: torch.Tensor) -> None:
        """Step the optimizer, skipping on the device if this or any earlier step was
        non-finite (the fused Adam/AdamW ``found_inf`` flag: no host sync).

        Once set, the flag stays set: the loop reports the divergence at its next read and
        the weights are those of the last good step.
        """
        bad = ~(torch.isfinite(nats) & torch.isfinite(grad_norm))
        self.skip_flag = bad if self.skip_flag is None else self.skip_flag | bad
        optimizer = getattr(self.setup.optimizer, "optimizer", self.setup.optimizer)
        optimizer.found_inf = self.skip_flag.float()
        self.setup.optimizer.step()
