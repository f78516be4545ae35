"""Local worker processes of a sweep (``workers > 1``): start them, relay their events, stop them.

Each worker is ``python -m genlab.core.experiments.worker`` (a fresh interpreter, so it works from
scripts and notebooks without a ``__main__`` guard, unlike multiprocessing's spawn). The parent
writes the job (spec, output directory, storage URL, ...) as one pickled frame on the child's
stdin and keeps stdin open: closing it, or writing a byte, asks the worker to stop its trial at
the next step (so a killed parent never leaves workers training). The child streams its events
back as length-prefixed pickled frames on a dedicated pipe; its own stdout and stderr (library
warnings) go to ``<out>/workers/worker-<i>.log``.
"""

from __future__ import annotations

import os
import pickle
import queue as queue_mod
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from genlab.core.events import StopToken
from genlab.core.experiments.events import WorkerFailed

LOG_DIR = "workers"
_HEADER = struct.Struct("!Q")


@dataclass(frozen=True)
class WorkerJob:
    """What one worker process runs."""

    spec: Any
    out_dir: str
    storage: str
    model: str
    worker: int
    threads: int
    seed_offset: int


@dataclass(frozen=True)
class _Done:
    worker: int
    error: str = ""


def write_frame(stream: BinaryIO, obj: Any) -> None:
    """Write ``obj`` as one length-prefixed pickle frame and flush."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: BinaryIO) -> Any:
    """Read one frame; raises ``EOFError`` at the end of the stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)  # noqa: S301 - frames come from our own child process


# ----------------------------------------------------------------------------- parent side


def iter_workers(jobs: list[WorkerJob], stop: StopToken) -> Iterator[Any]:
    """Run one process per job; yield their events until all have ended."""
    inbox: queue_mod.Queue = queue_mod.Queue()
    procs = [_start(job, inbox) for job in jobs]
    alive = {job.worker for job in jobs}
    stop_sent = False
    try:
        while alive:
            if stop.stopped and not stop_sent:
                stop_sent = True
                for proc in procs:
                    _signal_stop(proc)
            try:
                item = inbox.get(timeout=0.2)
            except queue_mod.Empty:
                continue
            if isinstance(item, _Done):
                alive.discard(item.worker)
                if item.error:
                    yield WorkerFailed(item.worker, item.error)
            else:
                yield item
    finally:
        for proc in procs:
            _signal_stop(proc)
        for proc in procs:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _start(job: WorkerJob, inbox: queue_mod.Queue) -> subprocess.Popen:
    read_fd, write_fd = os.pipe()
    log_dir = Path(job.out_dir) / LOG_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(job.threads), "TOKENIZERS_PARALLELISM": "false"}
    with open(log_dir / f"worker-{job.worker}.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "genlab.core.experiments.worker", str(write_fd)],
            stdin=subprocess.PIPE, stdout=log, stderr=log, pass_fds=(write_fd,), env=env)
    os.close(write_fd)
    assert proc.stdin is not None
    write_frame(proc.stdin, job)
    reader = threading.Thread(target=_relay, args=(job.worker, read_fd, proc, inbox),
                              daemon=True)
    reader.start()
    return proc


def _relay(worker: int, fd: int, proc: subprocess.Popen, inbox: queue_mod.Queue) -> None:
    done = False
    with os.fdopen(fd, "rb") as stream:
        while True:
            try:
                item = read_frame(stream)
            except (EOFError, OSError, pickle.UnpicklingError):
                break
            done = done or isinstance(item, _Done)
            inbox.put(item)
    if not done:
        code = proc.wait()
        inbox.put(_Done(worker, f"worker {worker} exited with code {code} (see "
                                f"{LOG_DIR}/worker-{worker}.log)"))


def _signal_stop(proc: subprocess.Popen) -> None:
    try:
        if proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()
    except OSError:
        pass


# ----------------------------------------------------------------------------- child side


def _child(events_fd: int) -> int:
    """A worker process: read the job, run trials, stream events, stop when stdin closes."""

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into a stop
    events = os.fdopen(events_fd, "wb")
    job: WorkerJob = read_frame(sys.stdin.buffer)
    stop = StopToken()

    def watch() -> None:
        try:
            sys.stdin.buffer.read(1)
        finally:
            stop.stop()

    threading.Thread(target=watch, daemon=True).start()
    try:
        import torch

        from genlab.core.experiments.storage import make_storage
        from genlab.core.experiments.study import open_study
        from genlab.core.experiments.trial_loop import iter_worker

        torch.set_num_threads(job.threads)
        study = open_study(job.spec, make_storage(job.storage), seed_offset=job.seed_offset)
        for event in iter_worker(job.spec, study, Path(job.out_dir), job.model, stop,
                                 job.worker):
            write_frame(events, event)
        write_frame(events, _Done(job.worker))
    except BaseException as err:  # reported to the parent, which shows it
        first = str(err).splitlines()[0] if str(err) else ""
        write_frame(events, _Done(job.worker, f"{type(err).__name__}: {first}"[:300]))
        raise
    return 0


if __name__ == "__main__":
    # Run from the importable module, so pickled events name genlab.core.experiments.worker classes.
    from genlab.core.experiments.worker import _child as child

    sys.exit(child(int(sys.argv[1])))
