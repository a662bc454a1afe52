"""The rule table: which rule applies to which event, and the actions each asks for.

``STATUS_RULES`` maps a lifecycle status (REFERENCE §1) to the rules that may apply to
it, in order; ``RULES`` gives each rule its test, the facts it needs and its plan.
``IGNORED_STATUSES`` lists the stages deliberately left alone. Action keys: README.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hotglue_webhooks.rules import commands, messages
from hotglue_webhooks.rules.buy_orders import read_buy_orders
from hotglue_webhooks.rules import incidents
from hotglue_webhooks.rules.config import (
    ALERT_RESOLVED,
    BUY_ORDER_REPORT,
    DAILY_DIGEST as DAILY_DIGEST_RULE,
    EXACT_TOKEN_401,
    INCIDENT,
    SNOOZE_SUMMARY,
    FAILURE_ALERT,
    FULL_SYNC,
    FULL_SYNC_MARKER,
    SILENCE_BACK,
    SILENCE_NOTICE,
    RulesConfig,
    TargetLink,
)
from hotglue_webhooks.rules.exact import find_token_401
from hotglue_webhooks.rules.markers import find_marker
from hotglue_webhooks.rules.alerts import fingerprint, thread_key
from hotglue_webhooks.rules.model import (
    ALERT_INCIDENT_ANNOUNCE,
    ALERT_INCIDENT_POST,
    ALERT_OPEN,
    ALERT_REPEAT,
    ALERT_RESOLVE,
    CONFIG_PLACEHOLDER,
    DAILY_DIGEST,
    INCIDENT_UPDATE,
    SNOOZE_ENDED,
    FAILED_SUFFIX,
    HOTGLUE_LINK_TARGET,
    HOTGLUE_PUT_SCHEDULE,
    HOTGLUE_START_JOB,
    PAIRS_SILENT,
    SILENCE_FINGERPRINT,
    SLACK_ACTION_FAILED,
    SLACK_POST,
    SLACK_UPDATE,
    Action,
    Decision,
    FactNeeds,
    Facts,
    JobEvent,
    OpenAlert,
    STATE_CHANGING_KINDS,
    TerminalStage,
)
from hotglue_webhooks.rules.tenant_config import config_problems

NO_RULE_MATCHED = "no rule matched"
STALE = "stale"
"""The first word of the first note of a stale event's decision (see :func:`is_stale`)."""
# What a stale event still does: say what its own job exported. Everything else changes
# state (schedules, links, job starts) or opens or resolves an alert, and a late event of
# an older job must not undo what a newer job's end already did (issue 15).
_STALE_KEEPS = frozenset({BUY_ORDER_REPORT})
JOB_COMPLETED = "JOB_COMPLETED"
FULL_SYNC_TYPES = frozenset({"auto_sync", "full_sync"})
INCREMENTAL_SYNC = "incremental_sync"

# Stages that never lead to an action: a job's outcome arrives with JOB_COMPLETED or a
# *_FAILED status, and acting on a stage that may still fail would act twice or wrongly.
IGNORED_STATUSES = frozenset(
    {
        "JOB_CREATED",  # only queued; scheduled jobs send it every few hours per tenant
        "DISCOVER_STARTED",  # sent only when a discover runs
        "SYNC_STARTED",
        "SYNC_SUCCESS",  # the tap finished, ETL and export may still fail
        "ETL_STARTED",
        "ETL_SUCCESS",
        "EXPORT_STARTED",
    }
)

_FAILED_RULES = (FAILURE_ALERT, EXACT_TOKEN_401, SILENCE_BACK)
STATUS_RULES: dict[str, tuple[str, ...]] = {
    JOB_COMPLETED: (BUY_ORDER_REPORT, EXACT_TOKEN_401, FULL_SYNC, FULL_SYNC_MARKER, ALERT_RESOLVED, SILENCE_BACK),
    # The receiver's own notice: a reconciliation pass found pairs silent (rules/rhythm.py).
    PAIRS_SILENT: (SILENCE_NOTICE,),
    # The receiver's own: an incident changed, a snooze ended, the day's digest is due.
    INCIDENT_UPDATE: (INCIDENT,),
    SNOOZE_ENDED: (SNOOZE_SUMMARY,),
    DAILY_DIGEST: (DAILY_DIGEST_RULE,),
    # HotGlue has no JOB_FAILED: a failed job ends on one of these (REFERENCE §1). A future
    # *_FAILED status not listed here gets the same rules (see _candidate_rules).
    "DISCOVER_FAILED": _FAILED_RULES,
    "SYNC_FAILED": _FAILED_RULES,
    "ETL_FAILED": _FAILED_RULES,
    "EXPORT_FAILED": _FAILED_RULES,
}


def is_urgent(status: str | None, sync_type: str | None) -> bool:
    """True for a stage that may alert or change a schedule: any ``*_FAILED`` status (a
    failure alert, an Exact 401 turning schedules off), and ``JOB_COMPLETED`` of a full
    sync (``auto_sync``/``full_sync``: schedules re-enabled, target linked, next job).

    The worker claims urgent stages before others, so an alert does not wait behind the
    progress stages of other tenants in a burst (issue 11; storage/queue.py). A full sync
    recognised only by a job-name marker is not urgent: that needs the rules file, which
    ingest does not read. Pure: ``status`` and ``sync_type`` as HotGlue sent them.
    """
    status = (status or "").upper()
    if status.endswith(FAILED_SUFFIX):
        return True
    return status == JOB_COMPLETED and (sync_type or "").lower() in FULL_SYNC_TYPES


