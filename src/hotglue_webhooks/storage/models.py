"""Tables: ``events`` (every accepted webhook and its processing state), ``actions``
(every effect, keyed for idempotency), ``rejections`` (refused requests) and ``meta``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants a 64-bit id.
Id = BigInteger().with_variant(Integer(), "sqlite")

# Event processing states.
EVENT_PENDING = "pending"  # stored, not yet decided or acted on
EVENT_PROCESSING = "processing"  # leased by a worker
EVENT_RETRYING = "retrying"  # an action waits for its next attempt
EVENT_DONE = "done"  # every action ended (done, dry_run, dead or skipped)
EVENT_DEAD = "dead"  # processing itself crashed max_attempts times: parked, replay to retry
EVENT_OPEN_STATES = (EVENT_PENDING, EVENT_PROCESSING, EVENT_RETRYING)
# The partial indexes' conditions, as literal SQL: a partial index is only used for a
# query that states the very same condition with the values written out (SQLite cannot
# match bound parameters against it).
DUE_SQL = f"state IN ('{EVENT_PENDING}', '{EVENT_RETRYING}')"
OPEN_SQL = "state IN (" + ", ".join(f"'{state}'" for state in EVENT_OPEN_STATES) + ")"
URGENT_DUE_SQL = f"{DUE_SQL} AND urgent"

# Event sources.
SOURCE_WEBHOOK = "webhook"
SOURCE_RECONCILED = "reconciled"

# Action states.
ACTION_PENDING = "pending"
ACTION_RUNNING = "running"  # recorded as started; outcome unknown if the worker died
ACTION_RETRYING = "retrying"
ACTION_DONE = "done"
ACTION_DRY_RUN = "dry_run"
ACTION_DEAD = "dead"
ACTION_SKIPPED = "skipped"  # a dependency died, or the environment has no API key
ACTION_NOT_NEEDED = "not_needed"  # a failure report whose watched actions all succeeded
ACTION_FOLDED = "folded"  # a failure alert folded into an incident's message (last_error says which)
ACTION_HELD = "held"  # a Slack alert held by a snooze (last_error says which); its summary follows
ACTION_SUCCEEDED = (ACTION_DONE, ACTION_DRY_RUN)
ACTION_FINAL = (
    ACTION_DONE, ACTION_DRY_RUN, ACTION_DEAD, ACTION_SKIPPED, ACTION_NOT_NEEDED, ACTION_FOLDED, ACTION_HELD,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python; naive UTC on SQLite, timestamptz on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Event(Base):
    """One accepted webhook delivery: the redacted payload, its key fields, its work state.

    ``dedupe_key`` is SHA-256 of (``s3_root``, ``status``), or of the raw body when
    ``s3_root`` is absent; a unique index makes a repeated delivery a duplicate.
    ``order_group`` is the tenant (events of one tenant are processed one at a time, in
    ``order_at`` order); tenant-less events each get a group of their own.
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    body_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)

    env_id: Mapped[str | None] = mapped_column(String(255))
    flow_id: Mapped[str | None] = mapped_column(String(255))
    tenant: Mapped[str | None] = mapped_column(String(255))
    job_id: Mapped[str | None] = mapped_column(String(255))
    s3_root: Mapped[str | None] = mapped_column(String(1024))
    status: Mapped[str | None] = mapped_column(String(64))
    sync_type: Mapped[str | None] = mapped_column(String(64))
    job_name: Mapped[str | None] = mapped_column(String(1024))
    tap: Mapped[str | None] = mapped_column(String(255))
    target: Mapped[str | None] = mapped_column(String(255))
    last_updated: Mapped[str | None] = mapped_column(String(64))
    """``last_updated`` as sent; ``order_at`` is its parsed value (or ``received_at``)."""

    order_group: Mapped[str] = mapped_column(String(255), nullable=False)
    order_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    state: Mapped[str] = mapped_column(String(16), nullable=False, default=EVENT_PENDING)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision: Mapped[list[str] | None] = mapped_column(JSON)
    """The rules' notes, e.g. ``["no rule matched"]``; None until decided."""
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """The facts read from HotGlue for the decision (redacted)."""
    planned_keys: Mapped[list[str] | None] = mapped_column(JSON)
    """Idempotency keys of every action the decision asked for, including ones that
    another event already recorded."""
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(16), nullable=False, default=SOURCE_WEBHOOK, server_default=SOURCE_WEBHOOK)
    """Where the stage came from: ``webhook`` (HotGlue POSTed it) or ``reconciled`` (found
    in HotGlue's job list by a reconciliation pass: its webhook never arrived)."""
    found_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When a reconciliation pass found the stage (None for webhooks)."""
    found_by_pass: Mapped[int | None] = mapped_column(Id)
    """The ``reconcile_passes.id`` that found it (no foreign key: passes may be purged)."""
    urgent: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    """Claimed before other due events (rules.decide.is_urgent: a ``*_FAILED`` stage or a
    full sync's ``JOB_COMPLETED``), still after earlier open events of its tenant."""

    __table_args__ = (
        Index("ix_events_queue", "state", "next_attempt_at"),
        Index("ix_events_source_found", "source", "found_at"),
        Index("ix_events_order", "order_group", "order_at", "id"),
        Index("ix_events_tenant_received", "tenant", "received_at"),
        Index("ix_events_flow", "flow_id"),
        Index("ix_events_status", "status"),
        # A job's stages (dashboard job view, event page): s3_root is unique per job.
        Index("ix_events_s3_root", "s3_root"),
        # The queue (storage/queue.py): due events in claim order, and the open events of
        # a tenant, so a claim walks a few index entries instead of the whole backlog.
        Index(
            "ix_events_due", "next_attempt_at", "order_at", "id",
            sqlite_where=text(DUE_SQL), postgresql_where=text(DUE_SQL),
        ),
        Index(
            "ix_events_open_order", "order_group", "order_at", "id",
            sqlite_where=text(OPEN_SQL), postgresql_where=text(OPEN_SQL),
        ),
        # Urgent due events in claim order (storage/queue.py claims them first): a few
        # entries even in a burst of thousands of progress stages.
        Index(
            "ix_events_urgent_due", "next_attempt_at", "order_at", "id",
            sqlite_where=text(URGENT_DUE_SQL), postgresql_where=text(URGENT_DUE_SQL),
        ),
    )


class ActionRecord(Base):
    """One effect decided for an event, recorded before it is executed.

    ``idempotency_key`` is unique across all events: an action whose key is already
    recorded is never recorded or executed again.
    """

    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(
        Id, ForeignKey("events.id", ondelete="CASCADE"), nullable=False, index=True
    )
    idempotency_key: Mapped[str] = mapped_column(String(512), nullable=False, unique=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    rule: Mapped[str] = mapped_column(String(64), nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    depends_on: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=ACTION_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    request: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """The HTTP request sent (or, in dry-run, that would have been sent), redacted."""
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """A summary of the answer, e.g. ``{"status": 200, "ts": "…"}``."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_actions_state", "state"),
        # The attention list: the schedules an Exact 401 turned off, the config checks.
        Index("ix_actions_rule_kind", "rule", "kind"),
    )


class Rejection(Base):
    """A refused webhook request (400/401/413): kept for diagnosis, never processed."""

    __tablename__ = "rejections"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str] = mapped_column(String(255), nullable=False)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    body_excerpt: Mapped[str | None] = mapped_column(Text)


class Meta(Base):
    """Small key/value facts shared by all processes, e.g. the last purge time."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class SlackThread(Base):
    """A failure alert in Slack whose thread collects the repeats of the same failure.

    ``thread_key`` is the env, tenant, flow and error fingerprint (see
    ``rules/alerts.py``); ``channel`` is Slack's channel id and ``ts`` the alert's ts, as
    ``chat.postMessage`` answered. ``text``/``blocks`` are the alert as posted, so that
    ``chat.update`` can add the count. An alert is open until ``resolved_at``.
    """

    __tablename__ = "slack_threads"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    thread_key: Mapped[str] = mapped_column(String(1024), nullable=False)
    tenant: Mapped[str | None] = mapped_column(String(255))
    flow_id: Mapped[str | None] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    opened_event_id: Mapped[int] = mapped_column(Id, nullable=False)
    opened_order_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    """The opening event's place in its tenant's processing order (``order_at``, id): only
    events after it see the thread. No foreign key: threads outlive purged events."""
    channel: Mapped[str] = mapped_column(String(255), nullable=False)
    channel_name: Mapped[str | None] = mapped_column(String(255))
    """The channel as the alert was posted to (``#hotglue-webhooks``): the pacing key."""
    ts: Mapped[str] = mapped_column(String(64), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    blocks: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_slack_threads_tenant_flow", "tenant", "flow_id", "resolved_at"),
        Index("ix_slack_threads_key", "thread_key"),
    )


class SlackPacing(Base):
    """The next moment a message may go to ``channel`` (shared by every worker process)."""

    __tablename__ = "slack_pacing"

    channel: Mapped[str] = mapped_column(String(255), primary_key=True)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class ReconcilePass(Base):
    """One reconciliation pass over HotGlue's job lists (``reconcile.py``).

    ``pairs`` is the list of ``[env_id, flow_id, tenant]`` fixed when the pass started and
    ``next_index`` how many of them are done: a pass that stopped half-way (its process
    died) is taken up there by the next run with the same ``scope`` (the CLI's filters, as
    JSON), never reading a done pair again. ``recovered`` counts stored stages by status,
    ``errors`` lists one line per pair that could not be read, ``silent`` the pairs judged
    silent, ``rhythms`` every judged pair's last job and expected next one. ``since`` is the window's start; times are aware UTC.
    """

    __tablename__ = "reconcile_passes"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    trigger: Mapped[str] = mapped_column(String(16), nullable=False)
    """``worker`` (the periodic pass) or ``cli`` (``hotglue-webhooks reconcile``)."""
    scope: Mapped[str] = mapped_column(String(1024), nullable=False)
    since: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pairs: Mapped[list[list[str]]] = mapped_column(JSON, nullable=False)
    next_index: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    jobs_seen: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    recovered: Mapped[dict[str, int]] = mapped_column(JSON, nullable=False)
    errors: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    silent: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    rhythms: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    """Per pair (``"env_id/flow_id/tenant"``): ``{"env_id", "flow_id", "tenant", "kind",
    "last_at", "expected", "silent"}``, the verdict of the pass (ISO times or None)."""

    __table_args__ = (Index("ix_reconcile_passes_open", "scope", "finished_at"),)


# Incident states.
INCIDENT_OPEN = "open"
INCIDENT_RESOLVED = "resolved"  # every member's flow finished a job again
INCIDENT_EXPIRED = "expired"  # no new member for [incidents] expire_minutes
# Incident member states.
MEMBER_HELD = "held"  # its alert waits for the group wait to end
MEMBER_ALONE = "alone"  # its alert was posted on its own (before any incident)
MEMBER_FOLDED = "folded"  # its alert was folded into the incident's message
MEMBER_SNOOZED = "snoozed"  # its alert was held by a snooze (not counted towards an incident)


class Incident(Base):
    """One failure shared by many tenants: one top-level Slack message, updated in place.

    ``signature`` is ``rules/incidents.py``'s id of the failure (error line without ids,
    connector, failed stage). ``channel`` is where it is posted (the pacing key),
    ``channel_id``/``ts`` what ``chat.postMessage`` answered. ``flush_seq`` counts the
    ``INCIDENT_UPDATE`` events stored for it; ``flush_pending`` is the one not yet decided
    (None: the next change stores a new one). Times are aware UTC.
    """

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    signature: Mapped[str] = mapped_column(String(64), nullable=False)
    open_signature: Mapped[str | None] = mapped_column(String(64), unique=True)
    """``signature`` while open, None once closed: at most one open incident per signature
    (a unique column; NULLs never collide)."""
    env_id: Mapped[str | None] = mapped_column(String(255))
    stage: Mapped[str | None] = mapped_column(String(64))
    connector: Mapped[str] = mapped_column(String(255), nullable=False)
    error_line: Mapped[str] = mapped_column(Text, nullable=False)
    channel: Mapped[str] = mapped_column(String(255), nullable=False)
    channel_id: Mapped[str | None] = mapped_column(String(255))
    ts: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=INCIDENT_OPEN)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_change_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    flush_seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    flush_pending: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (
        Index("ix_incidents_signature_state", "signature", "state"),
        Index("ix_incidents_state_last", "state", "last_change_at"),
    )


class IncidentMember(Base):
    """One tenant's flow failing with a signature: a sighting before the incident opens
    (``incident_id`` None), a member after. ``thread_key`` is its own alert thread when
    it had one (``state`` alone), linked from the incident, not alerted again."""

    __tablename__ = "incident_members"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    signature: Mapped[str] = mapped_column(String(64), nullable=False)
    env_id: Mapped[str | None] = mapped_column(String(255))
    tenant: Mapped[str] = mapped_column(String(255), nullable=False)
    flow_id: Mapped[str | None] = mapped_column(String(255))
    incident_id: Mapped[int | None] = mapped_column(Id)
    event_id: Mapped[int] = mapped_column(Id, nullable=False)
    """The first failure event of this tenant's flow (no foreign key: events are purged)."""
    thread_key: Mapped[str | None] = mapped_column(String(1024))
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the incident's thread named it (None: not yet)."""
    recovered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_incident_members_signature_seen", "signature", "seen_at"),
        Index("ix_incident_members_incident", "incident_id"),
        Index("ix_incident_members_tenant_flow", "tenant", "flow_id", "recovered_at"),
    )


class SnoozeRow(Base):
    """Slack alerts of a tenant, or of an incident signature, held until ``until``.

    ``held`` counts the messages held; ``ended_at`` is set once the summary of what
    happened meanwhile was queued (the snooze ended, or was lifted early).
    """

    __tablename__ = "snoozes"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16), nullable=False)
    target: Mapped[str] = mapped_column(String(255), nullable=False)
    until: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    by: Mapped[str] = mapped_column("snoozed_by", String(255), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    held: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_snoozes_scope_target", "scope", "target", "until"),
        Index("ix_snoozes_open", "ended_at", "until"),
    )


