"""Slack buttons end to end: a message with buttons, a click signed as Slack signs it,
POST /slack/interactions, the worker, and the exact requests fake HotGlue and Slack get
(chat.update of the message, the response_url answer), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from conftest import Receiver
from hotglue_webhooks.fakes import FakeHotGlue, FakeSlack
from hotglue_webhooks.storage.models import ActionRecord, Command
from test_flows import API_KEY, ENV, TOKEN, World, ahead

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ALICE = {"id": "U0ALICE", "username": "alice", "name": "alice", "team_id": "T0FAKE"}
BOB = {"id": "U0BOB", "username": "bob", "name": "bob", "team_id": "T0FAKE"}


class Buttons(World):
    """The flow tests' world with a Slack signing secret: messages carry buttons."""

    def __init__(self, database_url: str, hotglue: FakeHotGlue, slack: FakeSlack, **overrides: Any) -> None:
        self.hotglue, self.slack = hotglue, slack
        hotglue.link_flow(ENV, "3310", "Rb7TnE4wz")
        hotglue.link_flow(ENV, "3310", "Vd3HsW8qc")
        hotglue.set_schedule(ENV, "Rb7TnE4wz", "3310", "cron(30 * * * ? *)", "ENABLED")
        hotglue.set_schedule(ENV, "Vd3HsW8qc", "3310", "cron(0 8 * * ? *)", "ENABLED")
        self.receiver = Receiver(
            database_url, hotglue_api_key=API_KEY, hotglue_api_url=hotglue.url, slack_bot_token=TOKEN,
            slack_api_url=slack.url, slack_signing_secret=SIGNING_SECRET, **overrides,
        )
        self.worker = self.receiver.worker()
        self.now = ahead()
        self.today = self.now.date().isoformat()
        self.worker.clock = lambda: self.now

    def message_with(self, action_id: str) -> Any:
        for message in self.slack.messages:
            for block in message.blocks or []:
                if block.get("type") == "actions" and any(e["action_id"] == action_id for e in block["elements"]):
                    return message
        raise AssertionError(f"no message with a {action_id} button")

    def click(self, message: Any, action_id: str, user: dict[str, str] = ALICE, **changes: Any) -> Any:
        """POST the click as Slack builds it: form field payload, signed v0 over the raw body."""
        element = next(
            e for b in message.blocks if b.get("type") == "actions" for e in b["elements"] if e["action_id"] == action_id
        )
        body = block_actions(message, element, user, self.slack.response_url(), **changes)
        return post_signed(self.receiver, body)