def needed_facts(event: JobEvent, config: RulesConfig) -> FactNeeds:
    """Return what :func:`decide` will need to know about ``event``'s tenant.

    Only the rules that apply to ``event`` ask; an event no rule applies to needs nothing.
    """
    needs = FactNeeds()
    matched = _matching_rules(event, config)
    for name in matched:
        needs = _union(needs, RULES[name].needs(event, config))
    if event.tenant and event.flow_id and any(name not in _STALE_KEEPS for name in matched):
        needs = _union(needs, FactNeeds(newest_terminal=True))
    return needs


def is_stale(notes: Iterable[str] | None) -> bool:
    """Whether a stored decision (its notes) says the event was stale."""
    first = next(iter(notes or ()), "")
    return isinstance(first, str) and first.startswith(f"{STALE}:")


def newer_job(event: JobEvent, newest: TerminalStage | None) -> TerminalStage | None:
    """Return ``newest`` when it ends a different job after ``event``, else None.

    "After" compares ``last_updated``, then ``start_time`` (ISO-8601, REFERENCE §2); an
    event or stage without a readable ``last_updated`` is never judged stale, nor is a
    stage of the event's own job (its stages out of order are another matter).
    """
    if newest is None:
        return None
    if event.s3_root and newest.s3_root == event.s3_root:
        return None
    mine, theirs = _parse_time(event.last_updated), _parse_time(newest.last_updated)
    if mine is None or theirs is None:
        return None
    if theirs > mine:
        return newest
    if theirs == mine:
        my_start, their_start = _parse_time(event.start_time), _parse_time(newest.start_time)
        if my_start is not None and their_start is not None and their_start > my_start:
            return newest
    return None


def decide(
    event: JobEvent, facts: Facts, config: RulesConfig, now: datetime, default_channel: str, *, buttons: bool = False
) -> Decision:
    """Return the actions for ``event``, in order, with notes explaining the decision.

    ``now`` is an aware datetime (naive is taken as UTC) and only dates the jobs the
    receiver starts; ``default_channel`` is the environment's Slack channel
    (``HGW_SLACK_CHANNEL``), used unless the rules file names one. A fact absent from
    ``facts`` is reported in the notes with its reason, looked up in
    ``facts.unavailable`` under ``"<fact>:<flow_id>"``, then ``"<fact>"``, then ``"*"``.
    Never raises on a well-typed event, whatever its payload holds.

    An event older than ``facts.newest_terminal`` (see :func:`newer_job`) is stale: only
    the buy-order report still applies, and the first note says so (:func:`is_stale`).
    Each rule that plans a state-changing action also plans its ``slack.action_failed``
    report, after its other actions.

    ``buttons``: messages that ask for a person carry Slack buttons (``rules/commands.py``):
    a new failure alert Retry job and Snooze 24 h, the Exact 401 message Re-enable
    schedules, a failure report Replay, an open incident's message Snooze incident. Only
    when the receiver can verify their clicks (a signing secret).
    """
    plan = _Plan(event, facts, config, now, default_channel)
    plan.buttons = buttons
    matched = _matching_rules(event, config)
    newer = newer_job(event, facts.newest_terminal)
    if newer is not None:
        plan.notes.append(_stale_note(event, newer))
        matched = [name for name in matched if name in _STALE_KEEPS]
    for name in matched:
        plan.rule = name
        start = len(plan.actions)
        RULES[name].plan(plan)
        _plan_failure_report(plan, plan.actions[start:])
    if not plan.actions and not plan.notes:  # e.g. a success with no open alert to resolve
        return Decision(actions=(), notes=(NO_RULE_MATCHED, _why_no_rule(event, config)))
    return Decision(actions=tuple(plan.actions), notes=tuple(plan.notes))


def _stale_note(event: JobEvent, newer: TerminalStage) -> str:
    return (
        f"{STALE}: job {newer.s3_root or newer.job_id or '?'} (job_id {newer.job_id or '?'}) ended "
        f"{newer.status or '?'} at {newer.last_updated} (event {newer.event_id}), after this "
        f"{event.status or 'stage'} at {event.last_updated}: no schedule change, link, job start or alert"
    )


def _plan_failure_report(p: _Plan, added: Iterable[Action]) -> None:
    """Plan the Slack report that runs only if a state-changing action of this rule fails.

    One report per rule and event (not one per action), so an outage of hundreds of
    tenants gives one message per event, paced like every other.
    """
    # A list, not a mapping by key: the stored params are redacted by key name, and an
    # action key can hold a secret-looking word (exact_token_401).
    steps = [
        {"action_key": a.key, **p.watched[a.key]} for a in added if a.kind in STATE_CHANGING_KINDS and a.key in p.watched
    ]
    if not steps:
        return
    params = {
        "channel": p.config.channel_for(p.rule, p.default_channel),
        "title": messages.action_failed_title(p.rule, p.event),
        "tenant": p.event.tenant,
        "flow_id": p.event.flow_id,
        "steps": steps,
    }
    if p.buttons and p.event.tenant:
        params["buttons"] = [commands.button(commands.REPLAY, p.event)]
    p.add(SLACK_ACTION_FAILED, p.key("slack:action_failed"), params, depends_on=tuple(s["action_key"] for s in steps))


# --- the plan being built ----------------------------------------------------------------


