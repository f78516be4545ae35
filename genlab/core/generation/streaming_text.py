"""Streamed text of one generated row: deltas that add up to exactly the row's final text.

Split out of ``generation.decode`` (which owns the decode loop): incremental decoding of each
new token, a character split across tokens held back until it completes, and text that could
still become a stop string held back until decided.
"""

from __future__ import annotations

from typing import Any

try:  # tokenizers >= 0.21: incremental decoding in Rust
    from tokenizers.decoders import DecodeStream
except ImportError:  # pragma: no cover - older tokenizers fall back to window decoding
    DecodeStream = None


class RowText:
    """One row's tokens and text, released as deltas that add up to the final text.

    Decoding is incremental, with the prompt's last tokens as context: the tokenizers
    library's ``DecodeStream`` when there is a Rust backend (it holds back a character split
    across byte-level tokens until it completes), else re-decoding a short window. Text that
    could still become a stop string is held back until decided; a stop string and anything
    after it is never released.
    """

    def __init__(self, tokenizer: Any, prompt_ids: list[int], stops: tuple[str, ...]) -> None:
        self.tokenizer, self.stops = tokenizer, stops
        self.context = list(prompt_ids[-6:])  # keeps word-boundary spaces right
        self.token_ids: list[int] = []
        self.decoded = ""  # everything the decoder has produced
        self.pending = ""  # decoded but not released: could be the start of a stop string
        self.parts: list[str] = []  # released deltas
        self.backend = getattr(tokenizer, "backend_tokenizer", None)
        self.stream = None
        if self.backend is not None and DecodeStream is not None:
            self.stream = DecodeStream(ids=self.context, skip_special_tokens=True)
        self.window = (0, len(self.context))  # fallback: (prefix, read) offsets

    @property
    def text(self) -> str:
        """Everything released so far."""
        return "".join(self.parts)

    def push(self, token_id: int) -> tuple[str, bool]:
        """Add a token; return the text it releases and whether it completed a stop string."""
        self.token_ids.append(token_id)
        if not self.stops:  # nothing to hold back: release what the decoder gives
            piece = self._decode_next(token_id)
            if piece:
                self.parts.append(piece)
            return piece, False
        return self._release(self.pending + self._decode_next(token_id), final=False)

    def flush(self) -> str:
        """Release everything held back; the row ends for a reason other than a stop."""
        head = self._decode(self.context)
        full = self._decode(self.context + self.token_ids)
        new = full[len(head):] if full.startswith(head) else self.decoded
        tail = new[len(self.decoded):] if new.startswith(self.decoded) else ""
        self.decoded += tail  # e.g. an incomplete character, as U+FFFD like decode()
        return self._release(self.pending + tail, final=True)[0]

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _decode_next(self, token_id: int) -> str:
        if self.stream is not None:
            piece = self.stream.step(self.backend, token_id) or ""
        else:
            ids, (prefix, read) = self.context + self.token_ids, self.window
            before, after = self._decode(ids[prefix:read]), self._decode(ids[prefix:])
            piece = after[len(before):] if len(after) > len(before) else ""
            if piece.endswith("\ufffd"):  # a character split across tokens: wait for the rest
                piece = ""
            else:
                self.window = (read, len(ids))
        self.decoded += piece
        return piece

    def _release(self, buf: str, final: bool) -> tuple[str, bool]:
        hits = [i for i in (buf.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.pending = buf[:min(hits)], ""
        else:
            hold = 0 if final else _stop_prefix_len(buf, self.stops)
            out, self.pending = buf[:len(buf) - hold], buf[len(buf) - hold:]
        if out:
            self.parts.append(out)
        return out, bool(hits)


def _stop_prefix_len(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest end of ``text`` that is the start of some stop string."""
    best = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:k]):
                best = k
                break
    return best
