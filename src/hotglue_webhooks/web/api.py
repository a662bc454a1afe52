"""The admin API (JSON), health checks and ``/metrics``.

``GET /api/events`` and ``GET /api/tenants/<tenant>/events`` (filters, newest first,
``cursor`` from the previous page's ``next_cursor``), ``GET /api/events/<id>``,
``POST /api/events/<id>/replay`` (``{"live": true}``: send its dry-run actions for real), ``GET /api/actions`` (e.g. ``?state=dead``),
``POST /api/actions/replay`` (dead actions chosen by a filter), ``POST``/``GET /api/snoozes``
and ``POST /api/snoozes/<id>/lift``, ``GET /api/incidents``, ``GET /api/attention``
(tenants waiting for a person), ``GET /api/tenants/<tenant>/commands`` (clicks and
dashboard commands); ``GET /healthz`` (the
process is up), ``GET /readyz`` (the database answers), ``GET /metrics`` (Prometheus).

When ``HGW_ADMIN_TOKEN`` is set, ``/api/*`` needs ``Authorization: Bearer <token>``.
Every POST needs a JSON body: a cross-site HTML form cannot send one, so a browser on
the same machine cannot be made to replay (the API has no cookie, hence no CSRF token).
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

import structlog
from flask import Response, jsonify, request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from hotglue_webhooks import metrics
from hotglue_webhooks.replay import LiveReplayRefused, plan_live_replay, replay_live
from hotglue_webhooks.settings import secret_value
from hotglue_webhooks.storage.db import write_session
from hotglue_webhooks.storage.incidents import incident_rows
from hotglue_webhooks.storage.attention import attention_view, last_events, needs_attention
from hotglue_webhooks.storage.commands import list_commands
from hotglue_webhooks.storage.models import ACTION_DEAD
from hotglue_webhooks.storage.snoozes import active_snoozes, lift, recent_snoozes, snooze
from hotglue_webhooks.storage.queries import (
    ActionFilter,
    EventFilter,
    action_event_ids,
    action_view,
    event_detail,
    event_summary,
    get_event,
    list_actions,
    list_events,
)
from hotglue_webhooks.web import limits, refusals, schemas
from hotglue_webhooks.web.context import current_runtime as _runtime
from hotglue_webhooks.web.openapi import BEARER, Blueprint
from hotglue_webhooks.worker import reopen_event, reopen_events

blueprint = Blueprint("api", __name__, description="The admin API: events, actions, replay.")
health = Blueprint("health", __name__, description="Liveness, readiness and Prometheus metrics.")
log = structlog.get_logger("hotglue_webhooks.web")
SECURED: list[dict[str, list[str]]] = [{BEARER: []}]
EVENT_ID = "<int(max=9223372036854775807):event_id>"


def _error(status: int, error: str, detail: Any, **headers: str) -> Response:
    refusals.reason(detail if isinstance(detail, str) else refusals.summary(detail))  # unless the caller gave one
    response = jsonify(error=error, detail=detail)
    response.status_code = status
    response.headers.update(headers)
    return response


@blueprint.before_request
def _require_token_and_json() -> Any:
    token = secret_value(_runtime().settings.admin_token)
    if token:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        client = limits.client_of(request.remote_addr)
        if header and (wait := limits.token_limiter().retry_after(client)) is not None:
            return _error(
                429, "Too Many Requests", f"too many wrong tokens from this client; retry in {wait} s",
                **{"Retry-After": str(wait)},
            )
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            refusals.reason("wrong bearer token" if header else "no Authorization header")
            if header:
                limits.token_limiter().record_failure(client)
            return _error(
                401, "Unauthorized", "send Authorization: Bearer <HGW_ADMIN_TOKEN>", **{"WWW-Authenticate": "Bearer"}
            )
    if request.method == "POST" and not request.is_json:
        return _error(415, "Unsupported Media Type", "send a JSON body (Content-Type: application/json), e.g. {}")
    return None


def _event_page(args: dict[str, Any], tenant: str | None) -> Response:
    filters = EventFilter(
        tenant=tenant,
        flow_id=args.get("flow_id"),
        status=args.get("status"),
        sync_type=args.get("sync_type"),
        since=args.get("since"),
        until=args.get("until"),
        text=args.get("q"),
        hide_progress=args.get("progress") == "hide",
    )
    limit = args["limit"]
    rows = list_events(_runtime().sessions, filters, limit=limit, before_id=args.get("cursor"))
    next_cursor = str(rows[-1].id) if len(rows) == limit else None
    return jsonify(events=[event_summary(row) for row in rows], next_cursor=next_cursor)


@blueprint.get("/api/events")
@blueprint.arguments(schemas.EventQuery, location="query")
@blueprint.response(200, schemas.EventPage)
@blueprint.alt_response(401, schema=schemas.Error, description="Missing or wrong bearer token")
@blueprint.doc(security=SECURED)
def events(args: dict[str, Any]) -> Response:
    """List events, newest first, with filters and a cursor."""
    return _event_page(args, args.get("tenant"))


# ``path``: a tenant id may hold "/" (it is HotGlue's string, not ours); merge_slashes
# off, or a tenant with "//" in it would be redirected to another tenant's events.
@blueprint.route("/api/tenants/<path:tenant>/events", methods=["GET"], merge_slashes=False)
@blueprint.arguments(schemas.TenantEventQuery, location="query")
@blueprint.response(200, schemas.EventPage)
@blueprint.alt_response(400, schema=schemas.Error, description="An invalid tenant id or filter")
@blueprint.alt_response(401, schema=schemas.Error, description="Missing or wrong bearer token")
@blueprint.doc(security=SECURED)
def tenant_events(args: dict[str, Any], tenant: str) -> Response:
    """List one tenant's events, newest first (the same filters as /api/events).

    The tenant id is the rest of the path before ``/events``; it may contain ``/``.
    """
    problems = schemas.text_problems(schemas.TENANT, tenant)
    if problems:  # as /api/events?tenant= answers for the same value
        return _error(400, "Bad Request", {"path": {"tenant": problems}})
    return _event_page(args, tenant)


@blueprint.route("/api/tenants/<path:tenant>/commands", methods=["GET"], merge_slashes=False)
@blueprint.response(200, schemas.CommandPage)
@blueprint.alt_response(400, schema=schemas.Error, description="An invalid tenant id")
@blueprint.alt_response(401, schema=schemas.Error, description="Missing or wrong bearer token")
@blueprint.doc(security=SECURED)
def tenant_commands(tenant: str) -> Response:
    """List the tenant's commands (Slack clicks with the user's id and name, dashboard
    commands), newest first, with their outcome."""
    problems = schemas.text_problems(schemas.TENANT, tenant)
    if problems:
        return _error(400, "Bad Request", {"path": {"tenant": problems}})
    return jsonify(commands=list_commands(_runtime().sessions, tenant=tenant, limit=200))


@blueprint.get("/api/attention")
@blueprint.response(200, schemas.AttentionPage)
@blueprint.alt_response(401, schema=schemas.Error, description="Missing or wrong bearer token")
@blueprint.doc(security=SECURED)
def attention() -> Response:
    """List the tenants waiting for a person, oldest first: each with its reasons
    (exact_reconnect, invalid_config, dead_actions, repeated_failures, incident), since
    when, the last event and what to do. A row goes once its condition ends."""
    runtime = _runtime()
    now = datetime.now(UTC)
    rows = needs_attention(runtime.sessions, runtime.rules.attention, now)
    last = last_events(runtime.sessions, [row.tenant for row in rows])
    return jsonify(count=len(rows), tenants=[attention_view(row, last.get(row.tenant), now) for row in rows])


@blueprint.get(f"/api/events/{EVENT_ID}")
@blueprint.response(200, schemas.EventDetail)
@blueprint.alt_response(404, schema=schemas.Error, description="No such event")
@blueprint.alt_response(401, schema=schemas.Error, description="Missing or wrong bearer token")
@blueprint.doc(security=SECURED)
def event(event_id: int) -> Response:
    """Return one event with its decision, facts and actions."""
    found = get_event(_runtime().sessions, event_id)
    if found is None:
        return _error(404, "Not Found", f"no event {event_id}")
    return jsonify({**event_detail(*found), "commands": list_commands(_runtime().sessions, event_id=event_id)})


@blueprint.post(f"/api/events/{EVENT_ID}/replay")
@blueprint.arguments(schemas.ReplayRequest)
@blueprint.response(202, schemas.ReplayAnswer)
@blueprint.alt_response(404, schema=schemas.Error, description="No such event")
@blueprint.alt_response(
    409, schema=schemas.Error,
    description="live: the event has no dry-run action, or this receiver would send them as dry-runs again",
)
@blueprint.alt_response(401, schema=schemas.Error, description="Missing or wrong bearer token")
@blueprint.alt_response(415, schema=schemas.Error, description="The body is not JSON")
@blueprint.doc(security=SECURED)
def replay(body: dict[str, Any], event_id: int) -> Response:
    """Queue the event to be decided and acted on again; actions already done stay done.

    With ``"live": true`` its dry-run actions are also sent, for real: the answer says
    how many and how old the event is.
    """
    now = datetime.now(UTC)
    if body.get("live"):
        runtime = _runtime()
        try:
            plan = plan_live_replay(runtime, event_id)
        except LiveReplayRefused as refused:
            log.warning("live_replay_refused", event_id=event_id, reason=str(refused), via="api")
            return _error(refused.status, "Not Found" if refused.status == 404 else "Conflict", str(refused))
        if not replay_live(runtime, plan, now):
            return _error(404, "Not Found", f"no event {event_id}")
        metrics.count_replays("api", 1)
        log.info("event_replayed", event_id=event_id, via="api", live=True, dry_run_actions=len(plan.dry_run))
        response = jsonify(
            id=str(event_id), state="retrying", live=True, dry_run_actions=len(plan.dry_run),
            received_at=plan.event.received_at.isoformat(), age=plan.age(now),
        )
        response.status_code = 202
        return response
    if not reopen_event(_runtime().sessions, event_id, now):
        return _error(404, "Not Found", f"no event {event_id}")
    metrics.count_replays("api", 1)
    log.info("event_replayed", event_id=event_id, via="api")
    response = jsonify(id=str(event_id), state="retrying")
    response.status_code = 202
    return response


@blueprint.get("/api/actions")
@blueprint.arguments(schemas.ActionQuery, location="query")
@blueprint.response(200, schemas.ActionPage)
@blueprint.alt_response(401, schema=schemas.Error, description="Missing or wrong bearer token")
@blueprint.doc(security=SECURED)
def actions(args: dict[str, Any]) -> Response:
    """List actions, newest first; ``state=dead`` gives the dead letters."""
    filters = ActionFilter(
        state=args.get("state"),
        kind=args.get("kind"),
        rule=args.get("rule"),
        tenant=args.get("tenant"),
        flow_id=args.get("flow_id"),
        since=args.get("since"),
        until=args.get("until"),
    )
    limit = args["limit"]
    rows = list_actions(_runtime().sessions, filters, limit=limit, before_id=args.get("cursor"))
    next_cursor = str(rows[-1][0].id) if len(rows) == limit else None
    return jsonify(
        actions=[{**action_view(action), "event": event_summary(event)} for action, event in rows],
        next_cursor=next_cursor,
    )


@blueprint.post("/api/actions/replay")
@blueprint.arguments(schemas.BulkReplayRequest)
@blueprint.response(202, schemas.BulkReplayAnswer)
@blueprint.alt_response(401, schema=schemas.Error, description="Missing or wrong bearer token")
@blueprint.alt_response(415, schema=schemas.Error, description="The body is not JSON")
@blueprint.doc(security=SECURED)
def replay_actions(body: dict[str, Any]) -> Response:
    """Replay the dead actions the filter selects: reopen their events (an empty filter
    selects every dead action)."""
    sessions = _runtime().sessions
    selection = ActionFilter(
        state=ACTION_DEAD,
        kind=body.get("kind"),
        rule=body.get("rule"),
        tenant=body.get("tenant"),
        flow_id=body.get("flow_id"),
        since=body.get("since"),
        until=body.get("until"),
        ids=tuple(body.get("ids") or ()),
    )
    matched, event_ids = action_event_ids(sessions, selection)
    reopened = reopen_events(sessions, event_ids, datetime.now(UTC))
    metrics.count_replays("api", reopened)
    log.info("dead_actions_replayed", actions=matched, events=reopened, via="api")
    response = jsonify(actions=matched, events=reopened, event_ids=[str(event_id) for event_id in event_ids])
    response.status_code = 202
    return response


# -- snoozes and incidents ---------------------------------------------------------------


def snooze_view(snooze: Any) -> dict[str, Any]:
    """A stored snooze (storage.snoozes.Snooze) as the API answers it."""
    return {
        "id": snooze.id, "scope": snooze.scope, "target": snooze.target, "until": snooze.until.isoformat(),
        "by": snooze.by, "reason": snooze.reason, "created_at": snooze.created_at.isoformat(), "held": snooze.held,
        "ended_at": snooze.ended_at.isoformat() if snooze.ended_at else None,
    }


@blueprint.post("/api/snoozes")
@blueprint.arguments(schemas.SnoozeRequest)
@blueprint.response(201, schemas.Snooze)
@blueprint.alt_response(400, schema=schemas.Error, description="A bad scope, target or until (in the past, too far)")
@blueprint.alt_response(401, schema=schemas.Error, description="Missing or wrong bearer token")
@blueprint.alt_response(415, schema=schemas.Error, description="The body is not JSON")
@blueprint.doc(security=SECURED)
def create_snooze(body: dict[str, Any]) -> Response:
    """Hold the Slack alerts of a tenant or an incident signature until a time (HotGlue
    actions still run); one summary is posted when it ends."""
    runtime = _runtime()
    try:
        with write_session(runtime.sessions) as session:
            made = snooze(
                session, scope=body["scope"], target=body["target"], until=body["until"], by=body["by"],
                reason=body.get("reason"), max_days=runtime.rules.snooze.max_days,
            )
    except ValueError as error:
        log.info("snooze_refused", error=str(error))
        return _error(400, "Bad Request", str(error))
    log.info("snoozed", snooze_id=made.id, scope=made.scope, until=made.until.isoformat(), by=made.by, via="api")
    response = jsonify(snooze_view(made))
    response.status_code = 201
    return response


@blueprint.get("/api/snoozes")
@blueprint.arguments(schemas.ListQuery, location="query")
@blueprint.response(200, schemas.SnoozeList)
@blueprint.alt_response(401, schema=schemas.Error, description="Missing or wrong bearer token")
@blueprint.doc(security=SECURED)
def snoozes(args: dict[str, Any]) -> Response:
    """List the snoozes in force (``all=true``: the newest 100, also ended), with who and until when."""
    with _runtime().sessions() as session:
        rows = recent_snoozes(session) if args.get("all") else active_snoozes(session, datetime.now(UTC))
    return jsonify(snoozes=[snooze_view(row) for row in rows])


@blueprint.post("/api/snoozes/<int(max=9223372036854775807):snooze_id>/lift")
@blueprint.arguments(schemas.ReplayRequest)
@blueprint.response(200, schemas.Snooze)
@blueprint.alt_response(404, schema=schemas.Error, description="No such snooze")
@blueprint.alt_response(401, schema=schemas.Error, description="Missing or wrong bearer token")
@blueprint.alt_response(415, schema=schemas.Error, description="The body is not JSON")
@blueprint.doc(security=SECURED)
def lift_snooze(_body: dict[str, Any], snooze_id: int) -> Response:
    """End a snooze now; its summary follows."""
    with write_session(_runtime().sessions) as session:
        lifted = lift(session, snooze_id)
    if lifted is None:
        return _error(404, "Not Found", f"no snooze {snooze_id}")
    log.info("snooze_lifted", snooze_id=snooze_id, via="api")
    return jsonify(snooze_view(lifted))


@blueprint.get("/api/incidents")
@blueprint.arguments(schemas.ListQuery, location="query")
@blueprint.response(200, schemas.IncidentList)
@blueprint.alt_response(401, schema=schemas.Error, description="Missing or wrong bearer token")
@blueprint.doc(security=SECURED)
def incidents(args: dict[str, Any]) -> Response:
    """List incidents (a failure shared by many tenants), newest first; open ones unless ``all=true``."""
    return jsonify(incidents=incident_rows(_runtime().sessions, open_only=not args.get("all")))


# -- health ----------------------------------------------------------------------------


@health.get("/healthz")
@health.response(200, schemas.Status)
def healthz() -> Response:
    """Answer 200 while the process is up."""
    return jsonify(status="ok")


@health.get("/readyz")
@health.response(200, schemas.Status)
@health.alt_response(503, schema=schemas.Status, description="The database does not answer")
def readyz() -> Response:
    """Answer 200 when the database answers, 503 otherwise."""
    try:
        with _runtime().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        response = jsonify(status="database unavailable")
        response.status_code = 503
        return response
    return jsonify(status="ok")


@health.get("/metrics")
@health.doc(
    responses={
        "200": {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    }
)
def prometheus() -> Response:
    """Every metric in the Prometheus text format."""
    return Response(metrics.render(_runtime().sessions), mimetype=None, content_type=metrics.CONTENT_TYPE)