class _Plan:
    """Actions and notes of one decision, and the inputs every rule reads."""

    def __init__(
        self, event: JobEvent, facts: Facts, config: RulesConfig, now: datetime, default_channel: str
    ) -> None:
        self.event, self.facts, self.config = event, facts, config
        self.now, self.default_channel = now, default_channel
        self.rule = ""
        self.buttons = False
        self.actions: list[Action] = []
        self.notes: list[str] = []
        # What each state-changing action would change, for the report if it fails.
        self.watched: dict[str, dict[str, str]] = {}

    def watch(self, key: str, what: str, still_true: str, done: str) -> str:
        """Say, for the failure report, what ``key`` does, what stays true if it fails, and what it did."""
        self.watched.setdefault(key, {"what": what, "still_true": still_true, "done": done})
        return key

    def key(self, what: str) -> str:
        """Return the idempotency key ``{event_key}|{rule}|{what}``."""
        return f"{self.event.event_key}|{self.rule}|{what}"

    def note(self, text: str) -> None:
        self.notes.append(f"{self.rule}: {text}")

    def add(self, kind: str, key: str, params: Mapping[str, Any], depends_on: Iterable[str] = ()) -> str:
        """Append an action unless one with ``key`` is already planned; return ``key``."""
        if all(action.key != key for action in self.actions):
            self.actions.append(Action(kind, key, params, self.rule, tuple(depends_on)))
        return key

    def slack(
        self,
        what: str,
        message: messages.SlackMessage,
        depends_on: Iterable[str] = (),
        *,
        thread: OpenAlert | None = None,
        alert: Mapping[str, Any] | None = None,
        about: Mapping[str, Any] | None = None,
        incident: Mapping[str, Any] | None = None,
        channel: str | None = None,
    ) -> str:
        """Post ``message``: to the rule's channel (or ``channel``), or as a reply in ``thread``.

        ``about`` (tenant, signature) lets a snooze hold it; ``incident`` makes the worker
        judge it for grouping before it is posted.
        """
        if thread is None:
            params = message.params(channel or self.config.channel_for(self.rule, self.default_channel))
        else:
            params = {**message.params(thread.channel), "thread_ts": thread.ts, "pace": thread.pace}
        if alert is not None:
            params["alert"] = dict(alert)
        if about is not None:
            params["about"] = dict(about)
        if incident is not None:
            params["incident"] = dict(incident)
        return self.add(SLACK_POST, self.key(what), params, depends_on)

    def hotglue(
        self,
        kind: str,
        key: str,
        flow_id: str,
        body: Mapping[str, Any],
        depends_on: Iterable[str] = (),
        **extra: Any,
    ) -> str:
        params = {"env_id": self.event.env_id, "flow_id": flow_id, "tenant": self.event.tenant, "body": body}
        return self.add(kind, key, {**params, **extra}, depends_on)

    def why(self, fact: str, flow_id: str | None = None) -> str:
        """Return why ``fact`` (of ``flow_id``) is missing, from ``facts.unavailable``."""
        unavailable = self.facts.unavailable
        for name in (f"{fact}:{flow_id}" if flow_id else None, fact, "*"):
            if name is not None and name in unavailable:
                return str(unavailable[name])
        return "not read"


@dataclass(frozen=True)
class _Rule:
    applies: Callable[[JobEvent, RulesConfig], bool]
    needs: Callable[[JobEvent, RulesConfig], FactNeeds]
    plan: Callable[[_Plan], None]


# --- failure alert -----------------------------------------------------------------------


def _plan_failure_alert(p: _Plan) -> None:
    event = p.event
    export = _is_buy_order_export(event, p.config)
    report = read_buy_orders(event.payload, p.config.buy_orders.streams) if export else None
    alert = messages.failure_alert(event, buy_order_export=export, report=report)
    line = messages.telling_line(messages.scrub(event.message or ""))
    print_ = fingerprint(event.status, line)
    key = thread_key(event, print_)
    signature = incidents.signature(event, line)
    # What a snooze looks at (by tenant or signature): the worker holds these messages.
    about = {"tenant": event.tenant, "group": signature.id if signature else None}
    open_alert = _open_alert(p, print_)
    if open_alert is not None:
        count = open_alert.count + 1
        reply = p.slack(
            "slack",
            messages.failure_repeat(event, count),
            thread=open_alert,
            alert={"op": ALERT_REPEAT, "thread_key": open_alert.thread_key, "at": event.last_updated},
            about=about,
        )
        update = messages.repeat_count_update(open_alert, count, event)
        p.add(
            SLACK_UPDATE,
            p.key("slack_update"),
            {
                "channel": open_alert.channel,
                "ts": open_alert.ts,
                "text": update.text,
                "blocks": update.blocks,
                "pace": open_alert.pace,
                "about": about,
            },
            depends_on=(reply,),
        )
        p.note(
            f"failure #{count} like this since {open_alert.first_at:%Y-%m-%d %H:%M} UTC: "
            "a reply in the first alert's thread, and the alert shows the count"
        )
        return
    if p.buttons:
        alert = commands.with_buttons(alert, [commands.RETRY_JOB, commands.SNOOZE], event)
    opened = {"op": ALERT_OPEN, "thread_key": key, "tenant": event.tenant, "flow_id": event.flow_id}
    opened |= {"fingerprint": print_, "at": event.last_updated}
    grouping = None
    if signature is not None and p.config.incidents.enabled:
        # The worker judges it when it is about to be posted (rules/incidents.py judge):
        # alone, held for the group wait, or folded into an incident of its signature.
        grouping = {
            "group": signature.id, "env_id": event.env_id, "tenant": event.tenant, "flow_id": event.flow_id,
            "stage": signature.stage, "connector": signature.connector, "error_line": signature.error_line[:2000],
            "channel": p.config.channel_for(INCIDENT, p.default_channel), "thread_key": key,
        }
    p.slack("slack", alert, alert=opened, about=about, incident=grouping)
    note = f"Slack alert for {event.status}"
    if export and report is None:
        note += "; number of failed buy orders unknown: no report in the payload"
    elif report is not None:
        note += f"; {report.failed} of {report.orders} buy orders failed"
    p.note(note)


