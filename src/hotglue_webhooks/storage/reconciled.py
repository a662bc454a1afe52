"""Queries about reconciled stages: how many webhooks never arrived (the gap), per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks.storage.models import SOURCE_RECONCILED, Event, ReconcilePass


@dataclass(frozen=True)
class DayGap:
    """One UTC day: terminal stages stored (``JOB_COMPLETED``, ``*_FAILED``) and how many
    of them were recovered by reconciliation (their webhooks never arrived)."""

    day: date
    terminal: int
    recovered: int

    @property
    def share(self) -> float:
        """The share (0..1) of the day's terminal webhooks that never arrived."""
        return self.recovered / self.terminal if self.terminal else 0.0


def _terminal() -> Any:
    return or_(Event.status == "JOB_COMPLETED", Event.status.like("%\\_FAILED", escape="\\"))


def gap_per_day(sessions: sessionmaker[Session], now: datetime, days: int = 7) -> list[DayGap]:
    """Return terminal stages and recovered ones per UTC day (by when they were stored),
    for the ``days`` days up to ``now``, oldest first, every day present."""
    today = now.astimezone(UTC).date()
    start_day = today - timedelta(days=days - 1)
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=UTC)
    with sessions() as session:
        if session.get_bind().dialect.name == "postgresql":
            bucket: Any = func.to_char(func.date_trunc("day", func.timezone("UTC", Event.received_at)), "YYYY-MM-DD")
        else:  # SQLite stores naive UTC text
            bucket = func.strftime("%Y-%m-%d", Event.received_at)
        rows = session.execute(
            select(bucket, Event.source, func.count()).where(Event.received_at >= start, _terminal())
            .group_by(bucket, Event.source)
        )
        counts: dict[str, list[int]] = {}
        for day, source, count in rows:
            entry = counts.setdefault(str(day), [0, 0])
            entry[0] += int(count)
            if source == SOURCE_RECONCILED:
                entry[1] += int(count)
    result = []
    for offset in range(days):
        day = start_day + timedelta(days=offset)
        terminal, recovered = counts.get(day.isoformat(), [0, 0])
        result.append(DayGap(day, terminal, recovered))
    return result


def stages_by_source(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Return the stored terminal stages by ``source`` (``webhook``, ``reconciled``)."""
    with sessions() as session:
        rows = session.execute(select(Event.source, func.count()).where(_terminal()).group_by(Event.source))
        return {str(source): int(count) for source, count in rows}


def latest_rhythms(sessions: sessionmaker[Session]) -> dict[str, list[dict[str, Any]]]:
    """Return, per tenant, its flows' last job and expected next one (ISO times), as the
    most recent reconciliation pass that judged them saw it; flows sorted by id."""
    with sessions() as session:
        passes = session.scalars(select(ReconcilePass.rhythms).order_by(ReconcilePass.id.desc()).limit(20))
        merged: dict[str, dict[str, Any]] = {}
        for rhythms in passes:
            for key, entry in (rhythms or {}).items():
                merged.setdefault(key, entry)
    by_tenant: dict[str, list[dict[str, Any]]] = {}
    for entry in merged.values():
        by_tenant.setdefault(str(entry.get("tenant")), []).append(entry)
    for entries in by_tenant.values():
        entries.sort(key=lambda entry: str(entry.get("flow_id")))
    return by_tenant
