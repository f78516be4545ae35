"""Widgets of the TUI: each in its own module, with its styles in a ``.tcss`` beside it."""

from __future__ import annotations

from pathlib import Path


def tcss(module_file: str) -> str:
    """The ``.tcss`` file next to ``module_file``, for a widget's ``DEFAULT_CSS``."""
    return Path(module_file).with_suffix(".tcss").read_text(encoding="utf-8")
