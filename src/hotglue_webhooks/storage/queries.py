"""Read-only queries behind the admin API, the CLI, the dashboard and the metrics.

Every query works the same on SQLite and PostgreSQL; the only dialect switch is the
hour bucket of :func:`hourly_counts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks.rules.decide import is_stale
from hotglue_webhooks.storage.models import (
    ACTION_DEAD,
    EVENT_OPEN_STATES,
    SOURCE_COMMAND,
    ActionRecord,
    Event,
)
from hotglue_webhooks.rules.decide import JOB_COMPLETED
from hotglue_webhooks.rules.model import LIFECYCLE_STATUSES

MAX_PAGE = 500
ANY_FAILURE = "*_FAILED"
"""The ``status`` filter value that matches every failure (HotGlue has no JOB_FAILED:
a failed job ends on DISCOVER_, SYNC_, ETL_ or EXPORT_FAILED; REFERENCE.md §1)."""


PROGRESS_STATUSES: tuple[str, ...] = tuple(
    status for status in LIFECYCLE_STATUSES if status == "JOB_CREATED" or status.endswith(("_STARTED", "_SUCCESS"))
)
"""The stages that only say a job moves on (JOB_CREATED, ``*_STARTED``, ``*_SUCCESS``):
what ``hide_progress`` leaves out. A job's outcome is JOB_COMPLETED or a ``*_FAILED``."""


@dataclass(frozen=True)
class EventFilter:
    """Filters for listing events; None means "any". Times are aware UTC.

    ``status`` is a lifecycle status, or :data:`ANY_FAILURE` for every ``*_FAILED`` one.
    ``text`` matches, case-insensitively, a part of the job name or of HotGlue's message.
    ``hide_progress`` leaves out the :data:`PROGRESS_STATUSES` (events without a status stay).
    """

    tenant: str | None = None
    flow_id: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    sync_type: str | None = None
    text: str | None = None
    hide_progress: bool = False


def _failed(column: Any) -> ColumnElement[bool]:
    return column.like("%\\_FAILED", escape="\\")  # type: ignore[no-any-return]


def _event_conditions(filters: EventFilter) -> list[ColumnElement[bool]]:
    # A person's command is carried out as an event of its own (storage/commands.py): its
    # audit is on the tenant and event pages, not among HotGlue's stages.
    conditions: list[ColumnElement[bool]] = [Event.source != SOURCE_COMMAND]
    if filters.tenant is not None:
        conditions.append(Event.tenant == filters.tenant)
    if filters.flow_id is not None:
        conditions.append(Event.flow_id == filters.flow_id)
    if filters.status == ANY_FAILURE:
        conditions.append(_failed(Event.status))
    elif filters.status is not None:
        conditions.append(Event.status == filters.status)
    if filters.sync_type is not None:
        conditions.append(Event.sync_type == filters.sync_type)
    if filters.hide_progress:
        conditions.append(or_(Event.status.is_(None), Event.status.not_in(PROGRESS_STATUSES)))
    if filters.since is not None:
        conditions.append(Event.received_at >= filters.since)
    if filters.until is not None:
        conditions.append(Event.received_at < filters.until)
    if filters.text:
        needle = filters.text.lower()
        message = Event.payload["message"].as_string()
        conditions.append(
            func.lower(func.coalesce(Event.job_name, "")).contains(needle, autoescape=True)
            | func.lower(func.coalesce(message, "")).contains(needle, autoescape=True)
        )
    return conditions


def list_events(
    sessions: sessionmaker[Session], filters: EventFilter, limit: int = 50, before_id: int | None = None
) -> list[Event]:
    """Return events matching ``filters``, newest first, at most ``limit`` (≤ 500).

    ``before_id`` is the cursor: only events with a smaller id (older) are returned.
    """
    query = select(Event).where(*_event_conditions(filters))
    if before_id is not None:
        query = query.where(Event.id < before_id)
    query = query.order_by(Event.id.desc()).limit(max(1, min(limit, MAX_PAGE)))
    with sessions() as session:
        return list(session.scalars(query))


