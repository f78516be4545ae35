"""The bridge: events arrive in order, in batches, promptly; failures and replacement."""

from __future__ import annotations

import time

from textual.app import App

from genlab.core.data.sources import DataError
from genlab.tui.bridge import BATCH_S, Bridge


class Recorder(App):
    """A bare app that records what the bridge posts to it."""

    def __init__(self) -> None:
        super().__init__()
        self.bridge = Bridge(self)
        self.batches: list[tuple[int, list]] = []
        self.arrivals: list[float] = []
        self.finished: list[Bridge.Finished] = []
        self.failed: list[Bridge.Failed] = []

    def on_bridge_events_arrived(self, message: Bridge.EventsArrived) -> None:
        self.batches.append((message.run_id, message.events))
        self.arrivals.append(time.monotonic())

    def on_bridge_finished(self, message: Bridge.Finished) -> None:
        self.finished.append(message)

    def on_bridge_failed(self, message: Bridge.Failed) -> None:
        self.failed.append(message)


def test_fast_events_are_batched_in_order(tui):
    def produce(stop):
        yield from range(5000)

    async def scenario():
        app = Recorder()
        async with app.run_test() as pilot:
            app.bridge.stream(app, "g", produce)
            await tui.wait_for(pilot, lambda: app.finished, what="finish")
            events = [e for _, batch in app.batches for e in batch]
            assert events == list(range(5000))
            assert len(app.batches) < 200  # batched, not one message per event
            assert not app.finished[0].cancelled

    tui.run(scenario)


def test_a_slow_producer_is_never_held_back_more_than_a_batch(tui):
    def produce(stop):
        yield "first"
        time.sleep(1.0)  # a slow forward pass: "first" must not wait for it
        yield "second"

    async def scenario():
        app = Recorder()
        async with app.run_test() as pilot:
            start = time.monotonic()
            app.bridge.stream(app, "g", produce)
            await tui.wait_for(pilot, lambda: app.batches, what="first batch")
            assert app.batches[0][1] == ["first"]
            assert app.arrivals[0] - start < 0.5 + BATCH_S
            await tui.wait_for(pilot, lambda: app.finished, what="finish")

    tui.run(scenario)


def test_failures_and_call_results_reach_the_owner(tui):
    def broken(stop):
        yield 1
        raise DataError("--data x: no such file\nmore detail")

    def buggy(stop):
        yield 1
        raise KeyError("oops")

    async def scenario():
        app = Recorder()
        async with app.run_test() as pilot:
            app.bridge.stream(app, "g", broken)
            await tui.wait_for(pilot, lambda: app.failed, what="failure")
            # The CLI's line for the same failure: the core's one-line message.
            assert app.failed[0].message == "--data x: no such file"
            app.bridge.stream(app, "b", buggy)
            await tui.wait_for(pilot, lambda: len(app.failed) == 2, what="bug")
            assert app.failed[1].message.startswith("unexpected KeyError: 'oops' (a bug")
            assert "--debug" in app.failed[1].message
            app.bridge.call(app, "c", lambda: 42)
            await tui.wait_for(pilot, lambda: app.finished, what="call")
            assert app.finished[0].result == 42 and app.finished[0].group == "c"
            assert not app.bridge.running("c") and not app.bridge.running("g")

    tui.run(scenario)


def test_a_new_run_stops_the_old_one_in_its_group(tui):
    seen_stop = []

    def endless(stop):
        n = 0
        while not stop.stopped:
            n += 1
            yield n
            time.sleep(0.001)
        seen_stop.append(n)

    async def scenario():
        app = Recorder()
        async with app.run_test() as pilot:
            first = app.bridge.stream(app, "g", endless)
            await tui.wait_for(pilot, lambda: app.batches, what="first events")
            second = app.bridge.stream(app, "g", lambda stop: iter(["x"]))
            await tui.wait_for(pilot, lambda: len(app.finished) == 2, what="both end")
            assert seen_stop and first.stop_token.stopped and second.run_id != first.run_id
            assert app.bridge.stop("g") is False  # nothing left running

    tui.run(scenario)


def test_a_run_after_a_probe_stops_it_and_starts_once_it_has_ended(tui):
    log: list[str] = []

    def probe(stop):
        while not stop.stopped:
            yield "probe"
            time.sleep(0.01)
        time.sleep(0.3)  # a probe finishing its step (still drawing from torch's RNG)
        log.append("probe ended")

    def run(stop):
        log.append("run started")
        yield "run"

    async def scenario():
        app = Recorder()
        async with app.run_test() as pilot:
            first = app.bridge.stream(app, "estimate", probe)
            await tui.wait_for(pilot, lambda: app.batches, what="the probe going")
            app.bridge.stream(app, "sweep", run, after="estimate")
            await tui.wait_for(pilot, lambda: len(app.finished) == 2, what="both end")
            assert first.stop_token.stopped
            assert log == ["probe ended", "run started"]  # never side by side

    tui.run(scenario)
