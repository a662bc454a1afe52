"""Who may use the dashboard and the admin API, and the dashboard's CSRF protection.

With ``HGW_ADMIN_TOKEN`` set, the dashboard asks for the token once in a login form and
then keeps a signed session cookie; the API wants ``Authorization: Bearer <token>``
(``web/api.py``). Without a token both are open to whoever reaches the server, which
listens on 127.0.0.1 unless told otherwise (``serve`` warns when it is not).

Every dashboard POST carries a CSRF token (flask-wtf). The session is signed with a key
derived from the admin token, so changing the token ends every session; without a token
the key is a random one kept in the ``meta`` table, shared by every web process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from flask import Flask, current_app, session
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks.settings import Settings, secret_value
from hotglue_webhooks.storage.db import write_session
from hotglue_webhooks.storage.models import Meta

SECRET_KEY_META = "web.secret_key"
SESSION_KEY = "admin"
SESSION_HOURS = 12
csrf = CSRFProtect()
log = structlog.get_logger("hotglue_webhooks.web")


def init_app(app: Flask, settings: Settings, sessions: sessionmaker[Session]) -> None:
    """Configure the signed session cookie and CSRF protection for the dashboard.

    CSRF is checked by the dashboard's own views (``csrf.protect()``), never on the
    webhook endpoint or the bearer-token API.
    """
    token = secret_value(settings.admin_token)
    if token:
        app.secret_key = session_key_for(token)
    app.config.update(
        SESSION_COOKIE_NAME="hgw_session",
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        WTF_CSRF_CHECK_DEFAULT=False,
        # A dashboard tab left open all day must still be able to replay.
        WTF_CSRF_TIME_LIMIT=None,
    )

    @app.before_request
    def _ensure_secret_key() -> None:
        if not current_app.secret_key:
            current_app.secret_key = stored_secret_key(sessions)

    csrf.init_app(app)


def session_key_for(token: str) -> str:
    """Return the session-signing key derived from the admin token (HMAC-SHA256)."""
    return hmac.new(token.encode(), b"hotglue-webhooks dashboard session", hashlib.sha256).hexdigest()


def stored_secret_key(sessions: sessionmaker[Session]) -> str:
    """Return the random signing key kept in ``meta``, making it on first use."""
    with sessions() as db:
        row = db.get(Meta, SECRET_KEY_META)
        if row is not None:
            return row.value
    try:
        with write_session(sessions) as db:
            row = db.get(Meta, SECRET_KEY_META)
            if row is None:
                row = Meta(key=SECRET_KEY_META, value=secrets.token_hex(32))
                db.add(row)
            return row.value
    except IntegrityError:  # another process made it at the same moment
        with sessions() as db:
            made = db.get(Meta, SECRET_KEY_META)
            assert made is not None
            return made.value


def login_required(settings: Settings) -> bool:
    """Return True when the dashboard needs a login (a token is set and none was given)."""
    return bool(secret_value(settings.admin_token)) and session.get(SESSION_KEY) is not True


def check_token(settings: Settings, given: str) -> bool:
    """Return True when ``given`` is the admin token (constant-time)."""
    token = secret_value(settings.admin_token)
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def log_in() -> None:
    session.clear()
    session.permanent = True
    session[SESSION_KEY] = True


def log_out() -> None:
    session.clear()


def safe_next(target: Any) -> str:
    """Return ``target`` when it is a path on this site, else ``/`` (no open redirect)."""
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target
