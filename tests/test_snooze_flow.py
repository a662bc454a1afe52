"""Snoozes end to end: made through the admin API and the CLI, honoured by the worker
(only Slack is held; HotGlue actions still run), summarised once when they end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from conftest import Receiver, payload
from hotglue_webhooks.fakes import FakeHotGlue, FakeSlack
from hotglue_webhooks.storage.models import ActionRecord, Event, SnoozeRow

ENV = "production.hotglue.example.com"
API_KEY = "hg-test-key"
TOKEN = "xoxb-test-token"


@pytest.fixture
def peers() -> Iterator[tuple[FakeHotGlue, FakeSlack]]:
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        hotglue.link_flow(ENV, "3310", "Rb7TnE4wz")
        hotglue.set_schedule(ENV, "Rb7TnE4wz", "3310", "cron(30 * * * ? *)", "ENABLED")
        yield hotglue, slack


def make(database_url: str, hotglue: FakeHotGlue, slack: FakeSlack, **incidents: Any) -> Receiver:
    return Receiver(
        database_url, hotglue_api_key=API_KEY, hotglue_api_url=hotglue.url, slack_bot_token=TOKEN,
        slack_api_url=slack.url, incidents={"group_wait_seconds": 0, **incidents},
    )


def drain_at(receiver: Receiver, moment: datetime) -> None:
    worker = receiver.worker()
    worker.clock, worker.sleep = (lambda: moment), (lambda seconds: None)
    worker.drain()


def test_a_snoozed_tenant_still_has_its_schedules_turned_off_and_gets_one_summary(
    database_url: str, peers: tuple[FakeHotGlue, FakeSlack]
) -> None:
    hotglue, slack = peers
    receiver = make(database_url, hotglue, slack)
    try:
        until = datetime.now(UTC) + timedelta(hours=2)
        answer = receiver.client.post(
            "/api/snoozes", json={"scope": "tenant", "target": "3310", "until": until.isoformat(), "by": "alice",
                                  "reason": "Exact maintenance"},
        )
        assert answer.status_code == 201, answer.json
        assert answer.json["by"] == "alice" and answer.json["held"] == 0
        assert receiver.post("sync_failed__exact_token_401").status_code == 202
        drain_at(receiver, datetime.now(UTC) + timedelta(minutes=1))
        puts = [r for r in hotglue.requests if r.method == "PUT"]
        assert [r.json["state"] for r in puts] == ["DISABLED"]  # HotGlue still acted
        assert slack.messages == []  # Slack held: the alert and the schedules-off message
        with receiver.runtime.sessions() as session:
            held = session.scalars(select(ActionRecord).where(ActionRecord.state == "held")).all()
            assert len(held) == 2
            assert all(h.last_error and h.last_error.startswith(f"held by snooze {answer.json['id']} until ") for h in held)
            assert session.get(SnoozeRow, answer.json["id"]).held == 2  # type: ignore[union-attr]
        # Shown on the dashboard and in the API like any event.
        event = receiver.client.get("/api/events/1").json
        assert {a["state"] for a in event["actions"]} == {"held", "done", "not_needed"}
        listed = receiver.client.get("/api/snoozes").json["snoozes"]
        assert [s["target"] for s in listed] == ["3310"]

        # The snooze ends: one summary of what happened meanwhile, once.
        after = until + timedelta(seconds=1)
        worker = receiver.worker()
        worker.tick(after)
        worker.tick(after)  # a second look (another worker) stores nothing more
        drain_at(receiver, after + timedelta(seconds=1))
        (summary,) = slack.messages
        assert summary.text.startswith(":alarm_clock: Snooze of tenant 3310 by alice ended (")
        assert "2 Slack alerts held." in summary.text and "1 failure meanwhile (1× SYNC_FAILED)." in summary.text
        assert "Reason given: Exact maintenance" in summary.text
        (ended,) = receiver.client.get("/api/snoozes?all=true").json["snoozes"]
        assert ended["ended_at"] is not None and ended["held"] == 2
    finally:
        receiver.close()


def test_a_signature_snooze_holds_that_error_only_and_counts_no_incident(
    database_url: str, peers: tuple[FakeHotGlue, FakeSlack]
) -> None:
    hotglue, slack = peers
    receiver = make(database_url, hotglue, slack)
    try:
        failure = dict(payload("sync_failed__shopify_500"), tenant="1001", started_by="1001", s3_root="1001/f/Xk/jobs/1")
        receiver.post(failure)
        drain_at(receiver, datetime.now(UTC) + timedelta(minutes=1))
        with receiver.runtime.sessions() as session:
            group = session.scalars(select(ActionRecord.params)).one()["incident"]["group"]
        answer = receiver.client.post("/api/snoozes", json={"scope": "signature", "target": group, "until": "2h"})
        assert answer.status_code == 201 and answer.json["by"] == "api"
        for tenant in ("1002", "1003", "1004"):
            receiver.post(dict(failure, tenant=tenant, started_by=tenant, s3_root=f"{tenant}/f/Xk/jobs/1"))
        other = dict(payload("etl_failed__transform"), tenant="2001", started_by="2001", s3_root="2001/f/F/jobs/1")
        receiver.post(other)
        drain_at(receiver, datetime.now(UTC))  # the real clock: the snooze is lifted by it below
        texts = [m.text.split(" on flow")[0] for m in slack.messages]
        assert texts == [":red_circle: SYNC_FAILED for tenant 1001", ":red_circle: ETL_FAILED for tenant 2001"]
        assert receiver.client.get("/api/incidents").json["incidents"] == []
        # Lifted early: the summary names the tenants it held.
        lifted = receiver.client.post(f"/api/snoozes/{answer.json['id']}/lift", json={})
        assert lifted.status_code == 200
        receiver.worker().tick(datetime.now(UTC) + timedelta(seconds=1))
        drain_at(receiver, datetime.now(UTC) + timedelta(minutes=3))
        summary = slack.messages[-1].text
        assert f"Snooze of signature `{group}` by api ended" in summary
        assert "Tenants: 1002, 1003, 1004." in summary and "3 Slack alerts held." in summary
    finally:
        receiver.close()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"scope": "flow", "target": "1", "until": "2h"}, {"json": {"scope": ["Must be one of: tenant, signature."]}}),
        ({"scope": "tenant", "target": "1", "until": "yesterday"}, None),
        ({"scope": "tenant", "target": "1", "until": "2020-01-01T00:00:00Z"}, "is not in the future"),
        ({"scope": "tenant", "target": "1", "until": "90d"}, "more than 30 days ahead"),
        ({"scope": "signature", "target": "4821", "until": "2h"}, "is not an incident signature"),
        ({"scope": "tenant", "target": " ", "until": "2h"}, "snooze target is empty"),
    ],
)
def test_bad_snoozes_get_a_clear_400(database_url: str, peers: tuple[FakeHotGlue, FakeSlack], body: dict[str, Any], detail: Any) -> None:
    hotglue, slack = peers
    receiver = make(database_url, hotglue, slack)
    try:
        answer = receiver.client.post("/api/snoozes", json=body)
        assert answer.status_code == 400, answer.json
        if isinstance(detail, str):
            assert detail in answer.json["detail"] and "\n" not in answer.json["detail"]
        elif detail is not None:
            assert answer.json["detail"] == detail
        assert "/api/snoozes" in receiver.client.get("/openapi.json").json["paths"]
    finally:
        receiver.close()


def test_the_cli_snoozes_lists_and_lifts(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from hotglue_webhooks.cli import main

    monkeypatch.setenv("HGW_DATABASE_URL", database_url)
    runner = CliRunner()
    made = runner.invoke(main, ["snooze", "tenant", "4821", "--for", "2h", "--by", "bob", "--reason", "migration"])
    assert made.exit_code == 0, made.output
    assert made.output.startswith("snooze 1: tenant 4821 until ") and made.output.rstrip().endswith(" by bob")
    listed = runner.invoke(main, ["snooze", "list"])
    assert listed.output.startswith("1\ttenant 4821\tuntil ") and "\tby bob\theld 0\tmigration" in listed.output
    refused = runner.invoke(main, ["snooze", "signature", "not-a-signature", "--for", "2h"])
    assert refused.exit_code == 1 and "is not an incident signature" in refused.output
    both = runner.invoke(main, ["snooze", "tenant", "4821"])
    assert both.exit_code == 2 and "give exactly one of --for DURATION or --until TIME" in both.output
    lifted = runner.invoke(main, ["snooze", "lift", "1"])
    assert lifted.exit_code == 0 and "the worker posts its summary" in lifted.output
    assert runner.invoke(main, ["snooze", "list"]).output == "no snooze in force\n"
    assert runner.invoke(main, ["incidents"]).output == "no open incident\n"
    said = runner.invoke(main, ["check-config"]).output
    assert "incidents:       3 tenants with one signature within 10 min; first alerts wait 30 s; updates at most every 10 s" in said
    assert "daily digest:    off" in said and "snoozes:         at most 30 days" in said
