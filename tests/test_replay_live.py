"""Dry-run records made real (issue 15, item 3): ``replay --live``, the API's ``"live":
true`` and the dashboard's "Send for real", on the real database with fake HotGlue and
Slack. Events processed without keys stay ``dry_run``; once the keys are set a live replay
sends exactly those actions, once, and never what was already done for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from conftest import SECRET, Receiver
from hotglue_webhooks.cli import main
from hotglue_webhooks.fakes import FakeHotGlue, FakeSlack
from hotglue_webhooks.storage.models import ActionRecord
from test_flows import API_KEY, CREDENTIALS, ENV, TOKEN
from web.helpers import csrf_token

ADMIN = "admin-token-for-tests"


class Peers:
    """Fake HotGlue and Slack, and receivers on one database with or without their keys."""

    def __init__(self, database_url: str, hotglue: FakeHotGlue, slack: FakeSlack) -> None:
        self.database_url, self.hotglue, self.slack = database_url, hotglue, slack
        hotglue.set_schedule(ENV, "Xk2pQ9aLm", "4821", "cron(0 */4 * * ? *)", "DISABLED")
        hotglue.set_tenant_config(ENV, "4821", {"apiCredentials": CREDENTIALS})
        self.receivers: list[Receiver] = []

    def receiver(self, *, hotglue_key: bool, slack_token: bool, **overrides: Any) -> Receiver:
        made = Receiver(
            self.database_url,
            hotglue_api_url=self.hotglue.url,
            slack_api_url=self.slack.url,
            hotglue_api_key=API_KEY if hotglue_key else None,
            slack_bot_token=TOKEN if slack_token else None,
            **overrides,
        )
        self.receivers.append(made)
        return made

    def close(self) -> None:
        for made in self.receivers:
            made.close()


@pytest.fixture
def peers(database_url: str) -> Iterator[Peers]:
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        made = Peers(database_url, hotglue, slack)
        yield made
        made.close()


def states(receiver: Receiver) -> list[tuple[str, str]]:
    with receiver.runtime.sessions() as session:
        return [(a.kind, a.state) for a in session.scalars(select(ActionRecord).order_by(ActionRecord.position))]


def dry_run_alert(peers: Peers) -> Receiver:
    """A failure processed without keys: its Slack alert recorded as dry_run, nothing sent."""
    without = peers.receiver(hotglue_key=False, slack_token=False)
    assert without.post("sync_failed__shopify_500").status_code == 202
    without.worker().drain()
    assert states(without) == [("slack.post_message", "dry_run")]
    assert peers.slack.requests == []
    return without


def test_a_plain_replay_after_the_keys_are_set_sends_nothing(peers: Peers) -> None:
    dry_run_alert(peers)
    keyed = peers.receiver(hotglue_key=True, slack_token=True)
    assert keyed.client.post("/api/events/1/replay", json={}).status_code == 202
    keyed.worker().drain()
    assert states(keyed) == [("slack.post_message", "dry_run")] and peers.slack.messages == []


@pytest.mark.parametrize("live", ["false", "yes", "true", 2, None])
def test_live_must_be_a_json_boolean(peers: Peers, live: object) -> None:
    dry_run_alert(peers)
    keyed = peers.receiver(hotglue_key=True, slack_token=True)
    answer = keyed.client.post("/api/events/1/replay", json={"live": live})
    # A string or number is not taken as yes or no: nothing is queued, nothing sent.
    assert answer.status_code in (400, 422)
    keyed.worker().drain()
    assert states(keyed) == [("slack.post_message", "dry_run")] and peers.slack.messages == []


def test_api_live_replay_sends_the_dry_run_alert_once(peers: Peers) -> None:
    dry_run_alert(peers)
    keyed = peers.receiver(hotglue_key=True, slack_token=True)

    answer = keyed.client.post("/api/events/1/replay", json={"live": True})

    assert answer.status_code == 202
    body = answer.get_json()
    assert {k: body[k] for k in ("id", "state", "live", "dry_run_actions")} == {
        "id": "1", "state": "retrying", "live": True, "dry_run_actions": 1,
    }
    assert body["age"].endswith(" s") and body["received_at"]
    keyed.worker().drain()
    [message] = peers.slack.messages
    assert message.text is not None and message.text.startswith(":red_circle: SYNC_FAILED for tenant 4821")
    assert states(keyed) == [("slack.post_message", "done")]
    with keyed.runtime.sessions() as session:
        [alert] = session.scalars(select(ActionRecord))
        assert alert.response == {"channel": FakeSlack.channel_id("#hotglue-webhooks"), "ts": message.ts}
        assert alert.request["headers"]["Authorization"] == "[redacted]"  # the real request, not the dry-run one

    # Nothing dry-run is left: a second live replay is refused, and sends nothing.
    again = keyed.client.post("/api/events/1/replay", json={"live": True})
    assert again.status_code == 409
    assert again.get_json()["detail"] == "event 1 has no dry-run action: nothing to send for real"
    keyed.worker().drain()
    assert len(peers.slack.messages) == 1


def test_live_replay_is_refused_while_the_keys_are_unset(peers: Peers) -> None:
    without = dry_run_alert(peers)

    answer = without.client.post("/api/events/1/replay", json={"live": True})

    assert answer.status_code == 409
    assert answer.get_json() == {
        "error": "Conflict",
        "detail": "event 1 would be a dry-run again: HGW_SLACK_BOT_TOKEN is unset; set it as for the worker, then replay live",
    }
    forced_dry = peers.receiver(hotglue_key=True, slack_token=True, dry_run=True)
    refused = forced_dry.client.post("/api/events/1/replay", json={"live": True})
    assert (refused.status_code, refused.get_json()["detail"]) == (
        409, "event 1 would be a dry-run again: HGW_DRY_RUN is set; set it as for the worker, then replay live",
    )
    assert without.client.post("/api/events/99/replay", json={"live": True}).status_code == 404
    assert states(without) == [("slack.post_message", "dry_run")]  # untouched


def test_what_was_done_for_real_is_not_sent_again(peers: Peers) -> None:
    """HotGlue key set, Slack token not: the schedule was enabled for real, its Slack
    confirmation only recorded. Live, the confirmation goes out; the PUT does not repeat."""
    half = peers.receiver(hotglue_key=True, slack_token=False)
    assert half.post("job_completed__full_sync").status_code == 202
    half.worker().drain()
    before = states(half)
    assert before == [
        ("hotglue.put_schedule", "done"), ("slack.post_message", "dry_run"), ("hotglue.link_target", "done"),
        ("hotglue.start_job", "done"), ("slack.action_failed", "not_needed"),
    ]
    writes = [(r.method, r.raw_path) for r in peers.hotglue.requests if r.method != "GET"]

    keyed = peers.receiver(hotglue_key=True, slack_token=True)
    answer = keyed.client.post("/api/events/1/replay", json={"live": True})
    assert (answer.status_code, answer.get_json()["dry_run_actions"]) == (202, 1)
    keyed.worker().drain()

    assert [(r.method, r.raw_path) for r in peers.hotglue.requests if r.method != "GET"] == writes
    assert [m.text for m in peers.slack.messages] == [
        ":large_green_circle: Schedule enabled for tenant 4821 on flow Xk2pQ9aLm: cron(0 */4 * * ? *). It was DISABLED."
    ]
    assert [state for _, state in states(keyed)] == [state if state != "dry_run" else "done" for _, state in before]


def test_the_openapi_document_has_the_live_field(peers: Peers) -> None:
    keyed = peers.receiver(hotglue_key=True, slack_token=True)
    document = keyed.client.get("/openapi.json").get_json()
    request = document["components"]["schemas"]["ReplayRequest"]["properties"]
    assert request["live"]["type"] == "boolean" and "dry_run" in request["live"]["description"]
    responses = document["paths"]["/api/events/{event_id}/replay"]["post"]["responses"]
    assert "409" in responses


def test_dashboard_send_for_real_shows_the_age_then_needs_the_csrf_token(peers: Peers) -> None:
    dry_run_alert(peers)
    keyed = peers.receiver(hotglue_key=True, slack_token=True, admin_token=ADMIN)
    keyed.client.post("/login", data={"token": ADMIN, "csrf_token": csrf_token(keyed.client.get("/login").get_data(as_text=True))})

    event_page = keyed.client.get("/events/1").get_data(as_text=True)
    assert 'id="send-for-real"' in event_page and 'href="/events/1/live"' in event_page
    confirm = keyed.client.get("/events/1/live").get_data(as_text=True)
    assert "This event was received <strong>" in confirm and " s ago</strong>" in confirm
    assert "slack.post_message" in confirm and "Send 1 action(s) for real</button>" in confirm

    assert keyed.client.post("/events/1/live", data={}).status_code == 400  # no CSRF token
    assert peers.slack.requests == [] and states(keyed) == [("slack.post_message", "dry_run")]
    answer = keyed.client.post("/events/1/live", data={"csrf_token": csrf_token(confirm)})
    assert (answer.status_code, answer.headers["Location"]) == (302, "/events/1")
    keyed.worker().drain()
    assert len(peers.slack.messages) == 1 and states(keyed) == [("slack.post_message", "done")]
    assert 'id="send-for-real"' not in keyed.client.get("/events/1").get_data(as_text=True)


def test_dashboard_says_why_it_cannot_send_while_the_token_is_unset(peers: Peers) -> None:
    without = dry_run_alert(peers)
    confirm = without.client.get("/events/1/live").get_data(as_text=True)
    assert "Cannot send them: event 1 would be a dry-run again: HGW_SLACK_BOT_TOKEN is unset" in confirm
    assert "for real</button>" not in confirm
    token = csrf_token(without.client.get("/events/1").get_data(as_text=True))
    refused = without.client.post("/events/1/live", data={"csrf_token": token})
    assert refused.status_code == 409 and "Nothing was sent" in refused.get_data(as_text=True)


def test_the_login_guards_the_confirmation_page(peers: Peers) -> None:
    dry_run_alert(peers)
    guarded = peers.receiver(hotglue_key=True, slack_token=True, admin_token=ADMIN)
    answer = guarded.client.get("/events/1/live")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    assert guarded.client.post("/events/1/live", data={}).status_code in (302, 400)
    assert peers.slack.requests == []


def _cli(peers: Peers, monkeypatch: pytest.MonkeyPatch, *args: str, keys: bool, answer: str = "") -> Any:
    monkeypatch.setenv("HGW_DATABASE_URL", peers.database_url)
    monkeypatch.setenv("HGW_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("HGW_HOTGLUE_API_URL", peers.hotglue.url)
    monkeypatch.setenv("HGW_SLACK_API_URL", peers.slack.url)
    if keys:
        monkeypatch.setenv("HGW_HOTGLUE_API_KEY", API_KEY)
        monkeypatch.setenv("HGW_SLACK_BOT_TOKEN", TOKEN)
    return CliRunner().invoke(main, list(args), input=answer, catch_exceptions=False)


def test_cli_replay_live_refuses_without_keys_in_one_line(peers: Peers, monkeypatch: pytest.MonkeyPatch) -> None:
    dry_run_alert(peers)
    result = _cli(peers, monkeypatch, "replay", "1", "--live", keys=False)
    assert result.exit_code == 1
    assert result.output == (
        "Error: replay --live: event 1 would be a dry-run again: HGW_SLACK_BOT_TOKEN is unset; "
        "set it as for the worker, then replay live\n"
    )


def test_cli_replay_live_shows_the_age_asks_and_sends(peers: Peers, monkeypatch: pytest.MonkeyPatch) -> None:
    dry_run_alert(peers)
    declined = _cli(peers, monkeypatch, "replay", "1", "--live", "--no-wait", keys=True, answer="n\n")
    assert declined.exit_code == 1
    assert "event 1 (SYNC_FAILED of tenant 4821, flow Xk2pQ9aLm) was received " in declined.output
    assert "1 dry-run action(s) would be sent for real: slack.post_message" in declined.output
    assert "send them for real? [y/N]" in declined.output
    keyed = peers.receiver(hotglue_key=True, slack_token=True)
    assert states(keyed) == [("slack.post_message", "dry_run")]

    accepted = _cli(peers, monkeypatch, "replay", "1", "--live", "--no-wait", keys=True, answer="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "event 1: queued (retrying); the running worker takes it up" in accepted.output
    keyed.worker().drain()
    assert len(peers.slack.messages) == 1 and states(keyed) == [("slack.post_message", "done")]
