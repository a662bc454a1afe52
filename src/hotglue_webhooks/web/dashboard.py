"""The dashboard: server-rendered pages (Flask + Jinja) over the events table.

``/`` events (filters in the URL, newest first, paginated, the hourly chart),
``/events/<id>`` one event with its decision and actions (and Replay), ``/tenants`` and
``/tenants/<tenant>`` a tenant's jobs grouped by ``s3_root`` (with its commands: Re-enable
schedules, Retry job, Replay), ``/attention`` the tenants waiting for a person, ``/dead``
dead actions with bulk replay, ``/login``. Views read through ``storage/queries.py`` and replay through
``worker.reopen_event``; they never call Slack or HotGlue.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import structlog
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from hotglue_webhooks import metrics
from hotglue_webhooks.ingest import parse_time
from hotglue_webhooks.replay import LivePlan, LiveReplayRefused, plan_live_replay, replay_live
from hotglue_webhooks.retention import last_purge, oldest_event
from hotglue_webhooks.rules import is_stale
from hotglue_webhooks.rules.model import LIFECYCLE_STATUSES
from hotglue_webhooks.rules.commands import DASHBOARD_COMMANDS, LABELS
from hotglue_webhooks.storage.attention import last_events, needs_attention
from hotglue_webhooks.storage.commands import Click, find_event, latest_message_event, list_commands, store_command
from hotglue_webhooks.storage.db import write_session
from hotglue_webhooks.storage.incidents import incident_rows
from hotglue_webhooks.storage.models import ACTION_DEAD, ACTION_DRY_RUN, COMMAND_DASHBOARD, EVENT_OPEN_STATES
from hotglue_webhooks.storage.snoozes import active_snoozes, lift, snooze
from hotglue_webhooks.storage.reconciled import gap_per_day, latest_rhythms
from hotglue_webhooks.storage.queries import (
    ANY_FAILURE,
    ActionFilter,
    EventFilter,
    TenantState,
    action_event_ids,
    actions_for,
    action_states_for,
    count_actions,
    count_events,
    dead_action_count,
    distinct_values,
    get_event,
    hourly_counts,
    job_events,
    list_actions,
    list_events,
    list_jobs,
    queue_state,
    tenant_jobs,
    tenant_overview,
    tenant_states,
)
from hotglue_webhooks.web import auth, limits, refusals
from hotglue_webhooks.web.charts import CHART_SPANS, hourly_chart
from hotglue_webhooks.web.context import current_runtime as _runtime
from hotglue_webhooks.web.describe import describe_action
from hotglue_webhooks.web.schemas import MAX_ID, TENANT, parse_when, text_problems
from hotglue_webhooks.worker import reopen_event, reopen_events

blueprint = Blueprint(
    "dashboard", __name__, template_folder="templates", static_folder="static", static_url_path="/assets"
)
log = structlog.get_logger("hotglue_webhooks.web")

PAGE_SIZE = 50
JOBS_PER_PAGE = 20
TIME_PRESETS = {"1h": "last hour", "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days"}
SYNC_TYPES = ("auto_sync", "full_sync", "incremental_sync")


# -- access ----------------------------------------------------------------------------


@blueprint.before_request
def _guard() -> Any:
    settings = _runtime().settings
    if request.endpoint not in ("dashboard.login", "dashboard.static") and auth.login_required(settings):
        return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))
    if request.method == "POST":
        auth.csrf.protect()
    return None


@blueprint.errorhandler(CSRFError)
def _csrf_failed(error: CSRFError) -> Any:
    refusals.reason(f"CSRF: {error.description}")
    return _page("error.html", title="Form expired", message=f"{error.description} Reload the page and try again."), 400


@blueprint.errorhandler(404)
def _not_found(error: Any) -> Any:
    refusals.reason(error.description)
    return _page("error.html", title="Not found", message=error.description), 404


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Any:
    settings = _runtime().settings
    target = auth.safe_next(request.values.get("next"))
    if not auth.login_required(settings):
        return redirect(target)
    if request.method == "POST":
        client = limits.client_of(request.remote_addr)
        if (wait := limits.token_limiter().retry_after(client)) is not None:
            refusals.logged()
            log.warning("dashboard_login_limited", remote_addr=request.remote_addr, retry_after=wait)
            page = _page("login.html", title="Log in", next=target, refused=False, retry_after=wait)
            return page, 429, {"Retry-After": str(wait)}
        if auth.check_token(settings, request.form.get("token", "")):
            auth.log_in()
            return redirect(target)
        limits.token_limiter().record_failure(client)
        refusals.logged()
        log.warning("dashboard_login_refused", remote_addr=request.remote_addr)
        return _page("login.html", title="Log in", next=target, refused=True), 401
    return _page("login.html", title="Log in", next=target, refused=False)


@blueprint.post("/logout")
def logout() -> Any:
    auth.log_out()
    return redirect(url_for("dashboard.login"))


# -- events ----------------------------------------------------------------------------


@dataclass
class Filters:
    """The event list's filters as typed in the URL, and what they mean."""

    values: dict[str, str]
    event_filter: EventFilter
    problems: list[str]