def block_actions(posted: Any, element: dict[str, Any], user: dict[str, str], response_url: str, **changes: Any) -> bytes:
    """The body Slack POSTs for a click of ``element`` on message ``posted``; ``changes``
    replace the action's ``action_id``/``value`` or top-level payload fields."""
    message = posted
    payload = {
        "type": "block_actions",
        "user": user,
        "api_app_id": "A0FAKE",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel_id, "is_ephemeral": False},
        "trigger_id": "123.456.abc",
        "team": {"id": "T0FAKE", "domain": "example"},
        "channel": {"id": message.channel_id, "name": "hotglue-webhooks"},
        "message": {"type": "message", "ts": message.ts, "text": message.text, "blocks": message.blocks},
        "response_url": response_url,
        "actions": [
            {
                "action_id": changes.pop("action_id", element["action_id"]),
                "block_id": "hgw_commands",
                "text": element["text"],
                "value": changes.pop("value", element["value"]),
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    payload.update(changes)
    return urlencode({"payload": json.dumps(payload)}).encode()


def slack_headers(body: bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Slack's headers: ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}`` (docs.slack.dev,
    "Verifying requests from Slack"), computed here by hand, not by the verifier under test."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = "v0=" + hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": str(signature),
    }


def action_ids(message: Any) -> list[str]:
    """The buttons a message (as it stands in the fake Slack) still carries."""
    return [e["action_id"] for b in message.blocks or [] if b.get("type") == "actions" for e in b["elements"]]


def post_signed(receiver: Receiver, body: bytes, **kwargs: Any) -> Any:
    return receiver.client.post("/slack/interactions", data=body, headers=slack_headers(body, **kwargs))


@pytest.fixture
def buttons(database_url: str) -> Iterator[Buttons]:
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        made = Buttons(database_url, hotglue, slack)
        yield made
        made.receiver.close()


REENABLE = "hgw_enable_schedules"


def test_re_enable_writes_back_exactly_the_schedules_turned_off_each_with_its_expression(buttons: Buttons) -> None:
    # A third flow the receiver did not turn off (it was already DISABLED) must stay as it is.
    buttons.deliver("sync_failed__exact_token_401")
    message = buttons.message_with(REENABLE)
    assert message.text.startswith(":lock: Schedules turned off for tenant 3310")
    buttons.hotglue.clear()

    answer = buttons.click(message, REENABLE)
    assert answer.status_code == 200 and answer.data == b""
    buttons.worker.drain()

    assert buttons.writes() == [
        ("PUT", f"/{ENV}/Rb7TnE4wz/3310/jobs/schedule", {"schedule_expression": "cron(30 * * * ? *)", "state": "ENABLED"}),
        ("PUT", f"/{ENV}/Vd3HsW8qc/3310/jobs/schedule", {"schedule_expression": "cron(0 8 * * ? *)", "state": "ENABLED"}),
    ]
    # The message says who did what and when; the button is gone.
    updated = next(m for m in buttons.slack.messages if m.ts == message.ts)
    when = f"{buttons.now:%Y-%m-%d %H:%M} UTC"
    assert updated.text.endswith(f"\n:white_check_mark: Schedules re-enabled by <@U0ALICE> at {when}")
    assert not [b for b in updated.blocks or [] if b.get("type") == "actions"]
    assert updated.blocks[-1]["elements"][0]["text"] == f":white_check_mark: Schedules re-enabled by <@U0ALICE> at {when}"
    update_calls = buttons.slack.requests_to("POST /api/chat.update")
    assert [r.json["ts"] for r in update_calls] == [message.ts]
    assert update_calls[0].json["channel"] == message.channel_id

    # The click is recorded with the Slack user's id and name, and the API shows it.
    with buttons.receiver.runtime.sessions() as session:
        command = session.scalars(select(Command)).one()
        assert (command.command, command.user_id, command.user_name, command.tenant) == (
            "enable_schedules", "U0ALICE", "alice", "3310",
        )
        assert command.response_url is not None  # never answered: the first click needed no ephemeral
    listed = buttons.receiver.client.get("/api/tenants/3310/commands").get_json()["commands"]
    assert [(c["command"], c["user_id"], c["user_name"], c["outcome"]) for c in listed] == [
        ("enable_schedules", "U0ALICE", "alice", "done")
    ]
    assert "response_url" not in json.dumps(listed)


def test_a_second_click_answers_ephemerally_who_did_it_and_acts_no_more(buttons: Buttons) -> None:
    buttons.deliver("sync_failed__exact_token_401")
    message = buttons.message_with(REENABLE)
    assert buttons.click(message, REENABLE).status_code == 200
    buttons.worker.drain()
    puts = len(buttons.writes())
    # Bob still sees the old message (with its button) and clicks it too.
    assert buttons.click(message, REENABLE, user=BOB).status_code == 200
    buttons.worker.drain()

    assert len(buttons.writes()) == puts
    (answer,) = buttons.slack.responses
    when = f"{buttons.now:%Y-%m-%d %H:%M} UTC"
    assert answer["text"] == f":information_source: Re-enable schedules: already done by <@U0ALICE> at {when}."
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    assert answer["url"].startswith("/actions/T0FAKE/2/")
    with buttons.receiver.runtime.sessions() as session:
        second = session.scalars(select(Command).where(Command.user_id == "U0BOB")).one()
        assert second.duplicate_of is not None
        assert second.response_url is None  # answered: the capability is not kept
        stored = json.dumps([(a.params, a.request) for a in session.scalars(select(ActionRecord))])
    assert "/actions/T0FAKE/2/" not in stored and "actions/[redacted]" in stored


def test_a_double_click_before_the_worker_ran_acts_once(buttons: Buttons) -> None:
    from web.test_metrics import scrape, value

    buttons.deliver("sync_failed__exact_token_401")
    message = buttons.message_with(REENABLE)
    buttons.hotglue.clear()
    before = scrape(buttons.receiver)
    assert buttons.click(message, REENABLE).status_code == 200
    assert buttons.click(message, REENABLE).status_code == 200
    after = scrape(buttons.receiver)
    for outcome in ("stored", "repeat"):
        labels = {"command": "enable_schedules", "origin": "slack", "outcome": outcome}
        assert value(after, "hgw_commands_total", **labels) - value(before, "hgw_commands_total", **labels) == 1
    buttons.worker.drain()
    assert len(buttons.writes()) == 2  # two schedules, once each
    (answer,) = buttons.slack.responses
    assert "already" in answer["text"] and "<@U0ALICE>" in answer["text"]


def test_retry_job_starts_the_flow_again_under_the_loop_guarded_name(buttons: Buttons) -> None:
    buttons.deliver("sync_failed__shopify_500")
    message = buttons.message_with("hgw_retry_job")
    assert buttons.click(message, "hgw_retry_job").status_code == 200
    buttons.worker.drain()
    assert buttons.writes() == [
        ("POST", f"/{ENV}/Xk2pQ9aLm/4821/jobs", {"tap": "shopify", "job_name": f"wh-Xk2pQ9aLm-shopify-{buttons.today}"}),
    ]
    updated = next(m for m in buttons.slack.messages if m.ts == message.ts)
    assert ":white_check_mark: Job retried by <@U0ALICE>" in updated.text
    assert action_ids(updated) == ["hgw_snooze"]  # only the clicked button goes


def test_replay_on_a_dead_action_report_replays_the_event(database_url: str) -> None:
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        world = Buttons(database_url, hotglue, slack, max_attempts=1)
        try:
            hotglue.fail_next(2, 400, match="PUT *")  # permanent: dead at once
            world.deliver("sync_failed__exact_token_401")
            report = world.message_with("hgw_replay")
            assert report.text.startswith(":x: Exact Online refused the refresh token of tenant 3310")
            assert world.click(report, "hgw_replay").status_code == 200
            world.worker.drain()
            puts = [w for w in world.writes() if w[0] == "PUT"]
            assert puts[-2:] == [
                ("PUT", f"/{ENV}/Rb7TnE4wz/3310/jobs/schedule", {"schedule_expression": "cron(30 * * * ? *)", "state": "DISABLED"}),
                ("PUT", f"/{ENV}/Vd3HsW8qc/3310/jobs/schedule", {"schedule_expression": "cron(0 8 * * ? *)", "state": "DISABLED"}),
            ]
            with world.receiver.runtime.sessions() as session:
                dead = session.scalars(select(ActionRecord).where(ActionRecord.state == "dead")).all()
            assert dead == []
            updated = next(m for m in slack.messages if m.ts == report.ts)
            assert ":white_check_mark: Replayed by <@U0ALICE>" in updated.text
        finally:
            world.receiver.close()


def test_a_user_not_allowed_gets_an_ephemeral_no_and_nothing_acts(database_url: str) -> None:
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        world = Buttons(database_url, hotglue, slack, slack_allowed_users="U0ALICE,U0CAROL")
        try:
            world.deliver("sync_failed__exact_token_401")
            message = world.message_with(REENABLE)
            hotglue.clear()
            assert world.click(message, REENABLE, user=BOB).status_code == 200
            world.worker.drain()
            assert world.writes() == []
            (answer,) = slack.responses
            assert answer["text"].startswith(":no_entry: You are not among the Slack users allowed")
            # Alice may, and her click is the first that acts.
            assert world.click(message, REENABLE).status_code == 200
            world.worker.drain()
            assert len(world.writes()) == 2
        finally:
            world.receiver.close()


def test_without_a_signing_secret_no_buttons_and_the_endpoint_is_404(database_url: str) -> None:
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        world = World(database_url, hotglue, slack)
        try:
            world.deliver("sync_failed__exact_token_401", "sync_failed__shopify_500")
            assert slack.messages
            assert all(b.get("type") != "actions" for m in slack.messages for b in m.blocks or [])
            body = b"payload=%7B%7D"
            assert world.receiver.client.post("/slack/interactions", data=body, headers=slack_headers(body)).status_code == 404
        finally:
            world.receiver.close()


def refused_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == "slack_interaction_refused"]


