"""Write docs/cli.md, the command reference, from the CLI itself.

Typer generates the reference (``python -m typer genlab.cli utils docs``), but in the app's
rich markup mode it passes every help text through rich's HTML export, which escapes ``"``,
``'``, ``<``, ``>`` and ``&`` as HTML entities. In prose GitHub shows an entity as its
character, but inside a code block (the indented examples of each command) it shows
``&quot;`` literally. This script runs typer's generator and then makes the Markdown read
right: code blocks and prose get their characters back, and in prose a ``<`` is written as
``\\<`` (so ``runs/<timestamp>`` is not taken for an HTML tag) and an ``&`` that would start an
entity as ``&amp;``.

    python scripts/cli_docs.py                       # rewrite docs/cli.md
    python scripts/cli_docs.py --output /tmp/cli.md  # write elsewhere (tests/test_docs.py)
"""

from __future__ import annotations

import argparse
import html
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE_SPAN = re.compile(r"(`[^`]*`)")
ENTITY_START = re.compile(r"&(?=#?\w+;)")


def typer_docs() -> str:
    """The reference exactly as typer's generator writes it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cli.md"
        subprocess.run([sys.executable, "-m", "typer", "genlab.cli", "utils", "docs",
                        "--name", "genlab", "--output", str(out)],
                       check=True, cwd=REPO, capture_output=True)
        return out.read_text(encoding="utf-8")


def _prose(line: str) -> str:
    """A prose line with its characters back, escaped only where Markdown needs it."""
    parts = CODE_SPAN.split(html.unescape(line))
    for i in range(0, len(parts), 2):  # even parts lie outside `code spans`
        parts[i] = ENTITY_START.sub("&amp;", parts[i]).replace("<", "\\<")
    text = "".join(parts)
    return "\\" + text if text.startswith(">") else text


def fix_markdown(text: str) -> str:
    """Undo typer's HTML escaping: verbatim in code, Markdown-escaped in prose.

    Code is a fenced block or an indented block (4 spaces after a blank line, not under a
    list item, where CommonMark reads the indent as the item's continuation).
    """
    out: list[str] = []
    fenced = indented = False
    prev_blank, under_list = True, False
    for line in text.split("\n"):
        blank = not line.strip()
        if line.startswith("```"):
            fenced = not fenced
            out.append(line)
        elif fenced:
            out.append(html.unescape(line))
        else:
            indented = line.startswith("    ") and (indented or (prev_blank and not under_list))
            if indented or blank:
                out.append(html.unescape(line) if indented else line)
            else:
                out.append(_prose(line))
                under_list = line.startswith(("* ", "- "))
        prev_blank = blank
    return "\n".join(out)


def main() -> None:
    """Generate the reference and write it (default: docs/cli.md)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=REPO / "docs" / "cli.md")
    args = ap.parse_args()
    args.output.write_text(fix_markdown(typer_docs()), encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
