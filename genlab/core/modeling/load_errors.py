"""Why a model, tokenizer or adapter did not load: one line naming the file and the fix.

``from_pretrained`` fails in many ways on files a user hands over, each with a library's own
exception type and a multi-line message: a truncated ``.safetensors`` file (``SafetensorError``),
a ``config.json`` value of the wrong type (huggingface_hub's strict-dataclass errors), weights
whose shapes do not match the config (a ``RuntimeError`` pointing at a log report), a ``.bin``
pickle that ``weights_only`` loading refused (``UnpicklingError``: the payload did not run, and
it must not). ``describe_load_failure`` names the file, says what is wrong with it and what to
do, for ``loading.ModelLoadError``. ``check_config_json`` catches an unreadable ``config.json``
before transformers does, so the message can name the line.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from genlab.core.io import read_text_limited

CONFIG_LIMIT = 4 << 20
"""Largest ``config.json`` / ``adapter_config.json`` read (4 MiB; real ones are a few KiB)."""
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def detail(err: BaseException, limit: int = 160) -> str:
    """``err``'s whole message on one line (whitespace collapsed), cut to ``limit`` chars."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_config_json(directory: str | Path, flag: str, name: str = "config.json") -> None:
    """Raise ``ValueError`` (one line) when ``directory/name`` exists but is not a JSON object."""
    path = Path(directory) / name
    if not path.is_file():
        return
    try:
        data = json.loads(read_text_limited(path, CONFIG_LIMIT, f"{flag} {path}"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{flag}: {path} is not valid JSON (line {err.lineno} column "
                         f"{err.colno}: {err.msg}); fix the file or save the model again"
                         ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{flag}: {path} holds a JSON {type(data).__name__}, not an object; "
                         "fix the file or save the model again")


def broken_json_file(directory: str | Path) -> tuple[Path, json.JSONDecodeError] | None:
    """The first ``*.json`` file in ``directory`` that does not parse, with its error."""
    root = Path(directory)
    if not root.is_dir():
        return None
    for path in sorted(root.glob("*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            return path, err
        except (OSError, UnicodeDecodeError):
            continue
    return None


def damaged_weight_file(directory: str | Path) -> Path | None:
    """The first ``.safetensors`` file in ``directory`` whose header does not read, or None."""
    from safetensors import safe_open

    root = Path(directory)
    if not root.is_dir():
        return None
    for path in sorted(root.glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except Exception:  # noqa: BLE001 - any failure means this file is the damaged one
            return path
    return None


def weight_files(directory: str | Path) -> list[Path]:
    """The weight files directly in ``directory`` (safetensors, .bin, .pt), sorted."""
    root = Path(directory)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())


def describe_load_failure(flag: str, directory: str, err: BaseException,
                          config_name: str = "config.json") -> str:
    """One line for a failed ``from_pretrained`` of ``directory`` (named by ``flag``).

    Args:
        flag: How the user named it, e.g. ``--model ./tiny`` or ``--adapter kind=runs/a``.
        directory: The local directory (or hub id) that was loaded.
        err: The exception ``from_pretrained`` raised.
        config_name: ``config.json`` for a model, ``adapter_config.json`` for an adapter.
    """
    kind = type(err).__name__
    message = str(err)
    if isinstance(err, json.JSONDecodeError) and (broken := broken_json_file(directory)):
        path, why = broken
        return (f"{flag}: {path} is not valid JSON (line {why.lineno} column {why.colno}: "
                f"{why.msg}); fix the file or save the model again")
    if kind == "SafetensorError":
        bad = damaged_weight_file(directory)
        what = str(bad) if bad is not None else f"a .safetensors file in {directory}"
        return (f"{flag}: {what} is damaged or incomplete ({detail(err, 100)}); download or "
                "save the weights again")
    if isinstance(err, pickle.UnpicklingError) or "weights only load failed" in message.lower():
        files = [p.name for p in weight_files(directory) if p.suffix != ".safetensors"]
        what = f"{Path(directory) / files[0]}" if files else f"a .bin file in {directory}"
        return (f"{flag}: {what} is a pickle holding more than tensors, so genlab refused to "
                "load it (loading it could run arbitrary code); use a .safetensors copy of "
                "the weights from a source you trust")
    if "StrictDataclass" in kind or (isinstance(err, TypeError) and Path(directory).is_dir()):
        return (f"{flag}: {Path(directory) / config_name} has a value of the wrong type "
                f"({detail(err, 140)}); fix that value or save the model again")
    if "size mismatch" in message or "ignore_mismatched_sizes" in message:
        return (f"{flag}: the weights in {directory} do not have the shapes its {config_name} "
                "describes (they come from another model or the config was edited); restore "
                f"the original {config_name} or save the model again")
    return f"{flag}: cannot load {directory} ({kind}: {detail(err)})"