# The list's display choices that live in the URL beside the filters: ``progress=hide``
# leaves out the progress stages, ``view=jobs`` shows one row per job, ``chart=7d`` the
# week. Anything else is the default (shown, events, 24 h).
VIEWS = {"progress": ("hide",), "view": ("jobs",), "chart": tuple(CHART_SPANS)[1:]}


def _event_filters(args: MultiDict[str, str]) -> Filters:
    names = ("tenant", "flow_id", "status", "sync_type", "since", "until", "q")
    values = {name: (args.get(name) or "").strip() for name in names}
    for name, allowed in VIEWS.items():
        value = (args.get(name) or "").strip()
        values[name] = value if value in allowed else ""
    problems = []
    times: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        try:
            times[name] = parse_when(values[name])
        except ValueError:
            problems.append(f"{name}: “{values[name]}” is not a time; use 24h, 7d or 2026-11-28T06:00:00Z")
            times[name] = None
    return Filters(
        values=values,
        event_filter=EventFilter(
            tenant=values["tenant"] or None,
            flow_id=values["flow_id"] or None,
            status=values["status"] or None,
            sync_type=values["sync_type"] or None,
            since=times["since"],
            until=times["until"],
            text=values["q"] or None,
            hide_progress=values["progress"] == "hide",
        ),
        problems=problems,
    )


def _cursor(name: str = "before") -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and 0 < int(value) < 2**63 else None


@blueprint.get("/")
def events() -> Any:
    runtime = _runtime()
    sessions = runtime.sessions
    filters = _event_filters(request.args)
    before = _cursor()
    jobs_view = filters.values["view"] == "jobs"
    rows: list[Any]
    if jobs_view:
        rows, next_before = list_jobs(sessions, filters.event_filter, limit=PAGE_SIZE, before_id=before)
        event_ids = [stage.id for job in rows for stage in job.stages]
    else:
        rows = list_events(sessions, filters.event_filter, limit=PAGE_SIZE + 1, before_id=before)
        next_before = rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None
        rows = rows[:PAGE_SIZE]
        event_ids = [row.id for row in rows]
    active: dict[str, Any] = {name: value for name, value in filters.values.items() if value}
    now = datetime.now(UTC)
    chart_filter = EventFilter(tenant=filters.event_filter.tenant, flow_id=filters.event_filter.flow_id)
    chart_choice = filters.values["chart"] or next(iter(CHART_SPANS))
    return _page(
        "events.html",
        title="Events",
        rows=rows,
        jobs_view=jobs_view,
        actions=action_states_for(sessions, event_ids),
        total=count_events(sessions, filters.event_filter),
        filters=filters,
        active=active,
        older=url_for("dashboard.events", **active, before=next_before) if next_before else None,
        newest=url_for("dashboard.events", **active) if before else None,
        chart=hourly_chart(hourly_counts(sessions, now, hours=CHART_SPANS[chart_choice], filters=chart_filter)),
        chart_choice=chart_choice,
        chart_spans=[(value, f"{hours} h" if hours <= 48 else f"{hours // 24} days") for value, hours in CHART_SPANS.items()],
        chart_args={name: value for name, value in active.items() if name != "chart"},
        gap=gap_per_day(sessions, now),
        chart_scope=" · ".join(f"{k} {v}" for k, v in (("tenant", chart_filter.tenant), ("flow", chart_filter.flow_id)) if v),
        queue=queue_state(sessions, now),
        statuses=_choices(LIFECYCLE_STATUSES, distinct_values(sessions, "status")),
        sync_types=_choices(SYNC_TYPES, distinct_values(sessions, "sync_type")),
        tenants=distinct_values(sessions, "tenant"),
        flows=distinct_values(sessions, "flow_id"),
        presets=TIME_PRESETS,
        any_failure=ANY_FAILURE,
    )


