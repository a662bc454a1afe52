"""The snooze buttons end to end: Snooze 24 h on a failure alert and Snooze incident on an
incident's message, clicked as Slack sends a click (signed form POST) against the real
endpoint, carried out by the worker, on SQLite and PostgreSQL. Asserted: the snooze stored,
the fake Slack's chat.update (button gone, who snoozed what until when), a second click
answered on response_url, and the snooze holding the next alerts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import payload
from hotglue_webhooks.fakes import FakeHotGlue, FakeSlack
from hotglue_webhooks.storage.models import ActionRecord, Command, Event, Incident, SnoozeRow
from test_flows import API_KEY, TOKEN
from test_incidents import completed, shopify_500
from test_interactions import BOB, Buttons, action_ids, block_actions, buttons, post_signed  # noqa: F401  (the fixture)

SNOOZE, SNOOZE_INCIDENT = "hgw_snooze", "hgw_snooze_incident"


class Killed(BaseException):
    """The worker process died here (nothing in the worker catches it)."""


@pytest.fixture
def incidents(database_url: str) -> Iterator[Buttons]:
    """A world with buttons whose shared failures become an incident (group wait 30 s)."""
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        made = Buttons(database_url, hotglue, slack, incidents={"group_wait_seconds": 30, "update_interval_seconds": 10})
        yield made
        made.receiver.close()


def snoozes(world: Buttons) -> list[tuple[str, str, str, Any]]:
    with world.receiver.runtime.sessions() as session:
        return [(s.scope, s.target, s.by, s.until) for s in session.scalars(select(SnoozeRow).order_by(SnoozeRow.id))]


def when(moment: Any) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def test_snooze_24_h_holds_the_tenant_says_so_on_the_alert_and_acts_once(buttons: Buttons) -> None:
    buttons.deliver("sync_failed__shopify_500")
    alert = buttons.message_with(SNOOZE)
    assert action_ids(alert) == ["hgw_retry_job", SNOOZE]
    assert buttons.click(alert, SNOOZE).status_code == 200
    buttons.worker.drain()

    until = buttons.now.replace(microsecond=0) + timedelta(hours=24)
    assert snoozes(buttons) == [("tenant", "4821", "alice", until)]
    (update,) = buttons.slack.requests_to("POST /api/chat.update")
    assert (update.json["channel"], update.json["ts"]) == (alert.channel_id, alert.ts)
    updated = next(m for m in buttons.slack.messages if m.ts == alert.ts)
    line = f":white_check_mark: This tenant's alerts snoozed until {when(until)} by <@U0ALICE> at {when(buttons.now)}"
    assert updated.text.endswith("\n" + line) and updated.blocks[-1]["elements"][0]["text"] == line
    assert action_ids(updated) == ["hgw_retry_job"]  # Snooze is gone, Retry job stays
    assert buttons.writes() == []  # a snooze changes nothing in HotGlue

    # Bob still sees the old message and clicks Snooze too: told who did it, nothing more.
    assert buttons.click(alert, SNOOZE, user=BOB).status_code == 200
    buttons.worker.drain()
    (answer,) = buttons.slack.responses
    assert answer["text"] == f":information_source: Snooze 24 h: already done by <@U0ALICE> at {when(buttons.now)}."
    assert answer["response_type"] == "ephemeral"
    assert len(snoozes(buttons)) == 1

    # Recorded like every click: the Slack user's id and name, on the tenant's commands.
    listed = buttons.receiver.client.get("/api/tenants/4821/commands").get_json()["commands"]
    assert [(c["command"], c["user_id"], c["user_name"], c["outcome"]) for c in listed] == [
        ("snooze", "U0BOB", "bob", "done"), ("snooze", "U0ALICE", "alice", "done"),
    ]

    # The next failure of the tenant is decided and recorded, its alert held by the snooze.
    messages = len(buttons.slack.messages)
    again = dict(payload("etl_failed__transform"), tenant="4821", started_by="4821", s3_root="4821/flows/F/jobs/2")
    assert buttons.receiver.post(again).status_code == 202
    buttons.worker.drain()
    assert len(buttons.slack.messages) == messages
    with buttons.receiver.runtime.sessions() as session:
        held = session.scalars(select(ActionRecord.last_error).where(ActionRecord.state == "held")).all()
    assert len(held) == 1 and held[0].startswith("held by snooze 1 until ")


def test_a_snooze_carried_out_again_after_a_crash_makes_one_snooze(buttons: Buttons) -> None:
    buttons.deliver("sync_failed__shopify_500")
    alert = buttons.message_with(SNOOZE)
    assert buttons.click(alert, SNOOZE).status_code == 200
    worker = buttons.worker
    original = worker._snooze

    def snooze_then_die(step: Any) -> Any:
        original(step)  # the snooze is committed; its action is never recorded as done
        raise Killed

    worker._snooze = snooze_then_die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        worker.drain()
    assert len(snoozes(buttons)) == 1

    # Another worker, once the dead one's lease ran out, carries the action out again.
    later = buttons.receiver.worker()
    moment = buttons.now + timedelta(seconds=buttons.receiver.settings.lease_seconds + 5)
    later.clock = lambda: moment
    later.drain()
    assert len(snoozes(buttons)) == 1
    with buttons.receiver.runtime.sessions() as session:
        record = session.scalars(select(ActionRecord).where(ActionRecord.kind == "receiver.snooze")).one()
        assert (record.state, record.attempts, record.response["new"]) == ("done", 2, False)
    updated = next(m for m in buttons.slack.messages if m.ts == alert.ts)
    assert action_ids(updated) == ["hgw_retry_job"]


def test_snooze_incident_holds_its_signature_updates_its_message_and_acts_once(incidents: Buttons) -> None:
    world = incidents
    for tenant in ("1001", "1002", "1003", "1004", "1005"):
        assert world.receiver.post(shopify_500(tenant)).status_code == 202
    world.worker.drain()
    world.now += timedelta(seconds=31)  # the first two alerts waited the group wait: folded now
    world.worker.drain()
    message = world.message_with(SNOOZE_INCIDENT)
    assert message.thread_ts is None and "is failing for 5 tenants" in message.blocks[0]["text"]["text"]
    assert action_ids(message) == [SNOOZE_INCIDENT]
    with world.receiver.runtime.sessions() as session:
        signature = session.scalars(select(Incident.signature)).one()

    assert world.click(message, SNOOZE_INCIDENT).status_code == 200
    world.worker.drain()

    until = world.now.replace(microsecond=0) + timedelta(hours=24)
    assert snoozes(world) == [("signature", signature, "alice", until)]
    updated = next(m for m in world.slack.messages if m.ts == message.ts)
    line = (
        f":white_check_mark: Incident snoozed (alerts with its signature held) until {when(until)} by <@U0ALICE> "
        f"at {when(world.now)}"
    )
    assert updated.blocks[-1]["elements"][0]["text"] == line and updated.text.endswith("\n" + line)
    assert action_ids(updated) == []
    assert "is failing for 5 tenants" in updated.blocks[0]["text"]["text"]
    assert [r.json["ts"] for r in world.slack.requests_to("POST /api/chat.update")] == [message.ts]
    with world.receiver.runtime.sessions() as session:
        command = session.scalars(select(Command)).one()
        assert (command.command, command.user_id, command.user_name, command.target) == (
            "snooze_incident", "U0ALICE", "alice", {"incident": 1},
        )
        queue_item = session.get(Event, command.event_id)
        assert queue_item is not None and queue_item.order_group == "~incident/1"

    # A second click: answered on response_url with who did it; no second snooze.
    assert world.click(message, SNOOZE_INCIDENT, user=BOB).status_code == 200
    world.worker.drain()
    (answer,) = world.slack.responses
    assert answer["text"] == f":information_source: Snooze incident: already done by <@U0ALICE> at {when(world.now)}."
    assert len(snoozes(world)) == 1

    # A new tenant failing the same way is held (not added to the incident), and the
    # incident's next update keeps the button away and says who snoozed it.
    posted = len(world.slack.messages)
    assert world.receiver.post(shopify_500("1006")).status_code == 202
    assert world.receiver.post(completed("1001")).status_code == 202
    world.worker.drain()
    world.now += timedelta(seconds=11)
    world.worker.drain()
    with world.receiver.runtime.sessions() as session:
        held = session.scalar(select(func.count()).select_from(ActionRecord).where(ActionRecord.state == "held"))
    assert held == 1
    assert len(world.slack.messages) == posted  # the update is in place
    again = next(m for m in world.slack.messages if m.ts == message.ts)
    assert "1 of 5 recovered" in again.blocks[0]["text"]["text"]
    assert action_ids(again) == []
    assert again.blocks[-1]["elements"][0]["text"] == (
        f":zzz: Snoozed by alice until {when(until)}: new alerts with this signature are held"
    )


def test_an_incident_button_pasted_under_another_message_is_refused(incidents: Buttons) -> None:
    world = incidents
    for tenant in ("1001", "1002", "1003"):
        world.receiver.post(shopify_500(tenant))
    world.worker.drain()
    message = world.message_with(SNOOZE_INCIDENT)
    element = message.blocks[-1]["elements"][0]
    url = world.slack.response_url()
    cases = {
        block_actions(message, element, BOB, url, value='{"incident": 2}'): (
            "the button value names another incident than its message"
        ),
        block_actions(message, element, BOB, url, container={"message_ts": "1.000001", "channel_id": message.channel_id},
                      message={"ts": "1.000001"}): "a click on a message this receiver did not send",
        block_actions(message, element, BOB, url, action_id=SNOOZE): (
            "the button value does not fit its action_id (an incident's button names an incident)"
        ),
    }
    for body, reason in cases.items():
        answer = post_signed(world.receiver, body)
        assert (answer.status_code, answer.get_json()["error"]) == (400, reason)
    with world.receiver.runtime.sessions() as session:
        assert session.scalars(select(Command)).all() == []


def test_the_dashboard_snoozes_a_tenant_behind_login_and_csrf_and_the_alert_says_so(database_url: str) -> None:
    from web.helpers import csrf_token, text_of

    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        world = Buttons(database_url, hotglue, slack, admin_token="admin-token-1")
        try:
            world.deliver("sync_failed__shopify_500")
            client = world.receiver.client
            assert client.post("/tenants/4821/commands", data={"command": "snooze"}).status_code in (302, 401, 403)
            client.post("/login", data={"token": "admin-token-1", "csrf_token": csrf_token(text_of(client.get("/login")))})
            page = text_of(client.get("/tenants/4821"))
            assert "Snooze 24 h" in page
            form = {"command": "snooze", "csrf_token": csrf_token(page), "nonce": "n1"}
            assert client.post("/tenants/4821/commands", data=form).status_code == 303
            assert client.post("/tenants/4821/commands", data=form).status_code == 303  # sent twice: acts once
            world.worker.drain()
            until = world.now.replace(microsecond=0) + timedelta(hours=24)
            assert snoozes(world) == [("tenant", "4821", "dashboard", until)]
            updated = next(m for m in slack.messages if m.text.startswith(":red_circle:"))
            assert updated.text.endswith(
                f"\n:white_check_mark: This tenant's alerts snoozed until {when(until)} by an admin on the dashboard "
                f"at {when(world.now)}"
            )
            assert action_ids(updated) == ["hgw_retry_job"]
        finally:
            world.receiver.close()
