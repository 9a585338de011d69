"""The budget package's tables (SQLModel): the usage ledger, budget counters, reservations, alerts.

Created and upgraded by :func:`mm_litellm.storage.ensure_schema`; never call ``create_all``
elsewhere. Times are stored as naive UTC datetimes (SQLite has no time zone type).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Index, Text, UniqueConstraint
from sqlalchemy import Float as SAFloat
from sqlmodel import Field, SQLModel

__all__ = [
    "TABLES",
    "BudgetAlert",
    "BudgetCounter",
    "BudgetReservation",
    "ExpiredHold",
    "LedgerRow",
    "QuarantinedRow",
]


class LedgerRow(SQLModel, table=True):
    """One LiteLLM call (one attempt): who, what, which model served it, tokens and cost.

    ``call_id`` is LiteLLM's ``litellm_call_id`` and unique, so a duplicate event is ignored.
    ``cost_usd`` is ``NULL`` and ``priced`` false when neither the policy nor LiteLLM's price
    table knows the served model: such calls are reported as unpriced, never as free.
    """

    __tablename__ = "mm_ledger"
    __table_args__ = (Index("ix_mm_ledger_ts", "ts"),)

    id: int | None = Field(default=None, primary_key=True)
    call_id: str = Field(unique=True, max_length=128)
    ts: datetime = Field(sa_type=DateTime)
    route: str | None = None
    rule: str | None = None
    requested_model: str | None = None
    model: str | None = None
    """The model that served the call: the policy alias (Router model group) or LiteLLM model."""
    deployment: str | None = None
    """LiteLLM model string of the deployment that served it (e.g. ``openai/gpt-4o-mini``)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = Field(default=None, sa_column=Column(SAFloat, nullable=True))
    priced: bool = True
    cost_source: str = "litellm"
    """``litellm`` (its ``response_cost``), ``policy`` (the pricing override) or ``unpriced``."""
    latency_ms: float | None = None
    status: str = "success"
    error_class: str | None = None
    task: str | None = None
    user: str | None = None
    team: str | None = None
    api_key: str | None = None
    end_user: str | None = None
    """The body's ``user`` under an authenticated key (an end user of that key, never the owner)."""
    tags: str = ""
    """Tags as ``,a,b,`` (leading and trailing comma) so one tag is found with ``LIKE '%,a,%'``."""
    parent_id: str | None = None
    escalation_hop: int | None = None
    prompt_id: str | None = None
    prompt_version: str | None = None
    prompt_variant: str | None = None
    reservation_id: str | None = None


class BudgetCounter(SQLModel, table=True):
    """Spend of one budget, for one scope value, in one calendar window; the row writers lock."""

    __tablename__ = "mm_budget_counter"
    __table_args__ = (UniqueConstraint("budget", "scope_key", "window_start", name="uq_mm_budget_counter"),)

    id: int | None = Field(default=None, primary_key=True)
    budget: str
    scope_key: str
    window_start: datetime = Field(sa_type=DateTime)
    window_end: datetime = Field(sa_type=DateTime)
    spent_usd: float = 0.0
    spent_tokens: int = 0
    reserved_usd: float = 0.0
    reserved_tokens: int = 0
    unpriced_calls: int = 0


class BudgetReservation(SQLModel, table=True):
    """An estimate held against one counter until the call settles, is released, or expires."""

    __tablename__ = "mm_budget_reservation"
    __table_args__ = (Index("ix_mm_budget_reservation_expiry", "counter_id", "expires_at"),)

    id: str = Field(primary_key=True, max_length=64)
    counter_id: int = Field(primary_key=True, foreign_key="mm_budget_counter.id")
    amount_usd: float = 0.0
    amount_tokens: int = 0
    created_at: datetime = Field(sa_type=DateTime)
    expires_at: datetime = Field(sa_type=DateTime)


class BudgetAlert(SQLModel, table=True):
    """A threshold alert already sent: the unique key makes it once per threshold per window."""

    __tablename__ = "mm_budget_alert"
    __table_args__ = (
        UniqueConstraint("budget", "scope_key", "window_start", "threshold", name="uq_mm_budget_alert"),
    )

    id: int | None = Field(default=None, primary_key=True)
    budget: str
    scope_key: str
    window_start: datetime = Field(sa_type=DateTime)
    threshold: float
    spent: float
    limit: float
    ts: datetime = Field(sa_type=DateTime)


class QuarantinedRow(SQLModel, table=True):
    """A ledger row the writer could not write (schema migration 3): kept with the error, never lost.

    The rows queued behind it are written; ``mm-litellm usage`` counts these and points here.
    Its call's hold is not given back: it expires and is charged at its estimate.
    """

    __tablename__ = "mm_ledger_quarantine"

    id: int | None = Field(default=None, primary_key=True)
    ts: datetime = Field(sa_type=DateTime)
    call_id: str | None = None
    error: str = Field(sa_column=Column(Text, nullable=False))
    row_json: str = Field(sa_column=Column(Text, nullable=False))
    """The row as the writer got it, as JSON (values JSON cannot hold are written as their repr)."""


class ExpiredHold(SQLModel, table=True):
    """A hold that expired and was charged at its estimate on one counter (schema migration 4).

    A row of the call that arrives later (a process that was slow, not dead) gives its share
    back from here: the estimate charged is refunded and its real cost charged instead.
    """

    __tablename__ = "mm_budget_expired"

    reservation_id: str = Field(primary_key=True, max_length=64)
    counter_id: int = Field(primary_key=True)
    amount_usd: float = 0.0
    amount_tokens: int = 0
    expired_at: datetime = Field(sa_type=DateTime)


TABLES = (LedgerRow, BudgetCounter, BudgetReservation, BudgetAlert)
"""The tables of schema version 1 (later versions add theirs in their own migration)."""
