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
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from flask import Flask, Request, session
from flask import request as flask_request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
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


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, not opened for ``sessionless_paths``.

    Flask opens the session of every request before routing it: it builds the cookie's
    signing serializer (a key derivation) even when no cookie came. The webhook endpoint
    never reads or writes the session, and HotGlue sends no cookie: it gets Flask's null
    session (empty; writing to it raises), no ``Set-Cookie`` or ``Vary: Cookie``, and
    never waits for (or fails on) the database read that makes the signing key.

    Without an admin token the signing key is read from the database when the first
    session is opened (``signing_key``). It must be there before Flask opens the session,
    which happens before any ``before_request`` hook runs.
    """

    def __init__(self, sessionless_paths: frozenset[str], signing_key: Callable[[], str]) -> None:
        self.sessionless_paths = sessionless_paths
        self.signing_key = signing_key

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path in self.sessionless_paths:
            return self.null_session_class()
        if not app.secret_key:
            app.secret_key = self.signing_key()
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        """``Secure`` whenever the request came over HTTPS (behind a proxy: its
        ``X-Forwarded-Proto``, trusted with ``HGW_PROXY_FIX``), so the browser never sends
        the session back over plain HTTP; plain-HTTP local use keeps working."""
        return super().get_cookie_secure(app) or flask_request.is_secure


def init_app(
    app: Flask, settings: Settings, sessions: sessionmaker[Session], sessionless_paths: frozenset[str] = frozenset()
) -> None:
    """Configure the signed session cookie and CSRF protection for the dashboard.

    CSRF is checked by the dashboard's own views (``csrf.protect()``), never on the
    webhook endpoint or the bearer-token API. Requests for ``sessionless_paths`` get no
    session at all (see :class:`SessionInterface`).
    """
    app.session_interface = SessionInterface(sessionless_paths, lambda: stored_secret_key(sessions))
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
