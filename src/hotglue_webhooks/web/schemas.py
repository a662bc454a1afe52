"""The admin API's request and response shapes (marshmallow), from which ``/openapi.json``
is generated (flask-smorest). The views still build their answers with
``storage/queries.py``'s ``event_summary``/``event_detail``/``action_view``; these schemas
describe them, and the schemathesis test holds the two together.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from hotglue_webhooks.ingest import parse_time
from hotglue_webhooks.storage.models import (
    ACTION_DEAD,
    ACTION_DONE,
    ACTION_DRY_RUN,
    ACTION_FOLDED,
    ACTION_HELD,
    ACTION_NOT_NEEDED,
    ACTION_PENDING,
    ACTION_RETRYING,
    ACTION_RUNNING,
    ACTION_SKIPPED,
)

ACTION_STATES = (
    ACTION_PENDING, ACTION_RUNNING, ACTION_RETRYING, ACTION_DONE, ACTION_DRY_RUN, ACTION_DEAD, ACTION_SKIPPED,
    ACTION_NOT_NEEDED, ACTION_FOLDED, ACTION_HELD,
)

MAX_ID = 2**63 - 1


def _no_lone_surrogate(value: str) -> None:
    if _SURROGATE.search(value):
        raise ma.ValidationError("must not contain lone surrogates")


_SURROGATE = re.compile("[\ud800-\udfff]")


class Text(fields.String):
    """A filter value: at most 1024 characters, no NUL (PostgreSQL text refuses it) and no
    lone surrogate (a JSON ``"\\ud800"``: no database driver can encode it)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "validate",
            [
                validate.Length(max=1024),
                validate.Regexp(r"^[^\x00]*$", error="must not contain NUL characters"),
                _no_lone_surrogate,  # not a pattern: the OpenAPI document keeps the one above
            ],
        )
        super().__init__(**kwargs)


TENANT = Text()
"""A tenant id in a URL path (``/tenants/<tenant>``): the same rules as the ``tenant`` filter."""


def text_problems(field: fields.Field, value: str) -> list[str]:
    """Return why ``value`` is not valid for ``field`` (empty when it is): the messages a
    query parameter would get, for a value that comes in the URL path instead."""
    try:
        field.deserialize(value)
    except ma.ValidationError as error:
        messages = error.messages
        return [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]
    return []


def parse_when(value: str | None, now: datetime | None = None) -> datetime | None:
    """Parse an ISO-8601 time, or a relative one ago (``30m``, ``12h``, ``7d``).

    Returns None for an empty value; raises ValueError for anything else unreadable.
    """
    if not value:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if value[:-1].isdigit() and value[-1:] in units and len(value) <= 7:
        return (now or datetime.now(UTC)) - timedelta(**{units[value[-1]]: int(value[:-1])})
    parsed = parse_time(value) if len(value) <= 64 and "\x00" not in value else None
    if parsed is None:
        raise ValueError(value)
    return parsed


