"""Where a Flask app keeps its :class:`~hotglue_webhooks.runtime.Runtime`.

Below the app factory (``app.py``) and every blueprint, so views find the runtime
without importing the factory that imports them.
"""

from __future__ import annotations

from flask import Flask, current_app

from hotglue_webhooks.runtime import Runtime

EXTENSION = "hotglue_webhooks"


def init_app(app: Flask, runtime: Runtime) -> None:
    """Attach ``runtime`` to ``app`` (``app.extensions["hotglue_webhooks"]``)."""
    app.extensions[EXTENSION] = runtime


def runtime_of(app: Flask) -> Runtime:
    """Return the Runtime the app was built with; KeyError if it was built without one."""
    runtime: Runtime = app.extensions[EXTENSION]
    return runtime


def current_runtime() -> Runtime:
    """Return the Runtime of the app serving the current request."""
    return runtime_of(current_app)  # type: ignore[arg-type]