def _open_alert(p: _Plan, print_: str) -> OpenAlert | None:
    """Return the open alert thread this failure belongs in, if threading is on."""
    window = timedelta(hours=p.config.slack.repeat_window_hours)
    if not window:
        return None
    # The failure's own time, not the receipt: a late delivery is still judged by when it failed.
    when = _parse_time(p.event.last_updated) or _aware(p.now)
    for alert in p.facts.open_alerts:
        if alert.fingerprint == print_ and alert.first_at >= when - window:
            return alert
    return None


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return _aware(moment)


def _alert_needs(event: JobEvent, config: RulesConfig) -> FactNeeds:
    return FactNeeds(open_alerts=bool(event.tenant and event.flow_id))


def _failure_needs(event: JobEvent, config: RulesConfig) -> FactNeeds:
    return _alert_needs(event, config) if config.slack.repeat_window_hours else FactNeeds()


def _can_resolve(event: JobEvent, config: RulesConfig) -> bool:
    return bool(event.tenant and event.flow_id)


def _plan_alert_resolved(p: _Plan) -> None:
    """A finished job of a tenant's flow closes that flow's open alert threads."""
    for alert in p.facts.open_alerts:
        if alert.fingerprint == SILENCE_FINGERPRINT:
            continue  # silence_back answers those
        p.slack(
            f"slack:resolved:{alert.thread_key}",
            messages.alert_resolved(p.event, alert),
            thread=alert,
            alert={"op": ALERT_RESOLVE, "thread_key": alert.thread_key},
        )
        p.note(f"resolves the alert thread of {alert.count} failure(s) since {alert.first_at:%Y-%m-%d %H:%M} UTC")


# --- silent pairs (the dead man's switch) --------------------------------------------------


def silence_thread_key(env_id: str | None, tenant: str | None, flow_id: str | None) -> str:
    """The thread key of a pair's silence: one open silence per (env_id, tenant, flow_id)."""
    return f"silence|{env_id}|{tenant}|{flow_id}"


def _is_silence_notice(event: JobEvent, config: RulesConfig) -> bool:
    return config.silence.enabled and isinstance(event.payload.get("pairs"), list)


def _plan_silence_notice(p: _Plan) -> None:
    """One message for every pair a pass found silent (a HotGlue-wide stop is one message)."""
    pairs = [
        pair for pair in p.event.payload.get("pairs") or []
        if isinstance(pair, Mapping) and isinstance(pair.get("tenant"), str) and isinstance(pair.get("flow_id"), str)
    ]
    if not pairs:
        p.note("no silent pair in the notice")
        return
    p.slack(
        "slack",
        messages.pairs_silent(p.event.env_id, pairs),
        alert={
            "op": ALERT_OPEN,
            "fingerprint": SILENCE_FINGERPRINT,
            "thread_key": f"silence|{p.event.event_key}",
            "at": p.event.last_updated,
            "pairs": [
                {"thread_key": silence_thread_key(p.event.env_id, pair["tenant"], pair["flow_id"]),
                 "tenant": pair["tenant"], "flow_id": pair["flow_id"]}
                for pair in pairs
            ],
        },
    )
    p.note(f"{len(pairs)} pair(s) silent: one message")


def _plan_silence_back(p: _Plan) -> None:
    """A terminal stage of a silent pair clears its silence, with a reply in the thread."""
    for alert in p.facts.open_alerts:
        if alert.fingerprint != SILENCE_FINGERPRINT:
            continue
        p.slack(
            f"slack:back:{alert.thread_key}",
            messages.pair_back(p.event, alert),
            thread=alert,
            alert={"op": ALERT_RESOLVE, "thread_key": alert.thread_key},
        )
        p.note(f"clears the silence of tenant {p.event.tenant} on flow {p.event.flow_id}")


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


# --- incidents, snooze summaries, the daily digest ----------------------------------------


def _always(event: JobEvent, config: RulesConfig) -> bool:
    return True


