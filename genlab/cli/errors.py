"""One-line user errors for the CLI: message on stderr, exit code 2, never a traceback."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

USAGE_EXIT = 2


class UsageError(Exception):
    """Bad user input; the message is one line naming the problem and the fix."""


def fail(message: str, code: int = USAGE_EXIT) -> NoReturn:
    """Print ``genlab: error: <message>`` on stderr and exit with ``code``."""
    print(f"genlab: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


FIELD_TO_FLAG = {
    "temperature": "--temperature",
    "top_k": "--top-k",
    "top_p": "--top-p",
    "min_p": "--min-p",
    "repetition_penalty": "--repetition-penalty",
    "max_new_tokens": "--max-new-tokens",
    "stop": "--stop",
    "seed": "--seed",
}


def flag_for(field: str) -> str:
    """The CLI flag spelling of a config field (``top_p`` -> ``--top-p``)."""
    return FIELD_TO_FLAG.get(field, "--" + field.replace("_", "-"))