class When(fields.String):
    """A time: ISO-8601 (``2026-11-28T06:00:00Z``) or relative, ago (``30m``, ``12h``, ``7d``)."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {
            "description": "ISO-8601 time (2026-11-28T06:00:00Z), or a time ago: 30m, 12h, 7d",
            "format": "date-time",
        }
        metadata.update(kwargs.pop("metadata", {}))
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:  # type: ignore[override]
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            parsed = parse_when(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise ma.ValidationError("must be an ISO-8601 time (2026-11-28T06:00:00Z) or a time ago (30m, 12h, 7d)")
        return parsed


class Schema(ma.Schema):
    class Meta:
        ordered = True


# -- requests --------------------------------------------------------------------------


class EventQuery(Schema):
    tenant = Text(metadata={"description": "tenant id, exactly"})
    flow_id = Text(metadata={"description": "flow id, exactly"})
    status = Text(metadata={"description": "lifecycle status, e.g. SYNC_FAILED; *_FAILED for any failure"})
    sync_type = Text(metadata={"description": "auto_sync, full_sync or incremental_sync"})
    q = Text(metadata={"description": "part of the job name or of HotGlue's message (case-insensitive)"})
    progress = fields.String(
        validate=validate.OneOf(("hide", "show")),
        metadata={"description": "hide: leave out the progress stages (JOB_CREATED, *_STARTED, *_SUCCESS); show (default): all"},
    )
    since = When()
    until = When()
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.Integer(
        validate=validate.Range(1, MAX_ID), metadata={"description": "next_cursor of the previous page"}
    )


class TenantEventQuery(EventQuery):
    class Meta:
        exclude = ("tenant",)


class ActionQuery(Schema):
    state = fields.String(
        validate=validate.OneOf(ACTION_STATES),
        metadata={"description": "pending, running, retrying, done, dry_run, dead or skipped"},
    )
    kind = Text(metadata={"description": "e.g. slack.post_message, hotglue.put_schedule"})
    rule = Text()
    tenant = Text()
    flow_id = Text()
    since = When(metadata={"description": "changed at or after"})
    until = When()
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.Integer(validate=validate.Range(1, MAX_ID))


class ReplayRequest(Schema):
    """An empty JSON object replays; ``live`` also sends what was recorded as dry-run."""

    live = fields.Boolean(
        load_default=False,
        # JSON true or false only: "yes" or "false" sending for real (or not) by accident is worse than a 400.
        truthy={True},
        falsy={False},
        metadata={
            "description": "true: the event's dry_run actions are sent for real (same idempotency keys; what was "
            "done for real is never sent again). 409 when this receiver is still in dry-run for them (no HotGlue "
            "key, no Slack token, HGW_DRY_RUN) or the event has none."
        },
    )


class BulkReplayRequest(Schema):
    """Which dead actions to replay; every field narrows the selection (none: all dead)."""

    kind = Text()
    rule = Text()
    tenant = Text()
    flow_id = Text()
    since = When(metadata={"description": "died at or after"})
    until = When()
    ids = fields.List(
        fields.Integer(validate=validate.Range(1, MAX_ID)),
        validate=validate.Length(max=1000),
        metadata={"description": "only these action ids"},
    )


class Ahead(fields.String):
    """A time ahead: ISO-8601 (``2026-12-07T18:00:00Z``) or a duration from now (``30m``, ``2h``, ``7d``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            metadata={"description": "ISO-8601 time (2026-12-07T18:00:00Z), or a duration from now: 30m, 2h, 7d"},
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:  # type: ignore[override]
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        match = re.fullmatch(r"(\d{1,6})([mhd])", text)
        if match:
            seconds = int(match.group(1)) * {"m": 60, "h": 3600, "d": 86400}[match.group(2)]
            return datetime.now(UTC) + timedelta(seconds=seconds)
        parsed = parse_time(text) if len(text) <= 64 else None
        if parsed is None:
            raise ma.ValidationError("must be an ISO-8601 time (2026-12-07T18:00:00Z) or a duration ahead (30m, 2h, 7d)")
        return parsed


class SnoozeRequest(Schema):
    """Hold the Slack alerts of a tenant or an incident signature until a time."""

    scope = fields.String(required=True, validate=validate.OneOf(("tenant", "signature")),
                          metadata={"description": "tenant, or signature (an incident's, 16 hex characters)"})
    target = Text(required=True, metadata={"description": "the tenant id, or the signature"})
    until = Ahead(required=True)
    by = Text(load_default="api", metadata={"description": "who snoozes (recorded); default api"})
    reason = Text(metadata={"description": "why (recorded, shown in the summary when it ends)"})


class ListQuery(Schema):
    all = fields.Boolean(load_default=False, metadata={"description": "also the ones that ended"})


# -- answers ---------------------------------------------------------------------------


def _text(**kwargs: Any) -> fields.String:
    return fields.String(required=True, allow_none=True, **kwargs)


class EventSummary(Schema):
    id = fields.String(required=True)
    received_at = fields.String(required=True, metadata={"format": "date-time"})
    env_id = _text()
    flow_id = _text()
    tenant = _text()
    job_id = _text()
    s3_root = _text()
    status = _text()
    sync_type = _text()
    job_name = _text()
    tap = _text()
    target = _text()
    last_updated = _text()
    state = fields.String(required=True, metadata={"description": "pending, processing, retrying or done"})
    attempts = fields.Integer(required=True)
    decision = fields.List(fields.String(), required=True, allow_none=True)
    stale = fields.Boolean(
        required=True,
        metadata={
            "description": "True when a newer end of another job of the tenant's flow was already processed: "
            "the event changed nothing and opened no alert; the first decision note names that job"
        },
    )
    processed_at = _text()
    source = fields.String(
        required=True,
        metadata={"description": "webhook, or reconciled: found in HotGlue's job list, its webhook never arrived"},
    )
    found_at = _text()
    found_by_pass = _text()


class Action(Schema):
    id = fields.String(required=True)
    idempotency_key = fields.String(required=True)
    kind = fields.String(required=True)
    rule = fields.String(required=True)
    state = fields.String(required=True)
    attempts = fields.Integer(required=True)
    depends_on = fields.List(fields.String(), required=True)
    params = fields.Dict(required=True)
    request = fields.Dict(required=True, allow_none=True, metadata={"description": "the HTTP request sent (redacted)"})
    response = fields.Dict(required=True, allow_none=True)
    last_error = _text()
    next_attempt_at = _text()
    created_at = fields.String(required=True)
    completed_at = _text()


class EventDetail(EventSummary):
    dedupe_key = fields.String(required=True)
    body_sha256 = fields.String(required=True)
    size_bytes = fields.Integer(required=True)
    headers = fields.Dict(required=True)
    payload = fields.Dict(required=True, metadata={"description": "as received, secrets redacted"})
    facts = fields.Dict(required=True, allow_none=True)
    last_error = _text()
    decided_at = _text()
    actions = fields.List(fields.Nested(Action), required=True)
    commands = fields.List(
        fields.Nested(lambda: Command()), required=True,
        metadata={"description": "clicks and dashboard commands on this event's messages, or carried out by it"},
    )


class EventPage(Schema):
    events = fields.List(fields.Nested(EventSummary), required=True)
    next_cursor = _text()


class ActionWithEvent(Action):
    event = fields.Nested(EventSummary, required=True)


class ActionPage(Schema):
    actions = fields.List(fields.Nested(ActionWithEvent), required=True)
    next_cursor = _text()


class ReplayAnswer(Schema):
    id = fields.String(required=True)
    state = fields.String(required=True)
    live = fields.Boolean(metadata={"description": "present with a live replay"})
    dry_run_actions = fields.Integer(metadata={"description": "live: dry_run actions now pending, to be sent"})
    received_at = fields.DateTime(metadata={"description": "live: when the event was received"})
    age = fields.String(metadata={"description": "live: how long ago, in words (3 d 4 h)"})


class BulkReplayAnswer(Schema):
    actions = fields.Integer(required=True, metadata={"description": "dead actions selected"})
    events = fields.Integer(required=True, metadata={"description": "events reopened"})
    event_ids = fields.List(fields.String(), required=True)


class IngestAnswer(Schema):
    id = fields.String(required=True)
    duplicate = fields.Boolean(required=True)


class Snooze(Schema):
    id = fields.Integer(required=True)
    scope = fields.String(required=True)
    target = fields.String(required=True)
    until = fields.String(required=True, metadata={"format": "date-time"})
    by = fields.String(required=True)
    reason = fields.String(required=True, allow_none=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    held = fields.Integer(required=True, metadata={"description": "Slack alerts held so far"})
    ended_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time", "description": "when its summary was queued"})


class SnoozeList(Schema):
    snoozes = fields.List(fields.Nested(Snooze), required=True)


class Incident(Schema):
    id = fields.Integer(required=True)
    state = fields.String(required=True, metadata={"description": "open, resolved or expired"})
    group = fields.String(required=True, metadata={"description": "its signature (what a snooze names)"})
    stage = fields.String(required=True, allow_none=True)
    connector = fields.String(required=True)
    error_line = fields.String(required=True)
    tenants = fields.Integer(required=True)
    recovered = fields.Integer(required=True)
    first_seen_at = fields.String(required=True, metadata={"format": "date-time"})
    resolved_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})
    closed_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})
    channel = fields.String(required=True)
    ts = fields.String(required=True, allow_none=True)


