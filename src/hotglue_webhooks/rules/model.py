"""The values the rules read and return: a job event, the facts about its tenant, actions.

Everything here is plain data: no I/O, no framework imports. The worker builds a
:class:`JobEvent` from a stored (already redacted) payload, gathers the :class:`Facts`
that :func:`hotglue_webhooks.rules.needed_facts` asks for, and stores the
:class:`Decision` that :func:`hotglue_webhooks.rules.decide` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FAILED_SUFFIX = "_FAILED"
SOURCE_WEBHOOK = "webhook"
SOURCE_RECONCILED = "reconciled"
"""JobEvent.source: found in HotGlue's job list, its webhook never arrived."""
PAIRS_SILENT = "PAIRS_SILENT"
"""The status of the notice a reconciliation pass stores when (tenant, flow) pairs went
silent: not HotGlue's, the receiver's own. Its payload: ``{"status", "env_id", "s3_root",
"pass_id", "last_updated", "pairs": [{"tenant", "flow_id", "last_at", "expected", "why"}]}``."""
INCIDENT_UPDATE = "INCIDENT_UPDATE"
"""The receiver's own event: an incident changed (it opened, tenants joined or recovered,
it resolved or expired); its decision posts or updates the incident's Slack message and
names the new tenants in its thread. Payload: ``{"status", "env_id", "s3_root",
"incident_id", "seq", "last_updated"}``; the incident itself comes as ``Facts.incident``."""
SNOOZE_ENDED = "SNOOZE_ENDED"
"""The receiver's own event: a snooze ended. Payload: ``{"status", "s3_root", "last_updated",
"snooze": {"id", "scope", "target", "by", "reason", "created_at", "until", "held"},
"summary": {"failures", "completed", "tenants": [...], "tenant_count", "statuses": {...}},
"channel"}``."""
DAILY_DIGEST = "DAILY_DIGEST"
"""The receiver's own event: the day's digest for one channel. Payload: ``{"status",
"s3_root", "last_updated", "channel", "day", "digest": {...}}`` (see
:func:`hotglue_webhooks.rules.messages.daily_digest`)."""
OWN_STATUSES = (PAIRS_SILENT, INCIDENT_UPDATE, SNOOZE_ENDED, DAILY_DIGEST)
"""Statuses of the receiver's own events (never HotGlue's)."""
SILENCE_FINGERPRINT = "silence"
"""The fingerprint of a silence thread (an open alert of a silent pair), never an error's."""
LIFECYCLE_STATUSES: tuple[str, ...] = (
    "JOB_CREATED",
    "DISCOVER_STARTED",
    "DISCOVER_FAILED",
    "SYNC_STARTED",
    "SYNC_SUCCESS",
    "SYNC_FAILED",
    "ETL_STARTED",
    "ETL_SUCCESS",
    "ETL_FAILED",
    "EXPORT_STARTED",
    "EXPORT_FAILED",
    "JOB_COMPLETED",
)
"""HotGlue's job-lifecycle statuses in stage order (https://docs.hotglue.com/docs/jobs-lifecycle,
REFERENCE.md §1). Others may come in future: stored, never an error."""

# Action kinds. The executor (hotglue_webhooks.effects) maps each to exactly one HTTP call.
SLACK_POST = "slack.post_message"
"""params: ``{"channel": str, "text": str, "blocks": list[dict]}``"""
HOTGLUE_PUT_SCHEDULE = "hotglue.put_schedule"
"""params: ``{"env_id", "flow_id", "tenant", "body": {"schedule_expression": str, "state": str}}``"""
HOTGLUE_LINK_TARGET = "hotglue.link_target"
"""params: ``{"env_id", "flow_id", "tenant", "body": dict, "config_from": str}`` (POST
.../linkedTargets). ``body`` holds :data:`CONFIG_PLACEHOLDER` where the tenant config's
``config_from`` object goes: the executor fills it in from a fresh read, so credentials are
never stored with the action."""
CONFIG_PLACEHOLDER = "{config}"
HOTGLUE_START_JOB = "hotglue.start_job"
"""params: ``{"env_id", "flow_id", "tenant", "body": {"tap": str, "job_name": str, ...}}``"""

