"""The terminal face of genlab (``genlab tui``), built on Textual.

Importing this package (or ``genlab.tui.app``) is light: no torch, no model code. Everything
that touches a model runs in thread workers started by ``genlab.tui.bridge`` and imports the
heavy core modules there, so the UI paints before torch has loaded.
"""
