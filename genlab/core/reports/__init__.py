"""Experiment output directories as files: the ``results`` contract (``results.jsonl`` and
``spec.json``, which experiments append to and everything else reads) and the ``report``
(``report.md`` + a self-contained ``report.html``) with its ``plots``.
"""
