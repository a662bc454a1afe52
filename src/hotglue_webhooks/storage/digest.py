"""The daily digest: what a channel's day held, read from our own tables.

One ``DAILY_DIGEST`` event per channel and UTC day (a fixed dedupe key: workers ticking at
once store it once), stored at the first worker look after ``[digest] hour_utc``; the rules
turn it into one Slack message (``rules/messages.py`` ``daily_digest``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from hotglue_webhooks.ingest import dedupe_key, store_own_event
from hotglue_webhooks.rules.config import EXACT_TOKEN_401, RulesConfig
from hotglue_webhooks.rules.model import DAILY_DIGEST
from hotglue_webhooks.storage.models import (
    ACTION_DEAD,
    ACTION_DONE,
    ActionRecord,
    Event,
    Incident,
    IncidentMember,
)

# Rows read per list: the message names ``[digest] listed`` of them and counts the rest.
_LIST_LIMIT = 1000
_STILL_FAILING_DAYS = 2
_WAITING_DAYS = 30


def store_due_digests(
    connection: Connection, now: datetime, rules: RulesConfig, channels: Mapping[str, Sequence[str | None]]
) -> list[int]:
    """Store the digest of the previous UTC day for each channel that has none yet, once
    ``now`` is past ``[digest] hour_utc``; within the caller's write transaction. Returns
    the events stored. ``channels``: channel → env_ids it covers (empty: all; None stands
    for events of environments the rules file does not list)."""
    now = now.astimezone(UTC)
    if now.hour < rules.digest.hour_utc:
        return []
    day = (now - timedelta(days=1)).date()
    stored = []
    for channel, envs in channels.items():
        s3_root = f"~digest/{day.isoformat()}/{channel}"
        key = dedupe_key({"s3_root": s3_root, "status": DAILY_DIGEST}, "")
        if connection.scalar(select(Event.id).where(Event.dedupe_key == key)) is not None:
            continue
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        digest = day_digest(connection, start, start + timedelta(days=1), now, _env_filter(envs, rules))
        event_id = store_own_event(
            connection,
            {"status": DAILY_DIGEST, "s3_root": s3_root, "last_updated": now.isoformat(), "channel": channel,
             "day": day.isoformat(), "digest": digest},
            now,
        )
        if event_id is not None:
            stored.append(event_id)
    return stored


def _env_filter(envs: Sequence[str | None], rules: RulesConfig) -> Any:
    """The condition on ``Event.env_id`` for a channel covering ``envs``; None: every event."""
    if not envs or not rules.environments:
        return None
    listed = [env for env in envs if env is not None]
    conditions: list[Any] = [Event.env_id.in_(listed)] if listed else []
    if None in envs:
        conditions.append(or_(Event.env_id.is_(None), Event.env_id.not_in(list(rules.environments))))
    return or_(*conditions)


def day_digest(connection: Connection, start: datetime, end: datetime, now: datetime, envs: Any = None) -> dict[str, Any]:
    """Return the digest of ``[start, end)``: failures (by incident and by tenant), tenants
    still failing at ``now``, dead actions, tenants waiting for a human (see
    :func:`hotglue_webhooks.rules.messages.daily_digest` for the shape)."""
    scope = [envs] if envs is not None else []
    failed = Event.status.like("%\\_FAILED", escape="\\")
    in_day = and_(Event.received_at >= start, Event.received_at < end)
    by_tenant = connection.execute(
        select(Event.tenant, func.count()).where(in_day, failed, Event.tenant.is_not(None), *scope)
        .group_by(Event.tenant).order_by(func.count().desc(), Event.tenant).limit(_LIST_LIMIT)
    ).all()
    failures = connection.scalar(select(func.count()).select_from(Event).where(in_day, failed, *scope)) or 0
    incidents = connection.execute(
        select(Incident.signature, Incident.stage, Incident.connector, func.count(func.distinct(IncidentMember.tenant)))
        .join(IncidentMember, IncidentMember.incident_id == Incident.id)
        .where(Incident.first_seen_at < end, or_(Incident.closed_at.is_(None), Incident.closed_at >= start))
        .group_by(Incident.id, Incident.signature, Incident.stage, Incident.connector)
        .order_by(func.count(func.distinct(IncidentMember.tenant)).desc()).limit(_LIST_LIMIT)
    ).all()
    return {
        "failures": int(failures),
        "incidents": [
            {"group": signature, "what": f"{stage} on {connector}", "tenants": int(count)}
            for signature, stage, connector, count in incidents
        ],
        "tenants": [{"tenant": tenant, "failures": int(count)} for tenant, count in by_tenant],
        "still_failing": still_failing(connection, now, scope),
        **_dead(connection),
        "waiting": waiting_for_a_human(connection, now),
    }


def still_failing(connection: Connection, now: datetime, scope: list[Any] | None = None) -> list[str]:
    """Tenants with a flow whose last terminal stage (by HotGlue's last_updated) received in the
    last two days is a failure."""
    terminal = or_(Event.status == "JOB_COMPLETED", Event.status.like("%\\_FAILED", escape="\\"))
    rows = connection.execute(
        select(Event.tenant, Event.flow_id, Event.status)
        .where(terminal, Event.tenant.is_not(None), Event.received_at >= now - timedelta(days=_STILL_FAILING_DAYS), *(scope or []))
        .order_by(Event.order_at, Event.id)
    )
    last: dict[tuple[Any, Any], Any] = {}
    for tenant, flow_id, status in rows:
        last[(tenant, flow_id)] = status
    return sorted({tenant for (tenant, _flow), status in last.items() if status != "JOB_COMPLETED"})


def _dead(connection: Connection) -> dict[str, Any]:
    rows = connection.execute(
        select(ActionRecord.kind, func.count()).where(ActionRecord.state == ACTION_DEAD).group_by(ActionRecord.kind)
    ).all()
    return {"dead_actions": sum(int(n) for _k, n in rows), "dead_by_kind": {str(k): int(n) for k, n in rows}}


def waiting_for_a_human(connection: Connection, now: datetime) -> list[dict[str, str]]:
    """Tenants only a person can unblock, with no finished job since: Exact refused their
    refresh token (schedules turned off: the customer must reconnect), or their tenant
    config was found invalid (no job was started)."""
    since = now - timedelta(days=_WAITING_DAYS)
    rows = connection.execute(
        select(Event.tenant, Event.order_at, ActionRecord.rule, ActionRecord.idempotency_key)
        .join(ActionRecord, ActionRecord.event_id == Event.id)
        .where(
            Event.received_at >= since, ActionRecord.state == ACTION_DONE,
            or_(ActionRecord.rule == EXACT_TOKEN_401, ActionRecord.idempotency_key.like("%|slack:tenant\\_config", escape="\\")),
        )
    ).all()
    if not rows:
        return []
    tenants = sorted({row.tenant for row in rows if row.tenant})
    completed = dict(
        connection.execute(
            select(Event.tenant, func.max(Event.order_at))
            .where(Event.tenant.in_(tenants), Event.status == "JOB_COMPLETED", Event.received_at >= since)
            .group_by(Event.tenant)
        ).all()
    )
    why: dict[str, tuple[datetime, str]] = {}
    for row in rows:
        if not row.tenant:
            continue
        reason = (
            "Exact Online refused its refresh token: the customer must reconnect"
            if row.rule == EXACT_TOKEN_401 else "its tenant config is invalid"
        )
        if row.tenant not in why or row.order_at > why[row.tenant][0]:
            why[row.tenant] = (row.order_at, reason)
    return [
        {"tenant": tenant, "why": reason}
        for tenant, (at, reason) in sorted(why.items())
        if tenant not in completed or completed[tenant] <= at
    ]
