"""Every 4xx answer is logged once: method, path, status and a short reason, no secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from conftest import Receiver, payload
from web.helpers import csrf_token, text_of

TOKEN = "admin-t0ken-9f2e"
WRONG = "wrong-t0ken-5b8a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextmanager
def guarded(database_url: str) -> Iterator[Receiver]:
    """A receiver with an admin token, logging JSON. Made in the test's body, not in a
    fixture: the logs go to the sys.stderr of the moment the app is made, and capsys'
    stderr is in place only once the test runs."""
    made = Receiver(database_url, admin_token=TOKEN, log_format="json")
    try:
        yield made
    finally:
        made.close()


def refusals(capsys: pytest.CaptureFixture[str]) -> tuple[list[dict[str, Any]], str]:
    """Return the log lines about refused requests since the last call, and all of stderr."""
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    refused = ("request_rejected", "webhook_rejected", "dashboard_login_refused", "dead_replay_refused")
    return [line for line in lines if line["event"] in refused], err


@pytest.mark.parametrize(
    ("method", "url", "headers", "status", "reason"),
    [
        ("GET", "/api/events", {}, 401, "no Authorization header"),
        ("GET", "/api/events", {"Authorization": f"Bearer {WRONG}"}, 401, "wrong bearer token"),
        ("POST", "/api/actions/replay", {"Authorization": WRONG}, 401, "wrong bearer token"),
        ("GET", "/webhooks/hotglue", {}, 405, "Method Not Allowed"),
        ("PUT", "/webhooks/hotglue", {}, 405, "Method Not Allowed"),
        ("GET", "/api/events?limit=abc", AUTH, 400, "query limit: Not a valid integer."),
        ("GET", "/api/events?since=yesterday", AUTH, 400, "query since: must be an ISO-8601 time"),
        ("GET", "/api/actions?state=bogus", AUTH, 400, "query state: Must be one of"),
        ("GET", "/api/events/424242", AUTH, 404, "no event 424242"),
        ("POST", "/api/events/1/replay", AUTH, 415, "send a JSON body"),
        ("GET", "/nowhere", {}, 404, "Not Found"),
    ],
)
def test_a_refused_request_is_logged_once_without_secrets(
    database_url: str, capsys: pytest.CaptureFixture[str], method: str, url: str, headers: dict[str, str], status: int,
    reason: str,
) -> None:
    with guarded(database_url) as receiver:
        capsys.readouterr()
        answer = receiver.client.open(url, method=method, headers=headers, data="top-secret-body")
        assert answer.status_code == status
        [logged], err = refusals(capsys)
    assert logged["event"] == "request_rejected" and logged["level"] == "warning"
    assert (logged["method"], logged["path"], logged["status_code"]) == (method, url.split("?")[0], status)
    assert logged["reason"].startswith(reason), logged["reason"]
    for secret in (TOKEN, WRONG, "top-secret-body", "abc", "yesterday"):
        assert secret not in err


def test_answers_that_are_not_4xx_are_not_logged_as_refusals(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with guarded(database_url) as receiver:
        receiver.post("sync_failed__shopify_500")
        assert receiver.client.get("/api/events", headers=AUTH).status_code == 200
        assert receiver.client.get("/healthz").status_code == 200
        assert receiver.client.get("/").status_code == 302  # to the login form
        assert refusals(capsys)[0] == []


def test_the_webhook_path_logs_its_rejections_once(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with guarded(database_url) as receiver:
        assert receiver.post(payload("sync_failed__shopify_500"), sign_it=False).status_code == 401
        assert receiver.post(b"not json").status_code == 400
        logged, _ = refusals(capsys)
    assert [(line["event"], line["status_code"]) for line in logged] == [("webhook_rejected", 401), ("webhook_rejected", 400)]


def test_dashboard_refusals_are_logged_once(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with guarded(database_url) as receiver:
        form = text_of(receiver.client.get("/login"))
        capsys.readouterr()
        refused = receiver.client.post("/login", data={"csrf_token": csrf_token(form), "token": WRONG})
        assert refused.status_code == 401
        assert [line["event"] for line in refusals(capsys)[0]] == ["dashboard_login_refused"]

        receiver.client.post("/login", data={"csrf_token": csrf_token(form), "token": TOKEN})
        capsys.readouterr()
        assert receiver.client.post("/dead/replay", data={"scope": "all"}).status_code == 400  # no CSRF token
        [logged] = refusals(capsys)[0]
        assert (logged["event"], logged["path"]) == ("request_rejected", "/dead/replay")
        assert logged["reason"] == "CSRF: The CSRF token is missing."

        replay = {"csrf_token": csrf_token(text_of(receiver.client.get("/dead"))), "scope": "bogus"}
        assert receiver.client.post("/dead/replay", data=replay).status_code == 400
        assert [line["event"] for line in refusals(capsys)[0]] == ["dead_replay_refused"]

        assert receiver.client.get("/tenants/nobody").status_code == 404
        [logged] = refusals(capsys)[0]
        assert (logged["status_code"], logged["reason"]) == (404, "No events of tenant nobody are stored.")