def count_events(sessions: sessionmaker[Session], filters: EventFilter) -> int:
    """Return how many events match ``filters``."""
    query = select(func.count()).select_from(Event).where(*_event_conditions(filters))
    with sessions() as session:
        return int(session.scalar(query) or 0)


def distinct_values(sessions: sessionmaker[Session], column: str, limit: int = 200) -> list[str]:
    """Return the distinct non-empty values of an event column (``tenant``, ``flow_id``,
    ``status``, ``sync_type``), sorted, for the dashboard's filter choices."""
    attribute = {"tenant": Event.tenant, "flow_id": Event.flow_id, "status": Event.status, "sync_type": Event.sync_type}[
        column
    ]
    query = select(attribute).where(attribute.is_not(None)).distinct().order_by(attribute).limit(limit)
    with sessions() as session:
        return [value for value in session.scalars(query) if value]


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
        "stale": is_stale(event.decision),
        "processed_at": _time(event.processed_at),
        "source": event.source,
        "found_at": _time(event.found_at),
        "found_by_pass": None if event.found_by_pass is None else str(event.found_by_pass),
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


# -- actions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionFilter:
    """Filters for listing actions; None means "any". Times (of the action's last
    change) are aware UTC; ``ids`` narrows to chosen actions."""

    state: str | None = None
    kind: str | None = None
    rule: str | None = None
    tenant: str | None = None
    flow_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    ids: Sequence[int] = field(default_factory=tuple)


