"""Model and tokenizer loading: the only module that calls ``from_pretrained``.

Owns the choice of device (cuda, then mps, then cpu) and dtype (bf16 on CUDA where supported,
else float32), turning "not found" failures into a one-line ``ModelLoadError`` that names the
model and the fix, and attaching PEFT LoRA adapters by name so that one batch can mix the base
model and several adapters. Damaged or mismatched files (a truncated ``.safetensors``, a
wrong-typed ``config.json`` value, a refused pickle) are one-line ``ModelLoadError`` too, worded
by ``modeling.load_errors``. ``load_model(None)`` (or ``"default"``) loads the model shipped in
``genlab/assets`` (``genlab.assets.resolve_model``, the one default-model resolver).

GGUF files (``--model file.gguf``, a directory holding one, ``gguf_file=`` for one of several;
see ``genlab.core.modeling.gguf``) load through transformers' GGUF support, dequantized to
dense weights (``GgufConfig(dequantize=True)``): transformers otherwise marks such a model as
quantized and refuses ``save_pretrained``, so merging and checkpoints would fail. Loading
reports its stages through ``on_progress`` (the core never prints; the faces show them), and
``LoadedModel`` says what it costs: parameters, weight bytes, the process's peak memory.

On the CPU a checkpoint is loaded in its stored dtype, so its ``.safetensors`` stay
memory-mapped, and then cast tensor by tensor (``modeling.mapped``): loading never holds the
file and a converted copy at once. ``threads`` (``modeling.threads``) and ``quantize``
(``modeling.quantize``: int8 on the CPU, bitsandbytes on CUDA) are applied here and recorded
on the ``LoadedModel``, so every output can say how the model ran.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
from transformers.utils import logging as hf_logging

from genlab import assets
from genlab.core.configs import ConfigError
from genlab.core.errors import GenlabError
from genlab.core.modeling.cpu_dtype import dtype_note
from genlab.core.modeling.gguf import GgufError, GgufFile, check_gguf, find_gguf
from genlab.core.modeling.load_errors import (
    check_config_json,
    describe_load_failure,
    weight_files,
)
from genlab.core.modeling.mapped import convert_dtype, stored_dtype
from genlab.core.modeling.memory import (
    current_process_memory,
    format_bytes,
    peak_process_memory,
    weight_file_bytes,
)
from genlab.core.modeling.quantize import (
    QuantizeError,
    bitsandbytes_args,
    check_quantize,
    int8_weight_bytes,
    quantize_int8,
)
from genlab.core.modeling.threads import use_threads

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length",
                "n_ctx")
"""Config attributes that hold a model's context length, in the order they are trusted."""
Progress = Callable[[str], None]
"""Called with a short description of each loading stage (``reading 538 MB of weights``)."""
_GGUF_LOCK = threading.Lock()


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
    gguf: GgufFile | None = None
    """The GGUF file the weights came from, or None for a Hugging Face checkpoint."""
    threads: int | None = None
    """CPU threads torch was set to use for this model (``modeling.threads``)."""
    quantize: str = "none"
    """The weight quantization applied (``configs.runtime.QUANTIZE``)."""
    notes: tuple[str, ...] = ()
    """Warnings a face should show beside the loaded line (e.g. a slow dtype on this CPU)."""
    compile: bool = False
    """Decode steps run ``torch.compile``d (``generation.model_step``)."""

    @property
    def num_parameters(self) -> int:
        """Parameters of the base model (adapters excluded; int8 layers counted too)."""
        dense = sum(p.numel() for name, p in self.model.named_parameters()
                    if "lora_" not in name)
        return dense + (int8_weight_bytes(self.model)[0] if self.quantize == "int8" else 0)

    @property
    def weight_bytes(self) -> int:
        """Bytes the base model's parameters and buffers take in memory."""
        tensors = [*self.model.named_parameters(), *self.model.named_buffers()]
        dense = sum(t.numel() * t.element_size() for name, t in tensors if "lora_" not in name)
        return dense + (int8_weight_bytes(self.model)[1] if self.quantize == "int8" else 0)

    @property
    def runtime(self) -> dict[str, Any]:
        """How the model runs, JSON-able: device, dtype, quantize and CPU threads."""
        return {"device": str(self.device), "dtype": str(self.dtype).removeprefix("torch."),
                "quantize": self.quantize, "threads": self.threads, "compile": self.compile}

    @property
    def context_length(self) -> int | None:
        """Positions the model handles (prompt + generated tokens), or None when unknown."""
        return context_length(self.model, self.tokenizer)

    def memory_text(self) -> str:
        """``538 MB weights · 612 MB process memory (peak 1.1 GB)`` (plus GPU memory on CUDA).

        The peak includes loading's transients (e.g. a float32 checkpoint read for a bf16
        model), so the current figure is what the model costs from now on.
        """
        parts = [f"{format_bytes(self.weight_bytes)} weights"]
        if self.device.type == "cuda":
            parts.append(f"{format_bytes(torch.cuda.memory_allocated(self.device))} GPU memory "
                         f"(peak {format_bytes(torch.cuda.max_memory_allocated(self.device))})")
        now, peak = current_process_memory(), peak_process_memory()
        if now and peak:
            parts.append(f"{format_bytes(now)} process memory (peak {format_bytes(peak)})")
        elif peak:
            parts.append(f"{format_bytes(peak)} peak process memory")
        return " · ".join(parts)

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
        if self.quantize != "none":
            dtype = f"{self.quantize} weights, {dtype} compute"
        threads = "" if self.threads is None else (
            f", {self.threads} thread{'s' if self.threads != 1 else ''}")
        compiled = ", compiled" if self.compile else ""
        return f"{self.name} ({size} params, {self.device.type}, {dtype}{threads}{compiled})"


