"""Incident state: sightings of a failure signature, open incidents, their members.

Every function runs within the caller's write transaction on ``connection`` (the worker's
step transactions): a sighting, a fold and the ``INCIDENT_UPDATE`` event it asks for
commit together, so a worker killed at any instant leaves either all or none of them.

Changing an open incident (a member joins or recovers, it resolves or expires) asks for
one ``INCIDENT_UPDATE`` event unless one is pending (``flush_pending``), due now for the
first (the message opens at once) and ``update_interval_seconds`` later for the next, so
three hundred joiners make a few updates, not three hundred. Each change first updates
the incident's row, so on PostgreSQL it queues on the row lock behind a flush being
decided (:func:`take_flush`): no joiner is missed between a snapshot and the next update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks.ingest import store_own_event
from hotglue_webhooks.rules.config import IncidentRules
from hotglue_webhooks.rules.incidents import SignatureState
from hotglue_webhooks.rules.model import INCIDENT_UPDATE, IncidentMemberView, IncidentSnapshot
from hotglue_webhooks.storage.db import insert_unless_present
from hotglue_webhooks.storage.snoozes import signature_snooze
from hotglue_webhooks.storage.models import (
    INCIDENT_EXPIRED,
    INCIDENT_OPEN,
    INCIDENT_RESOLVED,
    MEMBER_ALONE,
    MEMBER_FOLDED,
    MEMBER_HELD,
    MEMBER_SNOOZED,
    Incident,
    IncidentMember,
    SlackThread,
)


@dataclass(frozen=True)
class Sighting:
    """What a failure alert about to be posted says about itself (``params["incident"]``; its
    signature under ``group``: the redaction takes a key named ``signature`` for a secret)."""

    signature: str
    env_id: str | None
    tenant: str
    flow_id: str | None
    stage: str | None
    connector: str
    error_line: str
    channel: str
    thread_key: str | None

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> Sighting:
        return cls(
            signature=str(params["group"]),
            env_id=params.get("env_id"),
            tenant=str(params["tenant"]),
            flow_id=params.get("flow_id"),
            stage=params.get("stage"),
            connector=str(params.get("connector") or "?"),
            error_line=str(params.get("error_line") or ""),
            channel=str(params["channel"]),
            thread_key=params.get("thread_key"),
        )


def _open_incident(connection: Connection, signature: str) -> Any:
    return connection.execute(
        select(Incident.id, Incident.last_change_at).where(
            Incident.open_signature == signature, Incident.state == INCIDENT_OPEN
        )
    ).first()


def sight(
    connection: Connection, sighting: Sighting, event_id: int, now: datetime, rules: IncidentRules, *,
    snoozed: bool = False,
) -> tuple[SignatureState, int]:
    """Record ``sighting`` (once per tenant's flow per window or open incident) and return
    its signature's state at ``now`` with the member row's id.

    A snoozed sighting is recorded (for the snooze's summary) but never counts towards an
    incident.
    """
    window_start = now - timedelta(minutes=rules.window_minutes)
    incident = _open_incident(connection, sighting.signature)
    mine = or_(
        and_(IncidentMember.incident_id.is_(None), IncidentMember.seen_at >= window_start),
        *([IncidentMember.incident_id == incident.id] if incident is not None else []),
    )
    member_id = connection.scalar(
        select(IncidentMember.id).where(
            IncidentMember.signature == sighting.signature,
            IncidentMember.tenant == sighting.tenant,
            _same_flow(sighting.flow_id),
            mine,
        ).order_by(IncidentMember.id.desc()).limit(1)
    )
    if member_id is None:
        member_id = connection.scalar(
            insert(IncidentMember).returning(IncidentMember.id),
            {
                "signature": sighting.signature, "env_id": sighting.env_id, "tenant": sighting.tenant,
                "flow_id": sighting.flow_id, "incident_id": None, "event_id": event_id,
                "thread_key": sighting.thread_key, "state": MEMBER_SNOOZED if snoozed else MEMBER_HELD,
                "seen_at": now,
            },
        )
    counted = (
        IncidentMember.signature == sighting.signature,
        IncidentMember.incident_id.is_(None),
        IncidentMember.seen_at >= window_start,
        IncidentMember.state != MEMBER_SNOOZED,
    )
    tenants, first = connection.execute(
        select(func.count(func.distinct(IncidentMember.tenant)), func.min(IncidentMember.seen_at)).where(*counted)
    ).one()
    state = SignatureState(
        tenants=int(tenants or 0),
        first_seen_at=first,
        incident_id=incident.id if incident is not None else None,
        incident_last_change=incident.last_change_at if incident is not None else None,
    )
    return state, int(member_id or 0)


def _same_flow(flow_id: str | None) -> Any:
    return IncidentMember.flow_id.is_(None) if flow_id is None else IncidentMember.flow_id == flow_id


def post_alone(connection: Connection, member_id: int) -> None:
    """The member's alert is posted on its own: an incident opening later links it."""
    connection.execute(
        update(IncidentMember).where(IncidentMember.id == member_id, IncidentMember.incident_id.is_(None))
        .values(state=MEMBER_ALONE)
    )


def open_incident(
    connection: Connection, sighting: Sighting, now: datetime, rules: IncidentRules
) -> int:
    """Open the incident of ``sighting``'s signature (or find the one another worker just
    opened), attach the window's sightings to it (held alerts fold, posted ones are
    linked), ask for its first update; return its id."""
    window_start = now - timedelta(minutes=rules.window_minutes)
    first_seen = connection.scalar(
        select(func.min(IncidentMember.seen_at)).where(
            IncidentMember.signature == sighting.signature, IncidentMember.incident_id.is_(None),
            IncidentMember.seen_at >= window_start, IncidentMember.state != MEMBER_SNOOZED,
        )
    ) or now
    statement = insert_unless_present(connection.dialect.name, Incident.__table__, "open_signature")  # type: ignore[arg-type]
    incident_id = connection.scalar(
        statement.returning(Incident.id),
        {
            "signature": sighting.signature, "open_signature": sighting.signature, "env_id": sighting.env_id,
            "stage": sighting.stage, "connector": sighting.connector, "error_line": sighting.error_line[:2000],
            "channel": sighting.channel, "state": INCIDENT_OPEN, "first_seen_at": first_seen, "opened_at": now,
            "last_change_at": now, "flush_seq": 0, "updated_at": now,
        },
    )
    if incident_id is None:  # opened by another worker at the same moment
        incident_id = int(_open_incident(connection, sighting.signature).id)
    connection.execute(
        update(IncidentMember)
        .where(
            IncidentMember.signature == sighting.signature, IncidentMember.incident_id.is_(None),
            IncidentMember.seen_at >= window_start, IncidentMember.state.in_((MEMBER_HELD, MEMBER_ALONE)),
        )
        .values(
            incident_id=incident_id,
            state=func.coalesce(
                func.nullif(IncidentMember.state, MEMBER_HELD), MEMBER_FOLDED
            ),
        )
    )
    changed(connection, incident_id, now, rules)
    return int(incident_id)


def fold(connection: Connection, member_id: int, incident_id: int, now: datetime, rules: IncidentRules) -> None:
    """Fold the member's alert into the open incident ``incident_id`` and ask for an update
    (unless it already is in it: a held alert its opening folded)."""
    joined = connection.execute(
        update(IncidentMember)
        .where(
            IncidentMember.id == member_id,
            or_(IncidentMember.incident_id.is_(None), IncidentMember.incident_id != incident_id),
        )
        .values(incident_id=incident_id, state=MEMBER_FOLDED)
    ).rowcount
    if joined:
        changed(connection, incident_id, now, rules)


def changed(connection: Connection, incident_id: int, now: datetime, rules: IncidentRules) -> None:
    """Note a change of the incident at ``now`` and store an ``INCIDENT_UPDATE`` event for it
    unless one is pending. The UPDATE comes first: it takes the row's lock (see module doc)."""
    connection.execute(
        update(Incident).where(Incident.id == incident_id).values(last_change_at=now, updated_at=now)
    )
    row = connection.execute(
        select(Incident.flush_seq, Incident.flush_pending, Incident.env_id).where(Incident.id == incident_id)
    ).one()
    if row.flush_pending is not None:
        return
    seq = int(row.flush_seq) + 1
    due = now if seq == 1 else now + timedelta(seconds=rules.update_interval_seconds)
    store_own_event(
        connection,
        {
            "status": INCIDENT_UPDATE,
            "env_id": row.env_id,
            "s3_root": f"~incident/{incident_id}/update/{seq}",
            "incident_id": incident_id,
            "seq": seq,
            "last_updated": now.isoformat(),
        },
        now,
        due=due,
        order_group=f"~incident/{incident_id}",
    )
    connection.execute(
        update(Incident).where(Incident.id == incident_id).values(flush_seq=seq, flush_pending=seq)
    )


def take_flush(
    connection: Connection, incident_id: int, seq: int, now: datetime, rules: IncidentRules,
    public_url: str | None = None,
) -> IncidentSnapshot | None:
    """Read the incident for its update ``seq`` and clear ``flush_pending`` (the next change
    asks for a new update); None when the incident is gone (purged)."""
    connection.execute(
        update(Incident).where(Incident.id == incident_id, Incident.flush_pending == seq)
        .values(flush_pending=None, updated_at=now)
    )
    return snapshot(connection, incident_id, now, rules, public_url)


def snapshot(
    connection: Connection, incident_id: int, now: datetime, rules: IncidentRules, public_url: str | None = None
) -> IncidentSnapshot | None:
    """Read the incident as its message shows it at ``now`` (with the snooze of its
    signature in force, if any); None when it is gone (purged). Reads only."""
    row = connection.execute(select(*Incident.__table__.c).where(Incident.id == incident_id)).first()
    if row is None:
        return None
    counts = connection.execute(
        select(func.count(func.distinct(IncidentMember.tenant)), func.count(IncidentMember.recovered_at))
        .where(IncidentMember.incident_id == incident_id)
    ).one()
    listed = tuple(
        connection.scalars(
            select(IncidentMember.tenant).where(IncidentMember.incident_id == incident_id)
            # By id: shorter first, so numeric ids sort as numbers (999 before 1000).
            .group_by(IncidentMember.tenant).order_by(func.length(IncidentMember.tenant), IncidentMember.tenant)
            .limit(rules.listed)
        )
    )
    members = connection.execute(
        select(IncidentMember.id, IncidentMember.tenant, IncidentMember.flow_id, SlackThread.channel, SlackThread.ts)
        .outerjoin(SlackThread, and_(
            IncidentMember.state == MEMBER_ALONE, SlackThread.thread_key == IncidentMember.thread_key,
        ))
        .where(IncidentMember.incident_id == incident_id, IncidentMember.announced_at.is_(None))
        .order_by(func.length(IncidentMember.tenant), IncidentMember.tenant, IncidentMember.id)
    ).all()
    seen: set[int] = set()
    new_members = []
    for member in members:
        if member.id in seen:  # an alert thread reopened under the same key: link one
            continue
        seen.add(member.id)
        new_members.append(IncidentMemberView(member.id, member.tenant, member.flow_id, member.channel, member.ts))
    return IncidentSnapshot(
        id=row.id, signature=row.signature, state=row.state, stage=row.stage, connector=row.connector,
        error_line=row.error_line, channel=row.channel, channel_id=row.channel_id, ts=row.ts,
        first_seen_at=row.first_seen_at, resolved_at=row.resolved_at, closed_at=row.closed_at, now=now,
        tenants=int(counts[0] or 0), recovered=_recovered_tenants(connection, incident_id), listed=listed,
        new_members=tuple(new_members), public_url=public_url, expire_minutes=rules.expire_minutes,
        snoozed=signature_snooze(connection, row.signature, now),
    )


def _recovered_tenants(connection: Connection, incident_id: int) -> int:
    """Tenants all of whose flows in the incident recovered."""
    rows = connection.execute(
        select(IncidentMember.tenant, func.count(), func.count(IncidentMember.recovered_at))
        .where(IncidentMember.incident_id == incident_id).group_by(IncidentMember.tenant)
    ).all()
    return sum(1 for _tenant, members, recovered in rows if members == recovered)


def record_post(connection: Connection, incident_id: int, posted: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    """The incident's top-level message went out: keep its channel id and ts for updates."""
    connection.execute(
        update(Incident).where(Incident.id == incident_id, Incident.ts.is_(None))
        .values(channel_id=str(posted.get("channel") or params["channel"]), ts=str(posted["ts"]))
    )


def mark_announced(connection: Connection, member_ids: Sequence[int], now: datetime) -> None:
    """The incident's thread named these members."""
    if member_ids:
        connection.execute(
            update(IncidentMember).where(IncidentMember.id.in_(list(member_ids)), IncidentMember.announced_at.is_(None))
            .values(announced_at=now)
        )


def thread_of(connection: Connection, incident_id: int) -> tuple[str, str] | None:
    """(channel id, ts) of the incident's top-level message, once posted."""
    row = connection.execute(select(Incident.channel_id, Incident.ts).where(Incident.id == incident_id)).first()
    return None if row is None or row.ts is None else (str(row.channel_id), str(row.ts))


def recover(
    connection: Connection, tenant: str, flow_id: str, now: datetime, rules: IncidentRules
) -> list[int]:
    """Mark the tenant's flow recovered in its open incidents (a finished job); resolve the
    ones all of whose tenants recovered; return the incidents changed."""
    incidents: list[int] = list(
        connection.scalars(
            select(Incident.id)
            .select_from(IncidentMember)
            .join(Incident, Incident.id == IncidentMember.incident_id)
            .where(
                IncidentMember.tenant == tenant, IncidentMember.flow_id == flow_id,
                IncidentMember.recovered_at.is_(None), Incident.state == INCIDENT_OPEN,
            )
            .distinct()
        )
    )
    for incident_id in incidents:
        connection.execute(
            update(IncidentMember)
            .where(
                IncidentMember.incident_id == incident_id, IncidentMember.tenant == tenant,
                IncidentMember.flow_id == flow_id, IncidentMember.recovered_at.is_(None),
            )
            .values(recovered_at=now)
        )
        open_members = connection.scalar(
            select(func.count()).select_from(IncidentMember)
            .where(IncidentMember.incident_id == incident_id, IncidentMember.recovered_at.is_(None))
        )
        if not open_members:
            connection.execute(
                update(Incident).where(Incident.id == incident_id, Incident.state == INCIDENT_OPEN)
                .values(state=INCIDENT_RESOLVED, resolved_at=now, closed_at=now, open_signature=None)
            )
        changed(connection, incident_id, now, rules)
    # Sightings not (yet) in an incident recover too: they no longer count towards one.
    connection.execute(
        update(IncidentMember)
        .where(
            IncidentMember.tenant == tenant, IncidentMember.flow_id == flow_id,
            IncidentMember.incident_id.is_(None), IncidentMember.recovered_at.is_(None),
        )
        .values(recovered_at=now)
    )
    return incidents


def expire_idle(connection: Connection, now: datetime, rules: IncidentRules) -> list[int]:
    """Close open incidents unchanged for ``expire_minutes`` (a last update says so);
    return their ids."""
    cutoff = now - timedelta(minutes=rules.expire_minutes)
    ids = list(
        connection.scalars(
            select(Incident.id).where(Incident.state == INCIDENT_OPEN, Incident.last_change_at <= cutoff)
        )
    )
    for incident_id in ids:
        expire(connection, incident_id, now, rules)
    return ids


def expire(connection: Connection, incident_id: int, now: datetime, rules: IncidentRules) -> None:
    """Close the open incident ``incident_id`` as expired (idle), with a last update."""
    closed = connection.execute(
        update(Incident).where(Incident.id == incident_id, Incident.state == INCIDENT_OPEN)
        .values(state=INCIDENT_EXPIRED, closed_at=now, open_signature=None)
    ).rowcount
    if closed:
        changed(connection, incident_id, now, rules)


def purge_closed(connection: Connection, cutoff: datetime) -> tuple[int, int]:
    """Delete incidents closed before ``cutoff`` with their members, and sightings older
    than it that never joined one; return (incidents, members) deleted."""
    closed = select(Incident.id).where(
        Incident.state.in_((INCIDENT_RESOLVED, INCIDENT_EXPIRED)), Incident.closed_at < cutoff
    ).scalar_subquery()
    members = connection.execute(
        delete(IncidentMember).where(
            or_(
                IncidentMember.incident_id.in_(closed),
                and_(IncidentMember.incident_id.is_(None), IncidentMember.seen_at < cutoff),
            )
        )
    ).rowcount
    incidents = connection.execute(
        delete(Incident).where(Incident.state.in_((INCIDENT_RESOLVED, INCIDENT_EXPIRED)), Incident.closed_at < cutoff)
    ).rowcount
    return int(incidents or 0), int(members or 0)


def incident_rows(sessions: sessionmaker[Session], open_only: bool = True, limit: int = 200) -> list[dict[str, Any]]:
    """Incidents newest first (open ones only, by default) as plain dicts for the CLI, the
    admin API and the dashboard: ``{"id", "state", "group" (the signature), "stage",
    "connector", "error_line", "tenants", "recovered", "first_seen_at", "resolved_at",
    "closed_at", "channel", "ts"}`` (times ISO-8601 UTC)."""
    with sessions() as session:
        connection = session.connection()
        query = select(*Incident.__table__.c).order_by(Incident.id.desc()).limit(limit)
        if open_only:
            query = query.where(Incident.state == INCIDENT_OPEN)
        rows = connection.execute(query).all()
        result = []
        for row in rows:
            tenants = connection.scalar(
                select(func.count(func.distinct(IncidentMember.tenant))).where(IncidentMember.incident_id == row.id)
            )
            result.append({
                "id": row.id, "state": row.state, "group": row.signature, "stage": row.stage,
                "connector": row.connector, "error_line": row.error_line, "tenants": int(tenants or 0),
                "recovered": _recovered_tenants(connection, row.id),
                "first_seen_at": row.first_seen_at.isoformat(),
                "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None,
                "closed_at": row.closed_at.isoformat() if row.closed_at else None,
                "channel": row.channel, "ts": row.ts,
            })
    return result
