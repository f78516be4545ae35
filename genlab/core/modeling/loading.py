"""Model and tokenizer loading: the only module that calls ``from_pretrained``.

Owns the choice of device (cuda, then mps, then cpu) and dtype (bf16 on CUDA where supported,
else float32), turning "not found" failures into a one-line ``ModelLoadError`` that names the
model and the fix, and attaching PEFT LoRA adapters by name so that one batch can mix the base
model and several adapters. Damaged or mismatched files (a truncated ``.safetensors``, a
wrong-typed ``config.json`` value, a refused pickle) are one-line ``ModelLoadError`` too, worded
by ``modeling.load_errors``. ``load_model(None)`` (or ``"default"``) loads the model shipped in
``genlab/assets`` (``genlab.assets.resolve_model``, the one default-model resolver).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from genlab import assets
from genlab.core.errors import GenlabError
from genlab.core.modeling.load_errors import (
    check_config_json,
    describe_load_failure,
    weight_files,
)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


class ModelLoadError(GenlabError, RuntimeError):
    """A model, tokenizer or adapter could not be loaded; the message says what to do."""


def resolve_model_name(name_or_path: str | None) -> str:
    """``name_or_path``, or the shipped model's directory for None / ``"default"``.

    Raises:
        ModelLoadError: The shipped model is missing or a local path does not exist (one line
            naming ``--model`` and the fix).
    """
    try:
        return assets.resolve_model(name_or_path)
    except assets.ModelNotFound as err:
        prefix = "--model is required: " if isinstance(err, assets.DefaultModelMissing) else (
            f"--model {name_or_path}: ")
        raise ModelLoadError(prefix + str(err)) from None


@dataclass
class LoadedModel:
    """A causal LM ready for generation, with its tokenizer and where it lives.

    Attributes:
        model: The ``transformers`` model, or a ``peft.PeftModel`` when adapters are loaded.
        tokenizer: Its tokenizer (a pad token is always set).
        name: What the user passed (hub id or path).
        device: The torch device the weights are on.
        dtype: The weights' dtype.
        adapters: Adapter name -> directory, for every loaded LoRA adapter.
    """

    model: Any
    tokenizer: Any
    name: str
    device: torch.device
    dtype: torch.dtype
    adapters: dict[str, str] = field(default_factory=dict)

    @property
    def num_parameters(self) -> int:
        """Parameters of the base model (adapters excluded)."""
        return sum(p.numel() for name, p in self.model.named_parameters() if "lora_" not in name)

    def describe(self) -> str:
        """One line for status bars: name, size, device and dtype."""
        n = self.num_parameters
        if n >= 1e9:
            size = f"{n / 1e9:.2f}B"
        elif n >= 1e6:
            size = f"{n / 1e6:.1f}M"
        else:
            size = f"{n / 1e3:.0f}K"
        dtype = str(self.dtype).removeprefix("torch.")
        return f"{self.name} ({size} params, {self.device.type}, {dtype})"


def resolve_device(device: str = "auto") -> torch.device:
    """Map ``auto``/``cpu``/``cuda``/``mps``/``cuda:N`` to an available torch device."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ModelLoadError(f"--device {device}: unknown device; use auto, cpu, cuda, cuda:N "
                             "or mps") from None
    if dev.type not in DEVICE_CHOICES:
        raise ModelLoadError(f"--device {device}: genlab runs on cpu, cuda or mps only; use "
                             "--device auto, cpu, cuda, cuda:N or mps")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"--device {device}: CUDA is not available here; use --device cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"--device {device}: MPS is not available here; use --device cpu")
    return dev


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """Map ``auto`` or a dtype name to a torch dtype; auto is bf16 on capable CUDA, else fp32."""
    name = DTYPE_ALIASES.get(dtype, dtype)
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if name not in DTYPES:
        choices = ", ".join(["auto", *DTYPES])
        raise ModelLoadError(f"--dtype {dtype}: unknown dtype; choose one of {choices}")
    return DTYPES[name]


def _not_found_message(name: str, err: Exception) -> str:
    if isinstance(err, json.JSONDecodeError) and Path(name).is_dir():
        return describe_load_failure(f"--model {name}", name, err)
    if Path(name).exists():
        return (f"--model {name}: the directory exists but holds no loadable Hugging Face "
                f"model ({type(err).__name__}: {str(err).splitlines()[0][:160]})")
    if name.startswith((".", "/", "~")) or os.sep in name and not _looks_like_hub_id(name):
        return f"--model {name}: no such directory; pass an existing local model directory"
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    hint = ("the hub is offline (HF_HUB_OFFLINE=1) and it is not in the local cache; "
            "pass a local model directory instead" if offline else
            "it is neither a local directory nor a reachable Hugging Face hub id; check the "
            "spelling, your network, or pass a local model directory")
    return f"--model {name}: model not found: {hint}"


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts)


