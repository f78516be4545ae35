"""Memory-mapped weights on the CPU: change a model's dtype without holding two copies.

``from_pretrained`` on the CPU memory-maps ``.safetensors`` files: a model loaded in its stored
dtype costs nothing until a forward touches its pages, and then exactly the file's size. Asking
``from_pretrained`` for another dtype instead reads every page of the file while it converts,
so the whole file and the converted copy are resident at once (a float32 checkpoint loaded as
bfloat16 peaks at 3x the result). ``convert_dtype`` converts one tensor at a time and hands the
file pages it has read back to the kernel (``madvise(MADV_DONTNEED)``; they stay in the page
cache), so the peak is the converted weights plus one tensor.

Only pages that lie wholly inside a converted tensor and inside a mapping of a
``.safetensors`` file are released: clean file-backed pages, which the kernel would read back
from the file if they were touched again. Elsewhere (no ``/proc/self/maps``, not Linux) the
conversion still happens, only without the release.
"""

from __future__ import annotations

import ctypes
import json
import mmap
import struct
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

MADV_DONTNEED = 4
WEIGHT_SUFFIX = ".safetensors"
SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
                      "BF16": torch.bfloat16}
"""The safetensors header's names of the float dtypes a model's weights come in."""
MAX_HEADER = 100 << 20


def stored_dtype(model_dir: str) -> torch.dtype | None:
    """The one float dtype every tensor of a local model's ``.safetensors`` files has, or None
    (no such files, a damaged header, or several float dtypes): read from the file headers,
    not from ``config.json``, which may name another dtype than the weights have."""
    directory = Path(model_dir)
    files = sorted(directory.glob("*" + WEIGHT_SUFFIX)) if directory.is_dir() else []
    found: set[str] = set()
    for path in files:
        try:
            with path.open("rb") as fh:
                (length,) = struct.unpack("<Q", fh.read(8))
                if length > MAX_HEADER:
                    return None
                header = json.loads(fh.read(length))
        except (OSError, struct.error, ValueError):
            return None
        found |= {entry.get("dtype") for key, entry in header.items()
                  if key != "__metadata__" and isinstance(entry, dict)}
    floats = {d for d in found if d in SAFETENSORS_DTYPES or str(d).startswith("F8")}
    if len(floats) != 1 or not (found - floats) <= {"I64", "I32", "I16", "I8", "U8", "BOOL"}:
        return None
    return SAFETENSORS_DTYPES.get(floats.pop())


def file_mappings() -> list[tuple[int, int]]:
    """``(start, end)`` addresses of this process's mappings of ``.safetensors`` files."""
    if not sys.platform.startswith("linux"):
        return []
    ranges = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                parts = line.split(maxsplit=5)
                if len(parts) == 6 and parts[5].rstrip().endswith(WEIGHT_SUFFIX):
                    start, end = (int(x, 16) for x in parts[0].split("-"))
                    ranges.append((start, end))
    except OSError:
        return []
    return ranges


class PageReleaser:
    """Hands back the file pages of tensors that are no longer used (see the module doc)."""

    def __init__(self) -> None:
        self.ranges = file_mappings()
        self.released = 0
        self._madvise: Any = None
        if self.ranges:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            self._madvise = libc.madvise

    def release(self, tensor: torch.Tensor) -> None:
        """Release the whole pages of ``tensor``'s bytes that lie in a weight-file mapping."""
        if self._madvise is None or tensor.device.type != "cpu" or tensor.numel() == 0:
            return
        start = tensor.data_ptr()
        end = start + tensor.numel() * tensor.element_size()
        if not any(lo <= start and end <= hi for lo, hi in self.ranges):
            return
        page = mmap.PAGESIZE
        first, last = -(-start // page) * page, end // page * page  # whole pages only
        if last > first and self._madvise(first, last - first, MADV_DONTNEED) == 0:
            self.released += last - first


def _kept_in_float32(model: Any, name: str) -> bool:
    """True for parameters transformers keeps in float32 in a 16-bit model."""
    keep = set(getattr(model, "_keep_in_fp32_modules", None) or ())
    keep |= set(getattr(model, "_keep_in_fp32_modules_strict", None) or ())
    return bool(keep) and any(part in keep for part in name.split("."))


def convert_dtype(model: Any, dtype: torch.dtype) -> int:
    """Cast ``model``'s floating parameters to ``dtype`` in place, one at a time.

    Parameters stay the same objects (tied weights stay tied) and buffers keep their dtype,
    as ``from_pretrained(dtype=...)`` leaves them; modules a model keeps in float32
    (``_keep_in_fp32_modules``) stay float32 for a 16-bit ``dtype``. Returns the bytes of file
    pages handed back.
    """
    releaser = PageReleaser()
    seen: set[int] = set()
    with torch.no_grad():
        for name, param in _named_parameters(model):
            if id(param) in seen or not param.is_floating_point() or param.dtype == dtype:
                continue
            seen.add(id(param))
            if dtype != torch.float32 and _kept_in_float32(model, name):
                continue
            old = param.data
            param.data = old.to(dtype)
            releaser.release(old)
            del old
    return releaser.released


def _named_parameters(model: Any) -> Iterable[tuple[str, torch.nn.Parameter]]:
    return model.named_parameters(remove_duplicate=False)
