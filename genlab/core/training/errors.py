"""The one error type of the training setup phase (re-exported by ``training.setup``)."""

from __future__ import annotations

from genlab.core.errors import GenlabError


class TrainSetupError(GenlabError, ValueError):
    """A training run cannot start; the one-line message names the flag and the fix."""
