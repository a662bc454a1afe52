"""First-time-user rough edges: HTML error pages, escaped look-alike tenant ids, the
wrong-token rate limit, nothing stored shown before login, Secure cookies behind HTTPS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import Receiver, payload
from hotglue_webhooks.web import limits
from web.helpers import csrf_token, text_of

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
TOKEN = "admin-t0ken-7c1d"


@pytest.mark.parametrize("url", ["/events/abc", "/events/1/", "/assets/", "/nowhere"])
def test_a_browser_gets_the_html_error_page_for_an_unknown_url(receiver: Receiver, url: str) -> None:
    answer = receiver.client.get(url, headers=BROWSER)
    assert answer.status_code == 404
    assert answer.mimetype == "text/html"
    html = text_of(answer)
    assert "<h1>Not Found</h1>" in html and "Back to the events" in html


@pytest.mark.parametrize(
    ("url", "headers"),
    [("/api/nowhere", BROWSER), ("/events/abc", {}), ("/events/abc", {"Accept": "application/json"}),
     ("/events/abc", {"Accept": "*/*"})],
)
def test_the_api_and_other_clients_keep_json_errors(receiver: Receiver, url: str, headers: dict[str, str]) -> None:
    answer = receiver.client.get(url, headers=headers)
    assert answer.status_code == 404
    assert answer.json["error"] == "Not Found"


def test_a_look_alike_tenant_id_is_shown_escaped_on_pages(receiver: Receiver) -> None:
    tenant = "t\u202eevil\u200b"
    assert receiver.post({**payload("sync_failed__shopify_500"), "tenant": tenant}).status_code == 202
    for url in ("/", "/tenants", "/events/1"):
        html = text_of(receiver.client.get(url))
        assert "\u202e" not in html and "\u200b" not in html, url
        assert "t\\u202eevil\\u200b" in html, url


def test_a_look_alike_tenant_id_is_shown_escaped_in_slack() -> None:
    from hotglue_webhooks.rules.messages import blocks_text, failure_alert
    from hotglue_webhooks.rules.model import JobEvent

    event = JobEvent.from_payload({**payload("sync_failed__shopify_500"), "tenant": "t\u202eevil"}, event_key="k")
    alert = failure_alert(event)
    shown = alert.text + "".join(blocks_text(alert.blocks))
    assert "\u202e" not in shown
    assert alert.text.startswith(":red_circle: SYNC_FAILED for tenant t\\u202eevil on flow ")


@pytest.fixture
def guarded(database_url: str) -> Iterator[Receiver]:
    made = Receiver(database_url, admin_token=TOKEN)
    assert made.post("sync_failed__shopify_500").status_code == 202
    yield made
    made.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_wrong_bearer_tokens_from_one_client_get_429_then_the_limit_passes(guarded: Receiver) -> None:
    clock = Clock()
    limits.init_app(guarded.app, limits.FailureLimiter(max_failures=3, window_seconds=60, clock=clock))
    wrong = {"Authorization": "Bearer nope"}
    right = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(3):
        assert guarded.client.get("/api/events", headers=wrong).status_code == 401
    clock.now += 10
    limited = guarded.client.get("/api/events", headers=wrong)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "50"
    assert limited.json == {"error": "Too Many Requests", "detail": "too many wrong tokens from this client; retry in 50 s"}
    # Another client is not limited; the right token is never counted.
    other = guarded.client.get("/api/events", headers=wrong, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 401
    clock.now += 51
    assert guarded.client.get("/api/events", headers=wrong).status_code == 401  # the window moved on
    for _ in range(10):
        assert guarded.client.get("/api/events", headers=right).status_code == 200


def test_right_tokens_alone_never_reach_the_limit(guarded: Receiver) -> None:
    limits.init_app(guarded.app, limits.FailureLimiter(max_failures=1, window_seconds=60, clock=Clock()))
    for _ in range(20):
        assert guarded.client.get("/api/events", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_wrong_login_tries_get_429_with_retry_after_and_are_logged(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Made in the test's body: the logs go to the sys.stderr of the moment the app is made.
    guarded = Receiver(database_url, admin_token=TOKEN, log_format="json")
    try:
        clock = Clock()
        limits.init_app(guarded.app, limits.FailureLimiter(max_failures=2, window_seconds=30, clock=clock))

        def try_login(token: str) -> Any:
            form = text_of(guarded.client.get("/login"))
            return guarded.client.post("/login", data={"csrf_token": csrf_token(form), "token": token, "next": "/"})

        assert try_login("wrong").status_code == 401
        assert try_login("wrong").status_code == 401
        capsys.readouterr()
        limited = try_login(TOKEN)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "30"
        assert "Too many wrong tokens from here: try again in 30 s." in text_of(limited)
        api = guarded.client.get("/api/events", headers={"Authorization": "Bearer nope"})
        assert api.status_code == 429
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
        events = [(line["event"], line.get("retry_after"), line.get("status_code")) for line in lines]
        assert ("dashboard_login_limited", 30, None) in events and ("request_rejected", None, 429) in events
        clock.now += 30
        assert try_login(TOKEN).status_code == 302
    finally:
        guarded.close()


def test_the_login_page_shows_nothing_stored(guarded: Receiver) -> None:
    html = text_of(guarded.client.get("/login"))
    assert "oldest stored event" not in html and "last purge" not in html and "Retention" not in html
    error = guarded.client.get("/nowhere", headers=BROWSER)
    assert error.status_code == 404 and "oldest stored event" not in text_of(error)


def test_the_session_cookie_is_secure_behind_an_https_proxy(database_url: str) -> None:
    proxied = Receiver(database_url, admin_token=TOKEN, proxy_fix=1)
    try:
        # A browser sends its Referer; flask-wtf checks it over HTTPS.
        https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7", "Referer": "https://localhost/login"}
        form = text_of(proxied.client.get("/login", headers=https))
        answer = proxied.client.post(
            "/login", data={"csrf_token": csrf_token(form), "token": TOKEN, "next": "/"}, headers=https
        )
        assert answer.status_code == 302
        assert "; Secure" in answer.headers["Set-Cookie"]
    finally:
        proxied.close()


def test_without_proxy_fix_a_forwarded_proto_is_not_believed(database_url: str) -> None:
    direct = Receiver(database_url, admin_token=TOKEN)
    try:
        form = text_of(direct.client.get("/login", headers={"X-Forwarded-Proto": "https"}))
        answer = direct.client.post(
            "/login", data={"csrf_token": csrf_token(form), "token": TOKEN, "next": "/"},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert answer.status_code == 302 and "Secure" not in answer.headers["Set-Cookie"]
    finally:
        direct.close()