SLACK_UPDATE = "slack.update_message"
"""params: ``{"channel": str (Slack's channel id), "ts": str, "text": str, "blocks": list[dict]}``"""

SLACK_ACTION_FAILED = "slack.action_failed"
"""A Slack report that runs only when a state-changing action it watches failed.

params: ``{"channel": str, "title": str, "tenant": str, "flow_id": str, "steps": [{"action_key": str,
"what": str, "still_true": str, "done": str}, ...]}``; ``depends_on`` lists the watched keys.
The worker waits until every watched action ended; when one ended ``dead`` or
``skipped`` it posts :func:`hotglue_webhooks.rules.messages.action_failed` (with each
failed step's last error and a link to the event) as a ``slack.post_message``,
otherwise the report ends ``not_needed``. Planned up front like every action, so it is
keyed, recorded, paced, retried and sent at most once."""

STATE_CHANGING_KINDS = frozenset({HOTGLUE_PUT_SCHEDULE, HOTGLUE_LINK_TARGET, HOTGLUE_START_JOB})
"""Actions that change a tenant's HotGlue state: a failure of one is never silent."""

ACTION_KINDS = frozenset(
    {SLACK_POST, SLACK_UPDATE, SLACK_ACTION_FAILED, HOTGLUE_PUT_SCHEDULE, HOTGLUE_LINK_TARGET, HOTGLUE_START_JOB}
)

# A Slack action may carry ``params["alert"]`` = ``{"op": ..., "thread_key": str, ...}``:
# after it succeeds the worker records the alert thread ("open": a new top-level alert,
# with "tenant", "flow_id", "fingerprint"; "repeat": one more failure in the thread;
# "resolve": the tenant's flow succeeded again; "edit": a person's command changed the
# message, so the thread keeps its new text and blocks for later count updates).
ALERT_EDIT = "edit"
ALERT_OPEN = "open"
ALERT_REPEAT = "repeat"
ALERT_RESOLVE = "resolve"
# Incident messages: ``{"op": "incident_post", "incident_id"}`` records the top-level
# message's channel id and ts; ``{"op": "incident_announce", "incident_id", "members":
# [member ids]}`` records that the thread named them.
ALERT_INCIDENT_POST = "incident_post"
ALERT_INCIDENT_ANNOUNCE = "incident_announce"


