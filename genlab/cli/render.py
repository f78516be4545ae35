"""The one way a CLI renderer dispatches core events: ``@renders(EventType)`` on a method.

Every renderer (``genlab train``'s bar, the sweep's trial lines, the compare and sample
progress) subclasses ``EventRenderer`` and marks its handlers::

    class TrainProgress(EventRenderer):
        @renders(TrainStep)
        def _on_step(self, event: TrainStep) -> None: ...

``handle(event)`` calls the handler registered for the event's type (or one of its bases);
events without a handler are ignored. Handlers are looked up by name on the instance, so a
subclass overrides one by defining a method of the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.progress import Progress

_MARK = "_renders_events"


def renders(*event_types: type) -> Callable[[Callable], Callable]:
    """Mark a method as the handler of ``event_types``."""

    def mark(method: Callable) -> Callable:
        setattr(method, _MARK, event_types)
        return method

    return mark


class EventRenderer:
    """Base of the CLI renderers: ``handle`` dispatches by event type to ``@renders`` methods."""

    _handlers: ClassVar[dict[type, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[type, str] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                for event_type in getattr(value, _MARK, ()):
                    handlers[event_type] = name
        cls._handlers = handlers

    def handle(self, event: Any) -> None:
        """Render one event; types without a handler are ignored."""
        for klass in type(event).__mro__:
            name = self._handlers.get(klass)
            if name is not None:
                getattr(self, name)(event)
                return


class TaskBars:
    """A transient rich ``Progress`` that starts with its first task.

    Renderers use it inside their ``with`` block; an error raised before any work starts (a
    bad ``--out``, a missing model) is then printed alone, with no empty bar line before it.
    """

    def __init__(self, *columns: Any, console: Any) -> None:
        self.progress = Progress(*columns, console=console, transient=True)
        self.live = False

    def add(self, description: str, **fields: Any) -> Any:
        """Add a task (starting the display with the first)."""
        if not self.live:
            self.live = True
            self.progress.start()
        return self.progress.add_task(description, **fields)

    def stop(self) -> None:
        """Stop the display if it started."""
        if self.live:
            self.progress.stop()
            self.live = False
