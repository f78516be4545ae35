"""What a 16-bit dtype costs on this CPU: the note a face shows beside the loaded model.

torch's bfloat16 matrix kernels are fast on x86 CPUs with AMX tiles (Intel Sapphire Rapids and
later); without them (AVX-512 BF16 alone, or AVX2) a bfloat16 matrix-vector product, the whole
work of a decode step, runs slower per byte than float32 (measured on an AVX-512 BF16 CPU
without AMX: 7 GB/s against float32's 11 and float16's 16; README, speed section), so float16,
same size, is the better 16-bit choice there. The flags come from ``/proc/cpuinfo`` (Linux);
elsewhere nothing is said.
"""

from __future__ import annotations

import functools
import platform

import torch


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where it does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def dtype_note(dtype: torch.dtype, device: torch.device) -> str | None:
    """A one-line warning when ``dtype`` is a slow choice on this CPU, else None."""
    if device.type != "cpu" or dtype != torch.bfloat16:
        return None
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    flags = cpu_flags()
    if not flags or "amx_bf16" in flags:
        return None
    return ("bfloat16 on a CPU without AMX: torch's bfloat16 matrix kernels are slow here; "
            "--dtype float16 (same size) or --quantize int8 is usually faster on the CPU")
