"""CPU threads: the one place genlab sets how many threads torch uses.

``use_threads(n)`` applies a ``threads`` knob (``RuntimeConfig.threads``, ``TrainConfig.threads``)
with ``torch.set_num_threads`` (and ``torch.set_num_interop_threads``, which torch allows once
per process, before its inter-op pool starts) and returns the number in force, which every
output records. Not set means ``default_threads()``: ``OMP_NUM_THREADS`` when the user set it,
else the physical cores this process may use (hyper-threads share a core's vector units, so a
second thread per core rarely helps matrix work).

torch keeps the intra-op count per OS thread once that thread has run parallel work, so the
code that runs a model calls ``use_threads`` again in its own thread (the TUI loads in one
worker thread and generates in others); the call is cheap when nothing changes.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import torch

from genlab.core.configs import ConfigError

_INTEROP_LOCK = threading.Lock()
_interop_tried = False


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (cgroup CPU quota included).

    Linux reads each allowed CPU's core and package ids from sysfs; elsewhere (no sysfs) the
    logical CPU count is the answer.
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(),
                       (topology / "core_id").read_text().strip()))
        except OSError:
            cores.add(("cpu", str(cpu)))
    count = len(cores) or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(count, int(quota))) if quota else count


def _cgroup_cpu_quota() -> float | None:
    """CPUs a cgroup v2 ``cpu.max`` quota allows (a container's ``--cpus``), or None."""
    try:
        limit, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if limit == "max":
        return None
    try:
        return max(1.0, int(limit) / int(period))
    except (ValueError, ZeroDivisionError):
        return None


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when set to a positive integer, else ``physical_cores()``."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return physical_cores()


def use_threads(threads: int | None = None) -> int:
    """Make torch use ``threads`` CPU threads (None: ``default_threads()``); return the count.

    Raises:
        ConfigError: ``threads`` is not an integer >= 1.
    """
    if threads is None:
        threads = default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError("threads", threads, "an integer >= 1")
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    _set_interop_once(threads)
    return threads


def _set_interop_once(threads: int) -> None:
    """Size torch's inter-op pool the first time (later calls: torch refuses; it stays)."""
    global _interop_tried
    with _INTEROP_LOCK:
        if _interop_tried:
            return
        _interop_tried = True
        with contextlib.suppress(RuntimeError):  # refused once the pool has started
            torch.set_num_interop_threads(threads)
