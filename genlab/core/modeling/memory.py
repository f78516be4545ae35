"""Memory figures of a loaded model: bytes in words, the process's resident and peak memory.

``LoadedModel.memory_text`` and the benchmarks read these; the peak is the process's
high-water mark (``getrusage``), so it includes loading's transients.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")


def format_bytes(n: float) -> str:
    """``538 MB``, ``1.2 GB``, ``12 KB``."""
    for scale, unit in ((1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{int(n)} B"


def peak_process_memory() -> int:
    """The process's peak resident memory in bytes (0 where the OS does not say).

    Linux: ``VmHWM`` of ``/proc/self/status``, this program's own high-water mark
    (``getrusage``'s ``ru_maxrss`` also counts the process that started it, when that one
    forked a bigger image before exec).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # macOS: bytes; else KB


def current_process_memory() -> int:
    """The process's resident memory now, in bytes (0 where /proc is not there)."""
    try:
        resident = Path("/proc/self/statm").read_text().split()[1]
    except (OSError, IndexError):
        return 0
    return int(resident) * os.sysconf("SC_PAGE_SIZE")


def weight_file_bytes(name_or_path: str) -> int:
    """Bytes of the weight files of a local model (a directory or a GGUF file); 0 otherwise."""
    path = Path(name_or_path)
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    files = [p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES[:2] and p.is_file()]
    return sum(p.stat().st_size for p in files)
