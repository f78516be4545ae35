"""The app-wide key bindings: screen switches, help, loading a model and quit (any screen).

Kept apart from ``app.py`` so the help screen can list them without importing the app; each
screen and widget declares its own ``BINDINGS`` next to the actions they run. ``SCREEN_TABS``
is the order of the tab bar at the top of every screen; the screen keys are not repeated in the
key bar at the bottom (``show=False``), so the bottom line holds the screen's own keys.
"""

from __future__ import annotations

from textual.binding import Binding

SCREEN_TABS = (
    ("f2", "sample", "Sample"),
    ("f3", "train", "Train"),
    ("f4", "runs", "Runs"),
    ("f7", "experiments", "Experiments"),
)
"""(key, mode, label) of each screen, in tab-bar order."""

APP_BINDINGS = [
    Binding("f1", "help", "Help", priority=True, show=False, tooltip="This help"),
    Binding("question_mark", "help", "Help", show=False),  # not priority: "?" types
    Binding("f2", "switch_mode('sample')", "Sample", priority=True, show=False,
            tooltip="Sample screen: sampling settings side by side"),
    Binding("f3", "switch_mode('train')", "Train", priority=True, show=False,
            tooltip="Train screen: LoRA training with live curves, several configs side by "
                    "side"),
    Binding("f4", "switch_mode('runs')", "Runs", priority=True, show=False,
            tooltip="Runs screen: compare training runs"),
    Binding("f7", "switch_mode('experiments')", "Experiments", priority=True, show=False,
            tooltip="Experiments screen: run a sweep or compare spec (the lessons) live"),
    Binding("ctrl+l", "load_model", "Load model", priority=True, show=False,
            tooltip="Load another model (a hub id or a local directory) for every screen"),
    Binding("ctrl+q", "quit", "Quit", priority=True, show=False),
]

KEY_NAMES = {"question_mark": "?", "escape": "Esc", "space": "Space", "enter": "Enter",
             "left": "←", "right": "→", "home": "Home", "end": "End", "tab": "Tab",
             "shift+tab": "Shift+Tab", "delete": "Del", "pageup": "PgUp",
             "pagedown": "PgDn"}


def key_label(keys: str) -> str:
    """``f5,ctrl+r`` -> ``F5 / Ctrl+R``."""
    names = []
    for key in keys.split(","):
        key = key.strip()
        if key in KEY_NAMES:
            names.append(KEY_NAMES[key])
            continue
        parts = key.split("+")
        pretty = [p.upper() if p[:1] == "f" and p[1:].isdigit() else
                  KEY_NAMES.get(p, p.title()) for p in parts]
        names.append("+".join(pretty))
    return " / ".join(names)


def short_key(key: str) -> str:
    """The compact form for the key bar: ``F5``, ``^R``, ``Esc``."""
    key = key.split(",")[0].strip()
    if key.startswith("ctrl+") and len(key) == 6:
        return "^" + key[-1].upper()
    return key_label(key)
