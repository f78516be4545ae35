"""Per-row sampler state that carries across decode steps, kept only for the stages in use.

``SamplerState`` holds, for one batch: the history of ids (prompt, left padding filled, then
one column per step), which entries are real, the counts of generated ids inside each row's
``repeat_last_n`` window (presence and frequency), DRY's match lengths and breaker table,
mirostat's mu, each row's XTC random numbers and logit-bias table, and the step. The decode
loop builds it after the prefill, calls ``update`` with each step's tokens and ``select`` when
rows leave the batch. Every piece is a tensor on the logits' device; nothing syncs the host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from genlab.core.generation.sampling import dry, mirostat
from genlab.core.generation.sampling.bias import BiasTable, build_bias_table
from genlab.core.generation.sampling.rows import RowParams

HISTORY_STAGES = frozenset({"repetition_penalty", "presence_frequency", "no_repeat_ngram", "dry",
                            "logit_bias"})


def fill_history_padding(token_history_ids: torch.Tensor, history_mask: torch.Tensor
                         ) -> torch.Tensor:
    """Replace each row's padding by a repeat of that row's first real id.

    The repetition penalty only looks at which ids occur, so repeats are harmless and every
    row keeps a rectangular ``[rows, length]`` history. Rows without any real id are left as
    they are.
    """
    mask = history_mask.bool()
    first_real = mask.int().argmax(dim=1, keepdim=True)  # [rows, 1]
    return torch.where(mask, token_history_ids, token_history_ids.gather(1, first_real))


class SamplerState:
    """The state of one batch's stateful stages (see the module docstring).

    Args:
        params: The batch's settings.
        prompt_ids: ``[B, L]`` prompt ids, left-padded (any pad id).
        prompt_mask: ``[B, L]`` bool, False on padding; None = no padding.
        steps: Most tokens any row will generate.
        vocab: Width of the logits.
        eos_ids: Ids that end a row (masked by min-tokens).
        token_texts: Returns every token's text (DRY's breakers; called only if DRY is used).
        bias: Each row's logit bias resolved to ``((ids...), bias)`` entries.
        xtc_uniforms: ``[B, steps]`` float64 uniforms of each row's own stream, or None.
    """

    def __init__(self, params: RowParams, prompt_ids: torch.Tensor,
                 prompt_mask: torch.Tensor | None, steps: int, vocab: int, *,
                 eos_ids: Sequence[int] = (),
                 token_texts: Callable[[], Sequence[str]] | None = None,
                 bias: Sequence[Sequence[tuple[tuple[int, ...], float]]] | None = None,
                 xtc_uniforms: torch.Tensor | None = None) -> None:
        device = prompt_ids.device
        rows, width = prompt_ids.shape
        uses = params.uses
        self.params, self.vocab, self.prompt_width = params, vocab, width
        self.step, self.length = 0, width
        self.eos = torch.tensor(sorted(set(eos_ids)) or [0], dtype=torch.long, device=device)
        self.history = self.real = self.counts = self.matches = self.breakers = None
        self.mu = self.xtc_uniforms = None
        self.bias: BiasTable | None = None
        if uses & HISTORY_STAGES:
            self.history = prompt_ids.new_empty(rows, width + steps)
            filled = prompt_ids if prompt_mask is None else \
                fill_history_padding(prompt_ids, prompt_mask)
            self.history[:, :width] = filled
            if prompt_mask is not None:
                self.real = torch.ones(rows, width + steps, dtype=torch.bool, device=device)
                self.real[:, :width] = prompt_mask.bool()
        if "presence_frequency" in uses:
            self.counts = torch.zeros(rows, vocab, dtype=torch.float32, device=device)
            self._one = torch.ones(rows, 1, dtype=torch.float32, device=device)
            self._windowed = bool((params.cols["repeat_last_n"] > 0).any())
        if "dry" in uses:
            self._start_dry(params, token_texts, vocab, width, steps)
        if "mirostat" in uses:
            self.mu = mirostat.initial_mu(params.cols["mirostat_tau"])
        if "xtc" in uses:
            self.xtc_uniforms = xtc_uniforms.to(device)
        if "logit_bias" in uses:
            self.bias = build_bias_table(bias or [()] * rows, device)

    def _start_dry(self, params: RowParams, token_texts: Callable[[], Sequence[str]] | None,
                   vocab: int, width: int, steps: int) -> None:
        texts = list(token_texts() if token_texts is not None else [])[:vocab]
        texts += [""] * (vocab - len(texts))
        tables: dict[tuple[str, ...], torch.Tensor] = {}
        device = self.history.device
        on = params.on("dry").tolist()
        rows = []
        for p, uses_dry in zip(params.settings, on, strict=True):
            key = p.dry_sequence_breakers if uses_dry else ()
            if key not in tables:
                tables[key] = dry.breaker_table(texts, key, device)
            rows.append(tables[key])
        self.breakers = torch.stack(rows)  # [B, vocab]
        real = self.real[:, :width] if self.real is not None else \
            torch.ones_like(self.history[:, :width], dtype=torch.bool)
        self.matches = torch.zeros(len(rows), width + steps, dtype=torch.int32, device=device)
        self.matches[:, :width] = dry.initial_matches(self.history[:, :width], real,
                                                      self.breakers)

    # ------------------------------------------------------------------ views for kernels

    def history_view(self) -> torch.Tensor:
        """``[B, length]`` ids so far (padding filled with a real id of the row)."""
        return self.history[:, : self.length]

    def real_view(self) -> torch.Tensor | None:
        """``[B, length]`` bool, False on padding; None when no row is padded."""
        return None if self.real is None else self.real[:, : self.length]

    def dry_view(self) -> torch.Tensor:
        """``[B, length]`` DRY match lengths against the last token."""
        return self.matches[:, : self.length]

    def generated(self) -> torch.Tensor:
        """``[B, step]`` the ids generated so far."""
        return self.history[:, self.prompt_width: self.length]

    def penalty_history(self) -> torch.Tensor:
        """The history the repetition penalty sees: ids outside ``repeat_last_n`` replaced.

        An id outside the window is replaced by the row's last id (inside every window), so it
        is neither penalised nor written twice with different values.
        """
        history = self.history_view()
        last_n = self.params.cols["repeat_last_n"]
        if "windowed" not in self.params.cache:
            self.params.cache["windowed"] = bool((last_n > 0).any())
        if not self.params.cache["windowed"]:
            return history
        positions = torch.arange(self.length, device=history.device)
        start = torch.where(last_n > 0, self.length - last_n, 0).unsqueeze(1)  # [B, 1]
        return torch.where(positions >= start, history, history[:, -1:])

    def xtc_chance(self) -> torch.Tensor:
        """``[B]`` each row's XTC uniform of this step."""
        return self.xtc_uniforms[:, self.step]

    def bias_inputs(self) -> tuple[torch.Tensor, ...]:
        """The logit-bias kernel's inputs: the context's tail, then the entry table."""
        table = self.bias
        longest = table.prefix.shape[-1]
        rows = table.last.shape[0]
        tail = torch.full((rows, longest), -1, dtype=torch.long, device=table.last.device)
        tail_real = torch.zeros(rows, longest, dtype=torch.bool, device=table.last.device)
        if longest and self.history is not None:
            n = min(longest, self.length)
            tail[:, longest - n:] = self.history[:, self.length - n: self.length]
            real = self.real_view()
            tail_real[:, longest - n:] = True if real is None else real[:, self.length - n:]
        return (tail, tail_real, table.last, table.bias, table.prefix, table.prefix_mask,
                table.same_last)

    # ------------------------------------------------------------------------ updates

    def update(self, tokens: torch.Tensor, chosen_prob: torch.Tensor | None) -> None:
        """Record one step: ``tokens`` ``[B]`` chosen, ``chosen_prob`` their drawn probability."""
        cols = self.params.cols
        if self.history is not None:
            self.history[:, self.length] = tokens
        self.length += 1
        if self.counts is not None:
            self.counts.scatter_add_(1, tokens.unsqueeze(1), self._one)
            if self._windowed:
                self._leave_window(cols["repeat_last_n"])
        if self.matches is not None:
            dry.advance_matches(self.matches, self.history, self.real, self.breakers,
                                self.length)
        if self.mu is not None and chosen_prob is not None:
            self.mu = mirostat.update_mu(self.mu, chosen_prob, cols["mirostat_tau"],
                                         cols["mirostat_eta"], cols["mirostat"] > 0)
        self.step += 1

    def _leave_window(self, last_n: torch.Tensor) -> None:
        """Uncount the generated id that just left each windowed row's last-n window."""
        position = self.length - 1 - last_n  # [B]
        leaving = (last_n > 0) & (position >= self.prompt_width)
        ids = self.history.gather(1, position.clamp(min=0).unsqueeze(1))
        self.counts.scatter_add_(1, ids, -leaving.float().unsqueeze(1))

    def select(self, index: torch.Tensor, params: RowParams) -> None:
        """Keep only the rows in ``index`` (``params`` = the batch's settings, compacted)."""
        self.params = params
        if self.counts is not None:
            self._one = self._one[: index.numel()]
        for name in ("history", "real", "counts", "matches", "breakers", "mu", "xtc_uniforms"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.index_select(0, index))
        if self.bias is not None:
            self.bias = self.bias.select(index)