def test_bad_input_is_refused_with_a_clear_4xx_and_logged(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        world = Buttons(database_url, hotglue, slack, log_format="json")
        try:
            world.deliver("sync_failed__exact_token_401", "sync_failed__shopify_500")
            message = world.message_with(REENABLE)
            element = message.blocks[-1]["elements"][0]
            other = next(m for m in slack.messages if "tenant 4821" in m.text)
            url = slack.response_url()
            good = block_actions(message, element, ALICE, url)
            client = world.receiver.client
            capsys.readouterr()

            def post(body: bytes, headers: dict[str, str]) -> tuple[int, str]:
                answer = client.post("/slack/interactions", data=body, headers=headers)
                (line,) = refused_lines(capsys)
                assert line["status_code"] == answer.status_code
                return answer.status_code, line["reason"]

            forged = slack_headers(good, secret="not-the-secret")
            assert post(good, forged) == (401, "X-Slack-Signature does not match the body")
            stale = slack_headers(good, timestamp=int(time.time()) - 301)
            assert post(good, stale)[0] == 401
            future = slack_headers(good, timestamp=int(time.time()) + 400)
            assert post(good, future)[0] == 401
            missing = {k: v for k, v in slack_headers(good).items() if k != "X-Slack-Signature"}
            assert post(good, missing) == (401, "missing X-Slack-Signature header")
            tampered = good.replace(b"U0ALICE", b"U0EVE00")
            assert post(tampered, slack_headers(good))[0] == 401

            cases = {
                b"payload=not-json": "payload is not JSON",
                block_actions(message, element, ALICE, url, action_id="hgw_format_disk"): "unknown action_id",
                block_actions(message, element, ALICE, url, value="{nope"): "the button value is not JSON",
                block_actions(
                    message, element, ALICE, url, value=json.dumps({"tenant": "9999", "event": json.loads(element["value"])["event"]})
                ): "the button value names another tenant than its message",
                # The 3310 button pasted under the 4821 alert: not a message sent for that event.
                block_actions(other, element, ALICE, url): "a click on a message this receiver did not send",
                block_actions(message, element, ALICE, url, container={"message_ts": "1.000001", "channel_id": "C0NOPE"},
                              message={"ts": "1.000001"}, channel={"id": "C0NOPE"}):
                    "a click on a message this receiver did not send",
            }
            for body, reason in cases.items():
                assert post(body, slack_headers(body)) == (400, reason)
            with world.receiver.runtime.sessions() as session:
                assert session.scalars(select(Command)).all() == []
        finally:
            world.receiver.close()


def test_dashboard_commands_need_the_admin_session_and_csrf(database_url: str) -> None:
    from web.helpers import csrf_token, text_of

    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        world = Buttons(database_url, hotglue, slack, admin_token="admin-token-1")
        try:
            world.deliver("sync_failed__exact_token_401")
            client = world.receiver.client
            hotglue.clear()
            refused = client.post("/tenants/3310/commands", data={"command": "enable_schedules"})
            assert refused.status_code in (302, 401, 403)
            client.post("/login", data={"token": "admin-token-1", "csrf_token": csrf_token(text_of(client.get("/login")))})
            no_csrf = client.post("/tenants/3310/commands", data={"command": "enable_schedules"})
            assert no_csrf.status_code == 400
            token = csrf_token(text_of(client.get("/tenants/3310")))
            form = {"command": "enable_schedules", "csrf_token": token, "nonce": "n1"}
            assert client.post("/tenants/3310/commands", data=form).status_code == 303
            assert client.post("/tenants/3310/commands", data=form).status_code == 303  # sent twice: acts once
            world.worker.drain()
            assert [w[2]["state"] for w in world.writes()] == ["ENABLED", "ENABLED"]
            # The Slack message with the same button says so, and the button is gone.
            updated = next(m for m in slack.messages if m.text.startswith(":lock:"))
            assert ":white_check_mark: Schedules re-enabled by an admin on the dashboard at" in updated.text
            assert not [b for b in updated.blocks or [] if b.get("type") == "actions"]
            page = client.get("/tenants/3310").get_data(as_text=True)
            assert "enable_schedules" in page and "dashboard" in page
        finally:
            world.receiver.close()


def test_the_clicked_message_event_lists_its_clicks(buttons: Buttons) -> None:
    buttons.deliver("sync_failed__exact_token_401")
    message = buttons.message_with(REENABLE)
    buttons.click(message, REENABLE)
    buttons.worker.drain()
    with buttons.receiver.runtime.sessions() as session:
        command = session.scalars(select(Command)).one()
    detail = buttons.receiver.client.get(f"/api/events/{command.message_event_id}").get_json()
    assert [(c["command"], c["user_name"]) for c in detail["commands"]] == [("enable_schedules", "alice")]
    page = buttons.receiver.client.get(f"/events/{command.message_event_id}").get_data(as_text=True)
    assert "alice" in page and "U0ALICE" in page


def test_a_later_repeat_of_the_alert_keeps_the_button_gone_and_the_line(buttons: Buttons) -> None:
    from conftest import payload

    buttons.deliver("sync_failed__shopify_500")
    message = buttons.message_with("hgw_retry_job")
    buttons.click(message, "hgw_retry_job")
    buttons.worker.drain()
    again = payload("sync_failed__shopify_500")
    again.update(job_id="Zc4Tv", s3_root="4821/flows/Xk2pQ9aLm/jobs/2026/11/6/28/14/Zc4Tv",
                 last_updated="2026-11-28T07:05:00+00:00")
    assert buttons.receiver.post(again).status_code == 202
    buttons.worker.drain()
    updated = next(m for m in buttons.slack.messages if m.ts == message.ts)
    assert len(updated.history) == 2  # the command's update, then the count
    assert ":white_check_mark: Job retried by <@U0ALICE>" in updated.text and ":repeat: Failed 2 times" in updated.text
    assert action_ids(updated) == ["hgw_snooze"]
