"""What a person's command means: Slack buttons, their ``action_id`` table, and the
actions a click asks for.

Pure, like the rest of ``rules/``: the web layer stores a click as a command, the worker
loads the :class:`CommandFacts` and calls :func:`plan_command`, and the actions it
returns are recorded, executed, retried and parked dead like any other (their keys
start with the command's queue item's key). Block Kit facts (``actions`` block, button
``action_id``/``value`` ≤ 2,000 characters) are from REFERENCE.md §8 (docs.slack.dev).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hotglue_webhooks.rules import messages
from hotglue_webhooks.rules.config import RulesConfig
from hotglue_webhooks.rules.model import (
    ALERT_EDIT,
    HOTGLUE_PUT_SCHEDULE,
    HOTGLUE_START_JOB,
    SLACK_ACTION_FAILED,
    SLACK_UPDATE,
    Action,
    Decision,
    IncidentSnapshot,
    JobEvent,
)

# Command names: stored in ``commands.command``, used in action keys and notes.
ENABLE_SCHEDULES = "enable_schedules"
RETRY_JOB = "retry_job"
SNOOZE = "snooze"
SNOOZE_INCIDENT = "snooze_incident"
REPLAY = "replay"
# Not buttons: what a click that does not act answers (ephemerally, to the clicker only).
ALREADY_DONE = "already_done"
NOT_ALLOWED = "not_allowed"

RULE = "command"
"""The ``actions.rule`` of every action a command asks for."""

SLACK_RESPOND = "slack.respond"
"""params: ``{"command_id": int, "body": {"text": str, "response_type": "ephemeral",
"replace_original": false}}``: a POST of ``body`` to the click's ``response_url``, which
the worker reads from the command just before sending (it is never stored with the action)."""
RECEIVER_REPLAY = "receiver.replay_event"
"""params: ``{"event_id": int}``: the receiver's own replay of an event (its dead and
skipped actions get a fresh set of attempts), carried out by the worker without a peer."""
RECEIVER_SNOOZE = "receiver.snooze"
"""params: ``{"scope": "tenant" or "signature", "target": str, "until": ISO-8601 UTC,
"by": str, "reason": str}``: the receiver's own snooze (``storage/snoozes.py``), made by
the worker without a peer; the same params make one snooze however often it runs."""
SNOOZE_HOURS = 24
"""How long both snooze buttons hold alerts (the label says "24 h")."""

ACTION_ID_PREFIX = "hgw_"
ACTION_IDS: dict[str, str] = {
    ACTION_ID_PREFIX + ENABLE_SCHEDULES: ENABLE_SCHEDULES,
    ACTION_ID_PREFIX + RETRY_JOB: RETRY_JOB,
    ACTION_ID_PREFIX + SNOOZE: SNOOZE,
    ACTION_ID_PREFIX + SNOOZE_INCIDENT: SNOOZE_INCIDENT,
    ACTION_ID_PREFIX + REPLAY: REPLAY,
}
"""Slack ``action_id`` → command. Any other ``action_id`` is refused (400)."""

LABELS = {
    ENABLE_SCHEDULES: "Re-enable schedules",
    RETRY_JOB: "Retry job",
    SNOOZE: "Snooze 24 h",
    SNOOZE_INCIDENT: "Snooze incident",
    REPLAY: "Replay",
}
DONE_WORDS = {
    ENABLE_SCHEDULES: "Schedules re-enabled",
    RETRY_JOB: "Job retried",
    SNOOZE: "This tenant's alerts snoozed",
    SNOOZE_INCIDENT: "Incident snoozed (alerts with its signature held)",
    REPLAY: "Replayed",
}
DASHBOARD_COMMANDS = frozenset({ENABLE_SCHEDULES, RETRY_JOB, SNOOZE, REPLAY})
"""The commands the dashboard offers (behind the admin token and CSRF)."""

BLOCK_ID = "hgw_commands"
"""The ``block_id`` of the ``actions`` block holding a message's buttons."""
MAX_VALUE = 2000
"""Slack's limit for a button's ``value`` (characters)."""


