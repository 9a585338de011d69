"""Threshold alerts: a structlog warning, plus an optional callback and webhook.

Which alerts fire is decided in the store (an alert row claimed once per threshold per
window, so two processes never both send it); this module only delivers them.
"""

from __future__ import annotations

import importlib
import json
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

from mm_litellm.budget.store import Alert
from mm_litellm.logs import get_logger
from mm_litellm.policy.budgets import BudgetSettings

__all__ = ["AlertSink", "add_alert_handler", "remove_alert_handler"]

log = get_logger("mm_litellm.budget")

_handlers: list[Callable[[dict[str, Any]], None]] = []


def add_alert_handler(handler: Callable[[dict[str, Any]], None]) -> None:
    """Call ``handler(alert_dict)`` for every budget alert of this process."""
    _handlers.append(handler)


def remove_alert_handler(handler: Callable[[dict[str, Any]], None]) -> None:
    if handler in _handlers:
        _handlers.remove(handler)


class AlertSink:
    """Delivers alerts as the budget settings say; a failing handler is logged, never raised."""

    def __init__(self, settings: BudgetSettings) -> None:
        self.webhook = settings.webhook
        self.callback: Callable[[dict[str, Any]], None] | None = None
        if settings.alert_callback:
            module, _, name = settings.alert_callback.partition(":")
            self.callback = getattr(importlib.import_module(module), name)

    def deliver(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            data = alert.as_dict()
            log.warning("budget.alert", **data)
            for handler in [*_handlers, *([self.callback] if self.callback else [])]:
                try:
                    handler(data)
                except Exception as exc:  # an observer must not break recording
                    log.error("budget.alert_handler_failed", handler=repr(handler), error=str(exc))
            if self.webhook:
                threading.Thread(target=self._post, args=(data,), daemon=True).start()

    def _post(self, data: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.webhook or "",
            data=json.dumps(data).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except Exception as exc:
            log.error("budget.webhook_failed", url=self.webhook, error=str(exc))
