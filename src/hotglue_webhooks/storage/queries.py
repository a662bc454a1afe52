"""Read-only queries behind the admin API, the CLI and (later) the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks.storage.models import ActionRecord, Event

MAX_PAGE = 500


@dataclass(frozen=True)
class EventFilter:
    """Filters for listing events; None means "any". Times are aware UTC."""

    tenant: str | None = None
    flow_id: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_events(
    sessions: sessionmaker[Session], filters: EventFilter, limit: int = 50, before_id: int | None = None
) -> list[Event]:
    """Return events matching ``filters``, newest first, at most ``limit`` (≤ 500).

    ``before_id`` is the cursor: only events with a smaller id (older) are returned.
    """
    query = select(Event)
    if filters.tenant is not None:
        query = query.where(Event.tenant == filters.tenant)
    if filters.flow_id is not None:
        query = query.where(Event.flow_id == filters.flow_id)
    if filters.status is not None:
        query = query.where(Event.status == filters.status)
    if filters.since is not None:
        query = query.where(Event.received_at >= filters.since)
    if filters.until is not None:
        query = query.where(Event.received_at < filters.until)
    if before_id is not None:
        query = query.where(Event.id < before_id)
    query = query.order_by(Event.id.desc()).limit(max(1, min(limit, MAX_PAGE)))
    with sessions() as session:
        return list(session.scalars(query))


def get_event(sessions: sessionmaker[Session], event_id: int) -> tuple[Event, list[ActionRecord]] | None:
    """Return the event and its actions (in decision order), or None."""
    with sessions() as session:
        event = session.get(Event, event_id)
        if event is None:
            return None
        actions = list(
            session.scalars(select(ActionRecord).where(ActionRecord.event_id == event_id).order_by(ActionRecord.position))
        )
        return event, actions


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def event_summary(event: Event) -> dict[str, Any]:
    """Return the event's list view: ids, key fields, processing state."""
    return {
        "id": str(event.id),
        "received_at": _time(event.received_at),
        "env_id": event.env_id,
        "flow_id": event.flow_id,
        "tenant": event.tenant,
        "job_id": event.job_id,
        "s3_root": event.s3_root,
        "status": event.status,
        "sync_type": event.sync_type,
        "job_name": event.job_name,
        "tap": event.tap,
        "target": event.target,
        "last_updated": event.last_updated,
        "state": event.state,
        "attempts": event.attempts,
        "decision": event.decision,
        "processed_at": _time(event.processed_at),
    }


def action_view(action: ActionRecord) -> dict[str, Any]:
    """Return everything recorded about one action (already redacted when stored)."""
    return {
        "id": str(action.id),
        "idempotency_key": action.idempotency_key,
        "kind": action.kind,
        "rule": action.rule,
        "state": action.state,
        "attempts": action.attempts,
        "depends_on": action.depends_on,
        "params": action.params,
        "request": action.request,
        "response": action.response,
        "last_error": action.last_error,
        "next_attempt_at": _time(action.next_attempt_at),
        "created_at": _time(action.created_at),
        "completed_at": _time(action.completed_at),
    }


def event_detail(event: Event, actions: list[ActionRecord]) -> dict[str, Any]:
    """Return the event's full view: summary, payload, headers, facts, actions."""
    return {
        **event_summary(event),
        "dedupe_key": event.dedupe_key,
        "body_sha256": event.body_sha256,
        "size_bytes": event.size_bytes,
        "headers": event.headers,
        "payload": event.payload,
        "facts": event.facts,
        "last_error": event.last_error,
        "decided_at": _time(event.decided_at),
        "actions": [action_view(action) for action in actions],
    }