class BadValue(ValueError):
    """A button ``value`` that does not decode to :class:`ButtonValue` or :class:`IncidentValue`."""


@dataclass(frozen=True)
class ButtonValue:
    """What a button names: the tenant and the stored event (its dedupe key) whose message
    carries it. Encoded as compact JSON ``{"tenant": str, "event": str}``."""

    tenant: str
    event: str

    def encode(self) -> str:
        return json.dumps({"tenant": self.tenant, "event": self.event}, separators=(",", ":"), ensure_ascii=True)


@dataclass(frozen=True)
class IncidentValue:
    """What an incident message's button names: the incident (our id; it has many tenants,
    so no tenant). Encoded as ``{"incident": int}``."""

    incident: int

    def encode(self) -> str:
        return json.dumps({"incident": self.incident}, separators=(",", ":"))


def decode_value(text: Any) -> ButtonValue | IncidentValue:
    """Return what a button's ``value`` names; raises :class:`BadValue`."""
    if not isinstance(text, str) or not text or len(text) > MAX_VALUE:
        raise BadValue("the button value is missing or longer than 2,000 characters")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise BadValue("the button value is not JSON") from None
    if isinstance(data, dict) and set(data) == {"incident"}:
        incident = data["incident"]
        if type(incident) is not int or not 0 < incident < 2**63:
            raise BadValue("the button value's incident is not an incident id")
        return IncidentValue(incident)
    if not isinstance(data, dict) or set(data) != {"tenant", "event"}:
        raise BadValue('the button value is not {"tenant", "event"}')
    tenant, event = data["tenant"], data["event"]
    if not (isinstance(tenant, str) and tenant and isinstance(event, str) and event):
        raise BadValue("the button value's tenant or event is not a non-empty string")
    try:
        (tenant + event).encode("utf-8")
    except UnicodeEncodeError:
        raise BadValue("the button value holds a lone surrogate") from None
    return ButtonValue(tenant, event)


def command_for(action_id: Any) -> str | None:
    """Return the command of a Slack ``action_id``, or None when it is not one of ours."""
    return ACTION_IDS.get(action_id) if isinstance(action_id, str) else None


def button(command: str, event: JobEvent) -> dict[str, Any]:
    """Return the Block Kit button of ``command`` for the message about ``event``."""
    value = ButtonValue(event.tenant or "", event.event_key).encode()
    element: dict[str, Any] = {
        "type": "button",
        "action_id": ACTION_ID_PREFIX + command,
        "text": {"type": "plain_text", "text": LABELS[command]},
        "value": value,
    }
    if command in (ENABLE_SCHEDULES, REPLAY):
        element["style"] = "primary"
    return element


def incident_button(incident_id: int) -> dict[str, Any]:
    """Return the Block Kit button Snooze incident for the message of incident ``incident_id``."""
    return {
        "type": "button",
        "action_id": ACTION_ID_PREFIX + SNOOZE_INCIDENT,
        "text": {"type": "plain_text", "text": LABELS[SNOOZE_INCIDENT]},
        "value": IncidentValue(incident_id).encode(),
    }


def with_incident_button(message: messages.SlackMessage, incident: IncidentSnapshot) -> messages.SlackMessage:
    """Return the incident's message with Snooze incident at its end while the incident is
    open and no snooze holds its signature (then the message says who snoozed it instead)."""
    if incident.state != "open" or incident.snoozed is not None:
        return message
    block = {"type": "actions", "block_id": BLOCK_ID, "elements": [incident_button(incident.id)]}
    return messages.SlackMessage(message.text, [*message.blocks, block])


def with_buttons(message: messages.SlackMessage, commands: Sequence[str], event: JobEvent) -> messages.SlackMessage:
    """Return ``message`` with an ``actions`` block of ``commands``' buttons at its end.

    Nothing is added for an event without a tenant (a button names its tenant) or with a
    value over Slack's limit.
    """
    if not commands or not event.tenant:
        return message
    elements = [button(command, event) for command in commands]
    if any(len(element["value"]) > MAX_VALUE for element in elements):
        return message
    return messages.SlackMessage(message.text, [*message.blocks, {"type": "actions", "block_id": BLOCK_ID, "elements": elements}])


