"""The one bridge between torch work and Textual: thread workers in, messages out.

Every piece of model work (loading, attaching an adapter, generating, training) is a core
call or a core iterator of events. ``Bridge.stream`` runs an iterator in a Textual thread
worker (``run_worker(thread=True, exclusive=True, group=...)``, what ``@work`` does, with the
group chosen per call) and posts its events to the widget that asked, as ``Bridge.*``
messages (``post_message`` is thread-safe).

Token events arrive far faster than a terminal can paint, so events are batched: the worker
posts at most one ``EventsArrived`` every ``BATCH_S`` seconds, but never holds an event
longer than that, even while the producer is stuck in a slow forward pass (the iterator is
drained by a helper thread into a queue that the worker reads with a deadline).

A newer run in the same group replaces the older one (the older run's stop token is set, so
the core ends it at its next step). ``stop(group)`` asks the group's run to finish cleanly:
the core then yields its own finish events (cancelled rows, a resumable checkpoint), which
reach the UI like any others. Work that touches the shared model (``uses_model=True``) holds
``model_lock``: PEFT's per-row adapters install forward hooks that concurrent forwards would
trample, and two forwards on a CPU only slow each other down.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from textual.message import Message
from textual.message_pump import MessagePump
from textual.worker import Worker, get_current_worker

from genlab.core.errors import error_line, one_line
from genlab.core.events import StopToken

BATCH_S = 0.04
"""Longest time an event waits in the worker before it is posted to the UI."""

TRACEBACK_LOG = os.path.join(tempfile.gettempdir(), "genlab-tui-tracebacks.log")
"""Where the TUI writes the traceback of an unexpected failure in debug mode."""

_DONE = object()


@dataclass
class RunHandle:
    """A run the bridge started: its id, group, stop token and worker."""

    run_id: int
    group: str
    stop_token: StopToken = field(default_factory=StopToken)
    worker: Worker | None = None


class Bridge:
    """Starts core work in thread workers and relays its events as messages."""

    class Started(Message, bubble=False):
        """A run began; its events will follow."""

        def __init__(self, run_id: int, group: str) -> None:
            super().__init__()
            self.run_id = run_id
            self.group = group

    class EventsArrived(Message, bubble=False):
        """A batch of core events from one run, in the order they were yielded."""

        def __init__(self, run_id: int, group: str, events: list[Any]) -> None:
            super().__init__()
            self.run_id = run_id
            self.group = group
            self.events = events

    class Finished(Message, bubble=False):
        """A run ended without an exception; ``result`` is what a ``call`` returned."""

        def __init__(self, run_id: int, group: str, result: Any = None,
                     cancelled: bool = False) -> None:
            super().__init__()
            self.run_id = run_id
            self.group = group
            self.result = result
            self.cancelled = cancelled

    class Failed(Message, bubble=False):
        """A run raised; ``message`` is one line for humans (the CLI's line for the same
        failure: ``describe_failure``)."""

        def __init__(self, run_id: int, group: str, error: BaseException) -> None:
            super().__init__()
            self.run_id = run_id
            self.group = group
            self.error = error
            self.message = describe_failure(error)

    def __init__(self, host: Any) -> None:
        """``host`` is the app: workers belong to it, so they outlive screen switches."""
        self.host = host
        self.model_lock = threading.RLock()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # _current is touched by the UI and by workers
        self._current: dict[str, RunHandle] = {}

    # ------------------------------------------------------------------------- public

    def stream(self, owner: MessagePump, group: str,
               make_events: Callable[[StopToken], Iterator[Any]], *,
               uses_model: bool = False, after: str | None = None) -> RunHandle:
        """Run ``make_events(stop_token)`` in a thread worker; post its events to ``owner``.

        A run already going in ``group`` is asked to stop and its worker cancelled. With
        ``after``, that group's run is asked to stop too, and this one starts only once it
        has ended: torch's random generator is one per process, so a probe still seeding and
        drawing from it would change the weights of a run meant to be reproducible.
        """
        handle = self._replace(group)
        events = make_events if after is None else self._after(after, make_events)
        handle.worker = self.host.run_worker(
            lambda: self._pump(owner, handle, events, uses_model),
            name=f"{group}-{handle.run_id}", group=group, exclusive=True, thread=True,
            exit_on_error=False)
        return handle

    def call(self, owner: MessagePump, group: str, fn: Callable[[], Any], *,
             uses_model: bool = False) -> RunHandle:
        """Run ``fn()`` in a thread worker; post ``Finished(result=...)`` or ``Failed``."""

        def one_result(_stop: StopToken) -> Iterator[Any]:
            yield _Result(fn())

        return self.stream(owner, group, one_result, uses_model=uses_model)

    def stop(self, group: str) -> bool:
        """Ask the group's current run to finish at its next step; False if none runs."""
        with self._lock:
            handle = self._current.get(group)
        if handle is None:
            return False
        handle.stop_token.stop()
        return True

    def running(self, group: str) -> bool:
        """True while a run of ``group`` has not finished."""
        with self._lock:
            return group in self._current

    def stop_all(self) -> None:
        """Stop every run (used when the app quits)."""
        with self._lock:
            handles = list(self._current.values())
        for handle in handles:
            handle.stop_token.stop()

    # ------------------------------------------------------------------------ internal

    def _replace(self, group: str) -> RunHandle:
        handle = RunHandle(next(self._ids), group)
        with self._lock:
            old = self._current.get(group)
            self._current[group] = handle
        if old is not None:
            old.stop_token.stop()
        return handle

    def _after(self, group: str, make_events: Callable[[StopToken], Iterator[Any]]
               ) -> Callable[[StopToken], Iterator[Any]]:
        """``make_events``, started once ``group``'s run (asked to stop now) has ended."""
        self.stop(group)

        def events(stop: StopToken) -> Iterator[Any]:
            while self.running(group) and not stop.stopped:
                time.sleep(0.02)
            yield from make_events(stop)

        return events

    def _forget(self, handle: RunHandle) -> None:
        with self._lock:
            if self._current.get(handle.group) is handle:
                del self._current[handle.group]

    def _pump(self, owner: MessagePump, handle: RunHandle,
              make_events: Callable[[StopToken], Iterator[Any]], uses_model: bool) -> None:
        """Worker body: drain the producer thread's queue, posting batches on a deadline."""
        worker = get_current_worker()
        events: queue.SimpleQueue = queue.SimpleQueue()
        producer = threading.Thread(
            target=self._produce, args=(make_events, handle.stop_token, events, uses_model),
            name=f"genlab-{handle.group}-{handle.run_id}", daemon=True)
        owner.post_message(Bridge.Started(handle.run_id, handle.group))
        producer.start()
        batch: list[Any] = []
        deadline = None
        result, error = None, None
        try:
            while True:
                if worker.is_cancelled:
                    handle.stop_token.stop()
                timeout = BATCH_S if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    item = events.get(timeout=timeout)
                except queue.Empty:
                    item = None
                if item is _DONE:
                    break
                if isinstance(item, _Result):
                    result = item.value
                elif isinstance(item, _Error):
                    error = item.error
                elif item is not None:
                    batch.append(item)
                    deadline = deadline or time.monotonic() + BATCH_S
                if batch and (deadline is None or time.monotonic() >= deadline):
                    self._post_batch(owner, handle, batch, worker)
                    batch, deadline = [], None
            if batch:
                self._post_batch(owner, handle, batch, worker)
        finally:
            producer.join()
            self._forget(handle)
        if error is not None:
            owner.post_message(Bridge.Failed(handle.run_id, handle.group, error))
        else:
            owner.post_message(Bridge.Finished(handle.run_id, handle.group, result,
                                               cancelled=handle.stop_token.stopped))

    @staticmethod
    def _post_batch(owner: MessagePump, handle: RunHandle, batch: list[Any],
                    worker: Worker) -> None:
        if not worker.is_cancelled:  # a replaced run's leftovers interest nobody
            owner.post_message(Bridge.EventsArrived(handle.run_id, handle.group, batch))

    def _produce(self, make_events: Callable[[StopToken], Iterator[Any]], stop: StopToken,
                 events: queue.SimpleQueue, uses_model: bool) -> None:
        """Producer thread: iterate the core, putting each event (or the error) in the queue."""
        lock = self.model_lock if uses_model else _NO_LOCK
        try:
            with lock:
                iterator = make_events(stop)
                try:
                    for event in iterator:
                        events.put(event)
                finally:
                    close = getattr(iterator, "close", None)
                    if close is not None:
                        close()
        except BaseException as err:  # noqa: BLE001 - every failure must reach the UI
            events.put(_Error(err))
        finally:
            events.put(_DONE)


def describe_failure(error: BaseException) -> str:
    """One line for a failed run: the core's line for an expected failure (as the CLI prints
    it), else "unexpected ..." saying where the traceback went (``GENLAB_DEBUG=1`` or
    ``genlab --debug tui`` writes it to ``TRACEBACK_LOG``)."""
    known = error_line(error)
    if known is not None:
        return known[0]
    detail = one_line(str(error))
    what = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    if os.environ.get("GENLAB_DEBUG", "") not in ("", "0"):
        with contextlib.suppress(OSError), open(TRACEBACK_LOG, "a", encoding="utf-8") as log:
            log.write("".join(traceback.format_exception(error)) + "\n")
        return f"unexpected {what} (a bug in genlab; traceback in {TRACEBACK_LOG})"
    return f"unexpected {what} (a bug in genlab; run genlab --debug tui for the traceback)"


@dataclass
class _Result:
    value: Any


@dataclass
class _Error:
    error: BaseException


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()
