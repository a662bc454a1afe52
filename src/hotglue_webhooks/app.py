"""The Flask application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

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
    # Werkzeug refuses a longer body with 413 from Content-Length alone, before reading.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    context.init_app(app, runtime)

    from hotglue_webhooks.web import api, auth, dashboard, openapi, refusals, webhooks

    documented = openapi.init_app(app)  # before our HTTPException handler, which must win
    documented.register_blueprint(webhooks.blueprint)
    documented.register_blueprint(api.blueprint)
    documented.register_blueprint(api.health)
    auth.init_app(app, settings, runtime.sessions, sessionless_paths=frozenset({webhooks.PATH}))
    app.register_blueprint(dashboard.blueprint)
    refusals.init_app(app)

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
        response = jsonify(error=error.name, detail=messages or error.description)
        response.status_code = error.code or 500
        return response

    return app