# --- what the worker loads before planning a command ---------------------------------------


@dataclass(frozen=True)
class CommandRequest:
    """One stored command (a row of ``commands``) as the plan reads it.

    ``event_key`` is the dedupe key of its queue item: every action key starts with it.
    ``user_name`` is Slack's ``username`` (or ``dashboard``); times are aware UTC.
    """

    id: int
    command: str
    origin: str
    event_key: str
    user_id: str
    user_name: str | None
    requested_at: datetime
    env_id: str | None = None
    tenant: str | None = None
    flow_id: str | None = None
    responds: bool = False
    """The click has a ``response_url`` to answer on."""
    duplicate_of: PastCommand | None = None
    refused: str | None = None

    @property
    def who(self) -> str:
        return who(self.user_id, self.user_name, self.origin)


@dataclass(frozen=True)
class PastCommand:
    """An earlier command on the same message (or the first click of the same button)."""

    command: str
    origin: str
    user_id: str
    user_name: str | None
    requested_at: datetime
    succeeded: bool | None = None
    """True once its actions succeeded, False when one died, None while they run."""
    done_at: datetime | None = None
    """When its actions ended (None while they run)."""
    until: datetime | None = None
    """The end of the snooze it made (snooze commands only)."""

    @property
    def at(self) -> datetime:
        return self.done_at or self.requested_at


@dataclass(frozen=True)
class SlackPost:
    """The message with the button, as it stands now: Slack's channel id and ts, and the
    text and blocks as this receiver last sent them; ``pace`` the channel it counts against."""

    channel: str
    ts: str
    text: str
    blocks: tuple[Mapping[str, Any], ...]
    pace: str


@dataclass(frozen=True)
class TurnedOff:
    """A schedule this receiver turned off (``exact_token_401``) and has not turned on
    again: the PUT body it sent (``schedule_expression``, ``state`` DISABLED, V2 fields)."""

    env_id: str
    flow_id: str
    tenant: str
    body: Mapping[str, Any]
    event_id: int


@dataclass(frozen=True)
class CommandFacts:
    """What a command needs from our own records (never from a peer)."""

    message: SlackPost | None = None
    earlier: tuple[PastCommand, ...] = ()
    """Commands done before on the same message, oldest first: their buttons are gone."""
    turned_off: tuple[TurnedOff, ...] = ()
    job: JobEvent | None = None
    """The event the message was about (a failed job for ``retry_job``)."""
    replay_event_id: int | None = None
    incident: IncidentSnapshot | None = None
    """The incident whose message was clicked (``snooze_incident``), as it stands now."""
    notes: tuple[str, ...] = field(default_factory=tuple)


def who(user_id: str, user_name: str | None, origin: str) -> str:
    """Return how messages name the person: ``<@U123>`` (Slack mentions them) or the dashboard."""
    if origin == "slack":
        return f"<@{user_id}>"
    return "an admin on the dashboard"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def done_line(
    command: str, user_id: str, user_name: str | None, origin: str, at: datetime, until: datetime | None = None
) -> str:
    """Return the line a message gets once ``command`` acted: who did what (a snooze: until
    when) and when."""
    what = DONE_WORDS.get(command, command) + (f" until {_when(until)}" if until is not None else "")
    return f":white_check_mark: {what} by {who(user_id, user_name, origin)} at {_when(at)}"


# --- the plan --------------------------------------------------------------------------------


