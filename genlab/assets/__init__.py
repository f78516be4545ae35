"""The model shipped inside genlab, and the one rule that turns a ``--model`` value into a model.

``genlab/assets/tinystories-1.4m/`` is a standard Hugging Face model directory (a 1.4M-parameter
Llama pretrained on TinyStories by ``genlab pretrain``, with its tokenizer, its model card
``README.md`` and ``eval.json``), installed as package data (``scripts/write_model_card.py``
puts it there). Every face uses it when no model is given, so genlab works right after install
with no network.

``resolve_model`` is the only default-model resolver: the CLI, the TUI, specs and the loader all
call it. This module imports only ``pathlib`` so the CLI can name and check the default model at
``--help`` time, before torch loads.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_NAME = "tinystories-1.4m"
"""Folder name of the shipped model under ``genlab/assets``."""
DEFAULT_MODEL_ALIAS = "default"
"""A model name that means the shipped model (as does None): a spec's ``model: default``."""
ASSETS_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL_DIR = str(ASSETS_DIR / DEFAULT_MODEL_NAME)
"""Absolute path of the shipped model directory (a string; it may be missing in a checkout
that has not installed the model yet: see ``default_model_installed``)."""
DEFAULT_MODEL_HELP = f"Default: the shipped {DEFAULT_MODEL_NAME} model."


class ModelNotFound(LookupError):
    """No model at the name given: the shipped model is absent, or a local path does not exist.

    ``str()`` is one line without a flag name; each face prefixes its own (``--model``,
    ``model:``).
    """


class DefaultModelMissing(ModelNotFound):
    """The shipped default model is not installed (a checkout without it, a broken install)."""


def default_model_installed() -> bool:
    """True when the shipped model directory holds a model (``config.json`` + weights)."""
    path = Path(DEFAULT_MODEL_DIR)
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def resolve_model(name: str | None) -> str:
    """The model to load for ``name``: the shipped model for None/``default``, else ``name``.

    A name that is clearly a local path (starts with ``.``, ``/`` or ``~``) must exist; anything
    else may be a hub id and is left to the loader.

    Raises:
        DefaultModelMissing: No name and the shipped model is not installed.
        ModelNotFound: A local path that does not exist.
    """
    if name is None or name == DEFAULT_MODEL_ALIAS or name == "":
        if not default_model_installed():
            raise DefaultModelMissing(
                f"genlab's default model ({DEFAULT_MODEL_NAME}) is not installed at "
                f"{DEFAULT_MODEL_DIR}; pass a Hugging Face hub id or a local model directory, "
                "or reinstall genlab")
        return DEFAULT_MODEL_DIR
    if name.startswith((".", "/", "~")) and not Path(name).expanduser().exists():
        raise ModelNotFound(f"no such file or directory: {name}")
    return name