def _text(value: Any) -> str | None:
    """Return ``value`` as a string, or None for null/absent; numbers become their text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


@dataclass(frozen=True)
class JobEvent:
    """One HotGlue job-lifecycle webhook, as the rules see it.

    Field meanings follow https://docs.hotglue.com/environment-settings/webhooks.
    ``event_key`` is the receiver's dedupe key of the delivery (``s3_root`` + ``status``,
    or the body hash when ``s3_root`` is absent); rules derive action keys from it.
    ``payload`` is the redacted JSON object as stored. ``source`` is where the receiver
    got it: ``webhook``, or ``reconciled`` when its webhook never arrived and a
    reconciliation pass found it in HotGlue's job list (REFERENCE.md §7).
    """

    event_key: str
    payload: Mapping[str, Any]
    env_id: str | None = None
    flow_id: str | None = None
    tenant: str | None = None
    job_id: str | None = None
    s3_root: str | None = None
    status: str | None = None
    sync_type: str | None = None
    job_name: str | None = None
    tap: str | None = None
    target: str | None = None
    connector_id: str | None = None
    job_type: str | None = None
    message: str | None = None
    scheduled_job: bool | None = None
    start_time: str | None = None
    last_updated: str | None = None
    source: str = SOURCE_WEBHOOK

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], event_key: str, source: str = SOURCE_WEBHOOK) -> JobEvent:
        """Build an event from a payload dict; values of the wrong type become None.

        ``tenant`` falls back to ``started_by`` (HotGlue sends both, the same id).
        """
        p = payload

        def t(name: str) -> str | None:
            return _text(p.get(name))

        scheduled = p.get("scheduled_job")
        return cls(
            event_key=event_key,
            payload=p,
            env_id=t("env_id"),
            flow_id=t("flow_id"),
            tenant=t("tenant") or t("started_by"),
            job_id=t("job_id"),
            s3_root=t("s3_root") or t("job_root"),
            status=t("status"),
            sync_type=t("sync_type"),
            job_name=t("job_name"),
            tap=t("tap"),
            target=t("target"),
            connector_id=t("connector_id"),
            job_type=t("job_type"),
            message=t("message"),
            scheduled_job=scheduled if isinstance(scheduled, bool) else None,
            start_time=t("start_time"),
            last_updated=t("last_updated"),
            source=source,
        )

    @property
    def reconciled(self) -> bool:
        """True when the webhook never arrived and reconciliation found the stage."""
        return self.source == SOURCE_RECONCILED

    @property
    def is_failure(self) -> bool:
        """True for any ``*_FAILED`` status (HotGlue has no single JOB_FAILED status)."""
        return bool(self.status) and self.status.upper().endswith(FAILED_SUFFIX)  # type: ignore[union-attr]


@dataclass(frozen=True)
class Schedule:
    """A tenant's schedule for one flow (``GET .../jobs/schedule``)."""

    schedule_expression: str | None
    state: str | None  # "ENABLED" / "DISABLED"


@dataclass(frozen=True)
class OpenAlert:
    """A failure alert this receiver posted that is not resolved yet (from our own records).

    Only alerts opened by events *before* the one being decided (in processing order)
    are facts of it, so a replay neither repeats its own alert nor resolves later ones.

    ``channel`` is Slack's channel id and ``ts`` the message's ts, as ``chat.postMessage``
    answered; ``count`` is how many failures the thread holds; times are aware UTC.
    ``text`` and ``blocks`` are the top-level message as posted, for ``chat.update``.
    """

    thread_key: str
    fingerprint: str
    channel: str
    ts: str
    count: int
    first_at: datetime
    last_at: datetime
    text: str
    blocks: tuple[Mapping[str, Any], ...] = ()
    channel_name: str = ""
    """The channel as posted to (e.g. ``#hotglue-webhooks``), when known."""

    @property
    def pace(self) -> str:
        """The channel replies and updates are paced by (``params["pace"]``): the name as
        first posted to, since Slack's per-channel limit counts them all; else the id."""
        return self.channel_name or self.channel


@dataclass(frozen=True)
class TerminalStage:
    """The end (``JOB_COMPLETED`` or ``*_FAILED``) of another job of the same tenant and
    flow, as our own event table holds it: ``event_id`` is our stored event, times are
    HotGlue's ISO-8601 text as sent (REFERENCE §2)."""

    event_id: int
    s3_root: str | None
    job_id: str | None
    status: str | None
    last_updated: str | None
    start_time: str | None = None


@dataclass(frozen=True)
class IncidentMemberView:
    """One tenant's flow in an incident, for its thread: ``member_id`` is our row;
    ``own_channel``/``own_ts`` its own alert when it had one (linked, not alerted again)."""

    member_id: int
    tenant: str
    flow_id: str | None
    own_channel: str | None = None
    own_ts: str | None = None