def _plan_incident_update(p: _Plan) -> None:
    """Post the incident's message (first update) or update it in place, and name the
    tenants its thread has not named yet, ``thread_batch`` per reply."""
    incident = p.facts.incident
    if incident is None:
        p.note("incident gone (purged): nothing to update")
        return
    message = messages.incident_message(incident)
    if p.buttons:
        message = commands.with_incident_button(message, incident)
    post_key = None
    if incident.ts is None:
        post_key = p.slack(
            "slack:post", message, channel=incident.channel,
            alert={"op": ALERT_INCIDENT_POST, "incident_id": incident.id},
        )
        p.note(f"incident {incident.id}: posts its message ({incident.tenants} tenants, {incident.state})")
    else:
        p.add(
            SLACK_UPDATE, p.key("slack:update"),
            {"channel": incident.channel_id, "ts": incident.ts, "text": message.text, "blocks": message.blocks,
             "pace": incident.channel},
        )
        p.note(f"incident {incident.id}: updates its message ({incident.tenants} tenants, {incident.recovered} recovered, {incident.state})")
    batch = p.config.incidents.thread_batch
    members = incident.new_members
    named = incident.tenants - len({m.tenant for m in members})
    for start in range(0, len(members), batch):
        chunk = members[start : start + batch]
        reply = messages.incident_members(chunk, p.facts.public_url, named + start + 1, incident.tenants)
        params: dict[str, Any] = {
            **reply.params(incident.channel_id or incident.channel),
            "pace": incident.channel,
            "alert": {"op": ALERT_INCIDENT_ANNOUNCE, "incident_id": incident.id, "members": [m.member_id for m in chunk]},
        }
        if incident.ts is not None:
            params["thread_ts"] = incident.ts
        else:
            params["incident_thread"] = incident.id  # the worker fills in channel and thread_ts
        p.add(SLACK_POST, p.key(f"slack:thread:{start // batch}"), params, depends_on=(post_key,) if post_key else ())
    if members:
        p.note(f"names {len(members)} tenant(s) in the thread, {batch} per reply")


def _plan_snooze_summary(p: _Plan) -> None:
    payload = p.event.payload
    snooze, summary = payload.get("snooze"), payload.get("summary")
    if not isinstance(snooze, Mapping) or not isinstance(summary, Mapping):
        p.note("no snooze in the notice")
        return
    channel = payload.get("channel") if isinstance(payload.get("channel"), str) else None
    p.slack("slack", messages.snooze_summary(snooze, summary, p.facts.public_url),
            channel=p.config.slack.channels_by_rule.get(SNOOZE_SUMMARY) or channel)
    p.note(f"snooze {snooze.get('id')} of {snooze.get('scope')} {snooze.get('target')} ended: one summary")


def _plan_daily_digest(p: _Plan) -> None:
    payload = p.event.payload
    digest, channel, day = payload.get("digest"), payload.get("channel"), payload.get("day")
    if not isinstance(digest, Mapping) or not isinstance(channel, str) or not isinstance(day, str):
        p.note("no digest in the notice")
        return
    p.slack("slack", messages.daily_digest(day, digest, p.facts.public_url, p.config.digest.listed), channel=channel)
    p.note(f"daily digest of {day} for {channel}")


# --- Exact refused the refresh token -----------------------------------------------------


def _exact_401_line(event: JobEvent, config: RulesConfig) -> str | None:
    """Return the Exact token-401 line behind ``event``, or None.

    A failed job's ``message`` says so directly; a buy-order export (finished or failed)
    says so when every error text of its report is that 401.
    """
    if event.is_failure:
        line = find_token_401(event.message, config.exact)
        if line:
            return line
    if (event.is_failure or _status(event) == JOB_COMPLETED) and _is_buy_order_export(event, config):
        report = read_buy_orders(event.payload, config.buy_orders.streams)
        texts = [group.text for group in report.errors if group.text] if report else []
        lines = [find_token_401(text, config.exact) for text in texts]
        if lines and all(lines):
            return lines[0]
    return None


def _exact_401_needs(event: JobEvent, config: RulesConfig) -> FactNeeds:
    if not (event.env_id and event.tenant):
        return FactNeeds()
    # The event's own schedule too: it is the fallback when linked flows cannot be read.
    own = frozenset({event.flow_id}) if event.flow_id else frozenset()
    return FactNeeds(linked_flows=True, schedules_of_linked_flows=True, schedules=own)


def _plan_exact_401(p: _Plan) -> None:
    event, facts = p.event, p.facts
    line = _exact_401_line(event, p.config) or ""
    flows: list[str] = []
    if not (event.env_id and event.tenant):
        p.note("cannot turn schedules off: the event has no env_id or tenant")
    elif facts.linked_flows is None:
        flows = [event.flow_id] if event.flow_id else []
        p.note(f"linked flows unknown ({p.why('linked_flows')}): only the event's flow")
    else:
        flows = list(dict.fromkeys([*facts.linked_flows, *([event.flow_id] if event.flow_id else [])]))
    turned_off: list[tuple[str, str]] = []
    without_schedule: list[str] = []
    not_turned_off: list[tuple[str, str]] = []
    keys: list[str] = []
    for flow_id in flows:
        if flow_id not in facts.schedules:
            not_turned_off.append((flow_id, p.why("schedules", flow_id)))
            continue
        schedule = facts.schedules[flow_id]
        if schedule is None:
            without_schedule.append(flow_id)
            continue
        # A schedule PUT needs an expression (REFERENCE §4); keep the tenant's own.
        expression = schedule.schedule_expression or p.config.schedules.default_expression
        body = {"schedule_expression": expression, "state": "DISABLED", **_v2_schedule_fields(event, flow_id)}
        key = p.hotglue(HOTGLUE_PUT_SCHEDULE, p.key(f"schedule:{flow_id}"), flow_id, body)
        keys.append(p.watch(key, *messages.schedule_step(flow_id, "DISABLED", schedule, known=True)))
        turned_off.append((flow_id, expression))
    p.note(
        f"Exact refused the refresh token ({line}); turning off {len(turned_off)} schedule(s)"
        + "".join(f"; {f} has no schedule" for f in without_schedule)
        + "".join(f"; schedule of {f} unknown ({why}): not turned off" for f, why in not_turned_off)
    )
    message = messages.exact_token_401(event, line, turned_off, without_schedule, not_turned_off)
    if p.buttons and turned_off:
        message = commands.with_buttons(message, [commands.ENABLE_SCHEDULES], event)
    # A snooze of the tenant holds this message too (the PUTs still run).
    p.slack("slack", message, depends_on=keys, about={"tenant": event.tenant, "group": None})


