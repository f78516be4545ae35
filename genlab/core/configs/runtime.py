"""How a model runs on this machine: CPU threads and weight quantization, for every command.

``RuntimeConfig`` declares the knobs that do not change what a model computes, only where and
how fast: ``threads`` (torch's CPU threads) and ``quantize`` (lighter weights for inference).
``genlab sample``, ``tui``, ``compare`` and ``merge`` take them as flags generated from these
fields; training takes ``threads`` as a ``TrainConfig`` knob of the same name and range.
``compile`` (``torch.compile`` of the decode step) is the third.

``QUANTIZE`` is genlab's one quantization vocabulary. Which choice fits depends on the device
and the command, and ``genlab.core.modeling.quantize`` says so in one line when it does not:

* ``int8``: int8 weights with int8 activations computed per call (torch's dynamic
  quantization, its x86/fbgemm kernels) for inference on the CPU.
* ``8bit`` / ``4bit``: bitsandbytes LLM.int8 / NF4 weights on a CUDA GPU, for inference and as
  QLoRA's frozen training base (``TRAIN_QUANTIZE``).

Standard library only (read at ``--help`` time).
"""

from __future__ import annotations

from dataclasses import dataclass

from genlab.core.configs.knobs import knob, validate_knobs

QUANTIZE = ("none", "int8", "8bit", "4bit")
"""Every quantization choice genlab knows (inference takes them all, on a fitting device)."""
TRAIN_QUANTIZE = ("none", "4bit", "8bit")
"""The choices training takes: QLoRA's bitsandbytes bases (int8 has no training path)."""
RUNTIME_PANEL = "Model"
THREADS_DEFAULT = "the physical cores"
"""How the default of a ``threads`` knob reads in help (the number depends on the machine)."""


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how fast a loaded model runs; none of it changes the sampling settings."""

    threads: int | None = knob(
        None, low=1, panel=RUNTIME_PANEL, metavar="N", label="threads",
        intuition="CPU threads per step; on a busy shared machine 1 is often fastest")
    """CPU threads torch uses for the model's matrix work (intra-op, and inter-op once per
    process). Not set: the machine's physical cores. Where other jobs share the cores (a busy
    2-core VM), 1 is often several times faster: every step waits for its slowest thread."""
    quantize: str = knob(
        "none", choices=QUANTIZE, panel=RUNTIME_PANEL, metavar="none|int8|8bit|4bit",
        label="quantize",
        intuition="lighter weights for inference: int8 on the CPU, 8bit/4bit on CUDA")
    """Weight quantization for inference. int8: int8 weights, activations quantized per call
    (torch's dynamic int8 on the CPU; the rest computes in float32, so leave ``dtype`` at
    auto or float32); 8bit / 4bit: bitsandbytes LLM.int8 / NF4 on a CUDA GPU (the cuda
    extra). Answers move slightly; the README's speed section measures by how much."""

    compile: bool = knob(
        False, panel=RUNTIME_PANEL, label="compile",
        intuition="torch.compile the decode step: faster steps after a slow first one")
    """torch.compile the one-token decode step (static KV cache, fixed shapes; CUDA graphs on
    CUDA). The first step of a run compiles: about a minute on a CPU, a few seconds once
    inductor's on-disk cache has the kernels. Batches with LoRA adapter rows run eagerly;
    not with ``quantize`` (its layers compile to slower code than they run eagerly)."""

    def __post_init__(self) -> None:
        validate_knobs(self)
