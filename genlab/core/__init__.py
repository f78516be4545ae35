"""The UI-free core: sampling math, decode loop, model loading, data, training, runs.

Nothing here imports textual, rich, typer or genlab's faces, and nothing here prints: long
work is an iterator of events (``genlab.core.events``) that faces render.
"""