# --- buy-order report ---------------------------------------------------------------------


def _is_buy_order_export(event: JobEvent, config: RulesConfig) -> bool:
    rules = config.buy_orders
    if event.target and event.target in rules.targets:
        return True
    return bool(event.connector_id in rules.connector_ids and (event.job_type or "").lower() == "write")


def _plan_buy_order_report(p: _Plan) -> None:
    report = read_buy_orders(p.event.payload, p.config.buy_orders.streams)
    if report is None:
        p.note("no buy-order report in the payload; the job completed, so nothing to say")
    elif not report.has_failures:
        p.note(f"all {report.orders} buy orders exported")
    else:
        p.slack("slack", messages.buy_order_report(p.event, report))
        p.note(f"{report.failed} of {report.orders} buy orders failed; {report.extra_errors} extra error(s)")


# --- full sync: enable schedule, validate config, link target, trigger a job --------------


def _is_full_sync(event: JobEvent, config: RulesConfig) -> bool:
    return _status(event) == JOB_COMPLETED and (event.sync_type or "").lower() in FULL_SYNC_TYPES


def _is_marked_full_sync(event: JobEvent, config: RulesConfig) -> bool:
    if _status(event) != JOB_COMPLETED or (event.sync_type or "").lower() != INCREMENTAL_SYNC:
        return False
    return _full_sync_marker(event, config) is not None and _ignore_marker(event, config) is None


def _full_sync_marker(event: JobEvent, config: RulesConfig) -> str | None:
    m = config.markers
    return find_marker(event.job_name, m.full_sync, m.full_sync_encoded)


def _ignore_marker(event: JobEvent, config: RulesConfig) -> str | None:
    m = config.markers
    return find_marker(event.job_name, m.ignore, m.ignore_encoded)


def _full_sync_needs(event: JobEvent, config: RulesConfig) -> FactNeeds:
    return _sync_steps_needs(event, config, validate_and_trigger=True)


def _marker_needs(event: JobEvent, config: RulesConfig) -> FactNeeds:
    return _sync_steps_needs(event, config, validate_and_trigger=False)


def _sync_steps_needs(event: JobEvent, config: RulesConfig, validate_and_trigger: bool) -> FactNeeds:
    if not _can_call_hotglue(event):
        return FactNeeds()
    flow_id = event.flow_id or ""  # set: _can_call_hotglue checked it
    links = _matching_links(event, config)
    target_flows = frozenset(link.target_flow or flow_id for link in links)
    triggers = validate_and_trigger and bool(links) and bool(event.tap) and not _loop_guarded(event, config)
    return FactNeeds(
        tenant_config=validate_and_trigger or bool(links),  # validation, link body
        schedules=frozenset({flow_id}) | target_flows,
        linked_targets=target_flows,
        source_state=target_flows if triggers else frozenset(),
    )


def _plan_full_sync(p: _Plan) -> None:
    _plan_sync_steps(p, validate_and_trigger=True)


def _plan_marked_full_sync(p: _Plan) -> None:
    p.note(f"incremental job named as a full sync: {_full_sync_marker(p.event, p.config)}")
    _plan_sync_steps(p, validate_and_trigger=False)


def _plan_sync_steps(p: _Plan, validate_and_trigger: bool) -> None:
    """Steps (1) enable schedule + Slack, (2) validate config, (3) link target, (4) trigger."""
    event = p.event
    if not _can_call_hotglue(event) or event.flow_id is None:
        p.note("cannot act: the event has no env_id, tenant or flow_id")
        return
    _enable_schedule(p, event.flow_id, p.config.schedules.default_expression, confirm=True)
    valid = _validate_tenant_config(p) if validate_and_trigger else None
    links = _matching_links(event, p.config)
    if not links:
        p.note(f"no target link configured for flow {event.flow_id} and tap {event.tap}")
    for link in links:
        _plan_link(p, link, link.target_flow or event.flow_id, valid, trigger=validate_and_trigger)


def _enable_schedule(
    p: _Plan, flow_id: str, default_expression: str, depends_on: Iterable[str] = (), confirm: bool = False
) -> str:
    """Plan the PUT that sets ``flow_id``'s schedule ENABLED, keeping an existing expression.

    HotGlue's PUT needs the expression (REFERENCE §4), so enabling means writing back what
    was read; with no schedule, or none readable, the default expression is written.
    """
    known = flow_id in p.facts.schedules
    previous = p.facts.schedules.get(flow_id)
    expression = (previous.schedule_expression if previous else None) or default_expression
    body = {"schedule_expression": expression, "state": "ENABLED", **_v2_schedule_fields(p.event, flow_id)}
    key = p.hotglue(HOTGLUE_PUT_SCHEDULE, p.key(f"schedule:{flow_id}"), flow_id, body, depends_on)
    p.watch(key, *messages.schedule_step(flow_id, "ENABLED", previous, known))
    if not known:
        p.note(
            f"schedule of flow {flow_id} unknown ({p.why('schedules', flow_id)}): "
            f"writing {expression} ENABLED"
        )
    elif previous is None:
        p.note(f"flow {flow_id} has no schedule: creating {expression} ENABLED")
    else:
        p.note(f"enabling the schedule of flow {flow_id}: {expression} (was {previous.state or 'unknown'})")
    if confirm:
        why = "" if known else p.why("schedules", flow_id)
        message = messages.schedule_enabled(p.event, flow_id, expression, previous, known, why)
        p.slack(f"slack:schedule:{flow_id}", message, depends_on=(key,))
    return key


