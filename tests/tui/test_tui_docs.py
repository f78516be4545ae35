"""docs/tui.md documents every key binding the app has (read from the classes)."""

from __future__ import annotations

from pathlib import Path

from genlab.tui.screens.help import binding_sections

DOC = Path(__file__).resolve().parents[2] / "docs" / "tui.md"


def test_docs_list_every_binding():
    text = DOC.read_text(encoding="utf-8")
    missing = [f"{keys} ({description})" for _, rows in binding_sections()
               for keys, description, _ in rows
               if f"| {keys} | {description} |" not in text]
    assert missing == [], f"add to {DOC}: {missing}"
