"""The one error type of the training setup phase (re-exported by ``training.setup``)."""

from __future__ import annotations


class TrainSetupError(ValueError):
    """A training run cannot start; the one-line message names the flag and the fix."""
