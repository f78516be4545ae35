"""The app-wide key bindings: screen switches, help and quit (they work from any screen).

Kept apart from ``app.py`` so the help screen can list them without importing the app; each
screen and widget declares its own ``BINDINGS`` next to the actions they run.
"""

from __future__ import annotations

from textual.binding import Binding

APP_BINDINGS = [
    Binding("f1", "help", "Help", priority=True, tooltip="This help"),
    Binding("question_mark", "help", "Help", show=False),  # not priority: "?" types
    Binding("f2", "switch_mode('sample')", "Sample", priority=True,
            tooltip="Sample screen: sampling settings side by side"),
    Binding("f3", "switch_mode('train')", "Train", priority=True,
            tooltip="Train screen: LoRA training with live curves"),
    Binding("f4", "switch_mode('runs')", "Runs", priority=True,
            tooltip="Runs screen: compare training runs"),
    Binding("ctrl+q", "quit", "Quit", priority=True),
]