def _choices(known: tuple[str, ...], seen: list[str]) -> list[str]:
    return list(known) + sorted(set(seen) - set(known))


@blueprint.get("/events/<int:event_id>")
def event(event_id: int) -> Any:
    sessions = _runtime().sessions
    found = get_event(sessions, event_id) if event_id < 2**63 else None
    if found is None:
        abort(404, f"There is no event {event_id}; it may have been purged.")
    stored, actions = found
    stages = job_events(sessions, stored.tenant, stored.s3_root) if stored.s3_root else [stored]
    message = stored.payload.get("message") if isinstance(stored.payload, dict) else None
    return _page(
        "event.html",
        title=f"Event {stored.id} · {stored.status or 'no status'}",
        event=stored,
        actions=actions,
        stages=stages,
        message=message if isinstance(message, str) and message.strip() else None,
        is_open=stored.state in EVENT_OPEN_STATES,
        commands=list_commands(sessions, event_id=event_id),
        dry_runs=sum(1 for action in actions if action.state == ACTION_DRY_RUN),
    )


@blueprint.post("/events/<int:event_id>/replay")
def replay(event_id: int) -> Any:
    if event_id >= 2**63 or not reopen_event(_runtime().sessions, event_id, datetime.now(UTC)):
        abort(404, f"There is no event {event_id}; it may have been purged.")
    metrics.count_replays("dashboard", 1)
    log.info("event_replayed", event_id=event_id, via="dashboard")
    flash(f"Event {event_id} is queued again. Its actions update below as the worker runs them.", "ok")
    return redirect(url_for("dashboard.event", event_id=event_id))


def _live_plan(runtime: Any, event_id: int) -> LivePlan | LiveReplayRefused:
    """The live replay of ``event_id``, or why it is refused; aborts 404 when there is no
    such event (also for an id beyond 64 bits)."""
    try:
        if event_id < 2**63:
            return plan_live_replay(runtime, event_id)
    except LiveReplayRefused as refused:
        if refused.status != 404:
            return refused
    abort(404, f"There is no event {event_id}; it may have been purged.")


@blueprint.get("/events/<int:event_id>/live")
def live(event_id: int) -> Any:
    """Confirm sending an event's dry-run actions for real: its age, what would go."""
    plan = _live_plan(_runtime(), event_id)
    if isinstance(plan, LiveReplayRefused):
        return _page("live.html", title=f"Event {event_id} · send for real", event_id=event_id, plan=None, refused=str(plan))
    now = datetime.now(UTC)
    return _page(
        "live.html", title=f"Event {event_id} · send for real", event_id=event_id, plan=plan, refused=None,
        age=plan.age(now), summary=plan.summary(now),
    )


@blueprint.post("/events/<int:event_id>/live")
def live_replay(event_id: int) -> Any:
    runtime = _runtime()
    plan = _live_plan(runtime, event_id)
    if isinstance(plan, LiveReplayRefused):
        refused = plan
        refusals.reason(str(refused))
        log.warning("live_replay_refused", event_id=event_id, reason=str(refused), via="dashboard")
        page = _page(
            "error.html", title="Nothing was sent", message=f"Nothing was sent: {refused}.",
            back=(url_for("dashboard.event", event_id=event_id), f"Back to event {event_id}"),
        )
        return page, 409
    if not replay_live(runtime, plan, datetime.now(UTC)):
        abort(404, f"There is no event {event_id}; it may have been purged.")
    metrics.count_replays("dashboard", 1)
    log.info("event_replayed", event_id=event_id, via="dashboard", live=True, dry_run_actions=len(plan.dry_run))
    flash(
        f"Event {event_id} is queued again: its {len(plan.dry_run)} dry-run action(s) are sent for real as the "
        "worker runs them.", "ok",
    )
    return redirect(url_for("dashboard.event", event_id=event_id))


# -- tenants ---------------------------------------------------------------------------


TENANT_SORTS = {
    "last": "last event",
    "failures": "failures",
    "dead": "dead actions",
    "last_failure": "last failure",
}
"""``/tenants?sort=``: the columns the tenants page sorts by, each descending."""


