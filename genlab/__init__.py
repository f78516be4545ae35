"""genlab: see how sampling and training hyperparameters change a language model.

The package root stays light (no torch import) so that ``genlab --help`` starts instantly;
the heavy machinery lives in ``genlab.core`` and is imported on first use.
"""

__version__ = "0.1.0"
