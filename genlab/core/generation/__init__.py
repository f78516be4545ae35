"""Generation: per-row sampling transforms (``sampling``), the batched KV-cache decode loop
(``decode``), the streamed text of each row (``streaming_text``), side-by-side grids of
settings (``grid``) and prompt-set files (``prompts``).

Uses ``genlab.core.modeling`` for the loaded model; yields ``genlab.core.events``.
"""
