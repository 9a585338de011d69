"""The prompt registry's database tables and the operations on them (SQLModel, any SQLAlchemy URL).

Versions are immutable rows; a label is one row pointing at one version, and every move of a
label (promotion, rollback) appends a row to ``prompt_label_events`` with who and when.
Experiment assignments are keyed by LiteLLM's call id and carry the outcome, cost and latency
of the call, so a report is one query.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, or_
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select

from mm_litellm.prompts.errors import PromptNotFoundError, PromptStoreError
from mm_litellm.prompts.template import PromptVersion
from mm_litellm.prompts.writer import BackgroundWriter

__all__ = ["Assignment", "LabelEvent", "PromptStore"]


def _now() -> datetime:
    return datetime.now(UTC)


class PromptVersionRow(SQLModel, table=True):
    __tablename__ = "prompt_versions"

    prompt_id: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    name: str = ""
    description: str = ""
    body: str
    """JSON: variables, messages, model, params."""
    created_at: datetime = Field(default_factory=_now)
    created_by: str | None = None


class PromptLabelRow(SQLModel, table=True):
    __tablename__ = "prompt_labels"

    prompt_id: str = Field(primary_key=True)
    label: str = Field(primary_key=True)
    version: int
    updated_at: datetime = Field(default_factory=_now)
    updated_by: str | None = None


class LabelEvent(SQLModel, table=True):
    """One move of a label: ``from_version`` is ``None`` the first time the label is set in the database."""

    __tablename__ = "prompt_label_events"

    id: int | None = Field(default=None, primary_key=True)
    prompt_id: str = Field(index=True)
    label: str
    from_version: int | None = None
    to_version: int
    at: datetime = Field(default_factory=_now)
    by: str | None = None
    note: str = ""


class Assignment(SQLModel, table=True):
    """The variant an experiment gave one call, and how that call went."""

    __tablename__ = "prompt_assignments"

    call_id: str = Field(primary_key=True)
    """LiteLLM's ``litellm_call_id``."""
    experiment: str = Field(index=True)
    variant: str
    prompt_id: str
    version: int
    unit: str | None = None
    """sha256 of the sticky unit (user, key or session); the raw identity is never stored."""
    created_at: datetime = Field(default_factory=_now)
    response_id: str | None = Field(default=None, index=True)
    status: str = "pending"
    """``pending`` until LiteLLM reports the call, then ``ok`` or ``error``."""
    cost_usd: float | None = None
    latency_ms: float | None = None
    success: bool | None = None
    score: float | None = None
    outcome_at: datetime | None = None


ASSIGNMENTS = SQLModel.metadata.tables["prompt_assignments"]
TABLES = [
    SQLModel.metadata.tables[t.__tablename__]
    for t in (PromptVersionRow, PromptLabelRow, LabelEvent, Assignment)
]