@blueprint.get("/tenants")
def tenants() -> Any:
    sessions = _runtime().sessions
    search = (request.args.get("q") or "").strip()
    sort = request.args.get("sort") or "last"
    if sort not in TENANT_SORTS:
        sort = "last"
    since = datetime.now(UTC) - timedelta(days=7)
    rows = tenant_overview(sessions, since=since, search=search or None)
    states = tenant_states(sessions, since)
    never = datetime.min.replace(tzinfo=UTC)
    keys = {
        "failures": lambda row: (row.failures, row.last_received_at),
        "dead": lambda row: (states.get(row.tenant, TenantState()).dead_actions, row.failures),
        "last_failure": lambda row: (states.get(row.tenant, TenantState()).last_failure_at or never, row.failures),
    }
    if sort in keys:
        rows = sorted(rows, key=keys[sort], reverse=True)
    return _page(
        "tenants.html",
        title="Tenants",
        rows=rows,
        states=states,
        blank=TenantState(),
        search=search,
        rhythms=latest_rhythms(_runtime().sessions),
        sort=sort,
        sorts=TENANT_SORTS,
        still_failing=sum(1 for row in rows if states.get(row.tenant, TenantState()).failing),
    )


# ``path``: a tenant id may hold "/" (see api.tenant_events).
@blueprint.route("/tenants/<path:tenant>", methods=["GET"], merge_slashes=False)
def tenant(tenant: str) -> Any:
    sessions = _runtime().sessions
    problems = text_problems(TENANT, tenant)
    if problems:
        refusals.reason(f"tenant: {' '.join(problems)}")
        return _page("error.html", title="Not a tenant id", message=f"The tenant id {' '.join(problems)}."), 400
    before = _cursor()
    jobs = tenant_jobs(sessions, tenant, limit=JOBS_PER_PAGE + 1, before_id=before)
    more = len(jobs) > JOBS_PER_PAGE
    jobs = jobs[:JOBS_PER_PAGE]
    if not jobs and before is None:
        abort(404, f"No events of tenant {tenant} are stored.")
    event_ids = [stage.id for job in jobs for stage in job.stages]
    return _page(
        "tenant.html",
        title=f"Tenant {tenant}",
        tenant=tenant,
        jobs=jobs,
        actions=action_states_for(sessions, event_ids),
        done=actions_for(sessions, event_ids),
        older=url_for("dashboard.tenant", tenant=tenant, before=max(s.id for s in jobs[-1].stages)) if more else None,
        newest=url_for("dashboard.tenant", tenant=tenant) if before else None,
        commands=list_commands(sessions, tenant=tenant, limit=20),
        command_labels={name: LABELS[name] for name in sorted(DASHBOARD_COMMANDS)},
        nonce=uuid.uuid4().hex,
    )


@blueprint.post("/tenants/<path:tenant>/commands", merge_slashes=False)
def tenant_command(tenant: str) -> Any:
    """Store a dashboard command (behind the admin session and CSRF, checked in _guard);
    the worker carries it out like a Slack click. ``nonce`` (one per rendered form) makes
    a form sent twice act once; ``event_id`` names the event to retry or replay (default:
    the tenant's newest failure, or newest event with a dead action). Snooze 24 h holds the
    tenant's alerts whether or not it has a failure."""
    runtime = _runtime()
    command = request.form.get("command") or ""
    back = url_for("dashboard.tenant", tenant=tenant)
    if text_problems(TENANT, tenant) or command not in DASHBOARD_COMMANDS:
        refusals.reason(f"dashboard command refused: {command[:40]!r} for a tenant")
        return _page("error.html", title="Not a command", message="Choose one of the commands the page offers."), 400
    raw_event = request.form.get("event_id") or ""
    origin = None
    if raw_event:
        origin = find_event(runtime.sessions, int(raw_event)) if raw_event.isdigit() and int(raw_event) < MAX_ID else None
        if origin is None or origin.tenant != tenant:
            refusals.reason("dashboard command names an event of another tenant, or none")
            return _page("error.html", title="Not this tenant's event", message="The event is not this tenant's."), 400
    elif command != "enable_schedules":
        origin = latest_message_event(runtime.sessions, tenant, command)
        # A snooze needs no event: one only names the alert whose button goes too.
        if origin is None and command != "snooze":
            flash(f"{LABELS[command]}: this tenant has no event to act on.", "warn")
            return redirect(back, code=303)
    nonce = (request.form.get("nonce") or uuid.uuid4().hex)[:64]
    click = Click(
        idempotency_key=f"dashboard|{tenant}|{command}|{nonce}", origin=COMMAND_DASHBOARD, action_id=command,
        command=command, user_id="admin", user_name="dashboard",
        env_id=origin.env_id if origin else _tenant_env(tenant), tenant=tenant,
        flow_id=origin.flow_id if origin else None, target={"event_id": origin.event_id} if origin else {},
        message_event_id=origin.event_id if origin else None,
    )
    stored = store_command(runtime.sessions, click, datetime.now(UTC))
    metrics.count_command(command, COMMAND_DASHBOARD, "repeat" if stored.duplicate_of is not None else "stored")
    log.info("dashboard_command_stored", command=command, tenant=tenant, command_id=stored.id, repeat_of=stored.duplicate_of)
    if stored.duplicate_of is not None:
        flash(f"{LABELS[command]} was already sent from this page; it acts once.", "warn")
    else:
        flash(f"{LABELS[command]} is queued; the worker carries it out (see Commands below).", "ok")
    return redirect(back, code=303)


