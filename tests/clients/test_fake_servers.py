"""The fakes themselves: exact recording, programmable failures, state, clean shutdown."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import httpx
import pytest

from hotglue_webhooks.fakes import CannedResponse, FakeHotGlue, FakeSlack

ENV = "prod.hotglue.example.com"
TOO_LONG_HEADER = {"type": "plain_text", "text": "h" * 151}


def test_records_requests_exactly(fake_hotglue: FakeHotGlue) -> None:
    before = time.time()
    with httpx.Client() as raw:
        raw.put(
            fake_hotglue.url + "/e/f/a%2Fb%20c/jobs/schedule?x=1&x=2&y=%C3%BC",
            headers={"x-api-key": str(fake_hotglue.api_key), "X-Custom": "V"},
            json={"schedule_expression": "cron(1)"},
        )

    [request] = fake_hotglue.requests
    assert request.method == "PUT"
    assert request.path == "/e/f/a/b c/jobs/schedule"
    assert request.raw_path == "/e/f/a%2Fb%20c/jobs/schedule"
    assert request.query == {"x": "2", "y": "ü"}
    assert request.query_string == "x=1&x=2&y=%C3%BC"
    assert request.header("X-CUSTOM") == "V" and request.headers["x-custom"] == "V"
    assert request.json == {"schedule_expression": "cron(1)"}
    assert request.body == b'{"schedule_expression":"cron(1)"}'
    assert before <= request.received_at <= time.time()
    assert (request.status, request.fault) == (200, None)
    fake_hotglue.clear()
    assert fake_hotglue.requests == []


def test_hotglue_requires_the_api_key(fake_hotglue: FakeHotGlue) -> None:
    with httpx.Client(base_url=fake_hotglue.url) as raw:
        missing = raw.get(f"/tenants/{ENV}")
        wrong = raw.get(f"/tenants/{ENV}", headers={"x-api-key": "nope"})
    assert (missing.status_code, missing.json()) == (401, {"message": "Unauthorized"})
    assert wrong.status_code == 401


def test_hotglue_validates_schedule_puts_and_unknown_routes(fake_hotglue: FakeHotGlue) -> None:
    headers = {"x-api-key": str(fake_hotglue.api_key)}
    with httpx.Client(base_url=fake_hotglue.url, headers=headers) as raw:
        assert raw.put(f"/{ENV}/f/t/jobs/schedule", json={"state": "ENABLED"}).status_code == 400
        assert raw.put(f"/{ENV}/f/t/jobs/schedule", json={"schedule_expression": "c", "state": "ON"}).status_code == 400
        assert raw.get(f"/{ENV}/f/t/nothing").status_code == 404
        assert raw.delete(f"/{ENV}/f/t/jobs/schedule").status_code == 405
        assert raw.get(f"/{ENV}/flows/linked").status_code == 400  # tenant_id missing


def test_fail_next_matches_routes_and_is_used_once(fake_hotglue: FakeHotGlue) -> None:
    fake_hotglue.fail_next(1, 429, headers={"Retry-After": "5"}, match="PUT */jobs/schedule")
    headers = {"x-api-key": str(fake_hotglue.api_key)}
    with httpx.Client(base_url=fake_hotglue.url, headers=headers) as raw:
        other = raw.get(f"/tenants/{ENV}")
        limited = raw.put(f"/{ENV}/f/t/jobs/schedule", json={"schedule_expression": "c"})
        again = raw.put(f"/{ENV}/f/t/jobs/schedule", json={"schedule_expression": "c"})

    assert other.status_code == 200
    assert (limited.status_code, limited.headers["retry-after"], limited.json()) == (
        429,
        "5",
        {"message": "Too Many Requests"},
    )
    assert again.status_code == 200
    assert [r.fault for r in fake_hotglue.requests] == [None, "scripted", None]


def test_scripted_then_outage_then_recovery(fake_slack: FakeSlack) -> None:
    # "Answer 429 with Retry-After 5, then 503 for 60 s" (issue 5's outage scenario).
    fake_slack.fail_next(1, 429, headers={"Retry-After": "5"})
    fake_slack.outage(60, status=503)
    statuses = []
    message = {"channel": "#c", "text": "x"}
    with httpx.Client(headers={"Authorization": f"Bearer {fake_slack.token}"}) as raw:
        for _ in range(3):
            statuses.append(raw.post(fake_slack.url + "chat.postMessage", json=message).status_code)
        fake_slack.end_outage()
        statuses.append(raw.post(fake_slack.url + "chat.postMessage", json=message).status_code)
    assert statuses == [429, 503, 503, 200]
    assert [r.fault for r in fake_slack.requests] == ["scripted", "outage", "outage", None]
    assert fake_slack.requests[0].status == 429
    assert len(fake_slack.messages) == 1


def test_outage_ends_by_itself(fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fake's clock is moved, not waited for: a short real window is flaky on a busy machine.
    import types

    import hotglue_webhooks.fakes as fakes_module

    clock = [time.time()]
    monkeypatch.setattr(
        fakes_module, "time", types.SimpleNamespace(time=lambda: clock[0], sleep=time.sleep, monotonic=time.monotonic)
    )
    fake_slack.outage(until=clock[0] + 60, status=500)
    with httpx.Client(headers={"Authorization": f"Bearer {fake_slack.token}"}) as raw:
        assert raw.post(fake_slack.url + "chat.postMessage", json={}).status_code == 500
        clock[0] += 61
        answer = raw.post(fake_slack.url + "chat.postMessage", json={"channel": "#c", "text": "x"})
    assert (answer.status_code, answer.json()["ok"]) == (200, True)
    with pytest.raises(ValueError):
        fake_slack.outage()


def test_canned_success_bodies(fake_hotglue: FakeHotGlue) -> None:
    fake_hotglue.enqueue(CannedResponse(200, ["t1"]), CannedResponse(201, None, {"X-A": "b"}))
    headers = {"x-api-key": str(fake_hotglue.api_key)}
    with httpx.Client(base_url=fake_hotglue.url, headers=headers) as raw:
        first, second = raw.get("/anything"), raw.get("/anything")
    assert first.json() == ["t1"]
    assert (second.status_code, second.content, second.headers["x-a"]) == (201, b"null", "b")


def test_stop_releases_a_delayed_answer_quickly() -> None:
    fake = FakeSlack().start()
    fake.fail_next(1, status=None, delay=30)
    done = threading.Event()

    def call() -> None:
        with httpx.Client(timeout=10) as raw:
            try:
                raw.post(fake.url + "chat.postMessage", json={"channel": "#c", "text": "x"})
            except httpx.HTTPError:
                pass
        done.set()

    caller = threading.Thread(target=call)
    caller.start()
    fake.wait_for(1)
    started = time.monotonic()
    fake.stop()
    caller.join(5)
    assert done.is_set() and time.monotonic() - started < 2
    fake.stop()  # idempotent


def test_wait_for_times_out(fake_slack: FakeSlack) -> None:
    with pytest.raises(TimeoutError, match="0 of 1"):
        fake_slack.wait_for(1, timeout=0.01)


def test_slack_reads_form_bodies_and_token_fields(fake_slack: FakeSlack) -> None:
    form = {"token": str(fake_slack.token), "channel": "C0123456", "text": "hi", "blocks": '[{"type": "divider"}]'}
    with httpx.Client() as raw:
        answer = raw.post(fake_slack.url + "chat.postMessage", data=form).json()
    assert answer["ok"] is True and answer["channel"] == "C0123456"
    [message] = fake_slack.messages
    assert (message.channel, message.blocks) == ("C0123456", [{"type": "divider"}])
    assert fake_slack.requests[0].form["text"] == "hi"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"text": "x"}, "channel_not_found"),
        ({"channel": "#c"}, "no_text"),
        ({"channel": "#c", "text": "x", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
        ({"channel": "#c", "text": "x", "blocks": [{"type": "header", "text": TOO_LONG_HEADER}]}, "invalid_blocks"),
    ],
)
def test_slack_errors(fake_slack: FakeSlack, body: dict[str, object], error: str) -> None:
    with httpx.Client(headers={"Authorization": f"Bearer {fake_slack.token}"}) as raw:
        answer = raw.post(fake_slack.url + "chat.postMessage", json=body)
    assert (answer.status_code, answer.json()) == (200, {"ok": False, "error": error})


def test_hotglue_state_round_trip(fake_hotglue: FakeHotGlue) -> None:
    headers = {"x-api-key": str(fake_hotglue.api_key)}
    with httpx.Client(base_url=fake_hotglue.url, headers=headers) as raw:
        assert raw.get(f"/tenant/{ENV}/acme/config").json() == {"message": "There is no config for tenant acme"}
        raw.put(f"/tenant/{ENV}/acme/config", json={"apiCredentials": {"username": "u"}})
        raw.patch(f"/tenant/{ENV}/acme/config", json={"importCredentials": {}})
        raw.post(f"/{ENV}/f/acme/linkedTargets", json={"target": "optiply", "config": {}})
        raw.post(f"/{ENV}/f/acme/linkedTargets", json={"target": {"target": "exact", "config": {}}})
        raw.delete(f"/{ENV}/f/acme/linkedTargets", params={"target": "optiply"})
        job = raw.post(f"/{ENV}/f/acme/jobs", json={"tap": "shopify"}).json()
        latest = raw.get(f"/{ENV}/f/acme/jobs/latest").json()
        assert raw.post(f"/v2/{ENV}/f/acme/jobs", json={"job_type": "read"}).status_code == 400
    assert fake_hotglue.tenant_config(ENV, "acme") == {"apiCredentials": {"username": "u"}, "importCredentials": {}}
    assert fake_hotglue.linked_targets(ENV, "f", "acme") == [{"target": "exact", "config": {}}]
    assert latest == job and job["job_name"] == f"acme-f-{job['job_id']}"


def test_command_line_prints_urls_and_requests() -> None:
    process = subprocess.Popen(
        [sys.executable, "-W", "error", "-m", "hotglue_webhooks.fakes", "--api-key", "k"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        hotglue_line, slack_line, _ = (process.stdout.readline() for _ in range(3))
        hotglue_url = hotglue_line.split(": ", 1)[1].strip()
        slack_url = slack_line.split(": ", 1)[1].strip()
        assert hotglue_url.startswith("http://127.0.0.1:") and slack_url.endswith("/api/")
        with httpx.Client() as raw:
            raw.put(
                hotglue_url + "/e/f/acme_2/jobs/schedule", headers={"x-api-key": "k"}, json={"schedule_expression": "c"}
            )
        request_line, body_line = process.stdout.readline(), process.stdout.readline()
        assert request_line.split(" ", 1)[1].strip() == "hotglue PUT /e/f/acme_2/jobs/schedule -> 200"
        assert body_line.strip() == '{"schedule_expression": "c"}'
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=5)
    assert process.returncode == 0, stderr
