"""Reading each decode step's results back to the host without waiting for the device per token.

Owns where a step's ids, log-probabilities and top-n alternatives wait until the decode loop
reads them: on CUDA a pinned host buffer with one slot per step, filled by ``non_blocking``
copies and read once per block (one wait for the whole block); elsewhere the tensors
themselves, read together.
"""

from __future__ import annotations

import torch


class HostBuffer:
    """Where each step's ids and log-probs wait for the host: pinned memory on CUDA.

    On CUDA every step copies its results into its own slot with ``non_blocking=True``, and
    ``read`` waits once for the whole block; elsewhere the tensors are kept as they are and
    read together.
    """

    def __init__(self, rows: int, slots: int, top_n: int, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.slots: list[tuple[torch.Tensor, ...]] = []
        if self.cuda:
            pin = {"pin_memory": True}
            self.ids = torch.empty(slots, rows, dtype=torch.long, **pin)
            self.lps = torch.empty(slots, 2, rows, dtype=torch.float32, **pin)
            k = max(top_n, 1)
            self.alt_ids = torch.empty(slots, rows, k, dtype=torch.long, **pin)
            self.alt_p = torch.empty(slots, 2, rows, k, dtype=torch.float32, **pin)

    def put(self, slot: int, ids: torch.Tensor, lps: torch.Tensor,
            alts: tuple[torch.Tensor, ...]) -> None:
        """Store one step's results (``lps`` ``[2, B]``; ``alts`` (ids, raw, sampled) or ())."""
        if not self.cuda:
            self.slots.append((ids, lps, *alts))
            return
        rows = ids.shape[0]
        self.ids[slot, :rows].copy_(ids, non_blocking=True)
        self.lps[slot, :, :rows].copy_(lps, non_blocking=True)
        if alts:
            k = alts[0].shape[1]
            self.alt_ids[slot, :rows, :k].copy_(alts[0], non_blocking=True)
            self.alt_p[slot, :, :rows, :k].copy_(torch.stack(alts[1:]), non_blocking=True)
        self.slots.append((rows, len(alts) and alts[0].shape[1]))

    def read(self, steps: int, rows: int) -> list[tuple[list, list, list, list | None]]:
        """The ``steps`` stored steps as Python lists (one wait for the device)."""
        slots, self.slots = self.slots, []
        if self.cuda:
            torch.cuda.current_stream().synchronize()
            ids = self.ids[:steps, :rows].tolist()
            lps = self.lps[:steps, :, :rows].tolist()
            k = slots[0][1] if slots else 0
            alt_ids = self.alt_ids[:steps, :rows, :k].tolist() if k else None
            alt_p = self.alt_p[:steps, :, :rows, :k].tolist() if k else None
            return [(ids[s], lps[s][0], lps[s][1],
                     list(zip(alt_ids[s], alt_p[s][0], alt_p[s][1], strict=True)) if k else None)
                    for s in range(steps)]
        out = []
        for ids, lps, *alts in slots:
            raw, sampled = lps.tolist()
            alt = None
            if alts:
                alt = list(zip(alts[0].tolist(), alts[1].tolist(), alts[2].tolist(),
                               strict=True))
            out.append((ids.tolist(), raw, sampled, alt))
        return out