def _tenant_env(tenant: str) -> str | None:
    """The env_id of the tenant's newest event (a command acts in its environment)."""
    found = last_events(_runtime().sessions, [tenant]).get(tenant)
    return found.env_id if found else None


# -- needs attention ---------------------------------------------------------------------


@blueprint.get("/attention")
def attention() -> Any:
    runtime = _runtime()
    now = datetime.now(UTC)
    rows = needs_attention(runtime.sessions, runtime.rules.attention, now)
    return _page(
        "attention.html", title="Needs attention", rows=rows,
        last=last_events(runtime.sessions, [row.tenant for row in rows]), nonce=uuid.uuid4().hex,
    )


# -- dead letters ----------------------------------------------------------------------


def _dead_filter(values: MultiDict[str, str]) -> tuple[ActionFilter, dict[str, str]]:
    names = ("tenant", "flow_id", "kind", "rule")
    current = {name: (values.get(name) or "").strip() for name in names}
    return (
        ActionFilter(
            state=ACTION_DEAD,
            tenant=current["tenant"] or None,
            flow_id=current["flow_id"] or None,
            kind=current["kind"] or None,
            rule=current["rule"] or None,
        ),
        current,
    )


@blueprint.get("/dead")
def dead() -> Any:
    sessions = _runtime().sessions
    selection, current = _dead_filter(request.args)
    before = _cursor()
    rows = list_actions(sessions, selection, limit=PAGE_SIZE + 1, before_id=before)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    active: dict[str, Any] = {name: value for name, value in current.items() if value}
    return _page(
        "dead.html",
        title="Dead actions",
        rows=rows,
        total=count_actions(sessions, selection),
        current=current,
        active=active,
        older=url_for("dashboard.dead", **active, before=rows[-1][0].id) if more else None,
        newest=url_for("dashboard.dead", **active) if before else None,
    )


REPLAY_SCOPES = ("all", "selected")


@blueprint.post("/dead/replay")
def dead_replay() -> Any:
    """Replay the dead actions the form chose: ``scope=all`` (every one matching the
    filters) or ``scope=selected`` (the ticked ``ids``). Anything else is refused: a
    missing or misspelt scope must never fall back to "all"."""
    sessions = _runtime().sessions
    selection, current = _dead_filter(request.form)
    active: dict[str, Any] = {name: value for name, value in current.items() if value}
    back = url_for("dashboard.dead", **active)
    scope = request.form.get("scope")
    if scope not in REPLAY_SCOPES:
        said = "no scope" if scope is None else f"scope “{scope[:40]}”"
        return _refuse_replay(f"{said}: say scope=all (every dead action that matches) or scope=selected (the ticked ones)", back)
    if scope == "selected":
        given = request.form.getlist("ids")
        bad = [value for value in given if not (value.isdigit() and 0 < int(value) <= MAX_ID)]
        if bad:
            return _refuse_replay(f"“{bad[0][:40]}” is not an action id", back)
        if not given:
            log.warning("dead_replay_refused", reason="scope=selected without ids", via="dashboard")
            flash("Tick at least one dead action to replay, or replay all that match.", "warn")
            return redirect(back)
        selection = ActionFilter(**{**selection.__dict__, "ids": tuple(sorted({int(value) for value in given}))})
    matched, event_ids = action_event_ids(sessions, selection)
    reopened = reopen_events(sessions, event_ids, datetime.now(UTC))
    metrics.count_replays("dashboard", reopened)
    log.info("dead_actions_replayed", actions=matched, events=reopened, scope=scope, via="dashboard", **active)
    if matched:
        flash(f"Replayed {matched} dead action(s) of {reopened} event(s); the worker takes them up now.", "ok")
    else:
        flash("Nothing was replayed: no dead action matches (already replayed?).", "warn")
    return redirect(back)