def _validate_tenant_config(p: _Plan) -> bool | None:
    """Return whether the tenant config satisfies its schema; None when it could not be read."""
    if not p.facts.tenant_config_read:
        p.note(f"tenant config not validated: unknown ({p.why('tenant_config')})")
        return None
    schema = p.config.tenant_config.schema_for(p.event.flow_id)
    problems = config_problems(p.facts.tenant_config, schema)
    if not problems:
        p.note("tenant config valid")
        return True
    p.slack("slack:tenant_config", messages.tenant_config_invalid(p.event, problems))
    p.note(f"tenant config invalid: {'; '.join(problems)}")
    return False


def _plan_link(p: _Plan, link: TargetLink, target_flow: str, valid: bool | None, trigger: bool) -> None:
    """Step (3): link ``link.target`` if the tenant lacks it, then step (4) when ``trigger``."""
    linked = p.facts.linked_targets.get(target_flow)
    if linked is None:
        # Linking blind could replace a link the tenant already has (and its config).
        why = p.why("linked_targets", target_flow)
        p.note(
            f"linked targets of flow {target_flow} unknown ({why}): "
            f"{link.target} not linked, no job triggered"
        )
        return
    link_key = None
    if link.target in linked:
        p.note(f"{link.target} already linked in flow {target_flow}")
    else:
        body = _link_body(p, link, target_flow)
        if body is None:
            return
        link_key = p.hotglue(
            HOTGLUE_LINK_TARGET,
            p.key(f"link:{target_flow}:{link.target}"),
            target_flow,
            body,
            config_from=link.config_from,
        )
        p.watch(link_key, *messages.link_step(link.target, target_flow))
        p.note(f"linking {link.target} in flow {target_flow} with the tenant config's {link.config_from}")
        if target_flow == p.event.flow_id:
            p.note(f"the schedule of flow {target_flow} is enabled above")
        else:
            expression = link.schedule_expression or p.config.schedules.default_expression
            _enable_schedule(p, target_flow, expression, depends_on=(link_key,))
    if trigger:
        _plan_trigger(p, target_flow, link_key, valid)


def _link_body(p: _Plan, link: TargetLink, target_flow: str) -> dict[str, Any] | None:
    """Return the POST .../linkedTargets body from ``link.body``; None (with a note) without config."""
    if not p.facts.tenant_config_read:
        p.note(f"tenant config unknown ({p.why('tenant_config')}): {link.target} not linked")
        return None
    section = (p.facts.tenant_config or {}).get(link.config_from)
    if not isinstance(section, Mapping) or not section:
        p.note(f"the tenant config has no {link.config_from} object: {link.target} not linked")
        return None
    values = {
        "{target}": link.target,
        # The credentials stay out of the action (it is stored): the executor reads the
        # tenant config again right before the POST and puts link.config_from here.
        "{config}": CONFIG_PLACEHOLDER,
        "{tap}": p.event.tap,
        "{flow_id}": target_flow,
    }
    rendered = _render(link.body, values)
    return rendered if isinstance(rendered, dict) else {}


