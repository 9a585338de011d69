"""The policy's ``budgets:`` section: spend limits per scope and calendar window.

Structure only; names a budget refers to (``downgrade_to``) are checked by
:func:`budget_references`, called from ``references.check_references``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from mm_litellm.policy.types import Frozen, Name

if TYPE_CHECKING:
    from mm_litellm.policy.schema import Policy

__all__ = ["SCOPES", "WINDOWS", "BudgetLimit", "BudgetSettings", "budget_references"]

Scope = Literal["global", "user", "team", "key", "end_user", "model", "route", "tag"]
Window = Literal["hourly", "daily", "weekly", "monthly"]
SCOPES: tuple[str, ...] = ("global", "user", "team", "key", "end_user", "model", "route", "tag")
WINDOWS: tuple[str, ...] = ("hourly", "daily", "weekly", "monthly")


class BudgetLimit(Frozen):
    """One budget: ``limit_usd`` or ``limit_tokens`` per ``scope`` value per calendar ``window``."""

    name: Name
    scope: Scope = "global"
    match: tuple[str, ...] = ()
    """Only these scope values (e.g. user names); empty: every value gets its own budget."""
    window: Window = "daily"
    limit_usd: float | None = Field(default=None, gt=0)
    limit_tokens: int | None = Field(default=None, gt=0)
    alert_at: tuple[float, ...] = ()
    """Fractions of the limit (0 < x <= 1) at which to alert, once per threshold per window."""
    on_exceed: Literal["block", "downgrade"] = "block"
    downgrade_to: Name | None = None
    """Model or route a request is re-planned on when this budget is exhausted; default: the
    cheapest priced model of the policy."""
    description: str = ""

    @field_validator("alert_at")
    @classmethod
    def _fractions(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        for x in value:
            if not 0 < x <= 1:
                raise ValueError(f"alert_at values are fractions of the limit, 0 < x <= 1; got {x}")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _one_limit(self) -> BudgetLimit:
        if (self.limit_usd is None) == (self.limit_tokens is None):
            raise ValueError("give exactly one of 'limit_usd' or 'limit_tokens'")
        if self.match and self.scope == "global":
            raise ValueError("'match' needs a scope other than 'global'")
        if self.downgrade_to is not None and self.on_exceed != "downgrade":
            raise ValueError("'downgrade_to' needs 'on_exceed: downgrade'")
        return self

    @property
    def limit(self) -> float:
        """The limit in its own unit (USD or tokens)."""
        return float(self.limit_usd if self.limit_usd is not None else self.limit_tokens)  # type: ignore[arg-type]

    @property
    def unit(self) -> Literal["usd", "tokens"]:
        return "usd" if self.limit_usd is not None else "tokens"


class BudgetSettings(Frozen):
    """Budgets and the usage ledger. With this section present every call is recorded."""

    timezone: str = "UTC"
    """IANA time zone in which calendar windows start (midnight, Monday, the 1st)."""
    default_max_tokens: int = Field(default=1024, gt=0)
    """Completion tokens assumed when estimating a call that sets no ``max_tokens`` and whose model's
    maximum output LiteLLM's table does not know (otherwise that maximum is the bound)."""
    reservation_ttl_s: float = Field(default=600, gt=0)
    """How long an unsettled reservation (a crashed or abandoned call) keeps counting."""
    on_store_error: Literal["block", "allow"] = "block"
    """When the budget store cannot be reached: refuse the call (fail closed) or let it run."""
    on_unpriced: Literal["allow", "block"] = "allow"
    """A model with no known price under a USD budget: run it (recorded as unpriced) or refuse."""
    webhook: str | None = None
    """URL that receives each threshold alert as a JSON POST."""
    alert_callback: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """``module:function`` called with each alert dict."""
    limits: tuple[BudgetLimit, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone '{value}' (e.g. UTC, Europe/Berlin)") from exc
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> BudgetSettings:
        seen: set[str] = set()
        for limit in self.limits:
            if limit.name in seen:
                raise ValueError(f"duplicate budget name '{limit.name}'")
            seen.add(limit.name)
        return self


def budget_references(policy: Policy) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Each ``downgrade_to`` must name a model or route of the policy."""
    settings = policy.budgets
    if settings is None:
        return
    known = set(policy.models) | set(policy.routes) | set(policy.aliases)
    for i, limit in enumerate(settings.limits):
        if limit.downgrade_to is not None and limit.downgrade_to not in known:
            yield (
                ("budgets", "limits", i, "downgrade_to"),
                (
                    f"unknown model or route '{limit.downgrade_to}'; known models: "
                    f"{', '.join(sorted(policy.models)) or '(none declared)'}; routes: "
                    f"{', '.join(sorted(policy.routes)) or '(none declared)'}"
                ),
            )