def _refuse_replay(reason: str, back: str) -> Any:
    refusals.logged()
    log.warning("dead_replay_refused", reason=reason, via="dashboard")
    page = _page(
        "error.html",
        title="Nothing was replayed",
        message=f"Nothing was replayed: {reason}.",
        back=(back, "Back to the dead actions"),
    )
    return page, 400


# -- incidents and snoozes ---------------------------------------------------------------


SNOOZE_DURATIONS = {"30m": "30 minutes", "2h": "2 hours", "8h": "8 hours", "1d": "1 day", "7d": "7 days"}


@blueprint.get("/incidents")
def incidents() -> Any:
    """Incidents (open first, then the newest closed ones), the snoozes in force with a
    Lift button each, and the form that makes a snooze."""
    runtime = _runtime()
    rows = incident_rows(runtime.sessions, open_only=False, limit=100)
    with runtime.sessions() as session:
        snoozes = active_snoozes(session, datetime.now(UTC))
    form = {name: request.args.get(name, "") for name in ("scope", "target")}
    return _page(
        "incidents.html", title="Incidents and snoozes", incidents=rows, snoozes=snoozes, form=form,
        durations=SNOOZE_DURATIONS,
    )


@blueprint.post("/snoozes")
def snooze_create() -> Any:
    """Make a snooze from the form: scope, target, a duration (or an ISO time), who, why.
    A bad value is refused with its one-line reason (400), nothing stored."""
    runtime = _runtime()
    form = request.form
    scope, target = form.get("scope", ""), form.get("target", "")
    how_long = (form.get("until") or form.get("duration") or "").strip()
    until = _ahead(how_long)
    if until is None:
        return _refuse_snooze(f"“{how_long[:40]}” is not a time: choose a duration or give an ISO-8601 time")
    try:
        with write_session(runtime.sessions) as session:
            made = snooze(
                session, scope=scope, target=target, until=until, by=form.get("by", "") or "dashboard",
                reason=form.get("reason") or None, max_days=runtime.rules.snooze.max_days,
            )
    except ValueError as error:
        return _refuse_snooze(str(error))
    log.info("snoozed", snooze_id=made.id, scope=made.scope, until=made.until.isoformat(), by=made.by, via="dashboard")
    flash(f"Snoozed {made.scope} {made.target} until {made.until:%Y-%m-%d %H:%M} UTC (snooze {made.id}).", "ok")
    return redirect(url_for("dashboard.incidents"))


@blueprint.post("/snoozes/<int:snooze_id>/lift")
def snooze_lift(snooze_id: int) -> Any:
    with write_session(_runtime().sessions) as session:
        lifted = lift(session, snooze_id) if snooze_id < 2**63 else None
    if lifted is None:
        abort(404, f"There is no snooze {snooze_id}.")
    log.info("snooze_lifted", snooze_id=snooze_id, via="dashboard")
    flash(f"Snooze {snooze_id} lifted; its summary is posted to Slack shortly.", "ok")
    return redirect(url_for("dashboard.incidents"))


def _ahead(text: str) -> datetime | None:
    """A duration from now (``30m``, ``2h``, ``7d``) or an ISO-8601 time; None if neither."""
    units = {"m": 60, "h": 3600, "d": 86400}
    if len(text) > 1 and text[-1] in units and text[:-1].isdigit() and len(text) <= 7:
        return datetime.now(UTC) + timedelta(seconds=int(text[:-1]) * units[text[-1]])
    return parse_time(text) if len(text) <= 64 else None


def _refuse_snooze(reason: str) -> Any:
    refusals.reason(reason)
    log.warning("snooze_refused", reason=reason, via="dashboard")
    page = _page(
        "error.html", title="Not snoozed", message=f"Not snoozed: {reason}.",
        back=(url_for("dashboard.incidents"), "Back to incidents and snoozes"),
    )
    return page, 400