def _render(template: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(template, str):
        return values.get(template, template)
    if isinstance(template, Mapping):
        return {k: _render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_render(v, values) for v in template]
    return template


def _plan_trigger(p: _Plan, target_flow: str, link_key: str | None, valid: bool | None) -> None:
    """Step (4): start ``wh-{flow_id}-{tap}-{date}`` once per tenant, flow, tap and UTC day."""
    event, facts = p.event, p.facts
    if _loop_guarded(event, p.config):
        p.note(f"loop guard: job {event.job_name!r} was started by this receiver, so it triggers none")
        return
    if not event.tap:
        p.note("no job triggered: the event has no tap (starting V2 jobs is not supported)")
        return
    if valid is None:
        p.note("no job triggered: the tenant config could not be validated")
        return
    if not valid:
        p.note("no job triggered: the tenant config is invalid")
        return
    if target_flow not in facts.source_state:
        p.note(
            f"no job triggered: source state of flow {target_flow} unknown "
            f"({p.why('source_state', target_flow)})"
        )
        return
    if not _is_empty_state(facts.source_state[target_flow]):
        p.note(f"no job triggered: flow {target_flow} already has source state")
        return
    date = _utc_date(p.now)
    tenant = event.tenant or ""
    name = p.config.jobs.job_name(flow_id=target_flow, tap=event.tap, date=date, tenant=tenant)
    # Global, not per event: duplicates, replays and other events of the same day must
    # find this key taken, so at most one such job runs per tenant, flow, tap and day.
    key = f"start_job|{event.env_id}|{tenant}|{target_flow}|{event.tap}|{date}"
    body = {"tap": event.tap, "job_name": name}
    p.hotglue(HOTGLUE_START_JOB, key, target_flow, body, depends_on=(link_key,) if link_key else ())
    p.watch(key, *messages.start_job_step(name, target_flow))
    p.note(f"starting job {name} in flow {target_flow}")


def _is_empty_state(state: Any) -> bool:
    """True for "never synced": null, an empty value, or an object whose values are all empty."""
    if state is None:
        return True
    if isinstance(state, (str, list, tuple, Mapping)) and len(state) == 0:
        return True
    if isinstance(state, Mapping):  # e.g. {"bookmarks": {}}
        return all(v is None or (isinstance(v, (str, list, Mapping)) and len(v) == 0) for v in state.values())
    return False


# --- helpers ---------------------------------------------------------------------------------


def _status(event: JobEvent) -> str:
    return (event.status or "").upper()


def _can_call_hotglue(event: JobEvent) -> bool:
    return bool(event.env_id and event.tenant and event.flow_id)


def _loop_guarded(event: JobEvent, config: RulesConfig) -> bool:
    # Case-insensitive: a false positive only skips a trigger, a false negative can loop.
    prefix = config.jobs.loop_guard_prefix.lower()
    return bool(event.job_name and event.job_name.lower().startswith(prefix))


def _matching_links(event: JobEvent, config: RulesConfig) -> list[TargetLink]:
    return [link for link in config.target_links if link.matches(event.flow_id, event.tap)]


def _v2_schedule_fields(event: JobEvent, flow_id: str) -> dict[str, str]:
    """Return the V2 fields of a schedule PUT (REFERENCE §4); known for the event's own flow only."""
    if flow_id == event.flow_id and event.connector_id and event.job_type and not event.tap:
        return {"job_type": event.job_type, "connector_id": event.connector_id}
    return {}


def _utc_date(now: datetime) -> str:
    aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return aware.astimezone(UTC).date().isoformat()


def _union(a: FactNeeds, b: FactNeeds) -> FactNeeds:
    return FactNeeds(
        tenant_config=a.tenant_config or b.tenant_config,
        linked_flows=a.linked_flows or b.linked_flows,
        schedules_of_linked_flows=a.schedules_of_linked_flows or b.schedules_of_linked_flows,
        schedules=a.schedules | b.schedules,
        linked_targets=a.linked_targets | b.linked_targets,
        source_state=a.source_state | b.source_state,
        open_alerts=a.open_alerts or b.open_alerts,
        newest_terminal=a.newest_terminal or b.newest_terminal,
    )


def _no_needs(event: JobEvent, config: RulesConfig) -> FactNeeds:
    return FactNeeds()


def _is_failure(event: JobEvent, config: RulesConfig) -> bool:
    return event.is_failure


def _is_completed_export(event: JobEvent, config: RulesConfig) -> bool:
    return _status(event) == JOB_COMPLETED and _is_buy_order_export(event, config)


def _has_exact_401(event: JobEvent, config: RulesConfig) -> bool:
    return _exact_401_line(event, config) is not None


RULES: dict[str, _Rule] = {
    FAILURE_ALERT: _Rule(_is_failure, _failure_needs, _plan_failure_alert),
    EXACT_TOKEN_401: _Rule(_has_exact_401, _exact_401_needs, _plan_exact_401),
    # On EXPORT_FAILED the buy-order count goes into the failure alert: one message, not two.
    BUY_ORDER_REPORT: _Rule(_is_completed_export, _no_needs, _plan_buy_order_report),
    FULL_SYNC: _Rule(_is_full_sync, _full_sync_needs, _plan_full_sync),
    FULL_SYNC_MARKER: _Rule(_is_marked_full_sync, _marker_needs, _plan_marked_full_sync),
    ALERT_RESOLVED: _Rule(_can_resolve, _alert_needs, _plan_alert_resolved),
    SILENCE_NOTICE: _Rule(_is_silence_notice, _no_needs, _plan_silence_notice),
    SILENCE_BACK: _Rule(_can_resolve, _alert_needs, _plan_silence_back),
    INCIDENT: _Rule(_always, _no_needs, _plan_incident_update),
    SNOOZE_SUMMARY: _Rule(_always, _no_needs, _plan_snooze_summary),
    DAILY_DIGEST_RULE: _Rule(_always, _no_needs, _plan_daily_digest),
}


def _candidate_rules(event: JobEvent) -> tuple[str, ...]:
    rules = STATUS_RULES.get(_status(event))
    if rules is None and event.is_failure:
        return _FAILED_RULES
    return rules or ()


def _matching_rules(event: JobEvent, config: RulesConfig) -> list[str]:
    return [name for name in _candidate_rules(event) if RULES[name].applies(event, config)]


def _why_no_rule(event: JobEvent, config: RulesConfig) -> str:
    """Return one line saying why no rule applies, for ``explain``."""
    status = _status(event)
    if not status:
        return "the payload has no status"
    if status in IGNORED_STATUSES:
        return f"{event.status} is a progress stage: only JOB_COMPLETED and *_FAILED lead to actions"
    if status != JOB_COMPLETED:
        return f"unknown status {event.status!r}: stored, no action"
    sync_type = (event.sync_type or "").lower()
    if not sync_type:
        return "JOB_COMPLETED without sync_type: unknown, not taken as incremental"
    if sync_type != INCREMENTAL_SYNC:
        return f"JOB_COMPLETED with sync_type {event.sync_type!r}: no rule for it"
    marker = _full_sync_marker(event, config)
    if marker is None:
        return "incremental_sync job without a full-sync marker in its name"
    return (
        f"incremental_sync job named with {marker} but also the ignore marker {_ignore_marker(event, config)}"
    )