class IncidentList(Schema):
    incidents = fields.List(fields.Nested(Incident), required=True)


class Status(Schema):
    status = fields.String(required=True)


class Error(Schema):
    error = fields.String(required=True)
    detail = fields.Raw(metadata={"description": "a sentence, or the invalid fields and why"})


class Command(Schema):
    id = fields.Integer(required=True)
    command = fields.String(
        required=True, metadata={"description": "enable_schedules, retry_job, replay, snooze, snooze_incident"}
    )
    action_id = fields.String(required=True, metadata={"description": "Slack's action_id (the dashboard's: the command)"})
    origin = fields.String(required=True, metadata={"description": "slack or dashboard"})
    tenant = _text()
    user_id = fields.String(required=True, metadata={"description": "Slack user id (dashboard: admin)"})
    user_name = _text(metadata={"description": "Slack username"})
    requested_at = fields.String(required=True, metadata={"format": "date-time"})
    message_event_id = fields.Integer(required=True, allow_none=True, metadata={"description": "the event whose message had the button"})
    event_id = fields.Integer(required=True, allow_none=True, metadata={"description": "the event whose actions carry the command out"})
    duplicate_of = fields.Integer(required=True, allow_none=True, metadata={"description": "the first click, when this one repeated it"})
    refused = _text(metadata={"description": "why the click did not act (a user not allowed)"})
    outcome = _text(metadata={"description": "done, failed or running"})


class CommandPage(Schema):
    commands = fields.List(fields.Nested(Command), required=True)


class AttentionReason(Schema):
    reason = fields.String(
        required=True,
        metadata={"description": "exact_reconnect, invalid_config, dead_actions, repeated_failures or incident"},
    )
    since = fields.String(required=True, metadata={"format": "date-time"})
    detail = fields.String(required=True)
    what_to_do = fields.String(required=True)
    flow_id = _text()
    event_id = _text(metadata={"description": "the event to look at"})
    incident_id = _text(metadata={"description": "reason incident: the open incident the tenant is in"})
    group = _text(metadata={"description": "reason incident: its signature (what Snooze incident snoozes)"})


class AttentionLastEvent(Schema):
    id = fields.String(required=True)
    status = _text()
    flow_id = _text()
    received_at = fields.String(required=True, metadata={"format": "date-time"})


class AttentionRow(Schema):
    tenant = fields.String(required=True)
    since = fields.String(required=True, metadata={"format": "date-time", "description": "its oldest reason's start"})
    age_seconds = fields.Integer(required=True)
    reasons = fields.List(fields.Nested(AttentionReason), required=True)
    last_event = fields.Nested(AttentionLastEvent, required=True, allow_none=True)


class AttentionPage(Schema):
    count = fields.Integer(required=True)
    tenants = fields.List(fields.Nested(AttentionRow), required=True, metadata={"description": "oldest first"})