def context_length(model: Any, tokenizer: Any = None) -> int | None:
    """The model's context length from its config (or a sane tokenizer limit), else None."""
    config = getattr(model, "config", None)
    for key in CONTEXT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 10**7:  # HF uses ~1e30 for "not set"
        return limit
    return None


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


def _gguf_source(name: str, gguf_file: str | None) -> GgufFile | None:
    """The GGUF file ``name`` points at (checked), or None; errors become ModelLoadError."""
    try:
        source = find_gguf(name, gguf_file)
        if source is not None and source.local:
            check_gguf(source.path)
    except GgufError as err:
        raise ModelLoadError(str(err)) from None
    return source


def _from_pretrained_args(name: str, source: GgufFile | None) -> tuple[str, dict[str, Any]]:
    if source is None:
        return name, {}
    return source.directory, {"gguf_file": source.filename}


def load_tokenizer(name_or_path: str, *, gguf_file: str | None = None) -> Any:
    """Load a tokenizer and make sure it has a pad token (EOS is used when it has none).

    ``name_or_path`` may be a GGUF file (or a directory holding one): its embedded tokenizer
    and chat template are used.
    """

    quiet_transformers()
    source = _gguf_source(name_or_path, gguf_file)
    where, kwargs = _from_pretrained_args(name_or_path, source)
    try:
        with _quiet_gguf(None):
            tok = AutoTokenizer.from_pretrained(where, **kwargs)
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
    gguf_file: str | None = None,
    on_progress: Progress | None = None,
    quantize: str = "none",
    threads: int | None = None,
    compile: bool = False,
) -> LoadedModel:
    """Load a causal LM, its tokenizer and optional LoRA adapters, in eval mode.

    Args:
        name_or_path: Hugging Face hub id, a local directory in the standard HF layout, a
            ``.gguf`` file or a directory holding one; None or ``"default"``: the shipped
            default model (``assets.resolve_model``), whose directory becomes
            ``LoadedModel.name``.
        device: ``auto`` (cuda, then mps, then cpu) or an explicit torch device string.
        dtype: ``auto`` (bf16 on CUDA where supported, else float32) or a dtype name.
        adapters: Adapter name -> PEFT adapter directory; all are attached to one
            ``PeftModel`` so a batch can mix them with the base model.
        gguf_file: The GGUF file to use inside a directory (or hub repo) holding several.
        on_progress: Called with a short text at each loading stage.
        quantize: ``none``; ``int8``: dynamic int8 linear layers for CPU inference (float32
            compute); ``8bit`` / ``4bit`` (NF4, double-quantised, computing in ``dtype``):
            bitsandbytes weights on CUDA (QLoRA's frozen base). See ``modeling.quantize``.
        threads: CPU threads for torch (None: ``modeling.threads.default_threads()``).
        compile: Decode with a ``torch.compile``d step (``generation.model_step``); not with
            ``quantize``.

    Raises:
        ModelLoadError: With a one-line message naming the model or adapter and the fix.
    """

    report = on_progress or (lambda _text: None)
    name_or_path = resolve_model_name(name_or_path)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    threads_used = _apply_threads(threads)
    try:
        check_config_json(name_or_path, f"--model {name_or_path}")
    except ValueError as err:
        raise ModelLoadError(str(err)) from None
    source = _gguf_source(name_or_path, gguf_file)
    try:
        check_quantize(quantize, dev, torch_dtype, gguf=source is not None, compile=compile)
    except QuantizeError as err:
        raise ModelLoadError(str(err)) from None
    report("reading the tokenizer")
    tokenizer = load_tokenizer(name_or_path, gguf_file=gguf_file)
    model = _load_weights(name_or_path, source, dev, torch_dtype, quantize, report)
    shown = source.path if source is not None else name_or_path
    notes = tuple(n for n in (dtype_note(torch_dtype, dev),) if n)
    loaded = LoadedModel(model, tokenizer, shown, dev, torch_dtype, gguf=source,
                         threads=threads_used, notes=notes, compile=compile)
    for adapter_name, adapter_dir in (adapters or {}).items():
        report(f"attaching adapter {adapter_name}")
        attach_adapter(loaded, adapter_name, adapter_dir)
    if quantize == "int8":  # after the adapters: their LoRA matrices stay float32
        report("quantizing the linear layers to int8")
        quantize_int8(loaded.model)
    loaded.quantize = quantize
    return loaded


