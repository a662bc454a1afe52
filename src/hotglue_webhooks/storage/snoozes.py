"""Snoozes: Slack alerts of a tenant, or of an incident signature, held until a time.

A snoozed failure is still stored, decided, shown and acted on in HotGlue; only its Slack
alert is held (the worker ends that action ``held``). When the snooze ends, one summary
of what happened meanwhile is posted. Built here for the CLI, the admin API, the
dashboard and Slack's buttons alike: :func:`snooze` is the one way to make one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from hotglue_webhooks.ingest import store_own_event
from hotglue_webhooks.rules.model import SNOOZE_ENDED
from hotglue_webhooks.storage.models import MEMBER_SNOOZED, Event, IncidentMember, SnoozeRow, UTCDateTime

SCOPE_TENANT = "tenant"
SCOPE_SIGNATURE = "signature"
SCOPES = (SCOPE_TENANT, SCOPE_SIGNATURE)
MAX_TARGET_CHARS = 255
MAX_BY_CHARS = 255
MAX_REASON_CHARS = 2000
# An incident signature as rules/incidents.py makes it: 16 lowercase hex characters.
_SIGNATURE = re.compile(r"[0-9a-f]{16}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Snooze:
    """One snooze as stored: ``until``, ``created_at`` and ``ended_at`` aware UTC;
    ``held`` is how many Slack messages it held so far."""

    id: int
    scope: str
    target: str
    until: datetime
    by: str
    reason: str | None
    created_at: datetime
    held: int = 0
    ended_at: datetime | None = None

    @classmethod
    def of(cls, row: SnoozeRow) -> Snooze:
        return cls(
            id=row.id, scope=row.scope, target=row.target, until=row.until, by=row.by, reason=row.reason,
            created_at=row.created_at, held=row.held or 0, ended_at=row.ended_at,
        )


def snooze(
    session: Session,
    *,
    scope: str,
    target: str,
    until: datetime,
    by: str,
    reason: str | None = None,
    now: datetime | None = None,
    max_days: float | None = None,
) -> Snooze:
    """Hold Slack alerts of ``target`` until ``until``; return the stored snooze.

    ``scope`` is ``"tenant"`` (``target`` a tenant id) or ``"signature"`` (``target`` an
    incident signature, 16 hex characters, as shown on incident messages and by
    ``hotglue-webhooks incidents list``). ``until`` is an aware datetime (a naive one is
    taken as UTC) after ``now`` (default: the current time); ``by`` names who snoozed
    (a user name, ``slack:U123``, ``cli:alice``); ``max_days`` (``[snooze] max_days``) bounds
    how far ahead ``until`` may be. Adds the row to ``session`` and flushes it
    (so it has its id); the caller commits (e.g. ``with write_session(sessions) as s``).

    Raises ValueError with a one-line message for an unknown scope, a blank, too long or
    malformed target, a blank ``by``, or an ``until`` not in the future.
    """
    now = _aware(now or datetime.now(UTC))
    if scope not in SCOPES:
        raise ValueError(f"unknown snooze scope {scope!r}: use 'tenant' or 'signature'")
    target = (target or "").strip() if isinstance(target, str) else ""
    if not target:
        raise ValueError("snooze target is empty: give a tenant id or an incident signature")
    if len(target) > MAX_TARGET_CHARS or _CONTROL.search(target):
        raise ValueError(f"snooze target is not a tenant id or signature (over {MAX_TARGET_CHARS} characters or control characters)")
    if scope == SCOPE_SIGNATURE and not _SIGNATURE.fullmatch(target):
        raise ValueError(f"snooze target {target!r} is not an incident signature (16 hex characters, e.g. 3f9a0c1d2e4b5a69)")
    if not isinstance(until, datetime):
        raise ValueError("snooze until is not a time")
    until = _aware(until)
    if until <= now:
        raise ValueError(f"snooze until {until.isoformat()} is not in the future (now {now.replace(microsecond=0).isoformat()})")
    if max_days is not None and until - now > timedelta(days=max_days):
        raise ValueError(f"snooze until {until.isoformat()} is more than {max_days:g} days ahead ([snooze] max_days)")
    by = (by or "").strip() if isinstance(by, str) else ""
    if not by or len(by) > MAX_BY_CHARS or _CONTROL.search(by):
        raise ValueError("snooze by is empty or not a name: say who snoozes")
    if reason is not None:
        reason = reason.strip()[:MAX_REASON_CHARS] or None
    row = SnoozeRow(scope=scope, target=target, until=until, by=by, reason=reason, created_at=now, held=0)
    session.add(row)
    session.flush()
    return Snooze.of(row)


def snooze_once(
    session: Session,
    *,
    scope: str,
    target: str,
    until: datetime,
    by: str,
    reason: str | None = None,
    now: datetime | None = None,
    max_days: float | None = None,
) -> tuple[Snooze, bool]:
    """:func:`snooze`, unless a snooze of the same ``scope``, ``target``, ``until`` and
    ``by`` is stored already: return (that one, False), else (the new one, True).

    For an action carried out again after a crash (its outcome never recorded): the
    action's params are fixed when it is planned, so they name its one snooze. Raises
    ValueError like :func:`snooze` when none is stored yet.
    """
    until = _aware(until) if isinstance(until, datetime) else until
    if isinstance(target, str) and isinstance(by, str) and isinstance(until, datetime):
        found = session.scalar(
            select(SnoozeRow).where(
                SnoozeRow.scope == scope, SnoozeRow.target == target.strip(), SnoozeRow.until == until,
                SnoozeRow.by == by.strip(),
            ).order_by(SnoozeRow.id).limit(1)
        )
        if found is not None:
            return Snooze.of(found), False
    made = snooze(
        session, scope=scope, target=target, until=until, by=by, reason=reason, now=now, max_days=max_days,
    )
    return made, True


def lift(session: Session, snooze_id: int, now: datetime | None = None) -> Snooze | None:
    """End a snooze now (its summary follows as if it had ended); None when unknown.

    A snooze that already ended is returned unchanged.
    """
    now = _aware(now or datetime.now(UTC))
    row = session.get(SnoozeRow, snooze_id)
    if row is None:
        return None
    if row.until > now and row.ended_at is None:
        row.until = now
        session.flush()
    return Snooze.of(row)


def active_snoozes(session: Session, now: datetime) -> list[Snooze]:
    """Snoozes in force at ``now``, soonest end first."""
    rows = session.scalars(select(SnoozeRow).where(SnoozeRow.until > now).order_by(SnoozeRow.until, SnoozeRow.id))
    return [Snooze.of(row) for row in rows]


def recent_snoozes(session: Session, limit: int = 100) -> list[Snooze]:
    """The newest snoozes (in force or not), newest first."""
    rows = session.scalars(select(SnoozeRow).order_by(SnoozeRow.id.desc()).limit(limit))
    return [Snooze.of(row) for row in rows]


_IN_FORCE = (
    select(SnoozeRow.id, SnoozeRow.scope, SnoozeRow.target, SnoozeRow.until)
    .where(
        SnoozeRow.until > bindparam("now", type_=UTCDateTime()),
        or_(
            (SnoozeRow.scope == SCOPE_TENANT) & (SnoozeRow.target == bindparam("tenant")),
            (SnoozeRow.scope == SCOPE_SIGNATURE) & (SnoozeRow.target.in_(bindparam("signatures", expanding=True))),
        ),
    )
    .order_by(SnoozeRow.until.desc(), SnoozeRow.id)
)
_COUNT_HELD = update(SnoozeRow).where(SnoozeRow.id == bindparam("snooze_id")).values(held=SnoozeRow.held + 1)


def snooze_in_force(
    connection: Connection, tenant: str | None, signatures: Sequence[str], now: datetime
) -> tuple[int, datetime] | None:
    """Return (id, until) of the snooze holding an alert of ``tenant`` with one of
    ``signatures`` at ``now`` (the one lasting longest), or None; within the caller's
    transaction on ``connection``."""
    row = connection.execute(
        _IN_FORCE, {"now": now, "tenant": tenant or "", "signatures": list(signatures) or [""]}
    ).first()
    return None if row is None else (int(row.id), row.until)


def signature_snooze(connection: Connection, signature: str, now: datetime) -> tuple[str, datetime] | None:
    """Return (by, until) of the snooze of incident ``signature`` in force at ``now`` (the
    one lasting longest), or None; within the caller's transaction on ``connection``."""
    row = connection.execute(
        select(SnoozeRow.by, SnoozeRow.until)
        .where(SnoozeRow.scope == SCOPE_SIGNATURE, SnoozeRow.target == signature, SnoozeRow.until > now)
        .order_by(SnoozeRow.until.desc(), SnoozeRow.id)
        .limit(1)
    ).first()
    return None if row is None else (str(row[0]), row[1])


