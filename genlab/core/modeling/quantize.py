"""Weight quantization: which ``--quantize`` choice fits where, and applying it.

One vocabulary (``configs.runtime.QUANTIZE``), one place that maps it to a backend:

* ``int8`` (inference on the CPU): every ``nn.Linear`` of the model (LoRA matrices excepted)
  becomes torch's dynamic int8 linear: int8 weights with one scale per output channel,
  activations quantized per call (to all 8 bits where the CPU has VNNI), the x86/fbgemm int8
  kernels (``torch.ao.nn.quantized.dynamic``). Embeddings, norms and attention stay float32.
  The float weights of each layer are dropped (their file pages handed back,
  ``modeling.mapped``) as soon as it is quantized.
* ``8bit`` / ``4bit`` (CUDA): bitsandbytes LLM.int8 / NF4 through ``from_pretrained``'s
  ``quantization_config``, also QLoRA's training base.

``check_quantize`` turns a choice that cannot work on this device or dtype into one
``QuantizeError`` line naming the flag and the fix, before any weights are read.
"""

from __future__ import annotations

import types
import warnings
from typing import Any

import torch
from torch import nn

from genlab.core.configs.runtime import QUANTIZE
from genlab.core.modeling.cpu_dtype import cpu_flags
from genlab.core.modeling.mapped import PageReleaser


class QuantizeError(ValueError):
    """A ``--quantize`` choice that does not fit the device, dtype or model; says the fix."""


def check_quantize(quantize: str, device: torch.device, dtype: torch.dtype,
                   gguf: bool = False, compile: bool = False) -> None:
    """Raise ``QuantizeError`` unless ``quantize`` can run on ``device`` in ``dtype`` (and,
    with ``compile``, compiled)."""
    flag = f"--quantize {quantize}"
    if quantize not in QUANTIZE:
        raise QuantizeError(f"{flag}: unknown choice; use one of {', '.join(QUANTIZE)}")
    if quantize == "none":
        return
    if compile:
        raise QuantizeError(f"{flag} with --compile: quantized layers run slower compiled "
                            "than eagerly; drop --compile")
    if gguf and quantize != "int8":
        raise QuantizeError(f"{flag}: a GGUF base is loaded dequantized; pass a Hugging Face "
                            "checkpoint to quantize, or --quantize none")
    if quantize == "int8":
        if device.type != "cpu":
            raise QuantizeError(f"{flag}: int8 is dynamic int8 for the CPU; on {device.type} "
                                "use --quantize 8bit or 4bit (bitsandbytes, CUDA) or none")
        if dtype != torch.float32:
            name = str(dtype).removeprefix("torch.")
            raise QuantizeError(f"{flag}: int8 layers compute in float32 on the CPU, but "
                                f"--dtype is {name}; drop --dtype (or pass float32)")
        try:
            _dynamic_linear()
        except ImportError:
            raise QuantizeError(f"{flag}: this torch has no dynamic int8 layers "
                                "(torch.ao.nn.quantized.dynamic); use --dtype float16 for "
                                "lighter weights") from None
        if "x86" not in torch.backends.quantized.supported_engines and \
                "fbgemm" not in torch.backends.quantized.supported_engines:
            raise QuantizeError(f"{flag}: this torch build has no x86 int8 kernels "
                                f"(engines: {torch.backends.quantized.supported_engines}); "
                                "use --dtype float16 for lighter weights")
        return
    if device.type != "cuda":
        raise QuantizeError(f"{flag}: bitsandbytes quantization needs a CUDA GPU, but this is "
                            f"{device.type}; on the CPU use --quantize int8, or none")


def bitsandbytes_args(quantize: str, dtype: torch.dtype, device: torch.device
                      ) -> dict[str, Any]:
    """``from_pretrained`` arguments of a bitsandbytes 8-/4-bit load ({} for other choices)."""
    if quantize not in ("8bit", "4bit"):
        return {}
    from transformers import BitsAndBytesConfig

    if quantize == "4bit":
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                    bnb_4bit_use_double_quant=True,
                                    bnb_4bit_compute_dtype=dtype)
    else:
        config = BitsAndBytesConfig(load_in_8bit=True)
    return {"quantization_config": config, "device_map": {"": device.index or 0}}


