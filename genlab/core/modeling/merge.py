"""Fold a LoRA adapter into its base model and save a plain Hugging Face model directory.

Owns ``merge_adapter``: the result loads with ``AutoModelForCausalLM.from_pretrained`` alone
(no PEFT, no genlab), so it can be shared, quantised or trained further like any model. The
merge runs on the CPU in float32 (``W + scale * B @ A`` is exact there) and the merged weights
are cast to the requested dtype only when saved; ``auto`` keeps the base model's stored dtype.

The output is written to a temporary directory beside ``out_dir`` and renamed into place, so
``out_dir`` is either complete or untouched. An earlier merge output (marked ``merge``) is
replaced; any other non-empty ``out_dir`` only with ``force``. Loading goes through
``genlab.core.modeling.loading`` (the only module that calls ``from_pretrained``). A GGUF base
(an adapter trained on ``--model file.gguf``) is loaded dequantized, so the result is a normal
HF directory: GGUF -> LoRA -> merged model; ``auto`` saves it in the file's float type (float32
for quantized files, whose values are exact there).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from genlab.core.errors import GenlabError
from genlab.core.io import apply_umask, claim_out_dir, named_os_errors, replace_dir, write_marker
from genlab.core.modeling.gguf import GgufError, check_gguf, find_gguf
from genlab.core.modeling.loading import ModelLoadError, attach_adapter, load_model, load_tokenizer

MERGE_DTYPES = ("auto", "float32", "bfloat16", "float16")
ADAPTER_NAME = "merged"
MERGE_KIND = "merge"
"""The marker kind of a merged-model directory."""


class MergeError(GenlabError, ValueError):
    """The adapter, base model or output directory is unusable; one-line message with the fix."""


def read_adapter_config(adapter_dir: str | Path) -> dict[str, Any]:
    """The adapter's ``adapter_config.json`` as a dict; raises ``MergeError`` when absent."""
    path = Path(adapter_dir) / "adapter_config.json"
    if not path.is_file():
        raise MergeError(f"--adapter {adapter_dir}: no adapter_config.json there; pass a "
                         "directory written by genlab train (RUN_DIR/adapter) or PEFT "
                         "save_pretrained")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise MergeError(f"--adapter {adapter_dir}: cannot read adapter_config.json "
                         f"({err})") from None


def check_out_dir(out_dir: str | Path, *, force: bool = False) -> Path:
    """Refuse a file, or a directory genlab did not merge into unless ``force``; return it.

    A previous ``genlab merge`` output (its marker says ``merge``) is replaced without
    ``force``: it is genlab's own.
    """
    claim_out_dir(out_dir, MERGE_KIND, force=force)
    return Path(out_dir)


def stored_dtype(model_dir: str, gguf_file: str | None = None) -> str:
    """The dtype a local model directory's config.json records (a GGUF file: its float type);
    ``float32`` when unknown."""
    try:
        source = find_gguf(model_dir, gguf_file)
        if source is not None and source.local:
            return check_gguf(source.path).weight_dtype
    except GgufError:
        return "float32"
    config = Path(model_dir) / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "float32"
    name = data.get("dtype") or data.get("torch_dtype") or "float32"
    return name if name in MERGE_DTYPES[1:] else "float32"


def merge_adapter(
    adapter_dir: str | Path,
    out_dir: str | Path,
    base_model: str | None = None,
    *,
    dtype: str = "auto",
    force: bool = False,
    gguf_file: str | None = None,
    threads: int | None = None,
) -> Path:
    """Merge the LoRA adapter in ``adapter_dir`` into its base and save it to ``out_dir``.

    Args:
        adapter_dir: A PEFT adapter directory (``adapter_config.json`` + weights).
        out_dir: Where the merged model and tokenizer go (a standard HF model directory).
        base_model: Base model id or directory; default: the adapter config's
            ``base_model_name_or_path``.
        dtype: Saved dtype: ``auto`` (the base's stored dtype), ``float32``, ``bfloat16`` or
            ``float16``.
        force: Replace a non-empty ``out_dir``.
        gguf_file: The GGUF file of the base, when ``base_model`` is a directory holding
            several.
        threads: CPU threads for the merge (None: the physical cores).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        MergeError: Bad adapter, missing base, bad dtype, or an occupied ``out_dir``.
        genlab.core.modeling.loading.ModelLoadError: The base model or adapter cannot be loaded.
    """
    if dtype not in MERGE_DTYPES:
        raise MergeError(f"--dtype {dtype}: must be one of {', '.join(MERGE_DTYPES)}")
    adapter_config = read_adapter_config(adapter_dir)
    base = base_model or adapter_config.get("base_model_name_or_path")
    if not base:
        raise MergeError(f"--adapter {adapter_dir}: its adapter_config.json names no base "
                         "model; pass --model BASE")
    out = check_out_dir(out_dir, force=force)
    merged, tokenizer = _load_and_merge(str(adapter_dir), base, gguf_file, threads)
    save_dtype = stored_dtype(base, gguf_file) if dtype == "auto" else dtype
    _save_atomically(merged, tokenizer, out, save_dtype)
    return out


def _load_and_merge(adapter_dir: str, base: str, gguf_file: str | None,
                    threads: int | None = None) -> tuple[Any, Any]:
    """Base + adapter on the CPU in float32, merged; returns (plain model, tokenizer)."""

    loaded = load_model(base, device="cpu", dtype="float32", gguf_file=gguf_file,
                        threads=threads)
    try:
        attach_adapter(loaded, ADAPTER_NAME, adapter_dir)
    except ModelLoadError as err:
        # attach_adapter speaks genlab sample's NAME=DIR syntax; merge's flag is --adapter DIR.
        message = str(err).replace(f"--adapter {ADAPTER_NAME}={adapter_dir}",
                                   f"--adapter {adapter_dir}")
        raise ModelLoadError(message) from err
    try:
        with warnings.catch_warnings():  # deprecation chatter from PEFT/transformers internals
            warnings.simplefilter("ignore", FutureWarning)
            merged = loaded.model.merge_and_unload()
    except AttributeError:
        raise MergeError(f"--adapter {adapter_dir}: this kind of adapter cannot be merged "
                         "into the weights (only LoRA-style adapters can)") from None
    tokenizer = loaded.tokenizer
    if (Path(adapter_dir) / "tokenizer_config.json").is_file():
        tokenizer = load_tokenizer(adapter_dir)  # the run's own tokenizer wins when saved
    return merged, tokenizer


def _save_atomically(model: Any, tokenizer: Any, out: Path, dtype: str) -> None:
    """Save into a temp dir beside ``out``, then swap it into place."""

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model.to(getattr(torch, dtype))
        with named_os_errors(tmp):
            with warnings.catch_warnings():  # deprecation chatter from transformers internals
                warnings.simplefilter("ignore", FutureWarning)
                model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        apply_umask(tmp)  # mkdtemp made it 0700 and safetensors writes 0600
        write_marker(tmp, MERGE_KIND)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
