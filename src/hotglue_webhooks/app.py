"""The Flask application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from hotglue_webhooks.display import escape_invisible
from hotglue_webhooks.logs import configure_logging
from hotglue_webhooks.runtime import Runtime
from hotglue_webhooks.settings import Settings, load_settings
from hotglue_webhooks.web import context
from hotglue_webhooks.web.context import runtime_of

__all__ = ["create_app", "runtime_of"]


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """Return the receiver's WSGI app; settings default to the environment (``HGW_*``).

    Raises SettingsError for a bad setting or rules file.
    """
    if runtime is None:
        settings = settings or load_settings()
        runtime = Runtime(settings)
    settings = runtime.settings
    configure_logging(settings.log_level, settings.log_format, runtime.redactor)

    app = Flask(__name__)
    # Every value a page shows: "t\u202eevil" escaped, never rendered as "tlive".
    app.jinja_options = {**app.jinja_options, "finalize": _shown}
    # Werkzeug refuses a longer body with 413 from Content-Length alone, before reading.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    context.init_app(app, runtime)
    if settings.proxy_fix:
        # Only behind that many proxies: otherwise any client could claim an address or HTTPS.
        n = settings.proxy_fix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    from hotglue_webhooks.web import api, auth, dashboard, interactions, limits, openapi, refusals, webhooks

    documented = openapi.init_app(app)  # before our HTTPException handler, which must win
    documented.register_blueprint(webhooks.blueprint)
    documented.register_blueprint(api.blueprint)
    documented.register_blueprint(api.health)
    documented.register_blueprint(interactions.blueprint)
    auth.init_app(app, settings, runtime.sessions, sessionless_paths=frozenset({webhooks.PATH, interactions.PATH}))
    app.register_blueprint(dashboard.blueprint)
    refusals.init_app(app)
    limits.init_app(app)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Any:
        # webargs puts the invalid fields and why in error.data["messages"].
        messages = getattr(error, "data", {}).get("messages") if isinstance(getattr(error, "data", None), dict) else None
        # The log line's reason: what was invalid, or the status name when Werkzeug's
        # description is its generic sentence ("The requested URL was not found…").
        if messages:
            refusals.reason(refusals.summary(messages))
        elif error.description and error.description != type(error).description:
            refusals.reason(error.description)
        if _wants_html():
            return dashboard.error_page(error)
        response = jsonify(error=error.name, detail=messages or error.description)
        response.status_code = error.code or 500
        return response

    return app


# Paths of machines (HotGlue, Prometheus, API clients): always JSON, whatever they accept.
_MACHINE_PATHS = ("/api/", "/webhooks/", "/slack/", "/metrics", "/openapi.json", "/healthz", "/readyz")


def _wants_html() -> bool:
    """Return True when a browser asked for a dashboard path: it prefers text/html to JSON
    (``*/*``, curl's and most clients' default, reads as JSON)."""
    if request.path.startswith(_MACHINE_PATHS):
        return False
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def _shown(value: object) -> object:
    """Return a template value with invisible characters escaped (Jinja's ``finalize``).

    Markup stays Markup: the escapes are plain ASCII, so they cannot open a tag."""
    if isinstance(value, Markup):
        return Markup(escape_invisible(str(value)))
    if isinstance(value, str):
        return escape_invisible(value)
    return value