def quiet_transformers() -> None:
    """Silence transformers' own progress bars and warnings: the core never prints."""

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_tokenizer(name_or_path: str) -> Any:
    """Load a tokenizer and make sure it has a pad token (EOS is used when it has none)."""

    quiet_transformers()

    try:
        tok = AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        raise ModelLoadError(_not_found_message(name_or_path, err)) from err
    except Exception as err:  # damaged tokenizer files fail with the tokenizers' own types
        raise ModelLoadError(describe_load_failure(f"--model {name_or_path}", name_or_path,
                                                   err)) from err
    if tok.pad_token_id is None:
        if tok.eos_token is None:
            raise ModelLoadError(f"--model {name_or_path}: the tokenizer has neither a pad "
                                 "nor an EOS token; add one to its tokenizer_config.json")
        tok.pad_token = tok.eos_token
    return tok


def load_model(
    name_or_path: str | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    adapters: dict[str, str] | None = None,
) -> LoadedModel:
    """Load a causal LM, its tokenizer and optional LoRA adapters, in eval mode.

    Args:
        name_or_path: Hugging Face hub id or a local directory in the standard HF layout;
            None or ``"default"``: the shipped default model (``assets.resolve_model``), whose
            directory becomes ``LoadedModel.name``.
        device: ``auto`` (cuda, then mps, then cpu) or an explicit torch device string.
        dtype: ``auto`` (bf16 on CUDA where supported, else float32) or a dtype name.
        adapters: Adapter name -> PEFT adapter directory; all are attached to one
            ``PeftModel`` so a batch can mix them with the base model.

    Raises:
        ModelLoadError: With a one-line message naming the model or adapter and the fix.
    """

    name_or_path = resolve_model_name(name_or_path)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    try:
        check_config_json(name_or_path, f"--model {name_or_path}")
    except ValueError as err:
        raise ModelLoadError(str(err)) from None
    tokenizer = load_tokenizer(name_or_path)
    try:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch_dtype)
    except (OSError, ValueError) as err:
        raise ModelLoadError(_not_found_message(name_or_path, err)) from err
    except Exception as err:  # damaged or mismatched files: see modeling.load_errors
        raise ModelLoadError(describe_load_failure(f"--model {name_or_path}", name_or_path,
                                                   err)) from err
    model.to(dev)
    model.eval()
    loaded = LoadedModel(model, tokenizer, name_or_path, dev, torch_dtype)
    for adapter_name, adapter_dir in (adapters or {}).items():
        attach_adapter(loaded, adapter_name, adapter_dir)
    return loaded


def attach_adapter(loaded: LoadedModel, name: str, adapter_dir: str) -> None:
    """Attach a PEFT LoRA adapter under ``name`` (wrapping the model in PeftModel once)."""

    path = Path(adapter_dir)
    if not (path / "adapter_config.json").is_file():
        raise ModelLoadError(f"--adapter {name}={adapter_dir}: no adapter_config.json there; "
                             "pass a directory written by genlab train or PEFT save_pretrained")
    if name in loaded.adapters or name == "base":
        raise ModelLoadError(f"--adapter {name}={adapter_dir}: the name {name!r} is taken; "
                             "give each adapter its own name (and not 'base')")
    flag = f"--adapter {name}={adapter_dir}"
    try:
        check_config_json(path, flag, "adapter_config.json")
    except ValueError as err:
        raise ModelLoadError(str(err)) from None
    if not weight_files(path):
        raise ModelLoadError(f"{flag}: no adapter weights there (adapter_model.safetensors); "
                             "pass a complete adapter directory, e.g. RUN_DIR/adapter of a "
                             "finished genlab train run")
    try:
        if not loaded.adapters:
            loaded.model = PeftModel.from_pretrained(loaded.model, str(path), adapter_name=name)
        else:
            loaded.model.load_adapter(str(path), adapter_name=name)
    except Exception as err:  # noqa: BLE001 - every load failure is the adapter files' problem
        raise ModelLoadError(_adapter_failure(flag, str(path), loaded.name, err)) from err
    loaded.model.to(loaded.device)
    loaded.model.eval()
    loaded.adapters[name] = str(path)


def _adapter_failure(flag: str, adapter_dir: str, base: str, err: Exception) -> str:
    """One line for an adapter that did not attach (damaged files, or not made for ``base``)."""
    line = describe_load_failure(flag, adapter_dir, err, "adapter_config.json")
    if line.startswith(f"{flag}: cannot load "):  # nothing specific found: say what it met
        detail = " ".join(str(err).split())[:200] or type(err).__name__
        return f"{flag}: cannot load it onto {base} ({detail})"
    return line