@dataclass(frozen=True)
class IncidentSnapshot:
    """An incident as the worker read it when deciding its ``INCIDENT_UPDATE`` event.

    ``channel`` is where it is posted (the name, the pacing key); ``channel_id``/``ts`` its
    top-level message once posted (None before). ``tenants``/``recovered`` count members;
    ``listed`` the first tenants by id; ``new_members`` those its thread has not named yet.
    Times are aware UTC; ``now`` is when it was read. ``public_url``: the dashboard's base
    URL (``HGW_PUBLIC_URL``) or None. ``snoozed``: (by, until) of the snooze of its
    signature in force at ``now`` (the one lasting longest), or None.
    """

    id: int
    signature: str
    state: str
    stage: str | None
    connector: str
    error_line: str
    channel: str
    channel_id: str | None
    ts: str | None
    first_seen_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    now: datetime
    tenants: int
    recovered: int
    listed: tuple[str, ...]
    new_members: tuple[IncidentMemberView, ...]
    public_url: str | None = None
    expire_minutes: float = 0.0
    snoozed: tuple[str, datetime] | None = None


@dataclass(frozen=True)
class FactNeeds:
    """What :func:`decide` will need to know about the tenant, by flow id.

    ``schedules_of_linked_flows`` asks for the tenant's linked flows
    (``GET /{env_id}/flows/linked?tenant_id=…``) and then each one's schedule.
    """

    tenant_config: bool = False
    linked_flows: bool = False
    schedules_of_linked_flows: bool = False
    schedules: frozenset[str] = frozenset()
    linked_targets: frozenset[str] = frozenset()
    source_state: frozenset[str] = frozenset()
    open_alerts: bool = False
    """The tenant's unresolved alerts on the event's flow (our own records, not HotGlue)."""
    newest_terminal: bool = False
    """The newest end of another job of the tenant's flow already processed (our own records)."""

    @property
    def empty(self) -> bool:
        return not (self.open_alerts or self.newest_terminal or self.from_hotglue)

    @property
    def from_hotglue(self) -> bool:
        """Whether any of it is read from HotGlue's API (the rest are our own records)."""
        return bool(
            self.tenant_config or self.linked_flows or self.schedules_of_linked_flows or self.schedules
            or self.linked_targets or self.source_state
        )


@dataclass(frozen=True)
class Facts:
    """What the worker read from HotGlue before deciding.

    A key absent from a mapping means "not read"; ``unavailable`` says why a needed fact
    could not be read (e.g. dry-run without an API key). ``schedules[flow] is None`` means
    the tenant has no schedule for that flow. ``tenant_config is None`` with
    ``tenant_config_read`` true means HotGlue answered "no config".
    ``source_state[flow]`` empty or None means the flow never synced.
    """

    tenant_config: Mapping[str, Any] | None = None
    tenant_config_read: bool = False
    linked_flows: tuple[str, ...] | None = None
    schedules: Mapping[str, Schedule | None] = field(default_factory=dict)
    linked_targets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source_state: Mapping[str, Any] = field(default_factory=dict)
    unavailable: Mapping[str, str] = field(default_factory=dict)
    open_alerts: tuple[OpenAlert, ...] = ()
    """Unresolved alerts of the event's tenant and flow, oldest first."""
    newest_terminal: TerminalStage | None = None
    """The newest terminal stage of *another* job of the event's tenant and flow that the
    worker has processed (or is processing), no older than the event; None when none is."""
    incident: IncidentSnapshot | None = None
    """For an ``INCIDENT_UPDATE`` event: the incident as read when deciding it."""
    public_url: str | None = None
    """The dashboard's base URL (``HGW_PUBLIC_URL``), for links in the receiver's own notices."""


@dataclass(frozen=True)
class Action:
    """One effect to execute, exactly once per ``key``.

    ``key`` is the idempotency key: the worker records the action under it before
    executing, and an action whose key is already recorded is not executed again.
    ``depends_on`` lists keys (of the same decision) that must have succeeded first.
    ``rule`` names the rule that asked for it.
    """

    kind: str
    key: str
    params: Mapping[str, Any]
    rule: str
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """What the rules decided for one event: actions in order, and human-readable notes.

    ``notes`` always has at least one line; "no rule matched" when nothing applies.
    """

    actions: tuple[Action, ...]
    notes: tuple[str, ...]
