"""genlab: see how sampling and training hyperparameters change a language model.

The package root stays light (no torch import) so that ``genlab --help`` starts instantly;
the heavy machinery lives in ``genlab.core`` and is imported on first use. The public API
(``genlab.sample``, ``genlab.compare``, ``genlab.sweep``, ``genlab.report``, ``genlab.lr_find``,
``genlab.load_spec`` and their result types) is resolved lazily from ``genlab.api`` on first
attribute access.
"""

from typing import Any

from genlab.version import __version__

_API = ("sample", "compare", "sweep", "report", "lr_find", "load_spec", "CompareResult",
        "SweepResult")
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from genlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'genlab' has no attribute {name!r}")