class _Plan:
    def __init__(self, request: CommandRequest, config: RulesConfig, now: datetime, channel: str) -> None:
        self.request, self.config, self.now, self.channel = request, config, now, channel
        self.actions: list[Action] = []
        self.notes: list[str] = []
        self.watched: list[dict[str, str]] = []
        self.until: datetime | None = None  # the end of the snooze it makes
        self.message: SlackPost | None = None  # the message to update, when facts have none

    def key(self, what: str) -> str:
        return f"{self.request.event_key}|{RULE}|{what}"

    def add(self, kind: str, key: str, params: Mapping[str, Any], depends_on: Iterable[str] = ()) -> str:
        if all(action.key != key for action in self.actions):
            self.actions.append(Action(kind, key, dict(params), RULE, tuple(depends_on)))
        return key

    def watch(self, key: str, step: tuple[str, str, str]) -> str:
        what, still_true, done = step
        self.watched.append({"action_key": key, "what": what, "still_true": still_true, "done": done})
        return key

    def respond(self, text: str) -> None:
        if not self.request.responds:
            self.notes.append(f"{RULE}: no response_url to answer on: {text}")
            return
        body = {"text": text, "response_type": "ephemeral", "replace_original": False}
        self.add(SLACK_RESPOND, self.key("respond"), {"command_id": self.request.id, "body": body})


def plan_command(
    request: CommandRequest, facts: CommandFacts, config: RulesConfig, now: datetime, default_channel: str
) -> Decision:
    """Return the actions of one command, in order, with notes.

    A refused or repeated click only answers the clicker (ephemerally, on its
    ``response_url``). Otherwise the command's own actions come first, then the
    ``chat.update`` of the message (after they succeeded: the button is gone and a line
    says who did what and when), then a ``slack.action_failed`` report that runs only if
    a HotGlue call of it fails. ``default_channel`` is the environment's channel.
    """
    p = _Plan(request, config, now, config.channel_for(RULE, default_channel))
    p.notes.extend(facts.notes)
    if request.refused:
        p.notes.append(f"{RULE}: refused: {request.refused}")
        p.respond(f":no_entry: {request.refused}")
        return _decision(p)
    first = request.duplicate_of
    if first is not None:
        said = (
            "already done" if first.succeeded else "already asked for (still running)" if first.succeeded is None
            else "already tried, and it failed"
        )
        text = (
            f":information_source: {LABELS.get(first.command, first.command)}: {said} by "
            f"{who(first.user_id, first.user_name, first.origin)} at {_when(first.at)}."
        )
        p.notes.append(f"{RULE}: a repeated click: {said} by {first.user_name or first.user_id}")
        p.respond(text)
        return _decision(p)
    acted = _PLANNERS[request.command](p, facts) if request.command in _PLANNERS else None
    if acted is None:
        p.notes.append(f"{RULE}: nothing to do for {request.command}")
        if request.command not in _PLANNERS:
            p.respond(f":warning: {request.command} is not available yet.")
        return _decision(p)
    _update_message(p, facts.message or p.message, facts.earlier, acted)
    _failure_report(p, facts)
    return _decision(p)


def _decision(p: _Plan) -> Decision:
    return Decision(actions=tuple(p.actions), notes=tuple(p.notes) or (f"{RULE}: nothing to do",))


def _enable_schedules(p: _Plan, facts: CommandFacts) -> list[str] | None:
    """Write back every schedule this receiver turned off, each with its own expression."""
    if not facts.turned_off:
        p.notes.append(f"{RULE}: no schedule of tenant {p.request.tenant} is off by this receiver's doing")
        p.respond(":information_source: No schedule of this tenant is still turned off by this receiver.")
        return None
    keys = []
    for off in facts.turned_off:
        body = {**off.body, "state": "ENABLED"}
        params = {"env_id": off.env_id, "flow_id": off.flow_id, "tenant": off.tenant, "body": body}
        key = p.add(HOTGLUE_PUT_SCHEDULE, p.key(f"schedule:{off.flow_id}"), params)
        step = (
            f"re-enable the schedule of flow {off.flow_id}",
            f"the schedule of flow {off.flow_id} is still DISABLED",
            f"the schedule of flow {off.flow_id} is ENABLED again",
        )
        keys.append(p.watch(key, step))
        p.notes.append(
            f"{RULE}: re-enabling the schedule of flow {off.flow_id}: {body.get('schedule_expression')} "
            f"(turned off by event {off.event_id})"
        )
    return keys


