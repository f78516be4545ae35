"""Small questions about models and files that several screens ask.

``same_model`` says whether two model names (``--model`` values, spec ``model:`` keys, or
``default`` for the shipped model) are the same model, so that an adapter trained on one is
only offered for the other when it fits. ``open_report`` shows a report: in the desktop's
browser when there is a desktop, else by copying its path to the clipboard (a console browser
would take over the terminal).
"""

from __future__ import annotations

import os
import sys
import webbrowser
from pathlib import Path
from typing import Any

from genlab import assets


def _resolved(name: str) -> str:
    try:
        name = assets.resolve_model(None if name in ("", "default") else name)
    except assets.ModelNotFound:
        return name
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def same_model(a: str, b: str) -> bool:
    """True when two model names mean the same model (local paths compared resolved).

    An unknown name (empty) counts as the same: loading the adapter then decides.
    """
    if not a or not b:
        return True
    return _resolved(a) == _resolved(b)


def open_report(app: Any, path: Path) -> str:
    """Open ``path`` in a browser if there is a desktop, else copy it; returns what happened."""
    full = path.resolve()
    desktop = sys.platform in ("darwin", "win32") or os.environ.get("DISPLAY") or \
        os.environ.get("WAYLAND_DISPLAY")
    if desktop and webbrowser.open(full.as_uri()):
        return f"Opened {full}"
    app.copy_to_clipboard(str(full))
    return f"{full} (path copied to the clipboard; open it in a browser)"
