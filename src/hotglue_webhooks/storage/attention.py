"""Read the signals of the "needs attention" list from our own records (no peer call);
``rules/attention.py`` judges them.

Each signal is one indexed query over every tenant: the schedules an Exact 401 turned off
(``ix_actions_rule_kind``), the tenant-config checks (the same index), dead actions
(``ix_actions_state``), the failures and completed jobs of the window (``received_at``'s
index) and the members of open incidents (``ix_incidents_state_last``,
``ix_incident_members_incident``): one query, however many tenants an outage has.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks.rules import SLACK_POST
from hotglue_webhooks.rules.attention import AttentionRow, Failure, InIncident, TenantSignals, attention_rows
from hotglue_webhooks.rules.config import FULL_SYNC, AttentionRules
from hotglue_webhooks.storage.commands import turned_off_since
from hotglue_webhooks.storage.db import connect, transaction
from hotglue_webhooks.storage.models import (
    ACTION_DEAD, INCIDENT_OPEN, SOURCE_COMMAND, ActionRecord, Event, Incident, IncidentMember,
)
from hotglue_webhooks.storage.queries import _utc

CONFIG_ALERT_SUFFIX = f"|{FULL_SYNC}|slack:tenant_config"
"""The key ending of the rules' "invalid tenant config" message (rules/decide.py)."""
CONFIG_VALID_NOTE = f"{FULL_SYNC}: tenant config valid"


def tenant_signals(sessions: sessionmaker[Session], config: AttentionRules, now: datetime) -> list[TenantSignals]:
    """Return the signals of every tenant that has one."""
    window_start = now - timedelta(hours=config.window_hours)
    turned: dict[str, list[tuple[datetime, str, int]]] = {}
    with connect(sessions) as connection:
        with transaction(connection, write=False):
            for at, off in turned_off_since(connection, None):
                turned.setdefault(off.tenant, []).append((at, off.flow_id, off.event_id))
    with sessions() as session:
        invalid = _invalid_configs(session)
        valid_after = _valid_after(session, invalid)
        dead: dict[str, Any] = {
            tenant: (oldest, count, newest)
            for tenant, oldest, count, newest in session.execute(
                select(Event.tenant, func.min(ActionRecord.updated_at), func.count(), func.max(Event.id))
                .join(Event, Event.id == ActionRecord.event_id)
                .where(ActionRecord.state == ACTION_DEAD, Event.tenant.is_not(None))
                .group_by(Event.tenant)
            )
            if tenant is not None
        }
        failures: dict[str, list[Failure]] = {}
        completed: dict[str, dict[str | None, datetime]] = {}
        rows = session.execute(
            select(Event.tenant, Event.flow_id, Event.status, Event.order_at, Event.id, Event.received_at).where(
                Event.received_at >= window_start, Event.tenant.is_not(None), Event.source != SOURCE_COMMAND,
                Event.status.like("%\\_FAILED", escape="\\") | (Event.status == "JOB_COMPLETED"),
            )
        )
        for tenant, flow_id, status, order_at, event_id, received_at in rows:
            if tenant is None:
                continue
            if status == "JOB_COMPLETED":
                flows = completed.setdefault(tenant, {})
                flows[flow_id] = max(order_at, flows.get(flow_id, order_at))
            else:
                failures.setdefault(tenant, []).append(Failure(flow_id, order_at, event_id, received_at))
        incidents = _open_incident_members(session)
    tenants: set[str] = set(turned) | set(invalid) | set(dead) | set(failures) | set(incidents)
    return [
        TenantSignals(
            tenant=tenant,
            turned_off=tuple(turned.get(tenant, ())),
            invalid_config=(invalid[tenant][2], invalid[tenant][1]) if tenant in invalid else None,
            valid_config_after=tenant in valid_after,
            dead=_utc_dead(dead.get(tenant)),
            failures=tuple(failures.get(tenant, ())),
            completed=completed.get(tenant, {}),
            incidents=tuple(incidents.get(tenant, ())),
        )
        for tenant in sorted(tenants)
    ]


