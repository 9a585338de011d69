"""Library logging: quiet unless the host application asks.

``log = get_logger(__name__)`` then ``log.info("event.name", key=value, ...)``, as with structlog.
When the application (or mm_litellm's own CLI and proxy entry points) configured structlog, the
event goes through structlog's pipeline. Otherwise it goes to the standard :mod:`logging` logger
of that name, where the host's handlers decide (Python's default: warnings and errors to stderr,
nothing to stdout). Importing mm_litellm configures neither.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

__all__ = ["Logger", "get_logger"]


class Logger:
    """A structlog-style logger that falls back to :mod:`logging` (see the module doc)."""

    __slots__ = ("_name", "_std")

    def __init__(self, name: str) -> None:
        self._name = name
        self._std = logging.getLogger(name)

    def _emit(self, level: int, method: str, event: str, fields: dict[str, Any]) -> None:
        if structlog.is_configured():
            getattr(structlog.get_logger(self._name), method)(event, **fields)
        elif self._std.isEnabledFor(level):
            text = " ".join(f"{k}={v!r}" for k, v in fields.items())
            self._std.log(
                level,
                "%s %s",
                event,
                text,
                exc_info=method == "exception",
                extra={"mm_event": event, "mm_fields": fields},
            )

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, "debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, "info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, "warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, "error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, "exception", event, fields)


def get_logger(name: str) -> Logger:
    """The logger for module ``name`` (``mm_litellm.*``)."""
    return Logger(name)
