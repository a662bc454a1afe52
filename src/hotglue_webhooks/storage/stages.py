"""Read the newest end of another job of a tenant's flow from our own event table.

The rules judge a late stage *stale* against it (issue 15): HotGlue does not promise
delivery order (REFERENCE §2), so an older job's failure can arrive after a newer job's
``JOB_COMPLETED`` was acted on.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, func, or_, select

from hotglue_webhooks.rules import JobEvent, TerminalStage
from hotglue_webhooks.rules.decide import newer_job
from hotglue_webhooks.storage.db import transaction
from hotglue_webhooks.storage.models import EVENT_PROCESSING, Event

# How many of the latest candidates are compared by (last_updated, start_time): they share
# order_at's ordering, so only ties on last_updated need the payload's start_time.
_CANDIDATES = 20

_TERMINAL = or_(func.upper(Event.status) == "JOB_COMPLETED", func.upper(Event.status).like("%\\_FAILED", escape="\\"))
_QUERY = (
    select(Event.id, Event.s3_root, Event.job_id, Event.payload, Event.status, Event.last_updated)
    .where(
        # order_group is the tenant (ingest): ix_events_order then walks the tenant's
        # events from the newest back to the late one, instead of its whole history.
        Event.order_group == bindparam("tenant"),
        Event.tenant == bindparam("tenant"),
        Event.flow_id == bindparam("flow_id"),
        Event.id != bindparam("event_id"),
        Event.last_updated.is_not(None),
        Event.order_at >= bindparam("order_at"),
        _TERMINAL,
        # Processed, or being processed by another worker right now: the queue hands out
        # a tenant's events in order, but a late older stage does not wait for a newer
        # one already leased, and must not undo what that one is doing.
        or_(Event.decided_at.is_not(None), Event.state == EVENT_PROCESSING),
    )
    .order_by(Event.order_at.desc(), Event.id.desc())
    .limit(_CANDIDATES)
)


def newest_terminal_stage(
    connection: Connection, event: JobEvent, event_id: int, order_at: datetime
) -> TerminalStage | None:
    """Return the newest processed ``JOB_COMPLETED`` / ``*_FAILED`` of another job of
    ``event``'s tenant and flow that is newer than ``event`` (by ``last_updated``, then
    ``start_time``), or None. A read transaction of its own on ``connection``.

    ``event_id`` and ``order_at`` are the stored event's (``order_at``: parsed
    ``last_updated``, aware UTC).
    """
    if not (event.tenant and event.flow_id):
        return None
    values = {"tenant": event.tenant, "flow_id": event.flow_id, "event_id": event_id, "order_at": order_at}
    with transaction(connection, write=False):
        rows = connection.execute(_QUERY, values).all()
    newest: TerminalStage | None = None
    for row in rows:
        payload = row.payload if isinstance(row.payload, dict) else {}
        start = payload.get("start_time")
        stage = TerminalStage(
            event_id=row.id,
            s3_root=row.s3_root,
            job_id=row.job_id,
            status=row.status,
            last_updated=row.last_updated,
            start_time=start if isinstance(start, str) else None,
        )
        if newer_job(event, stage) is None:
            continue  # the event's own job, or not after it
        if newest is None or _after(stage, newest):
            newest = stage
    return newest


def _after(stage: TerminalStage, other: TerminalStage) -> bool:
    """Whether ``stage`` ends after ``other`` (both have a readable last_updated here)."""
    probe = JobEvent(
        event_key="", payload={}, s3_root=None, last_updated=other.last_updated, start_time=other.start_time
    )
    return newer_job(probe, stage) is not None