def _action_conditions(filters: ActionFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.state is not None:
        conditions.append(ActionRecord.state == filters.state)
    if filters.kind is not None:
        conditions.append(ActionRecord.kind == filters.kind)
    if filters.rule is not None:
        conditions.append(ActionRecord.rule == filters.rule)
    if filters.tenant is not None:
        conditions.append(Event.tenant == filters.tenant)
    if filters.flow_id is not None:
        conditions.append(Event.flow_id == filters.flow_id)
    if filters.since is not None:
        conditions.append(ActionRecord.updated_at >= filters.since)
    if filters.until is not None:
        conditions.append(ActionRecord.updated_at < filters.until)
    if filters.ids:
        conditions.append(ActionRecord.id.in_(list(filters.ids)))
    return conditions


def list_actions(
    sessions: sessionmaker[Session], filters: ActionFilter, limit: int = 50, before_id: int | None = None
) -> list[tuple[ActionRecord, Event]]:
    """Return actions matching ``filters`` with their events, newest first (≤ 500).

    ``before_id`` is the cursor: only actions with a smaller id are returned.
    """
    query = (
        select(ActionRecord, Event)
        .join(Event, Event.id == ActionRecord.event_id)
        .where(*_action_conditions(filters))
    )
    if before_id is not None:
        query = query.where(ActionRecord.id < before_id)
    query = query.order_by(ActionRecord.id.desc()).limit(max(1, min(limit, MAX_PAGE)))
    with sessions() as session:
        return [(action, event) for action, event in session.execute(query)]


def count_actions(sessions: sessionmaker[Session], filters: ActionFilter) -> int:
    """Return how many actions match ``filters``."""
    query = (
        select(func.count())
        .select_from(ActionRecord)
        .join(Event, Event.id == ActionRecord.event_id)
        .where(*_action_conditions(filters))
    )
    with sessions() as session:
        return int(session.scalar(query) or 0)


def action_event_ids(sessions: sessionmaker[Session], filters: ActionFilter) -> tuple[int, list[int]]:
    """Return (how many actions match, the ids of their events, oldest first).

    Bulk replay reopens these events (``worker.reopen_events``).
    """
    query = (
        select(ActionRecord.event_id, func.count())
        .join(Event, Event.id == ActionRecord.event_id)
        .where(*_action_conditions(filters))
        .group_by(ActionRecord.event_id)
        .order_by(ActionRecord.event_id)
    )
    with sessions() as session:
        rows = session.execute(query).all()
    return sum(count for _, count in rows), [event_id for event_id, _ in rows]


def action_states_for(sessions: sessionmaker[Session], event_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Return, for each of ``event_ids`` that has actions, its number of actions per state."""
    if not event_ids:
        return {}
    query = (
        select(ActionRecord.event_id, ActionRecord.state, func.count())
        .where(ActionRecord.event_id.in_(list(event_ids)))
        .group_by(ActionRecord.event_id, ActionRecord.state)
    )
    result: dict[int, dict[str, int]] = {}
    with sessions() as session:
        for event_id, state, count in session.execute(query):
            result.setdefault(event_id, {})[state] = int(count)
    return result


def actions_for(sessions: sessionmaker[Session], event_ids: Sequence[int]) -> dict[int, list[ActionRecord]]:
    """Return, for each of ``event_ids`` that has actions, its actions in decision order."""
    if not event_ids:
        return {}
    query = (
        select(ActionRecord)
        .where(ActionRecord.event_id.in_(list(event_ids)))
        .order_by(ActionRecord.event_id, ActionRecord.position)
    )
    result: dict[int, list[ActionRecord]] = {}
    with sessions() as session:
        for action in session.scalars(query):
            result.setdefault(action.event_id, []).append(action)
    return result


def job_events(sessions: sessionmaker[Session], tenant: str | None, s3_root: str) -> list[Event]:
    """Return every stored stage of one job, in lifecycle order (``tenant`` narrows the
    search to that tenant's index range)."""
    query = select(Event).where(Event.s3_root == s3_root)
    if tenant is not None:
        query = query.where(Event.tenant == tenant)
    with sessions() as session:
        return list(session.scalars(query.order_by(Event.order_at, Event.id)))


def action_counts(sessions: sessionmaker[Session]) -> dict[tuple[str, str], int]:
    """Return the number of stored actions per (kind, state)."""
    query = select(ActionRecord.kind, ActionRecord.state, func.count()).group_by(ActionRecord.kind, ActionRecord.state)
    with sessions() as session:
        return {(kind, state): int(count) for kind, state, count in session.execute(query)}


def dead_action_count(sessions: sessionmaker[Session]) -> int:
    """Return how many actions are parked as dead."""
    with sessions() as session:
        return int(
            session.scalar(select(func.count()).select_from(ActionRecord).where(ActionRecord.state == ACTION_DEAD)) or 0
        )


# -- tenants ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One HotGlue job of a tenant: its lifecycle stages (events) oldest first."""

    s3_root: str | None
    stages: list[Event]

    @property
    def last(self) -> Event:
        return self.stages[-1]

    @property
    def first(self) -> Event:
        return self.stages[0]

    @property
    def failed(self) -> bool:
        return any((stage.status or "").endswith("_FAILED") for stage in self.stages)

    @property
    def outcome(self) -> str:
        """Return ``"failed"`` (a ``*_FAILED`` stage), ``"completed"`` (JOB_COMPLETED) or
        ``"running"`` (neither has arrived yet)."""
        if self.failed:
            return "failed"
        if any(stage.status == JOB_COMPLETED for stage in self.stages):
            return "completed"
        return "running"

    @property
    def failed_stage(self) -> Event | None:
        """Return the first ``*_FAILED`` stage, or None."""
        return next((stage for stage in self.stages if (stage.status or "").endswith("_FAILED")), None)


def _job_key() -> ColumnElement[str]:
    return func.coalesce(Event.s3_root, literal("#") + cast(Event.id, String))


def _stages_of(session: Session, keys: Sequence[str]) -> dict[str, list[Event]]:
    """Return every stored stage of the jobs ``keys`` (an ``s3_root``, or ``#<id>`` for an
    event without one), in the job's own time order (``order_at``: its ``last_updated``)."""
    roots = [key for key in keys if not key.startswith("#")]
    single = [int(key[1:]) for key in keys if key.startswith("#")]
    grouped: dict[str, list[Event]] = {key: [] for key in keys}
    # Two indexed lookups (ix_events_s3_root, the primary key) instead of one on an expression.
    for where in ([Event.s3_root.in_(roots)] if roots else []) + ([Event.id.in_(single)] if single else []):
        for event in session.scalars(select(Event).where(where)):
            grouped[event.s3_root if event.s3_root is not None else f"#{event.id}"].append(event)
    for stages in grouped.values():
        stages.sort(key=lambda stage: (stage.order_at, stage.id))
    return grouped


JOB_SCAN = 1000


def list_jobs(
    sessions: sessionmaker[Session], filters: EventFilter, limit: int = 50, before_id: int | None = None
) -> tuple[list[Job], int | None]:
    """Return the jobs with an event matching ``filters``, newest first, at most ``limit``
    (≤ 500), each with all its stored stages; and the cursor of the next page (or None).

    A job's place is its newest matching event: the newest events are read by id, ``JOB_SCAN``
    at a time (the primary key, newest first), until ``limit`` distinct jobs are seen, so a
    page costs the same with 30 days of events. ``before_id`` is the cursor: only matching
    events with a smaller id count, and a job already shown on a newer page is left out.
    """
    conditions = _event_conditions(filters)
    limit = max(1, min(limit, MAX_PAGE))
    keys: list[str] = []
    seen: set[str] = set()
    next_before: int | None = None
    cursor = before_id
    with sessions() as session:
        while next_before is None:
            query = select(Event.id, _job_key()).where(*conditions)
            if cursor is not None:
                query = query.where(Event.id < cursor)
            rows = session.execute(query.order_by(Event.id.desc()).limit(JOB_SCAN)).all()
            for event_id, key in rows:
                if key in seen:
                    continue
                if len(keys) == limit:
                    next_before = event_id + 1
                    break
                seen.add(key)
                keys.append(key)
            if len(rows) < JOB_SCAN:
                break
            cursor = rows[-1][0]
        roots = [key for key in keys if not key.startswith("#")]
        if before_id is not None and roots:
            shown = set(
                session.scalars(
                    select(Event.s3_root).where(*conditions, Event.id >= before_id, Event.s3_root.in_(roots)).distinct()
                )
            )
            keys = [key for key in keys if key not in shown]
        grouped = _stages_of(session, keys)
    jobs = [Job(s3_root=None if key.startswith("#") else key, stages=grouped[key]) for key in keys if grouped[key]]
    return jobs, next_before


def tenant_jobs(
    sessions: sessionmaker[Session], tenant: str, limit: int = 30, before_id: int | None = None
) -> list[Job]:
    """Return the tenant's jobs (grouped by ``s3_root``), newest job first, at most ``limit``.

    A job's place is its newest event; ``before_id`` is the cursor (only jobs whose newest
    event id is smaller). An event without ``s3_root`` is a job of its own.
    """
    job_key = func.coalesce(Event.s3_root, literal("#") + cast(Event.id, String))
    newest = func.max(Event.id)
    keys_query = select(job_key, newest).where(Event.tenant == tenant, Event.source != SOURCE_COMMAND).group_by(job_key)
    if before_id is not None:
        keys_query = keys_query.having(newest < before_id)
    keys_query = keys_query.order_by(newest.desc()).limit(max(1, min(limit, MAX_PAGE)))
    with sessions() as session:
        keys = [key for key, _ in session.execute(keys_query)]
        if not keys:
            return []
        events = list(
            session.scalars(
                select(Event)
                .where(Event.tenant == tenant, job_key.in_(keys))
                .order_by(Event.order_at, Event.id)
            )
        )
    grouped: dict[str, list[Event]] = {key: [] for key in keys}
    for event in events:
        grouped[event.s3_root if event.s3_root is not None else f"#{event.id}"].append(event)
    return [Job(s3_root=None if key.startswith("#") else key, stages=stages) for key, stages in grouped.items() if stages]


@dataclass(frozen=True)
class TenantSummary:
    """A tenant's events since a moment: how many, how many failed, the newest one's time."""

    tenant: str
    events: int
    failures: int
    last_received_at: datetime


def tenant_overview(
    sessions: sessionmaker[Session], since: datetime | None = None, search: str | None = None, limit: int = MAX_PAGE
) -> list[TenantSummary]:
    """Return every tenant with events since ``since``, the most recently active first.

    ``search`` keeps tenants whose id contains it (case-insensitive).
    """
    last = func.max(Event.received_at)
    query = select(
        Event.tenant, func.count(), func.sum(case((_failed(Event.status), 1), else_=0)), last
    ).where(Event.tenant.is_not(None), Event.source != SOURCE_COMMAND)
    if since is not None:
        query = query.where(Event.received_at >= since)
    if search:
        query = query.where(func.lower(Event.tenant).contains(search.lower(), autoescape=True))
    query = query.group_by(Event.tenant).order_by(last.desc(), Event.tenant).limit(max(1, min(limit, MAX_PAGE)))
    with sessions() as session:
        return [
            TenantSummary(tenant=tenant, events=int(count), failures=int(failed or 0), last_received_at=newest)
            for tenant, count, failed, newest in session.execute(query)
            if tenant is not None
        ]


@dataclass(frozen=True)
class TenantState:
    """Whether a tenant's flows are still failing: per flow, the newest outcome since a
    moment (a ``*_FAILED`` stage, or JOB_COMPLETED), in the job's own time (``order_at``).

    ``failing`` are the flows whose newest outcome is a failure, ``recovered`` those that
    failed and completed since; ``dead_actions`` counts the tenant's dead actions (any age).
    """

    failing: tuple[str, ...] = ()
    recovered: tuple[str, ...] = ()
    last_failure_at: datetime | None = None
    dead_actions: int = 0

    @property
    def label(self) -> str:
        """Return ``"still failing"``, ``"recovered"`` or ``""`` (no failure)."""
        return "still failing" if self.failing else "recovered" if self.recovered else ""


def tenant_states(sessions: sessionmaker[Session], since: datetime) -> dict[str, TenantState]:
    """Return the :class:`TenantState` of every tenant with a failure since ``since`` or a
    dead action. Two grouped queries: events by (tenant, flow) over the ``received_at``
    index, dead actions over ``ix_actions_state``."""
    is_failed = _failed(Event.status)
    last_failed = func.max(case((is_failed, Event.order_at), else_=None))
    last_completed = func.max(case((Event.status == JOB_COMPLETED, Event.order_at), else_=None))
    last_failure_received = func.max(case((is_failed, Event.received_at), else_=None))
    outcomes = (
        select(Event.tenant, Event.flow_id, last_failed, last_completed, last_failure_received)
        .where(Event.received_at >= since, Event.tenant.is_not(None))
        .group_by(Event.tenant, Event.flow_id)
        .having(last_failed.is_not(None))
    )
    dead = (
        select(Event.tenant, func.count())
        .select_from(ActionRecord)
        .join(Event, Event.id == ActionRecord.event_id)
        .where(ActionRecord.state == ACTION_DEAD, Event.tenant.is_not(None))
        .group_by(Event.tenant)
    )
    failing: dict[str, list[str]] = {}
    recovered: dict[str, list[str]] = {}
    last_failure: dict[str, datetime] = {}
    with sessions() as session:
        for tenant, flow_id, failed_at, completed_at, received_at in session.execute(outcomes):
            flow = flow_id or "–"
            failed_at, completed_at, received_at = (_utc(value) for value in (failed_at, completed_at, received_at))
            if completed_at is not None and failed_at is not None and completed_at > failed_at:
                recovered.setdefault(tenant, []).append(flow)
            else:
                failing.setdefault(tenant, []).append(flow)
            if received_at is not None and (tenant not in last_failure or received_at > last_failure[tenant]):
                last_failure[tenant] = received_at
        dead_counts: dict[str, int] = {tenant: int(count) for tenant, count in session.execute(dead) if tenant is not None}
    return {
        tenant: TenantState(
            failing=tuple(sorted(failing.get(tenant, ()))),
            recovered=tuple(sorted(recovered.get(tenant, ()))),
            last_failure_at=last_failure.get(tenant),
            dead_actions=dead_counts.get(tenant, 0),
        )
        for tenant in set(failing) | set(recovered) | set(dead_counts)
    }


def _utc(value: Any) -> datetime | None:
    """Return a MAX(CASE …) of a UTC column as an aware datetime: the CASE loses the column
    type, so SQLite answers its naive text and PostgreSQL an aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# -- the chart, the queue ----------------------------------------------------------------


@dataclass(frozen=True)
class HourCount:
    """Events received in one hour (``hour`` is its aware UTC start), and how many failed."""

    hour: datetime
    events: int
    failures: int


def hourly_counts(
    sessions: sessionmaker[Session], now: datetime, hours: int = 168, filters: EventFilter | None = None
) -> list[HourCount]:
    """Return events and failures per hour for the ``hours`` hours up to ``now``, oldest
    first, every hour present (zeros included). ``filters``' time bounds are ignored."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    conditions = _event_conditions(filters or EventFilter())
    with sessions() as session:
        if session.get_bind().dialect.name == "postgresql":
            bucket: Any = func.to_char(func.date_trunc("hour", func.timezone("UTC", Event.received_at)), "YYYY-MM-DD HH24")
        else:  # SQLite stores naive UTC text: "YYYY-MM-DD HH:MM:SS.ffffff"
            bucket = func.strftime("%Y-%m-%d %H", Event.received_at)
        query = (
            select(bucket, func.count(), func.sum(case((_failed(Event.status), 1), else_=0)))
            .where(Event.received_at >= start, Event.received_at < end, *conditions)
            .group_by(bucket)
        )
        found = {key: (int(total), int(failed or 0)) for key, total, failed in session.execute(query)}
    result = []
    for index in range(hours):
        hour = start + timedelta(hours=index)
        total, failed = found.get(hour.strftime("%Y-%m-%d %H"), (0, 0))
        result.append(HourCount(hour=hour, events=total, failures=failed))
    return result


@dataclass(frozen=True)
class QueueState:
    """Open work: events per open state, and the age (seconds) of the oldest open event
    and of the oldest one that is due now (the queue's lag)."""

    depth: dict[str, int]
    oldest_open_age_seconds: float
    oldest_due_age_seconds: float


def queue_state(sessions: sessionmaker[Session], now: datetime) -> QueueState:
    """Return how much work is open and how old the oldest of it is."""
    is_open = Event.state.in_(EVENT_OPEN_STATES)
    with sessions() as session:
        depth = {state: 0 for state in EVENT_OPEN_STATES}
        for state, count in session.execute(
            select(Event.state, func.count()).where(is_open).group_by(Event.state)
        ):
            depth[state] = int(count)
        oldest_open = session.scalar(select(func.min(Event.received_at)).where(is_open))
        oldest_due = session.scalar(
            select(func.min(Event.next_attempt_at)).where(and_(is_open, Event.next_attempt_at <= now))
        )
    return QueueState(
        depth=depth,
        oldest_open_age_seconds=_age(oldest_open, now),
        oldest_due_age_seconds=_age(oldest_due, now),
    )


def _age(moment: datetime | None, now: datetime) -> float:
    if moment is None:
        return 0.0
    return max(0.0, (now - moment).total_seconds())