class PromptStore:
    """Prompt versions, labels, label history and experiment assignments in one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        from mm_litellm.storage import ensure_schema

        ensure_schema(engine)  # the prompt tables are migration 2 of the project's one schema
        self._writer = BackgroundWriter(engine, ASSIGNMENTS)

    def flush(self) -> None:
        """Wait until every assignment queued by this process is written."""
        self._writer.flush()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    # --- versions ---------------------------------------------------------------------------

    def versions(self) -> list[PromptVersion]:
        with self._session() as s:
            rows = s.exec(select(PromptVersionRow)).all()
        return [_to_version(r) for r in rows]

    def add_version(self, version: PromptVersion) -> None:
        """Insert ``version``; an existing (id, version) is a :class:`PromptStoreError`."""
        body = json.dumps(
            version.model_dump(include={"variables", "messages", "model", "params"}, mode="json")
        )
        row = PromptVersionRow(
            prompt_id=version.id,
            version=version.version,
            name=version.name,
            description=version.description,
            body=body,
            created_by=version.created_by,
        )
        try:
            with self._session() as s:
                s.add(row)
                s.commit()
        except IntegrityError as exc:
            raise PromptStoreError(f"prompt '{version.id}' already has a version {version.version}") from exc

    # --- labels -----------------------------------------------------------------------------

    def labels(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        with self._session() as s:
            for row in s.exec(select(PromptLabelRow)).all():
                out.setdefault(row.prompt_id, {})[row.label] = row.version
        return out

    def move_label(
        self,
        prompt_id: str,
        label: str,
        version: int,
        *,
        previous: int | None,
        by: str | None,
        note: str = "",
    ) -> LabelEvent | None:
        """Point ``label`` at ``version`` and record the move; ``None`` when it already points there."""
        with self._session() as s:
            row = s.get(PromptLabelRow, (prompt_id, label))
            before = row.version if row is not None else previous
            if before == version and row is not None:
                return None
            if row is None:
                row = PromptLabelRow(prompt_id=prompt_id, label=label, version=version, updated_by=by)
            else:
                row.version, row.updated_at, row.updated_by = version, _now(), by
            event = LabelEvent(
                prompt_id=prompt_id, label=label, from_version=before, to_version=version, by=by, note=note
            )
            s.add(row)
            s.add(event)
            s.commit()
            return event

    def label_events(self, prompt_id: str) -> list[LabelEvent]:
        with self._session() as s:
            stmt = select(LabelEvent).where(LabelEvent.prompt_id == prompt_id).order_by(LabelEvent.id)  # type: ignore[arg-type]
            return list(s.exec(stmt).all())

    # --- experiment assignments -------------------------------------------------------------

    def add_assignment(self, *, background: bool = False, **fields: Any) -> None:
        """Insert one assignment; a duplicate call id keeps the first (a retried call).

        With ``background`` the row is queued and written by :class:`BackgroundWriter` (the
        call path); every read of this store waits for queued rows first.
        """
        row = Assignment(**fields).model_dump()  # validates and fills the defaults
        if background:
            self._writer.put(row)
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(ASSIGNMENTS), [row])
        except IntegrityError:
            pass

    def settle(
        self,
        call_id: str,
        *,
        ok: bool,
        cost_usd: float | None,
        latency_ms: float | None,
        response_id: str | None,
    ) -> bool:
        """Record how the call went (LiteLLM's cost and latency); ``False`` if the call is unknown."""
        self.flush()
        with self._session() as s:
            row = s.get(Assignment, call_id)
            if row is None:
                return False
            row.status = "ok" if ok else "error"
            row.cost_usd, row.latency_ms = cost_usd, latency_ms
            row.response_id = response_id or row.response_id
            s.add(row)
            s.commit()
            return True

    def record_outcome(self, call_id: str, *, success: bool | None, score: float | None) -> Assignment:
        """Attach an outcome to the call (by LiteLLM call id or response id)."""
        self.flush()
        with self._session() as s:
            stmt = select(Assignment).where(
                or_(Assignment.call_id == call_id, Assignment.response_id == call_id)  # type: ignore[arg-type]
            )
            row = s.exec(stmt).first()
            if row is None:
                raise PromptNotFoundError(
                    f"no experiment call '{call_id}': pass the litellm_call_id or response id "
                    "of a call that an "
                    "experiment assigned (see response._hidden_params['mm_litellm']['prompt']['call_id'])"
                )
            row.success, row.score, row.outcome_at = success, score, _now()
            s.add(row)
            s.commit()
            return row

    def assignments(self, experiment: str) -> list[Assignment]:
        self.flush()
        with self._session() as s:
            return list(s.exec(select(Assignment).where(Assignment.experiment == experiment)).all())


def _to_version(row: PromptVersionRow) -> PromptVersion:
    body = json.loads(row.body)
    return PromptVersion(
        id=row.prompt_id,
        version=row.version,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        source="database",
        **body,
    )
