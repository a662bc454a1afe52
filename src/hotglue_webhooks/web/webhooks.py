"""``POST /webhooks/hotglue``: verify, parse, store, answer. Nothing else.

Answers: 202 ``{"id", "duplicate": false}`` once the event is committed; 200 with
``"duplicate": true`` and the first copy's id for a repeat; 400 for a body that is not a
JSON object; 401 for a missing or wrong ``X-Hub-Signature``; 413 for a body over
``HGW_MAX_BODY_BYTES``; 503 when the database is unreachable (HotGlue may retry).
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from flask import g, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from hotglue_webhooks import metrics
from hotglue_webhooks.ingest import BadPayload, parse_payload, store_event, store_rejection, useful_headers
from hotglue_webhooks.settings import secret_value
from hotglue_webhooks.signature import HEADER, verify_signature
from hotglue_webhooks.web import refusals, schemas
from hotglue_webhooks.web.context import current_runtime as _runtime
from hotglue_webhooks.web.openapi import Blueprint

blueprint = Blueprint("webhooks", __name__, description="HotGlue's job-lifecycle webhooks.")
PATH = "/webhooks/hotglue"
LOGGED_BODY_BYTES = 200
log = structlog.get_logger("hotglue_webhooks.ingest")


def _count(outcome: str, reason: str, status: object = None) -> None:
    metrics.count_webhook(outcome, reason, status, time.perf_counter() - g.ingest_started)


def _reject(status: int, reason: str, body: bytes | None, metric_reason: str) -> Any:
    runtime = _runtime()
    headers = useful_headers(list(request.headers.items()), runtime.redactor)
    size = request.content_length if body is None else len(body)
    excerpt = None
    if body:
        excerpt = runtime.redactor.redact_text(body[:LOGGED_BODY_BYTES].decode("utf-8", "replace"))
    refusals.logged()  # webhook_rejected below is this refusal's line, with more detail
    log.warning(
        "webhook_rejected", status_code=status, reason=reason, size_bytes=size, headers=headers, body_excerpt=excerpt
    )
    try:
        store_rejection(
            runtime.sessions,
            status_code=status,
            reason=reason,
            headers=headers,
            size_bytes=size,
            body=body,
            remote_addr=request.remote_addr,
            redactor=runtime.redactor,
        )
    except OperationalError:
        log.error("rejection_not_stored", reason="database unavailable")
    _count("rejected", metric_reason)
    response = jsonify(error=reason)
    response.status_code = status
    return response


@blueprint.post(PATH)
@blueprint.doc(
    requestBody={
        "required": True,
        "description": "HotGlue's job webhook payload; the signature covers these exact bytes",
        "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
    },
    parameters=[
        {
            "in": "header",
            "name": HEADER,
            "required": False,
            "description": "HMAC-SHA1 hex of the body with the webhook secret (bare or sha1=); "
            "required when HGW_WEBHOOK_SECRET is set",
            "schema": {"type": "string"},
        }
    ],
)
@blueprint.alt_response(202, schema=schemas.IngestAnswer, description="Stored; the worker takes it from here")
@blueprint.alt_response(200, schema=schemas.IngestAnswer, description="A repeat of a stored delivery")
@blueprint.alt_response(400, schema=schemas.Error, description="The body is not a JSON object")
@blueprint.alt_response(401, schema=schemas.Error, description="Missing or wrong X-Hub-Signature")
@blueprint.alt_response(413, schema=schemas.Error, description="The body is larger than HGW_MAX_BODY_BYTES")
@blueprint.alt_response(503, schema=schemas.Error, description="The database is unavailable; retry later")
def receive() -> Any:
    """Accept one HotGlue job-lifecycle webhook."""
    g.ingest_started = time.perf_counter()
    runtime = _runtime()
    settings = runtime.settings
    limit = settings.max_body_bytes
    too_large = f"body larger than {limit} bytes"
    if request.content_length is not None and request.content_length > limit:
        return _reject(413, too_large, None, "too_large")  # refused before reading a byte
    # A body without Content-Length (chunked) is read up to one byte past the limit: Werkzeug
    # would cut it at the limit silently, and a cut body must be refused, not checked.
    request.max_content_length = limit + 1
    # A client that sends less than it announced (or trickles) would hold this worker until
    # gunicorn kills it: bound the read of the body itself.
    sock = request.environ.get("gunicorn.socket")
    previous_timeout = sock.gettimeout() if sock is not None else None
    if sock is not None:
        sock.settimeout(settings.body_timeout_seconds)
    slow_body = f"body not received within {settings.body_timeout_seconds:g} s"
    reading_since = time.monotonic()
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _reject(413, too_large, None, "too_large")
    except (TimeoutError, ClientDisconnected):
        # The socket timeout, which gunicorn's threaded workers report as an early end.
        if time.monotonic() - reading_since >= settings.body_timeout_seconds:
            return _reject(408, slow_body, None, "slow_body")
        return _reject(400, "body shorter than its Content-Length (client went away)", None, "unreadable_body")
    except Exception as error:  # e.g. gunicorn's InvalidChunkSize for a broken chunked body
        return _reject(400, f"body could not be read: {type(error).__name__}", None, "unreadable_body")
    finally:
        if sock is not None:
            try:
                sock.settimeout(previous_timeout)
            except OSError:
                pass  # the connection is already gone
    if len(body) > limit:
        return _reject(413, too_large, None, "too_large")
    if request.content_length is not None and len(body) != request.content_length:
        reason = "body shorter than its Content-Length (client went away or too slow)"
        return _reject(400, reason, body, "unreadable_body")

    secret = secret_value(settings.webhook_secret)
    if secret:
        header = request.headers.get(HEADER)
        if not header:
            return _reject(401, f"missing {HEADER} header", body, "missing_signature")
        if not verify_signature(body, header, secret):
            return _reject(401, f"{HEADER} does not match the body", body, "bad_signature")

    try:
        payload = parse_payload(body)
    except BadPayload as error:
        return _reject(400, str(error), body, "not_a_json_object")

    headers = useful_headers(list(request.headers.items()), runtime.redactor)
    try:
        stored = store_event(runtime.sessions, body, payload, headers, runtime.redactor)
    except OperationalError:
        log.error("webhook_not_stored", reason="database unavailable")
        _count("unavailable", "database_unavailable", payload.get("status"))
        response = jsonify(error="database unavailable, retry later")
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response
    log.info(
        "webhook_duplicate" if stored.duplicate else "webhook_accepted",
        event_id=stored.event_id,
        tenant=payload.get("tenant") if isinstance(payload.get("tenant"), str) else None,
        flow_id=payload.get("flow_id") if isinstance(payload.get("flow_id"), str) else None,
        status=payload.get("status") if isinstance(payload.get("status"), str) else None,
    )
    _count("duplicate" if stored.duplicate else "accepted", "", payload.get("status"))
    response = jsonify(id=str(stored.event_id), duplicate=stored.duplicate)
    response.status_code = 200 if stored.duplicate else 202
    return response