def count_held(connection: Connection, snooze_id: int) -> None:
    """Count one more Slack message held by the snooze (within the caller's transaction)."""
    connection.execute(_COUNT_HELD, {"snooze_id": snooze_id})


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_SUMMARY_TENANTS = 20


def end_due(connection: Connection, now: datetime, channel: str) -> list[int]:
    """Store a ``SNOOZE_ENDED`` event (its summary) for every snooze that ended by ``now``
    and has none yet, and mark it ended; within the caller's write transaction. Returns
    the snoozes ended. ``channel``: where the summary goes."""
    rows = connection.execute(
        select(SnoozeRow.__table__).where(SnoozeRow.ended_at.is_(None), SnoozeRow.until <= now)
        .order_by(SnoozeRow.until, SnoozeRow.id).limit(100)
    ).all()
    ended = []
    for row in rows:
        summary = _summary(connection, row)
        store_own_event(
            connection,
            {
                "status": SNOOZE_ENDED,
                "s3_root": f"~snooze/{row.id}/ended",
                "last_updated": row.until.isoformat(),
                "channel": channel,
                "snooze": {
                    "id": row.id, "scope": row.scope, "target": row.target, "by": row.snoozed_by,
                    "reason": row.reason, "created_at": row.created_at.isoformat(), "until": row.until.isoformat(),
                    "held": row.held,
                },
                "summary": summary,
            },
            now,
        )
        connection.execute(update(SnoozeRow).where(SnoozeRow.id == row.id).values(ended_at=now))
        ended.append(int(row.id))
    return ended


def _summary(connection: Connection, row: Any) -> dict[str, Any]:
    """What happened while the snooze held: failures by status, completed jobs, tenants."""
    start, end = row.created_at, row.until
    if row.scope == SCOPE_TENANT:
        rows = connection.execute(
            select(Event.status, func.count()).where(
                Event.tenant == row.target, Event.received_at >= start, Event.received_at <= end
            ).group_by(Event.status)
        ).all()
        statuses = {str(status): int(count) for status, count in rows if status and str(status).endswith("_FAILED")}
        completed = sum(int(count) for status, count in rows if status == "JOB_COMPLETED")
        return {
            "failures": sum(statuses.values()), "completed": completed, "statuses": statuses,
            "tenants": [row.target], "tenant_count": 1,
        }
    members = connection.execute(
        select(IncidentMember.tenant).where(
            IncidentMember.signature == row.target, IncidentMember.state == MEMBER_SNOOZED,
            IncidentMember.seen_at >= start, IncidentMember.seen_at <= end,
        )
    ).all()
    tenants = sorted({str(member.tenant) for member in members})
    return {
        "failures": len(members), "completed": 0, "statuses": {},
        "tenants": tenants[:_SUMMARY_TENANTS], "tenant_count": len(tenants),
    }
