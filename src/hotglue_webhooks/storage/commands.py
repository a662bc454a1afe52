"""Commands (Slack clicks, dashboard commands): store one with its queue item, find the
message a click came from, and load what the worker needs to plan it.

A command is two rows written in one transaction: the ``commands`` row (who asked for
what, on which message) and an ``events`` row with ``source = command`` and status
``COMMAND`` in the tenant's processing order. The worker claims that event like any
other and records the command's actions under it (keys, retries, dead letters, the
event page as the audit).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks.ingest import parse_time, store_own_event
from hotglue_webhooks.rules import HOTGLUE_PUT_SCHEDULE, SLACK_ACTION_FAILED, SLACK_POST, JobEvent
from hotglue_webhooks.rules.commands import RULE as COMMAND_RULE
from hotglue_webhooks.rules.commands import (
    ACTION_ID_PREFIX,
    ENABLE_SCHEDULES,
    RECEIVER_SNOOZE,
    REPLAY,
    RETRY_JOB,
    SNOOZE,
    SNOOZE_INCIDENT,
    CommandFacts,
    CommandRequest,
    PastCommand,
    SlackPost,
    TurnedOff,
)
from hotglue_webhooks.rules.config import EXACT_TOKEN_401, FULL_SYNC, FULL_SYNC_MARKER, IncidentRules
from hotglue_webhooks.storage import incidents as incident_state
from hotglue_webhooks.storage.db import transaction, write_session
from hotglue_webhooks.storage.models import (
    ACTION_DEAD,
    ACTION_SKIPPED,
    ACTION_SUCCEEDED,
    COMMAND_STATUS,
    EVENT_DONE,
    SOURCE_COMMAND,
    ActionRecord,
    Command,
    Event,
    Incident,
    SlackThread,
)


_COMMANDS = Command.__table__
# A failure report is recorded as slack.action_failed and sent as a post.
_POSTS = (SLACK_POST, SLACK_ACTION_FAILED)
_EVENTS = Event.__table__


@dataclass(frozen=True)
class Click:
    """A command to store: what a Slack click (or dashboard form) asked for.

    ``idempotency_key`` makes it act once (``slack|{channel}|{ts}|{action_id}``);
    ``target`` is what the button named, e.g. ``{"event": dedupe_key}``, or
    ``{"incident": id}`` for an incident's message (no tenant: it has many).
    """

    idempotency_key: str
    origin: str
    action_id: str
    command: str
    user_id: str
    user_name: str | None
    env_id: str | None
    tenant: str | None
    flow_id: str | None
    target: dict[str, Any]
    message_event_id: int | None = None
    channel_id: str | None = None
    message_ts: str | None = None
    response_url: str | None = None
    refused: str | None = None


@dataclass(frozen=True)
class StoredCommand:
    """The stored command's id, its queue item's id, and the first click's id when this
    one repeated it (else None)."""

    id: int
    event_id: int
    duplicate_of: int | None


@dataclass(frozen=True)
class MessageOrigin:
    """The stored event whose Slack message (``channel`` id, ``ts``) carries a button
    (``event_id`` None: an incident's message, which no one event of ours stands for)."""

    event_id: int | None
    tenant: str | None
    env_id: str | None
    flow_id: str | None


def store_command(sessions: sessionmaker[Session], click: Click, now: datetime) -> StoredCommand:
    """Store ``click`` and its queue item in one transaction; return their ids.

    A click whose key is taken is a repeat: it is stored under a key of its own with
    ``duplicate_of`` the first one's id (the worker then only answers who did it). A
    refused click is stored the same way, under a key of its own.
    """
    for _ in range(3):
        try:
            with write_session(sessions) as session:
                first = None
                key = click.idempotency_key
                if click.refused:
                    key = f"{key}|refused|{uuid.uuid4().hex}"
                else:
                    first = session.scalar(select(Command.id).where(Command.idempotency_key == key))
                    if first is not None:
                        key = f"{key}|repeat|{uuid.uuid4().hex}"
                command = Command(
                    idempotency_key=key, origin=click.origin, action_id=click.action_id, command=click.command,
                    env_id=click.env_id, tenant=click.tenant, flow_id=click.flow_id, target=dict(click.target),
                    message_event_id=click.message_event_id, channel_id=click.channel_id,
                    message_ts=click.message_ts, user_id=click.user_id, user_name=click.user_name,
                    requested_at=now, duplicate_of=first, refused=click.refused, response_url=click.response_url,
                )
                session.add(command)
                session.flush()
                command.event_id = _queue_item(session.connection(), command, now)
                return StoredCommand(command.id, command.event_id, first)
        except IntegrityError:
            continue  # the same button clicked twice at the same moment: the next round sees the first
    raise RuntimeError("could not store the command")


def _queue_item(connection: Connection, command: Command, now: datetime) -> int:
    """Store the queue item (``events.source = command``) that carries ``command`` out, in
    the tenant's order; return its id."""
    payload = {
        "status": COMMAND_STATUS,
        "s3_root": f"~command/{command.id}",  # unique per command: its dedupe key
        "command_id": command.id,
        "command": command.command,
        "tenant": command.tenant,
        "env_id": command.env_id,
        "job_name": f"{command.command} by {command.user_name or command.user_id}",
        "requested_by": command.user_name or command.user_id,
        "origin": command.origin,
    }
    incident = (command.target or {}).get("incident")
    # The tenant orders it; an incident's command goes in line with the incident's updates,
    # so an update decided before the snooze is sent before the command's.
    group = f"~incident/{incident}" if isinstance(incident, int) else None
    event_id = store_own_event(connection, payload, now, source=SOURCE_COMMAND, order_group=group)
    if event_id is None:  # a command id is never reused: its item cannot be there already
        raise RuntimeError(f"the queue item of command {command.id} is already stored")
    return event_id


def find_message(sessions: sessionmaker[Session], event_key: str, channel_id: str, ts: str) -> MessageOrigin | None:
    """Return the stored event named by a button (``event_key``, its dedupe key) when this
    receiver posted message ``ts`` in ``channel_id`` for it; None otherwise (not ours)."""
    with sessions() as session:
        event = session.scalar(select(Event).where(Event.dedupe_key == event_key))
        if event is None:
            return None
        responses = session.scalars(
            select(ActionRecord.response).where(ActionRecord.event_id == event.id, ActionRecord.kind.in_(_POSTS))
        )
        for response in responses:
            if isinstance(response, Mapping) and response.get("ts") == ts and response.get("channel") == channel_id:
                return MessageOrigin(event.id, event.tenant, event.env_id, event.flow_id)
    return None


def find_incident_message(sessions: sessionmaker[Session], channel_id: str, ts: str) -> tuple[int, str | None] | None:
    """Return (incident id, env_id) of the incident whose top-level message this receiver
    posted as ``ts`` in ``channel_id``; None otherwise (not ours)."""
    with sessions() as session:
        row = session.execute(
            select(Incident.id, Incident.env_id).where(Incident.channel_id == channel_id, Incident.ts == ts).limit(1)
        ).first()
    return None if row is None else (int(row.id), row.env_id)


def find_event(sessions: sessionmaker[Session], event_id: int) -> MessageOrigin | None:
    """The stored event a dashboard command names, or None."""
    with sessions() as session:
        event = session.get(Event, event_id)
        if event is None or event.source == SOURCE_COMMAND:
            return None
        return MessageOrigin(event.id, event.tenant, event.env_id, event.flow_id)


def latest_message_event(sessions: sessionmaker[Session], tenant: str, command: str) -> MessageOrigin | None:
    """The tenant's newest event a dashboard ``command`` acts on: its newest failure
    (``retry_job``; ``snooze``: the alert whose button it stands for), its newest event
    with a dead action (``replay``); None for others."""
    with sessions() as session:
        query = select(Event).where(Event.tenant == tenant, Event.source != SOURCE_COMMAND)
        if command in (RETRY_JOB, SNOOZE):
            query = query.where(Event.status.like("%\\_FAILED", escape="\\"))
        elif command == REPLAY:
            query = query.where(
                Event.id.in_(select(ActionRecord.event_id).where(ActionRecord.state == ACTION_DEAD))
            )
        else:
            return None
        event = session.scalar(query.order_by(Event.order_at.desc(), Event.id.desc()).limit(1))
        return None if event is None else MessageOrigin(event.id, event.tenant, event.env_id, event.flow_id)


# --- what the worker loads ---------------------------------------------------------------------


def load_command(
    connection: Connection, command_id: int, event_key: str, *, now: datetime | None = None,
    incidents: IncidentRules | None = None,
) -> tuple[CommandRequest, CommandFacts]:
    """Read command ``command_id`` and what its plan needs (a read transaction of its own).

    ``now`` and ``incidents`` (``[incidents]``) read the clicked incident as its message
    shows it (``snooze_incident``). Raises LookupError when the command is gone (purged).
    """
    with transaction(connection, write=False):
        row = connection.execute(select(_COMMANDS).where(_COMMANDS.c.id == command_id)).mappings().first()
        if row is None:
            raise LookupError(f"command {command_id} is not stored")
        first = None
        if row["duplicate_of"] is not None:
            first_row = connection.execute(select(_COMMANDS).where(_COMMANDS.c.id == row["duplicate_of"])).mappings().first()
            if first_row is not None:
                first = _past(connection, first_row)
        request = CommandRequest(
            id=row["id"], command=row["command"], origin=row["origin"], event_key=event_key,
            user_id=row["user_id"], user_name=row["user_name"], requested_at=row["requested_at"],
            env_id=row["env_id"], tenant=row["tenant"], flow_id=row["flow_id"],
            responds=bool(row["response_url"]), duplicate_of=first, refused=row["refused"],
        )
        if first is not None or row["refused"]:
            return request, CommandFacts()
        message_event = None
        if row["message_event_id"] is not None:
            message_event = connection.execute(select(_EVENTS).where(_EVENTS.c.id == row["message_event_id"])).mappings().first()
        job = None
        if message_event is not None:
            job = JobEvent.from_payload(message_event["payload"], event_key=message_event["dedupe_key"])
        offs = tuple(turned_off(connection, row["tenant"])) if row["command"] == ENABLE_SCHEDULES and row["tenant"] else ()
        where = dict(row)
        if not (row["channel_id"] and row["message_ts"]):
            # A dashboard command: the Slack message with the same button, if one was sent,
            # is updated too (its button would otherwise still offer what is done).
            candidates = [row["message_event_id"], *(off.event_id for off in offs)]
            found = _button_post(connection, [c for c in candidates if c is not None], ACTION_ID_PREFIX + row["command"])
            if found is not None:
                where.update(message_event_id=found[0], channel_id=found[1], message_ts=found[2])
        incident = None
        incident_id = (row["target"] or {}).get("incident")
        if row["command"] == SNOOZE_INCIDENT and isinstance(incident_id, int) and now is not None:
            incident = incident_state.snapshot(connection, incident_id, now, incidents or IncidentRules())
        facts = CommandFacts(
            message=_message(connection, where) if where["channel_id"] and where["message_ts"] else None,
            earlier=tuple(_earlier(connection, where)),
            turned_off=offs,
            job=job,
            replay_event_id=message_event["id"] if message_event is not None else None,
            incident=incident,
        )
        return request, facts


def _button_post(connection: Connection, event_ids: list[int], action_id: str) -> tuple[int, str, str] | None:
    """(event id, channel id, ts) of a message posted for one of ``event_ids`` that
    carries the button ``action_id``, or None."""
    if not event_ids:
        return None
    posts = connection.execute(
        select(ActionRecord.event_id, ActionRecord.request, ActionRecord.response).where(
            ActionRecord.event_id.in_(event_ids), ActionRecord.kind.in_(_POSTS)
        )
    )
    for event_id, request, response in posts:
        sent = request.get("json") if isinstance(request, Mapping) else None
        blocks = sent.get("blocks") if isinstance(sent, Mapping) else None
        if not (isinstance(response, Mapping) and response.get("ts") and isinstance(blocks, list)):
            continue
        for block in blocks:
            elements = block.get("elements") if isinstance(block, Mapping) and block.get("type") == "actions" else None
            if any(isinstance(e, Mapping) and e.get("action_id") == action_id for e in elements or []):
                return event_id, str(response.get("channel") or ""), str(response["ts"])
    return None


def _past(connection: Connection, row: Any) -> PastCommand:
    succeeded, done_at = _succeeded(connection, row["event_id"])
    until = None
    if row["command"] in (SNOOZE, SNOOZE_INCIDENT) and row["event_id"] is not None:
        params = connection.scalar(
            select(ActionRecord.params).where(ActionRecord.event_id == row["event_id"], ActionRecord.kind == RECEIVER_SNOOZE)
        )
        until = parse_time(params.get("until")) if isinstance(params, Mapping) else None
    return PastCommand(
        command=row["command"], origin=row["origin"], user_id=row["user_id"], user_name=row["user_name"],
        requested_at=row["requested_at"], succeeded=succeeded, done_at=done_at, until=until,
    )


def _succeeded(connection: Connection, event_id: int | None) -> tuple[bool | None, datetime | None]:
    """(True, when) once the command's queue item is done with no dead or skipped
    action, (False, when) when one died, (None, None) while it runs."""
    if event_id is None:
        return None, None
    found = connection.execute(select(Event.state, Event.processed_at).where(Event.id == event_id)).first()
    if found is None:
        return None, None
    states = set(connection.scalars(select(ActionRecord.state).where(ActionRecord.event_id == event_id)))
    if states & {ACTION_DEAD, ACTION_SKIPPED}:
        return False, found.processed_at
    return (True, found.processed_at) if found.state == EVENT_DONE else (None, None)


def _earlier(connection: Connection, row: Any) -> list[PastCommand]:
    if not (row["channel_id"] and row["message_ts"]):
        return []
    rows = connection.execute(
        select(_COMMANDS)
        .where(
            _COMMANDS.c.channel_id == row["channel_id"], _COMMANDS.c.message_ts == row["message_ts"],
            _COMMANDS.c.id < row["id"], _COMMANDS.c.duplicate_of.is_(None), _COMMANDS.c.refused.is_(None),
        )
        .order_by(_COMMANDS.c.id)
    ).mappings()
    return [_past(connection, earlier) for earlier in rows]


def _message(connection: Connection, row: Any) -> SlackPost | None:
    """The message as this receiver last sent it: its alert thread's copy (which carries
    the repeat count), else the post recorded with the message's event."""
    channel, ts = row["channel_id"], row["message_ts"]
    thread = connection.execute(
        select(SlackThread.text, SlackThread.blocks, SlackThread.channel_name)
        .where(SlackThread.channel == channel, SlackThread.ts == ts)
        .limit(1)
    ).first()
    if thread is not None:
        return SlackPost(channel, ts, thread.text, tuple(thread.blocks or ()), thread.channel_name or channel)
    if row["message_event_id"] is None:
        return None
    posts = connection.execute(
        select(ActionRecord.params, ActionRecord.response, ActionRecord.request).where(
            ActionRecord.event_id == row["message_event_id"], ActionRecord.kind.in_(_POSTS)
        )
    ).all()
    for params, response, request in posts:
        if isinstance(response, Mapping) and response.get("ts") == ts:
            # The request as sent: a failure report's post is built when it runs.
            sent = (request or {}).get("json") if isinstance(request, Mapping) else None
            source: Mapping[str, Any] = sent if isinstance(sent, Mapping) else (params or {})
            pace = str((params or {}).get("pace") or (params or {}).get("channel") or channel)
            return SlackPost(channel, ts, str(source.get("text") or ""), tuple(source.get("blocks") or ()), pace)
    return None


_ENABLING_RULES = (FULL_SYNC, FULL_SYNC_MARKER, COMMAND_RULE)


def turned_off(connection: Connection, tenant: str | None) -> list[TurnedOff]:
    """The schedules this receiver turned off after an Exact 401 and has not turned on
    since, one per (env_id, flow_id, tenant), the newest turn-off; ``tenant`` None: every
    tenant's. Dry-run records count: they are what the receiver did as far as it knows."""
    offs = _schedule_puts(connection, tenant, (EXACT_TOKEN_401,))
    ons = _schedule_puts(connection, tenant, _ENABLING_RULES)
    latest: dict[tuple[str, str, str], tuple[datetime, TurnedOff]] = {}
    for at, event_id, params in offs:
        body = params.get("body") if isinstance(params.get("body"), Mapping) else None
        if body is None or body.get("state") != "DISABLED":
            continue
        ident = (str(params.get("env_id")), str(params.get("flow_id")), str(params.get("tenant")))
        if ident not in latest or at > latest[ident][0]:
            off = TurnedOff(ident[0], ident[1], ident[2], dict(body), event_id)
            latest[ident] = (at, off)
    for at, _event_id, params in ons:
        raw = params.get("body")
        on: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        ident = (str(params.get("env_id")), str(params.get("flow_id")), str(params.get("tenant")))
        if on.get("state") == "ENABLED" and ident in latest and at >= latest[ident][0]:
            del latest[ident]
    return [off for _at, off in sorted(latest.values(), key=lambda item: item[0])]


def turned_off_since(connection: Connection, tenant: str | None) -> list[tuple[datetime, TurnedOff]]:
    """:func:`turned_off` with the time each was turned off."""
    offs = {(o.env_id, o.flow_id, o.tenant, o.event_id): o for o in turned_off(connection, tenant)}
    times: dict[tuple[str, str, str, int], datetime] = {}
    for at, event_id, params in _schedule_puts(connection, tenant, (EXACT_TOKEN_401,)):
        ident = (str(params.get("env_id")), str(params.get("flow_id")), str(params.get("tenant")), event_id)
        if ident in offs:
            times[ident] = max(at, times.get(ident, at))
    return sorted(((times[ident], off) for ident, off in offs.items() if ident in times), key=lambda item: item[0])


def _schedule_puts(
    connection: Connection, tenant: str | None, rules: Iterable[str]
) -> list[tuple[datetime, int, Mapping[str, Any]]]:
    query = (
        select(ActionRecord.completed_at, ActionRecord.updated_at, ActionRecord.event_id, ActionRecord.params)
        .where(
            ActionRecord.rule.in_(list(rules)),
            ActionRecord.kind == HOTGLUE_PUT_SCHEDULE,
            ActionRecord.state.in_(ACTION_SUCCEEDED),
        )
    )
    if tenant is not None:
        query = query.join(Event, Event.id == ActionRecord.event_id).where(Event.tenant == tenant)
    return [
        (completed or updated, event_id, params if isinstance(params, Mapping) else {})
        for completed, updated, event_id, params in connection.execute(query)
    ]


# --- the audit: clicks on event and tenant pages, and in the API -------------------------------


def command_view(command: Command, outcome: str | None = None) -> dict[str, Any]:
    """A command as the API and pages show it (never its ``response_url``)."""
    return {
        "id": command.id,
        "command": command.command,
        "action_id": command.action_id,
        "origin": command.origin,
        "tenant": command.tenant,
        "user_id": command.user_id,
        "user_name": command.user_name,
        "requested_at": command.requested_at.isoformat(),
        "message_event_id": command.message_event_id,
        "event_id": command.event_id,
        "duplicate_of": command.duplicate_of,
        "refused": command.refused,
        "outcome": outcome,
    }


def _outcomes(session: Session, event_ids: list[int]) -> dict[int, str]:
    """Each command queue item's outcome: ``done``, ``failed`` or ``running``."""
    if not event_ids:
        return {}
    states = {row.id: row.state for row in session.execute(select(Event.id, Event.state).where(Event.id.in_(event_ids)))}
    failed = set(
        session.scalars(
            select(ActionRecord.event_id).where(
                ActionRecord.event_id.in_(event_ids), ActionRecord.state.in_((ACTION_DEAD, ACTION_SKIPPED))
            )
        )
    )
    return {
        event_id: "failed" if event_id in failed else "done" if state == EVENT_DONE else "running"
        for event_id, state in states.items()
    }


def list_commands(
    sessions: sessionmaker[Session], *, tenant: str | None = None, event_id: int | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Commands of a tenant, or those whose message (or queue item) is ``event_id``, newest first."""
    with sessions() as session:
        query = select(Command)
        if tenant is not None:
            query = query.where(Command.tenant == tenant)
        if event_id is not None:
            query = query.where((Command.message_event_id == event_id) | (Command.event_id == event_id))
        rows = list(session.scalars(query.order_by(Command.id.desc()).limit(limit)))
        outcomes = _outcomes(session, [row.event_id for row in rows if row.event_id is not None])
        return [command_view(row, outcomes.get(row.event_id or 0)) for row in rows]


def command_event_id(sessions: sessionmaker[Session], command_id: int) -> int | None:
    with sessions() as session:
        return session.scalar(select(Command.event_id).where(Command.id == command_id))


def response_url(connection: Connection, command_id: int) -> str | None:
    """The click's ``response_url`` (within the caller's transaction), None once answered."""
    return connection.scalar(select(Command.response_url).where(Command.id == command_id))


def forget_response_url(connection: Connection, command_id: int) -> None:
    """Clear the ``response_url`` once answered: it is a capability, kept no longer than used."""
    connection.execute(update(Command).where(Command.id == command_id).values(response_url=None))


__all__ = [
    "Click", "MessageOrigin", "StoredCommand", "command_view", "find_event", "find_incident_message", "find_message",
    "forget_response_url",
    "latest_message_event", "list_commands", "load_command", "response_url", "store_command", "turned_off",
    "turned_off_since",
]
