"""Access: with HGW_ADMIN_TOKEN the dashboard wants a login and the API a bearer token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import Receiver
from web.helpers import csrf_token, send, text_of

TOKEN = "admin-t0ken-7c1d"
PAGES = ["/", "/events/1", "/tenants", "/tenants/4821", "/dead"]
API_GETS = ["/api/events", "/api/events/1", "/api/actions?state=dead", "/api/tenants/4821/events"]
API_POSTS = ["/api/events/1/replay", "/api/actions/replay"]


@pytest.fixture
def guarded(database_url: str) -> Iterator[Receiver]:
    made = Receiver(database_url, admin_token=TOKEN)
    send(made, "sync_failed__shopify_500")
    yield made
    made.close()


def log_in(receiver: Receiver, token: str = TOKEN, next_url: str = "/") -> object:
    form = receiver.client.get(f"/login?next={next_url}")
    return receiver.client.post(
        "/login", data={"csrf_token": csrf_token(text_of(form)), "token": token, "next": next_url}
    )


def test_every_page_redirects_to_the_login_until_logged_in(guarded: Receiver) -> None:
    for url in PAGES:
        answer = guarded.client.get(url)
        assert answer.status_code == 302, url
        assert answer.headers["Location"].startswith("/login?next=")
    refused = log_in(guarded, token="wrong")
    assert refused.status_code == 401 and "That is not the admin token." in text_of(refused)
    assert guarded.client.get("/").status_code == 302
    answer = log_in(guarded, next_url="/tenants/4821")
    assert answer.status_code == 302 and answer.headers["Location"] == "/tenants/4821"
    cookie = guarded.client.get_cookie("hgw_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    for url in PAGES:
        assert guarded.client.get(url).status_code == 200, url
    # Logging out needs the CSRF token too, and ends the session.
    assert guarded.client.post("/logout").status_code == 400
    token = csrf_token(text_of(guarded.client.get("/")))
    assert guarded.client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert guarded.client.get("/").status_code == 302


def test_login_form_needs_its_csrf_token_and_never_redirects_off_site(guarded: Receiver) -> None:
    assert guarded.client.post("/login", data={"token": TOKEN}).status_code == 400
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        guarded.client = guarded.app.test_client()  # logged out again
        answer = log_in(guarded, next_url=target)
        assert answer.status_code == 302 and answer.headers["Location"] == "/", target


def test_a_new_token_ends_existing_sessions(guarded: Receiver, database_url: str) -> None:
    log_in(guarded)
    cookie = guarded.client.get_cookie("hgw_session")
    assert cookie is not None
    rotated = Receiver(database_url, admin_token="a-new-token")
    try:
        rotated.client.set_cookie("hgw_session", cookie.value)
        assert rotated.client.get("/").status_code == 302
    finally:
        rotated.close()


def test_the_api_wants_the_bearer_token_not_the_session(guarded: Receiver) -> None:
    log_in(guarded)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    for url in API_GETS:
        refused = guarded.client.get(url)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer", url
        assert guarded.client.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert guarded.client.get(url, headers=bearer).status_code == 200, url
    for url in API_POSTS:
        assert guarded.client.post(url, json={}).status_code == 401, url
        assert guarded.client.post(url, json={}, headers=bearer).status_code == 202, url
    # Health and metrics stay open for probes and scrapers.
    for url in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert guarded.client.get(url).status_code == 200, url


def test_without_a_token_everything_is_open_but_posts_still_need_csrf_or_json(receiver: Receiver) -> None:
    send(receiver, "sync_failed__shopify_500")
    assert receiver.client.get("/").status_code == 200
    assert receiver.client.get("/login").status_code == 302  # nothing to log in to
    assert receiver.client.post("/events/1/replay").status_code == 400  # no CSRF token
    # A cross-site form can only send form or text bodies: the API refuses them.
    for body in ({"data": "x=1"}, {"data": "{}", "content_type": "text/plain"}):
        answer = receiver.client.post("/api/events/1/replay", **body)  # type: ignore[arg-type]
        assert answer.status_code == 415
    assert receiver.client.post("/api/events/1/replay", json={}).status_code == 202


def test_the_webhook_endpoint_opens_no_session_and_needs_no_signing_key(database_url: str) -> None:
    from sqlalchemy import select

    from hotglue_webhooks.storage.models import Meta
    from hotglue_webhooks.web.auth import SECRET_KEY_META

    receiver = Receiver(database_url)  # no admin token: the key would come from the database
    try:
        receiver.client.set_cookie("hgw_session", "not-a-valid-session")
        answer = receiver.post("sync_failed__shopify_500")
        assert answer.status_code == 202
        assert "Set-Cookie" not in answer.headers and "Cookie" not in answer.headers.get("Vary", "")
        with receiver.runtime.sessions() as db:
            assert db.scalar(select(Meta).where(Meta.key == SECRET_KEY_META)) is None
        # The first request that opens a session makes the key before Flask opens it: the
        # page's replay form gets its CSRF token (it once got a null session: a 500).
        page = receiver.client.get(f"/events/{answer.json['id']}")
        assert page.status_code == 200 and 'name="csrf_token"' in page.get_data(as_text=True)
        with receiver.runtime.sessions() as db:
            assert db.scalar(select(Meta).where(Meta.key == SECRET_KEY_META)) is not None
    finally:
        receiver.close()