def _apply_threads(threads: int | None) -> int:
    try:
        return use_threads(threads)
    except ConfigError as err:
        raise ModelLoadError(f"--threads {threads}: must be {err.expected}") from None


def _load_weights(name: str, source: GgufFile | None, dev: torch.device, dtype: torch.dtype,
                  quantize: str, report: Progress) -> Any:
    """``from_pretrained`` in eval mode on ``dev`` in ``dtype``.

    On the CPU a checkpoint whose ``.safetensors`` hold one float dtype is loaded in that dtype
    (memory-mapped, nothing copied) and then cast tensor by tensor (``modeling.mapped``).
    """
    where, kwargs = _from_pretrained_args(name, source)
    if source is not None:
        kwargs["quantization_config"] = GgufConfig(dequantize=True)
    kwargs.update(bitsandbytes_args(quantize, dtype, dev))
    stored = stored_dtype(name) if dev.type == "cpu" and source is None else None
    size = weight_file_bytes(source.path if source is not None else name)
    report(f"reading {format_bytes(size)} of weights" if size else "reading the weights")
    try:
        with _quiet_gguf(report):
            model = AutoModelForCausalLM.from_pretrained(where, dtype=stored or dtype, **kwargs)
    except (OSError, ValueError) as err:
        raise ModelLoadError(_not_found_message(name, err)) from err
    except Exception as err:  # damaged or mismatched files: see modeling.load_errors
        raise ModelLoadError(describe_load_failure(f"--model {name}", name, err)) from err
    if stored is not None and stored != dtype:
        report(f"casting the weights to {str(dtype).removeprefix('torch.')}")
        convert_dtype(model, dtype)
        model.config.dtype = dtype  # as from_pretrained(dtype=...) records it
    if quantize not in ("8bit", "4bit"):  # bitsandbytes places the model by device_map
        if dev.type != "cpu":
            report(f"moving the weights to {dev}")
        model.to(dev)
    return model.eval()


@contextlib.contextmanager
def _quiet_gguf(report: Progress | None) -> Iterator[None]:
    """Route transformers' GGUF tensor progress bar (a bare tqdm that ignores transformers'
    progress-bar switch) to ``report`` instead of the terminal: the core never prints."""
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # pragma: no cover - transformers without GGUF support
        yield
        return
    if not hasattr(gguf_utils, "tqdm"):
        yield
        return

    def counted(iterable: Any, *_args: Any, **_kwargs: Any) -> Iterator[Any]:
        items = list(iterable)
        for i, item in enumerate(items, start=1):
            if report is not None and (i == len(items) or i % 16 == 0):
                report(f"dequantizing GGUF tensors {i}/{len(items)}")
            yield item

    with _GGUF_LOCK:
        original = gguf_utils.tqdm
        gguf_utils.tqdm = counted
        try:
            yield
        finally:
            gguf_utils.tqdm = original


def attach_adapter(loaded: LoadedModel, name: str, adapter_dir: str) -> None:
    """Attach a PEFT LoRA adapter under ``name`` (wrapping the model in PeftModel once)."""

    if loaded.quantize == "int8":
        raise ModelLoadError(f"--adapter {name}={adapter_dir}: the model is int8-quantized; "
                             "adapters attach when it loads (pass --adapter with --quantize "
                             "int8), or reload it without --quantize")
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
