"""One log line for every 4xx answer, whichever part of the app gave it.

The webhook endpoint logs its own refusals (``webhook_rejected``, with the size and a
redacted excerpt of the body) and so do the dashboard's login and bulk replay; every
other 4xx (a wrong or missing bearer token, an invalid query, an unknown URL, a method
the route does not take, an expired CSRF token) gets one ``request_rejected`` line here:
method, path, status and a short reason. Never the query string, a header or the body:
they may carry the token or a tenant's secrets.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from flask import Flask, Response, g, request

log = structlog.get_logger("hotglue_webhooks.web")
MAX_REASON = 200
MAX_PATH = 200


def reason(text: str) -> None:
    """Say why the answer being built refuses the request: the log line's ``reason``."""
    if not g.get("refusal_reason"):
        g.refusal_reason = text


def logged() -> None:
    """The view logged this refusal itself (e.g. ``webhook_rejected``): no second line."""
    g.refusal_logged = True


def summary(messages: Any) -> str:
    """Return webargs' ``{"query": {"limit": ["Not a valid integer."]}}`` as one short line
    (``query limit: Not a valid integer.``); the field names, not the values sent."""
    parts: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix} {key}".strip(), inner)
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            parts.append(f"{prefix}: {' '.join(value)}" if prefix else " ".join(value))
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                walk(f"{prefix} {index}".strip(), inner)
        else:
            parts.append(f"{prefix}: {value}" if prefix else str(value))

    walk("", messages)
    return "; ".join(parts)


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _log_refusal(response: Response) -> Response:
    status = response.status_code
    if 400 <= status < 500 and not g.get("refusal_logged"):
        why = g.get("refusal_reason") or _phrase(status)
        log.warning(
            "request_rejected",
            method=request.method,
            path=_clip(request.path, MAX_PATH),
            status_code=status,
            reason=_clip(why, MAX_REASON),
            remote_addr=request.remote_addr,
        )
    return response


def init_app(app: Flask) -> None:
    """Log every 4xx answer of ``app`` once (see the module's docstring)."""
    app.after_request(_log_refusal)
