"""The admin API (JSON) and health checks.

``GET /api/events`` (filters ``tenant``, ``flow_id``, ``status``, ``since``, ``until``;
``limit``; ``cursor`` from the previous page's ``next_cursor``), ``GET /api/events/<id>``,
``GET /healthz`` (the process is up), ``GET /readyz`` (the database answers).
When ``HGW_ADMIN_TOKEN`` is set, ``/api/*`` needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from hotglue_webhooks.ingest import parse_time
from hotglue_webhooks.settings import secret_value
from hotglue_webhooks.storage.queries import EventFilter, event_detail, event_summary, get_event, list_events

blueprint = Blueprint("api", __name__)


def _runtime() -> Any:
    from hotglue_webhooks.app import runtime_of

    return runtime_of(current_app)  # type: ignore[arg-type]


@blueprint.before_request
def _require_token() -> Any:
    if not request.path.startswith("/api/"):
        return None
    token = secret_value(_runtime().settings.admin_token)
    if not token:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        response = jsonify(error="Unauthorized", detail="send Authorization: Bearer <HGW_ADMIN_TOKEN>")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    return None


def _time_arg(name: str) -> Any:
    value = request.args.get(name)
    if value is None:
        return None
    parsed = parse_time(value)
    if parsed is None:
        abort(400, f"{name} must be an ISO-8601 time, e.g. 2026-11-28T06:00:00Z")
    return parsed


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    value = request.args.get(name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        abort(400, f"{name} must be a whole number from {low} to {high}")
    return int(value)


@blueprint.get("/api/events")
def events() -> Any:
    """List events newest first, with filters and a cursor."""
    filters = EventFilter(
        tenant=request.args.get("tenant"),
        flow_id=request.args.get("flow_id"),
        status=request.args.get("status"),
        since=_time_arg("since"),
        until=_time_arg("until"),
    )
    limit = _int_arg("limit", 50, 1, 500) or 50
    cursor = _int_arg("cursor", None, 1, 2**63 - 1)
    rows = list_events(_runtime().sessions, filters, limit=limit, before_id=cursor)
    next_cursor = str(rows[-1].id) if len(rows) == limit else None
    return jsonify(events=[event_summary(row) for row in rows], next_cursor=next_cursor)


@blueprint.get("/api/events/<event_id>")
def event(event_id: str) -> Any:
    """Return one event with its decision, facts and actions."""
    if not event_id.isdigit() or int(event_id) > 2**63 - 1:
        abort(404, "no such event")
    found = get_event(_runtime().sessions, int(event_id))
    if found is None:
        abort(404, "no such event")
    return jsonify(event_detail(*found))


@blueprint.get("/healthz")
def healthz() -> Any:
    """Answer 200 while the process is up."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> Any:
    """Answer 200 when the database answers, 503 otherwise."""
    try:
        with _runtime().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        response = jsonify(status="database unavailable")
        response.status_code = 503
        return response
    return jsonify(status="ok")
