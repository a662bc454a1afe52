"""``POST /slack/interactions``: Slack's button clicks. Verify, parse, store, answer.

Slack POSTs ``application/x-www-form-urlencoded`` with one field ``payload`` (JSON, type
``block_actions``), signed ``X-Slack-Signature: v0=<hex>`` = HMAC-SHA256 of
``v0:{X-Slack-Request-Timestamp}:{raw body}`` with the app's signing secret, and wants an
answer within 3 seconds (REFERENCE.md §8). So this view only stores the click as a
command (``storage/commands.py``): the worker carries it out, then updates the message
or answers the clicker on ``response_url``. No Slack or HotGlue call happens here.

Answers: 200 (stored; a repeat or a refused user is stored too and answered
ephemerally by the worker), 401 (missing header, stale or future timestamp, forged
signature), 400 (a body or payload that does not parse, an unknown ``action_id``, a
``value`` that does not decode or names another tenant (or incident) than its message, a
message this receiver did not send), 404 without ``HGW_SLACK_SIGNING_SECRET``, 413, 503 (database down).
Every refusal is logged with its reason (``web/refusals.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import structlog
from flask import Response, abort, jsonify, request
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.exc import OperationalError

from hotglue_webhooks import metrics
from hotglue_webhooks.rules.commands import SNOOZE_INCIDENT, BadValue, IncidentValue, command_for, decode_value
from hotglue_webhooks.settings import secret_value
from hotglue_webhooks.storage.commands import Click, MessageOrigin, find_incident_message, find_message, store_command
from hotglue_webhooks.storage.models import COMMAND_SLACK
from hotglue_webhooks.web import refusals, schemas
from hotglue_webhooks.web.context import current_runtime as _runtime
from hotglue_webhooks.web.openapi import Blueprint

blueprint = Blueprint("interactions", __name__, description="Slack interactivity: button clicks.")
PATH = "/slack/interactions"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
MAX_SKEW_SECONDS = 300
"""Slack's advice (and slack_sdk's check): refuse a timestamp more than 5 minutes off."""
log = structlog.get_logger("hotglue_webhooks.web")
clock: Callable[[], float] = time.time
"""Unix seconds; tests may replace it (the check itself is slack_sdk's)."""


class _Clock:
    def now(self) -> float:
        return clock()


class Refused(Exception):
    """A click refused with ``status`` and a one-line ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _refuse(status: int, reason: str) -> Response:
    metrics.count_command("unknown", COMMAND_SLACK, "refused")
    refusals.reason(reason)
    log.warning("slack_interaction_refused", status_code=status, reason=reason)
    refusals.logged()
    response = jsonify(error=reason)
    response.status_code = status
    return response


@blueprint.post(PATH)
@blueprint.doc(
    requestBody={
        "required": True,
        "description": "Slack's interaction payload: one form field `payload` holding JSON (block_actions)",
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "properties": {"payload": {"type": "string"}}, "required": ["payload"]}
            }
        },
    },
    parameters=[
        {"in": "header", "name": TIMESTAMP_HEADER, "required": True, "schema": {"type": "string"},
         "description": "Unix seconds; refused when more than 5 minutes from now"},
        {"in": "header", "name": SIGNATURE_HEADER, "required": True, "schema": {"type": "string"},
         "description": "v0=<hex HMAC-SHA256 of v0:{timestamp}:{body} with HGW_SLACK_SIGNING_SECRET>"},
    ],
)
@blueprint.alt_response(200, description="Stored; the worker acts and updates the message")
@blueprint.alt_response(400, schema=schemas.Error, description="A payload, action_id or value this receiver refuses")
@blueprint.alt_response(401, schema=schemas.Error, description="Missing header, stale timestamp or wrong signature")
@blueprint.alt_response(404, schema=schemas.Error, description="HGW_SLACK_SIGNING_SECRET is not set")
@blueprint.alt_response(503, schema=schemas.Error, description="The database is unavailable")
def interaction() -> Any:
    """Take one Slack button click (block_actions) and store it as a command."""
    runtime = _runtime()
    settings = runtime.settings
    secret = secret_value(settings.slack_signing_secret)
    if not secret:
        abort(404)
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        return _refuse(413, f"body larger than {settings.max_body_bytes} bytes")
    body = request.get_data(cache=True, parse_form_data=False)
    try:
        _verify(body, secret)
        click = _click(body, settings.slack_allowed_users)
    except Refused as refused:
        return _refuse(refused.status, refused.reason)
    try:
        stored = store_command(runtime.sessions, click, datetime.now(UTC))
    except OperationalError:
        log.error("slack_interaction_not_stored", reason="database unavailable")
        response = jsonify(error="database unavailable, retry later")
        response.status_code = 503
        return response
    outcome = "not_allowed" if click.refused else "repeat" if stored.duplicate_of is not None else "stored"
    metrics.count_command(click.command, COMMAND_SLACK, outcome)
    log.info(
        "slack_interaction_stored", command_id=stored.id, command=click.command, tenant=click.tenant,
        user_id=click.user_id, repeat_of=stored.duplicate_of, refused=click.refused,
    )
    return Response(status=200)


def _verify(body: bytes, secret: str) -> None:
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    signature = request.headers.get(SIGNATURE_HEADER)
    if not timestamp or not signature:
        raise Refused(401, f"missing {TIMESTAMP_HEADER if not timestamp else SIGNATURE_HEADER} header")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise Refused(401, f"{TIMESTAMP_HEADER} is not a Unix time") from None
    if abs(clock() - sent_at) > MAX_SKEW_SECONDS:
        raise Refused(401, f"{TIMESTAMP_HEADER} is more than 5 minutes from now (a replay, or a clock off)")
    try:
        body.decode("utf-8")  # slack_sdk's verifier decodes it, and raises on other bytes
    except UnicodeDecodeError:
        raise Refused(401, f"{SIGNATURE_HEADER} cannot match: the body is not UTF-8 (Slack's always is)") from None
    if not SignatureVerifier(secret, clock=_Clock()).is_valid(body, timestamp, signature):  # type: ignore[arg-type]
        raise Refused(401, f"{SIGNATURE_HEADER} does not match the body")


def _click(body: bytes, allowed_users: tuple[str, ...]) -> Click:
    """Return the command a verified body asks for; raises :class:`Refused` (400)."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "the body is not a UTF-8 form") from None
    fields = form.get("payload") or []
    if len(fields) != 1:
        raise Refused(400, "the body has no single payload field")
    try:
        payload = json.loads(fields[0])
    except (ValueError, RecursionError):
        raise Refused(400, "payload is not JSON") from None
    if not isinstance(payload, dict):
        raise Refused(400, "payload is not a JSON object")
    if payload.get("type") != "block_actions":
        raise Refused(400, "payload type is not block_actions (the only interaction this receiver takes)")
    actions = payload.get("actions")
    if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
        raise Refused(400, "payload has not exactly one action")
    action = actions[0]
    command = command_for(action.get("action_id"))
    if command is None:
        raise Refused(400, "unknown action_id")
    try:
        value = decode_value(action.get("value"))
    except BadValue as error:
        raise Refused(400, str(error)) from None
    user = payload.get("user")
    user_id = _text(user, "id")
    if user_id is None:
        raise Refused(400, "payload has no user id")
    user_name = _text(user, "username") or _text(user, "name")
    container = payload.get("container")
    channel_id = _text(container, "channel_id") or _text(payload.get("channel"), "id")
    message_ts = _text(container, "message_ts") or _text(payload.get("message"), "ts")
    if channel_id is None or message_ts is None:
        raise Refused(400, "a click on a message this receiver did not send (no channel or message ts)")
    response_url = _text(payload, "response_url", 2000)
    refused = None
    if allowed_users and user_id not in allowed_users:
        refused = "You are not among the Slack users allowed to act here (HGW_SLACK_ALLOWED_USERS)."
    if (command == SNOOZE_INCIDENT) != isinstance(value, IncidentValue):
        raise Refused(400, "the button value does not fit its action_id (an incident's button names an incident)")
    if isinstance(value, IncidentValue):
        incident = find_incident_message(_runtime().sessions, channel_id, message_ts)
        if incident is None:
            raise Refused(400, "a click on a message this receiver did not send")
        if incident[0] != value.incident:
            raise Refused(400, "the button value names another incident than its message")
        # An incident has many tenants: the command names the incident, not one of them.
        origin = MessageOrigin(None, None, incident[1], None)
        target: dict[str, Any] = {"incident": value.incident}
    else:
        found = find_message(_runtime().sessions, value.event, channel_id, message_ts)
        if found is None:
            raise Refused(400, "a click on a message this receiver did not send")
        if found.tenant != value.tenant:
            raise Refused(400, "the button value names another tenant than its message")
        origin, target = found, {"event": value.event}
    action_id = str(action["action_id"])
    return Click(
        idempotency_key=f"slack|{channel_id}|{message_ts}|{action_id}",
        origin=COMMAND_SLACK, action_id=action_id, command=command, user_id=user_id, user_name=user_name,
        env_id=origin.env_id, tenant=origin.tenant, flow_id=origin.flow_id, target=target,
        message_event_id=origin.event_id, channel_id=channel_id, message_ts=message_ts,
        response_url=response_url, refused=refused,
    )


def _text(container: Any, name: str, limit: int = 255) -> str | None:
    value = container.get(name) if isinstance(container, Mapping) else None
    if not isinstance(value, str) or not value or len(value) > limit or "\x00" in value:
        return None
    try:
        value.encode("utf-8")  # a lone surrogate from JSON's \ud800 cannot be stored
    except UnicodeEncodeError:
        return None
    return value