def _open_incident_members(session: Session) -> dict[str, list[InIncident]]:
    """The open incidents each tenant is in with a flow not recovered, in one query."""
    rows = session.execute(
        select(
            IncidentMember.tenant, IncidentMember.flow_id, IncidentMember.seen_at, IncidentMember.event_id,
            Incident.id, Incident.signature, Incident.opened_at, Incident.stage, Incident.connector,
        )
        .join(Incident, Incident.id == IncidentMember.incident_id)
        .where(Incident.state == INCIDENT_OPEN, IncidentMember.recovered_at.is_(None))
        .order_by(IncidentMember.id)
    )
    members: dict[tuple[str, int], list[Any]] = {}
    for row in rows:
        members.setdefault((row.tenant, row.id), []).append(row)
    found: dict[str, list[InIncident]] = {}
    for (tenant, incident_id), flows in members.items():
        first = flows[0]
        # Seen before the incident opened: it is in it since the opening.
        since = min(max(f.seen_at, f.opened_at) for f in flows)
        found.setdefault(tenant, []).append(InIncident(
            incident_id=incident_id, group=first.signature, since=since,
            flows=tuple(dict.fromkeys(f.flow_id for f in flows)), event_id=first.event_id,
            stage=first.stage, connector=first.connector,
        ))
    return found


def _utc_dead(value: Any) -> tuple[datetime, int, int] | None:
    if value is None:
        return None
    oldest, count, newest = value
    moment = _utc(oldest)
    return (moment, int(count), int(newest)) if moment is not None else None


def _invalid_configs(session: Session) -> dict[str, tuple[datetime, int, datetime]]:
    """The newest "invalid tenant config" message per tenant: (its event's order_at, id,
    received_at)."""
    newest: dict[str, tuple[datetime, int, datetime]] = {}
    rows = session.execute(
        select(Event.tenant, Event.order_at, Event.id, Event.received_at)
        .join(ActionRecord, ActionRecord.event_id == Event.id)
        .where(
            ActionRecord.rule == FULL_SYNC, ActionRecord.kind == SLACK_POST,
            ActionRecord.idempotency_key.like(f"%{CONFIG_ALERT_SUFFIX}"), Event.tenant.is_not(None),
        )
    )
    for tenant, order_at, event_id, received_at in rows:
        if tenant is None:
            continue
        if tenant not in newest or (order_at, event_id) > newest[tenant][:2]:
            newest[tenant] = (order_at, event_id, received_at)
    return newest


def _valid_after(session: Session, invalid: dict[str, tuple[datetime, int, datetime]]) -> set[str]:
    """Tenants whose config was found valid by an event after their newest invalid one."""
    found = set()
    for tenant, (order_at, _event_id, _received_at) in invalid.items():
        hit = session.scalar(
            select(Event.id)
            .where(
                Event.tenant == tenant, Event.order_at > order_at,
                cast(Event.decision, Text).like(f"%{CONFIG_VALID_NOTE}%"),
            )
            .limit(1)
        )
        if hit is not None:
            found.add(tenant)
    return found


def needs_attention(sessions: sessionmaker[Session], config: AttentionRules, now: datetime) -> list[AttentionRow]:
    """The tenants waiting for a person, oldest first."""
    return attention_rows(tenant_signals(sessions, config, now), config, now)


def last_events(sessions: sessionmaker[Session], tenants: list[str]) -> dict[str, Event]:
    """Each tenant's newest received event (not a command), for the list's "last event"."""
    found: dict[str, Event] = {}
    with sessions() as session:
        for tenant in tenants:
            event = session.scalar(
                select(Event)
                .where(Event.tenant == tenant, Event.source != SOURCE_COMMAND)
                .order_by(Event.received_at.desc(), Event.id.desc())
                .limit(1)
            )
            if event is not None:
                found[tenant] = event
    return found


def attention_view(row: AttentionRow, last: Event | None, now: datetime) -> dict[str, Any]:
    """One row of ``GET /api/attention``."""
    return {
        "tenant": row.tenant,
        "since": row.since.isoformat(),
        "age_seconds": round(row.age_seconds(now)),
        "reasons": [
            {
                "reason": reason.reason, "since": reason.since.isoformat(), "detail": reason.detail,
                "what_to_do": reason.what_to_do, "flow_id": reason.flow_id,
                "event_id": str(reason.event_id) if reason.event_id is not None else None,
                "incident_id": str(reason.incident_id) if reason.incident_id is not None else None,
                "group": reason.group,
            }
            for reason in row.reasons
        ],
        "last_event": None if last is None else {
            "id": str(last.id), "status": last.status, "flow_id": last.flow_id,
            "received_at": last.received_at.isoformat(),
        },
    }
