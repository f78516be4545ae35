"""The model shipped inside genlab: where it lives, without importing anything heavy.

``genlab/assets/tinystories-1.4m/`` is a standard Hugging Face model directory (a 1.4M-parameter
Llama pretrained on TinyStories by ``genlab pretrain``, with its tokenizer, its model card
``README.md`` and ``eval.json``), installed as package data (``scripts/write_model_card.py``
puts it there). Every command uses it when ``--model`` is omitted,
so genlab works right after install with no network.

This module imports only ``pathlib`` so the CLI can name and check the default model at
``--help`` time; ``genlab.core.modeling.loading.default_model_path`` is the loading side of it.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_NAME = "tinystories-1.4m"
"""Folder name of the shipped model under ``genlab/assets``."""
ASSETS_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL_DIR = str(ASSETS_DIR / DEFAULT_MODEL_NAME)
"""Absolute path of the shipped model directory (a string; it may be missing in a checkout
that has not installed the model yet: see ``default_model_installed``)."""
DEFAULT_MODEL_HELP = f"Default: the shipped {DEFAULT_MODEL_NAME} model."


def default_model_installed() -> bool:
    """True when the shipped model directory holds a model (``config.json`` + weights)."""
    path = Path(DEFAULT_MODEL_DIR)
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def missing_default_model_message() -> str:
    """One line for users when the shipped model is absent: what is missing and the fix."""
    return (f"--model is required: genlab's default model ({DEFAULT_MODEL_NAME}) is not "
            f"installed at {DEFAULT_MODEL_DIR}; pass a Hugging Face hub id or a local model "
            "directory, or reinstall genlab")
