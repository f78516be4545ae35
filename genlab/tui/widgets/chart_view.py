"""A plotext chart drawn off the UI thread, so that keys never wait behind a chart.

Building a plotext chart costs 20-150 ms of Python (more with many series); drawn in
``render`` as ``textual_plotext.PlotextPlot`` does, it blocks every key press that arrives
meanwhile. ``ChartView.draw(builder)`` instead hands ``builder`` (a function that fills a
fresh plotext figure, given its width, from data it captured) to one background thread
shared by every chart; the thread builds the figure at the widget's current size and posts
the finished text back (``ChartView.Drawn``); ``render`` only returns the last finished
text. Requests coalesce: a chart asked to draw five times while the thread is busy draws
once, from the newest builder. A resize redraws from the last builder and posts
``ChartView.Resized``, for owners whose builder depends on the size.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from rich.text import Text
from textual.message import Message
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

Builder = Callable[[Plot, int], None]
"""Fills a fresh figure; gets the chart's width in cells (to thin long series)."""


class ChartView(PlotextPlot):
    """A chart whose figure is built in the background from the latest ``draw`` call."""

    class Drawn(Message, bubble=False):
        """The background thread finished a figure."""

        def __init__(self, version: int, size: tuple[int, int], text: Text) -> None:
            super().__init__()
            self.version = version
            self.size = size
            self.text = text

    class Resized(Message):
        """The chart got a new size (bubbles, so a screen can rebuild what depends on it)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._builder: Builder | None = None
        self._version = 0
        self._drawn_size: tuple[int, int] = (0, 0)
        self._drawn_version = 0
        self._text = Text("")

    def draw(self, builder: Builder) -> None:
        """Draw the chart with ``builder`` (in the background; the newest request wins)."""
        self._builder = builder
        self._version += 1
        self._request()

    def _request(self) -> None:
        if self._builder is None or not self.is_mounted:
            return
        width, height = self.size
        if width < 4 or height < 3:
            return
        theme = self._get_plotext_theme_name(self.app.theme)
        RENDERER.submit(self, self._version, self._builder, (width, height), theme)

    def on_resize(self) -> None:
        if tuple(self.size) != self._drawn_size:
            self._version += 1
            self._request()
        self.post_message(self.Resized())

    def on_show(self) -> None:
        if tuple(self.size) != self._drawn_size:
            self._version += 1
            self._request()

    def on_chart_view_drawn(self, message: ChartView.Drawn) -> None:
        message.stop()
        if message.version == self._version:
            self._text, self._drawn_size = message.text, message.size
            self._drawn_version = message.version
            self.refresh()

    @property
    def pending(self) -> bool:
        """True while the newest requested figure is not shown yet."""
        return self._builder is not None and self._drawn_version != self._version and \
            self.size.width >= 4 and self.size.height >= 3

    def render(self) -> Text:
        return self._text

    @property
    def drawn_text(self) -> str:
        """The plain text of the chart shown now (for tests)."""
        return self._text.plain


class _Renderer:
    """One daemon thread building the charts' figures, newest request per chart."""

    def __init__(self) -> None:
        self._jobs: dict[int, tuple[ChartView, int, Builder, tuple[int, int], str]] = {}
        # (keyed by id(view): a newer request for the same chart replaces the waiting one)
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, view: ChartView, version: int, builder: Builder,
               size: tuple[int, int], theme: str) -> None:
        with self._wake:
            self._jobs[id(view)] = (view, version, builder, size, theme)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="genlab-charts",
                                                daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._jobs:
                    self._wake.wait()
                _, job = self._jobs.popitem()
            view, version, builder, size, theme = job
            try:
                text = build(builder, size, theme)
            except Exception as err:  # noqa: BLE001 - a chart must never kill the thread
                text = Text(f"chart not drawn: {err}", style="red")
            view.post_message(ChartView.Drawn(version, size, text))


def build(builder: Builder, size: tuple[int, int], theme: str) -> Text:
    """Build a fresh figure of ``size`` with ``builder`` and return it as text."""
    plot = Plot()
    width, height = size
    plot.plotsize(width, height)
    plot._set_size(width, height)
    plot.theme(theme)
    builder(plot, width)
    return Text.from_ansi(plot.build())


RENDERER = _Renderer()