def _retry_job(p: _Plan, facts: CommandFacts) -> list[str] | None:
    """Start the failed job's flow again, under the receiver's own job name (loop guard)."""
    job = facts.job
    if job is None or not (job.env_id and job.tenant and job.flow_id):
        p.notes.append(f"{RULE}: the failed job is unknown or has no env_id, tenant or flow_id")
        p.respond(":warning: The failed job is no longer known: nothing started.")
        return None
    if not job.tap:
        p.notes.append(f"{RULE}: the job has no tap (starting V2 jobs is not supported)")
        p.respond(":warning: This job has no tap (a V2 flow): starting it again is not supported.")
        return None
    date = f"{p.now:%Y-%m-%d}"
    # The receiver's name format: its prefix is the loop guard, so the retried job's end
    # starts no further job by itself.
    name = p.config.jobs.job_name(flow_id=job.flow_id, tap=job.tap, date=date, tenant=job.tenant)
    # Global, not per command: the dashboard and Slack retrying the same failed job start one.
    key = f"retry_job|{job.env_id}|{job.tenant}|{job.flow_id}|{job.s3_root or job.event_key}"
    params = {"env_id": job.env_id, "flow_id": job.flow_id, "tenant": job.tenant, "body": {"tap": job.tap, "job_name": name}}
    p.add(HOTGLUE_START_JOB, key, params)
    p.watch(key, (
        f"start job {name} in flow {job.flow_id} again",
        f"the failed job {job.job_id or '?'} was not started again",
        f"job {name} started in flow {job.flow_id}",
    ))
    p.notes.append(f"{RULE}: starting job {name} in flow {job.flow_id} again (failed job {job.job_id})")
    return [key]


def _replay(p: _Plan, facts: CommandFacts) -> list[str] | None:
    if facts.replay_event_id is None:
        p.notes.append(f"{RULE}: the event to replay is gone")
        p.respond(":warning: The event is no longer stored (purged): nothing to replay.")
        return None
    key = p.add(RECEIVER_REPLAY, p.key("replay"), {"event_id": facts.replay_event_id})
    p.notes.append(f"{RULE}: replaying event {facts.replay_event_id} (its dead actions get new attempts)")
    return [key]


def _snooze_until(p: _Plan) -> datetime:
    # Whole seconds: the params are the snooze's identity when the action runs again.
    return p.now.replace(microsecond=0) + timedelta(hours=SNOOZE_HOURS)


def _snooze_params(p: _Plan, scope: str, target: str, what: str) -> dict[str, Any]:
    request = p.request
    until = p.until = _snooze_until(p)
    by = request.user_name or request.user_id
    via = "Slack" if request.origin == "slack" else "the dashboard"
    return {
        "scope": scope, "target": target, "until": until.isoformat(), "by": by,
        "reason": f"{LABELS[request.command]} on {what}, clicked in {via} (command {request.id})",
    }


def _snooze(p: _Plan, facts: CommandFacts) -> list[str] | None:
    """Hold the tenant's Slack alerts for :data:`SNOOZE_HOURS` (a tenant snooze)."""
    tenant = p.request.tenant
    if not tenant:
        p.notes.append(f"{RULE}: the command names no tenant to snooze")
        p.respond(":warning: This message names no tenant: nothing snoozed.")
        return None
    params = _snooze_params(p, "tenant", tenant, f"the alert of tenant {tenant}")
    key = p.add(RECEIVER_SNOOZE, p.key("snooze"), params)
    p.notes.append(f"{RULE}: snoozing the Slack alerts of tenant {tenant} until {params['until']} (by {params['by']})")
    return [key]


