"""The ceiling: a bare Flask endpoint answering 202, served exactly like the receiver.

``python -m bench.ceiling`` runs ``hotglue-webhooks web`` itself with the app factory
swapped for a bare Flask app, so gunicorn gets the very options the receiver gets
(``HGW_BIND``, ``HGW_WEB_WORKERS``, worker class, timeouts, keep-alive, limits). The
endpoint reads the body and answers what the receiver answers, and nothing else.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request


def bare_app(*_args: Any, **_kwargs: Any) -> Flask:
    app = Flask("ceiling")

    @app.post("/webhooks/hotglue")
    def receive() -> Any:
        request.get_data(cache=False)
        response = jsonify(id="0", duplicate=False)
        response.status_code = 202
        return response

    return app


def main() -> None:
    import hotglue_webhooks.app
    from hotglue_webhooks import cli

    # cli.web imports create_app from hotglue_webhooks.app when it runs, so this swap
    # changes the app and nothing about how gunicorn is configured.
    hotglue_webhooks.app.create_app = bare_app  # type: ignore[assignment]
    cli.main(["web"])


if __name__ == "__main__":
    main()