# -- rendering -------------------------------------------------------------------------


def error_page(error: HTTPException) -> tuple[str, int]:
    """Return the HTML error page for a browser's request the app refused (an unknown URL,
    a wrong method) and its status code."""
    return _page("error.html", title=error.name, message=error.description), error.code or 400


def _page(template: str, **context: Any) -> str:
    runtime = _runtime()
    sessions = runtime.sessions
    # Before login a page shows nothing of the stored data: not the dead-action count, not
    # the oldest event or the last purge (the login page, an error page).
    shown = not auth.login_required(runtime.settings)
    return render_template(
        template,
        dead_count=dead_action_count(sessions) if shown else 0,
        attention_count=_attention_count() if shown else 0,
        retention={
            "days": runtime.settings.retention_days,
            "oldest": oldest_event(sessions) if shown else None,
            "last_purge": last_purge(sessions) if shown else None,
            "shown": shown,
        },
        login_enabled=bool(runtime.settings.admin_token),
        now=datetime.now(UTC),
        **context,
    )


_ATTENTION_CACHE: dict[int, tuple[float, int]] = {}
ATTENTION_COUNT_SECONDS = 10.0
"""The navigation bar's attention count is computed at most this often per process."""


def _attention_count() -> int:
    runtime = _runtime()
    cached = _ATTENTION_CACHE.get(id(runtime))
    if cached is not None and 0 <= time.monotonic() - cached[0] < ATTENTION_COUNT_SECONDS:
        return cached[1]
    count = len(needs_attention(runtime.sessions, runtime.rules.attention, datetime.now(UTC)))
    _ATTENTION_CACHE[id(runtime)] = (time.monotonic(), count)
    return count


@blueprint.app_template_filter("when")
def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "–"


@blueprint.app_template_filter("ago")
def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = (datetime.now(UTC) - value).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            amount = f"{int(seconds // size)} {unit}"
            break
    else:
        amount = f"{int(seconds)} s"
    return f"in {amount}" if future else f"{amount} ago"


@blueprint.app_template_filter("pretty")
def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@blueprint.app_template_filter("status_tone")
def _status_tone(status: str | None) -> str:
    """Return the badge colour of a HotGlue status or of an event/action state."""
    if not status:
        return "muted"
    if status.endswith("_FAILED") or status == ACTION_DEAD:
        return "bad"
    if status in ("JOB_COMPLETED", "done"):
        return "good"
    if status.endswith("_SUCCESS") or status == "dry_run":
        return "okish"
    if status in ("retrying", "running", "processing", "pending"):
        return "warn" if status == "retrying" else "busy"
    if status.endswith("_STARTED"):
        return "busy"
    return "muted"


@blueprint.app_template_test("stale")
def _stale(decision: Any) -> bool:
    """``{% if row.decision is stale %}``: a late event of an older job (rules.is_stale)."""
    return is_stale(decision)


@blueprint.app_template_filter("last_line")
def _last_line(text: Any, width: int = 160) -> str:
    """Return the last non-empty line of a message (a traceback's exception line)."""
    if not isinstance(text, str):
        return ""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= width else line[: width - 1] + "…"


@blueprint.app_template_filter("job_time")
def _job_time(value: Any) -> str:
    """Return a HotGlue time (ISO 8601 text, e.g. ``start_time``) as ``YYYY-MM-DD HH:MM:SS``
    UTC, or the text as sent when it is not one."""
    if not isinstance(value, str) or not value:
        return "–"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value[:40]
    return _when(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


@blueprint.app_template_filter("job_actions")
def _job_actions(stages: list[Any], actions: dict[int, list[Any]]) -> list[Any]:
    """Return the actions of a job's stages, in stage then decision order."""
    return [action for stage in stages for action in actions.get(stage.id, [])]


@blueprint.app_template_filter("describe")
def _describe(action: Any) -> str:
    return describe_action(action.kind, action.params, action.idempotency_key)


@blueprint.app_template_filter("without")
def _without(args: dict[str, str], *names: str) -> dict[str, str]:
    return {name: value for name, value in args.items() if name not in names}


@blueprint.app_template_global("url_with")
def _url_with(endpoint: str, args: dict[str, str], **changes: Any) -> str:
    merged = {**args, **{k: v for k, v in changes.items() if v is not None}}
    return url_for(endpoint) + ("?" + urlencode(merged) if merged else "")