def _snooze_incident(p: _Plan, facts: CommandFacts) -> list[str] | None:
    """Hold the alerts of the incident's signature for :data:`SNOOZE_HOURS`, and update its
    message as it stands now (the stored copy is the first post, older than its updates)."""
    incident = facts.incident
    if incident is None:
        p.notes.append(f"{RULE}: the incident is no longer stored")
        p.respond(":warning: The incident is no longer stored (purged): nothing snoozed.")
        return None
    if incident.state != "open":
        p.notes.append(f"{RULE}: incident {incident.id} is {incident.state}: nothing to snooze")
        p.respond(f":information_source: The incident is already {incident.state}: nothing snoozed.")
        return None
    params = _snooze_params(p, "signature", incident.signature, f"incident {incident.id}")
    key = p.add(RECEIVER_SNOOZE, p.key("snooze"), params)
    if incident.channel_id and incident.ts:
        shown = with_incident_button(messages.incident_message(incident), incident)
        p.message = SlackPost(incident.channel_id, incident.ts, shown.text, tuple(shown.blocks), incident.channel)
    p.notes.append(
        f"{RULE}: snoozing the alerts of incident {incident.id} (signature {incident.signature}) until "
        f"{params['until']} (by {params['by']})"
    )
    return [key]


_PLANNERS = {
    ENABLE_SCHEDULES: _enable_schedules, RETRY_JOB: _retry_job, SNOOZE: _snooze, SNOOZE_INCIDENT: _snooze_incident,
    REPLAY: _replay,
}


def _update_message(
    p: _Plan, message: SlackPost | None, earlier: Sequence[PastCommand], depends_on: Sequence[str]
) -> None:
    if message is None:
        return
    request = p.request
    gone = {ACTION_ID_PREFIX + request.command} | {ACTION_ID_PREFIX + c.command for c in earlier}
    lines = [done_line(c.command, c.user_id, c.user_name, c.origin, c.at, c.until) for c in earlier if c.succeeded]
    lines.append(done_line(request.command, request.user_id, request.user_name, request.origin, p.now, p.until))
    blocks = updated_blocks(message.blocks, gone, lines)
    text = message.text.split("\n:white_check_mark: ", 1)[0] + "\n" + "\n".join(lines)
    params = {
        "channel": message.channel, "ts": message.ts, "text": text, "blocks": blocks, "pace": message.pace,
        # An alert thread's later count updates start from this version (no button back).
        "alert": {"op": ALERT_EDIT, "thread_key": ""},
    }
    p.add(SLACK_UPDATE, p.key("slack_update"), params, depends_on=depends_on)


DONE_BLOCK_ID = "hgw_commands_done"


def updated_blocks(
    blocks: Iterable[Mapping[str, Any]], gone_action_ids: set[str], lines: Sequence[str]
) -> list[dict[str, Any]]:
    """Return ``blocks`` without the buttons in ``gone_action_ids`` (an ``actions`` block
    left empty goes too) and with one context block of ``lines`` (replacing an earlier one)."""
    kept: list[dict[str, Any]] = []
    for block in blocks:
        if block.get("block_id") == DONE_BLOCK_ID:
            continue
        if block.get("type") == "actions" and block.get("block_id") == BLOCK_ID:
            elements = [e for e in block.get("elements") or [] if e.get("action_id") not in gone_action_ids]
            if elements:
                kept.append({**block, "elements": elements})
            continue
        kept.append(dict(block))
    kept.append(
        {"type": "context", "block_id": DONE_BLOCK_ID, "elements": [{"type": "mrkdwn", "text": "\n".join(lines)[:3000]}]}
    )
    return kept


def _failure_report(p: _Plan, facts: CommandFacts) -> None:
    if not p.watched:
        return
    tenant = p.request.tenant
    params = {
        "channel": p.channel,
        "title": f"{LABELS.get(p.request.command, p.request.command)} for tenant {tenant or 'unknown'}, "
        f"asked by {p.request.user_name or p.request.user_id}, failed",
        "tenant": tenant,
        "flow_id": p.request.flow_id,
        "steps": list(p.watched),
    }
    p.add(SLACK_ACTION_FAILED, p.key("slack:action_failed"), params, depends_on=[s["action_key"] for s in p.watched])
