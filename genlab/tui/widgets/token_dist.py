"""The distribution at one decode step: the top alternatives, before and after the sampler.

Each alternative gets two bars: its probability under the model's raw softmax and under the
distribution the column actually drew from (after every sampler stage of the column).
Probabilities keep three significant digits at any size (``format_prob``), so the tail of a
49k-token vocabulary reads ``3.1e-6``, not ``0.0%``. Side by side they show what a knob does:
temperature flattens or sharpens the second bar, top-k and top-p cut its tail to zero.
"""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from genlab.core.events import TokenAlternative, TokenSampled
from genlab.tui.widgets import tcss
from genlab.tui.widgets.token_view import EMPTY_MARK, EOS_MARK, prob_colour

RAW_COLOUR = "#6f9fd8"
SAMPLED_COLOUR = "#e0b050"
EIGHTHS = " ▏▎▍▌▋▊▉"
PLACEHOLDER = ("Move onto a token to see the distribution it was drawn from: click or hover "
               "it, or press Ctrl+T and use ←/→.")


def format_prob(p: float) -> str:
    """A probability readable at any size: ``12.3%``, ``0.123%``, then ``4.2e-6`` in the tail.

    Three significant digits down to 0.1 %, two in scientific notation below, so the tail of
    a 49k-token vocabulary never reads ``0.0%``; exactly 0 (cut by the sampler) reads ``0``.
    """
    if p <= 0:
        return "0"
    if p >= 1e-3:
        return f"{p * 100:.3g}%"
    mantissa, exponent = f"{p:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def bar(fraction: float, width: int) -> str:
    """A horizontal bar ``fraction`` (0..1) of ``width`` cells, in eighth-cell steps."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, rest = divmod(eighths, 8)
    text = "█" * full + (EIGHTHS[rest] if rest else "")
    return text.ljust(width)


def quoted(text: str) -> str:
    """A token's text made visible: quoted, with newlines and tabs escaped."""
    return '"' + text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t") + '"'


def legend(width: int = 200) -> Text:
    """The token colour scale and the marks drawn in the text (shorter when narrow)."""
    wide = width >= 100
    out = Text("token p: " if wide else "p: ", style="dim")
    for p in (0.01, 0.05, 0.2, 0.5, 0.8, 1.0):
        out.append(f" {p:g} ", style=f"#f0f0f0 on {prob_colour(p)}")
    marks = (("⏎", "newline"), (EMPTY_MARK, "part of a character" if wide else "partial char"),
             (EOS_MARK, "end of text (eos)" if wide else "eos (end)"))
    for mark, meaning in marks:
        out.append(f"  {mark}", style="bold")
        out.append(f" {meaning}", style="dim")
    out.no_wrap, out.overflow = True, "ellipsis"
    return out


class TokenDist(Widget):
    """Shows one step of one column: header, then a row per alternative."""

    DEFAULT_CSS = tcss(__file__)

    title: reactive[str] = reactive("")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.token: TokenSampled | None = None
        self.greedy = False
        self.eos = False

    def show(self, title: str, token: TokenSampled | None, greedy: bool = False,
             eos: bool = False) -> None:
        """Show ``token``'s step (None: the placeholder) under ``title``; ``eos``: the token
        ended the row as end-of-text."""
        self.token = token
        self.greedy = greedy
        self.eos = eos
        self.title = title
        self.refresh()  # (the height comes from CSS, not from the content: no layout)

    def render(self) -> Group | Text:
        token = self.token
        if token is None:
            return Group(legend(self.content_size.width), Text(PLACEHOLDER,
                                                                style="dim italic"))
        raw_p, sampled_p = math.exp(token.logprob), math.exp(token.sampled_logprob)
        drew = f"{EOS_MARK} end of text (eos)" if self.eos else quoted(token.text)
        head = Text.assemble(
            (self.title, "bold"), " · step ", (str(token.step + 1), "bold"), " · drew ",
            (drew, "bold reverse"),
            f"  raw {format_prob(raw_p)} → sampled {format_prob(sampled_p)}",
            ("  (greedy: always the top token)" if self.greedy else "", "dim"))
        head.no_wrap, head.overflow = True, "ellipsis"
        bar_width = max(6, (self.content_size.width - 38) // 2)
        table = Table.grid(padding=(0, 1))
        table.add_column(width=1)
        table.add_column(width=12, no_wrap=True, overflow="ellipsis")
        for colour in (RAW_COLOUR, SAMPLED_COLOUR):
            table.add_column(width=7, justify="right", no_wrap=True)
            table.add_column(width=bar_width, no_wrap=True, style=colour)
        table.add_row("", Text("token", style="dim"), "", Text("model's raw probability",
                      style=f"dim {RAW_COLOUR}"), "", Text("after this column's sampler",
                      style=f"dim {SAMPLED_COLOUR}"))
        alternatives = list(token.alternatives)
        if all(a.token_id != token.token_id for a in alternatives):
            alternatives.append(TokenAlternative(token.token_id, token.text, raw_p, sampled_p))
        for alt in alternatives:
            chosen = alt.token_id == token.token_id
            cut = alt.sampled_prob <= 0
            table.add_row(
                Text("▸" if chosen else "", style="bold"),
                Text(quoted(alt.text), style="bold" if chosen else ""),
                format_prob(alt.raw_prob), bar(alt.raw_prob, bar_width),
                Text(format_prob(alt.sampled_prob), style="dim" if cut else ""),
                Text("cut by the sampler" if cut else bar(alt.sampled_prob, bar_width),
                     style="dim italic" if cut else ""))
        return Group(legend(self.content_size.width), head, table)