def _dynamic_linear() -> tuple[Any, Any]:
    """torch's dynamic int8 ``Linear`` class and its per-channel qconfig (warnings muted)."""
    with warnings.catch_warnings():  # torch marks the eager quantization API deprecated
        warnings.simplefilter("ignore")
        from torch.ao.nn.quantized.dynamic import Linear
        from torch.ao.quantization import per_channel_dynamic_qconfig
    return Linear, per_channel_dynamic_qconfig


def full_range_activations() -> bool:
    """True where int8 products accumulate without saturating (AVX-512 VNNI or AVX-VNNI).

    torch's dynamic linear quantizes activations to 7 bits by default because the AVX2 int8
    instruction sums pairs of products into saturating 16-bit lanes; VNNI accumulates in
    32 bits, so all 8 bits are safe and the answers move 4x less (KL to float32 on the
    shipped model: 0.013 instead of 0.054).
    """
    return bool(cpu_flags() & {"avx512_vnni", "avx_vnni"})


def _int8_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    """The dynamic int8 linear, with 8-bit activations where ``full_range_activations``."""
    out = torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params,
                                             reduce_range=self.reduce_range)
    return out.to(x.dtype)


def quantize_int8(model: nn.Module) -> int:
    """Replace every plain ``nn.Linear`` (LoRA matrices excepted) by a dynamic int8 linear.

    One layer at a time: its float weight is dropped and its file pages handed back before the
    next, so peak memory stays near the quantized model's. Returns how many layers changed.
    """
    linear_cls, qconfig = _dynamic_linear()
    reduce_range = not full_range_activations()
    releaser = PageReleaser()
    targets = [(name, module) for name, module in model.named_modules()
               if type(module) is nn.Linear and "lora_" not in name]
    # The largest first (an LM head): its float copy while it quantizes comes before the
    # other layers' int8 weights have added up.
    targets.sort(key=lambda item: -item[1].weight.numel())
    parents = dict(model.named_modules())
    embeddings = _input_embedding_weight(model)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized-tensor creation is marked deprecated too
        for name, module in targets:
            parent_name, _, child = name.rpartition(".")
            module.qconfig = qconfig
            quantized = linear_cls.from_float(module)
            quantized.reduce_range = reduce_range
            quantized.tied_to_embedding = module.weight is embeddings  # counted once
            quantized.forward = types.MethodType(_int8_forward, quantized)
            setattr(parents[parent_name] if parent_name else model, child, quantized)
            weight = module.weight.data
            del module.qconfig
            releaser.release(weight)
    return len(targets)


def _input_embedding_weight(model: nn.Module) -> Any:
    get = getattr(model, "get_input_embeddings", None)
    embedding = get() if callable(get) else None
    return getattr(embedding, "weight", None)


def int8_layers(model: nn.Module) -> list[Any]:
    """The model's dynamic int8 linear layers (empty when it is not int8-quantized)."""
    linear_cls, _ = _dynamic_linear()
    return [m for m in model.modules() if isinstance(m, linear_cls)]


def int8_weight_bytes(model: nn.Module) -> tuple[int, int]:
    """``(parameters, bytes)`` the int8 layers hold: 1 byte a weight, plus each output
    channel's scale and zero point and the float32 bias. A layer quantized from a weight tied
    to the input embedding (a tied LM head) adds bytes (its own int8 copy) but no parameters."""
    params = size = 0
    for layer in int8_layers(model):
        weights = layer.in_features * layer.out_features
        bias = layer.out_features if layer.bias() is not None else 0
        if not getattr(layer, "tied_to_embedding", False):
            params += weights + bias
        size += weights + 4 * bias + 16 * layer.out_features
    return params, size