# Where a command came from.
COMMAND_SLACK = "slack"
COMMAND_DASHBOARD = "dashboard"
SOURCE_COMMAND = "command"
"""``events.source`` of the queue item that carries out a command (``commands.event_id``)."""
COMMAND_STATUS = "COMMAND"
"""``events.status`` of such an item: the receiver's own, not a HotGlue stage."""


class Command(Base):
    """One click of a Slack button or dashboard command, as a person asked for it.

    ``idempotency_key`` is unique: a button acts once (``slack|{channel_id}|{message_ts}|
    {action_id}``); a second click of it is stored too, with ``duplicate_of`` the first
    one's id, and only answers who did it. ``command`` is the meaning
    (``rules/commands.py``: ``enable_schedules``, ``retry_job``, ``replay``, …); ``target``
    what the button named (``{"event": dedupe_key}``, the message's event).
    ``message_event_id`` is our stored event whose message carried the button;
    ``event_id`` the queue item (``events.source = command``) whose actions carry the
    command out, with the worker's keys, retries, dead letters and audit.
    ``response_url`` is Slack's, for the ephemeral answer; it is a capability (anyone
    holding it may post for 30 minutes), never shown, and cleared once answered.
    """

    __tablename__ = "commands"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(512), nullable=False, unique=True)
    origin: Mapped[str] = mapped_column(String(16), nullable=False)
    action_id: Mapped[str] = mapped_column(String(255), nullable=False)
    command: Mapped[str] = mapped_column(String(32), nullable=False)
    env_id: Mapped[str | None] = mapped_column(String(255))
    tenant: Mapped[str | None] = mapped_column(String(255))
    flow_id: Mapped[str | None] = mapped_column(String(255))
    target: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    message_event_id: Mapped[int | None] = mapped_column(Id)
    channel_id: Mapped[str | None] = mapped_column(String(255))
    message_ts: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    user_name: Mapped[str | None] = mapped_column(String(255))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    duplicate_of: Mapped[int | None] = mapped_column(Id)
    refused: Mapped[str | None] = mapped_column(Text)
    """Why the click did not act (a user not in ``HGW_SLACK_ALLOWED_USERS``); None when it did."""
    event_id: Mapped[int | None] = mapped_column(Id)
    response_url: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_commands_tenant", "tenant", "requested_at"),
        Index("ix_commands_message_event", "message_event_id"),
        Index("ix_commands_event", "event_id"),
        Index("ix_commands_message", "channel_id", "message_ts"),
    )
