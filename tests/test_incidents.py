"""Incidents end to end: signed POSTs → worker → fake Slack, on SQLite and PostgreSQL.

The worker's clock is set by hand (no sleeping, no timing assertions): the group wait,
the update interval and the recovery are moments the test moves to.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from conftest import Receiver, payload
from hotglue_webhooks.fakes import FakeSlack
from hotglue_webhooks.storage.models import ActionRecord, Event, Incident, IncidentMember

TOKEN = "xoxb-test-token"
PUBLIC = "https://hooks.example.com"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN) as fake:
        yield fake


def make(database_url: str, slack: FakeSlack, **incidents: Any) -> Receiver:
    return Receiver(
        database_url, slack_bot_token=TOKEN, slack_api_url=slack.url, public_url=PUBLIC,
        incidents={"group_wait_seconds": 30, "update_interval_seconds": 10, **incidents},
    )


def shopify_500(tenant: str, job: str = "J1") -> dict[str, Any]:
    return dict(
        payload("sync_failed__shopify_500"), tenant=tenant, started_by=tenant, job_id=job,
        s3_root=f"{tenant}/flows/Xk2pQ9aLm/jobs/{job}",
    )


def completed(tenant: str, job: str = "J2") -> dict[str, Any]:
    return dict(
        payload("job_completed__incremental"), tenant=tenant, started_by=tenant, job_id=job, flow_id="Xk2pQ9aLm",
        s3_root=f"{tenant}/flows/Xk2pQ9aLm/jobs/{job}", last_updated="2026-11-28T09:00:00+00:00",
    )


def drain_at(receiver: Receiver, moment: datetime) -> None:
    worker = receiver.worker()
    worker.clock, worker.sleep = (lambda: moment), (lambda seconds: None)
    worker.drain()


def top_level(slack: FakeSlack) -> list[Any]:
    return [m for m in slack.messages if m.thread_ts is None]


def states(receiver: Receiver) -> dict[str, list[str]]:
    with receiver.runtime.sessions() as session:
        rows = session.execute(select(Event.tenant, ActionRecord.state).join(Event, Event.id == ActionRecord.event_id))
        result: dict[str, list[str]] = {}
        for tenant, state in rows:
            result.setdefault(str(tenant), []).append(state)
    return result


def test_a_burst_is_one_incident_from_the_start_and_a_lone_error_its_own_message(database_url: str, slack: FakeSlack) -> None:
    receiver = make(database_url, slack)
    try:
        for tenant in ("1001", "1002", "1003", "1004", "1005"):
            assert receiver.post(shopify_500(tenant)).status_code == 202
        lone = dict(payload("etl_failed__transform"), tenant="2001", started_by="2001", s3_root="2001/flows/F/jobs/1")
        receiver.post(lone)
        now = datetime.now(UTC) + timedelta(minutes=1)
        drain_at(receiver, now)
        # The third tenant opened the incident: one message, at once, naming all five.
        (incident,) = top_level(slack)
        assert "*Incident*: SYNC_FAILED on shopify → optiply is failing for 5 tenants" in incident.blocks[0]["text"]["text"]
        assert "*Tenants*: 1001, 1002, 1003, 1004, 1005 (all in the thread)" == incident.blocks[2]["text"]["text"]
        (thread,) = slack.replies(incident.ts)
        assert thread.text == "Tenants 1–5 of 5 in this incident: 1001, 1002, 1003, 1004, 1005"
        assert f"<{PUBLIC}/tenants/1003|1003> on flow Xk2pQ9aLm" in thread.blocks[1]["text"]["text"]
        # The lone error waits the group wait, never longer.
        drain_at(receiver, now + timedelta(seconds=29))
        assert len(top_level(slack)) == 1
        drain_at(receiver, now + timedelta(seconds=31))
        lone_alert = top_level(slack)[1]
        assert lone_alert.text.startswith(":red_circle: ETL_FAILED for tenant 2001")
        assert len(top_level(slack)) == 2
        # Every failure is accounted for: folded (explicitly, with the incident), or posted.
        by_tenant = states(receiver)
        for tenant in ("1001", "1002", "1003", "1004", "1005"):
            assert by_tenant[tenant] == ["folded"]
        assert by_tenant["2001"] == ["done"]
        with receiver.runtime.sessions() as session:
            errors = session.scalars(select(ActionRecord.last_error).where(ActionRecord.state == "folded")).all()
            assert all(e and e.startswith("folded into incident 1 (signature ") for e in errors), errors
            assert session.scalar(select(Incident.state)) == "open"

        # Recovery: each tenant's next finished job; all recovered → resolved, with its duration.
        for tenant in ("1001", "1002", "1003", "1004", "1005"):
            receiver.post(completed(tenant))
        drain_at(receiver, now + timedelta(minutes=2))
        drain_at(receiver, now + timedelta(minutes=3))
        incident = top_level(slack)[0]
        assert incident.blocks[0]["text"]["text"].startswith(":white_check_mark: *Resolved* after ")
        assert "SYNC_FAILED on shopify → optiply for 5 tenants" in incident.blocks[0]["text"]["text"]
        assert len(top_level(slack)) == 2  # updated in place, nothing new
        with receiver.runtime.sessions() as session:
            row = session.scalars(select(Incident)).one()
            assert row.state == "resolved" and row.open_signature is None
            members = session.scalars(select(IncidentMember).where(IncidentMember.incident_id == row.id)).all()
            assert len(members) == 5 and all(m.recovered_at is not None for m in members)
    finally:
        receiver.close()


def test_tenants_with_their_own_alert_are_linked_not_alerted_again(database_url: str, slack: FakeSlack) -> None:
    receiver = make(database_url, slack, group_wait_seconds=0)
    try:
        now = datetime.now(UTC) + timedelta(minutes=1)
        receiver.post(shopify_500("1001"))
        receiver.post(shopify_500("1002"))
        drain_at(receiver, now)
        assert [m.text.split(" on flow")[0] for m in top_level(slack)] == [
            ":red_circle: SYNC_FAILED for tenant 1001", ":red_circle: SYNC_FAILED for tenant 1002",
        ]
        receiver.post(shopify_500("1003"))
        receiver.post(shopify_500("1004"))
        drain_at(receiver, now + timedelta(minutes=1))
        messages = top_level(slack)
        assert len(messages) == 3
        incident = messages[2]
        assert "failing for 4 tenants" in incident.blocks[0]["text"]["text"]
        (thread,) = slack.replies(incident.ts)
        own = messages[0]
        listing = thread.blocks[1]["text"]["text"]
        assert f"<https://slack.com/archives/{own.channel_id}/p{own.ts.replace('.', '')}|its own alert>" in listing
        assert listing.count("its own alert") == 2
        # A later joiner: one update in place and one more reply, after the update interval.
        receiver.post(shopify_500("1005"))
        drain_at(receiver, now + timedelta(minutes=1, seconds=5))
        assert len(slack.replies(incident.ts)) == 1  # the next update waits its interval
        drain_at(receiver, now + timedelta(minutes=1, seconds=20))
        replies = slack.replies(incident.ts)
        assert [r.text for r in replies][1] == "Tenant 5 of 5 in this incident: 1005"
        assert "failing for 5 tenants" in top_level(slack)[2].blocks[0]["text"]["text"]
        assert top_level(slack)[2].history  # chat.update, not a new message
    finally:
        receiver.close()


def test_different_connectors_and_codes_stay_apart(database_url: str, slack: FakeSlack) -> None:
    receiver = make(database_url, slack, group_wait_seconds=0)
    try:
        for n, tap in enumerate(("shopify", "woocommerce", "magento")):
            receiver.post(dict(shopify_500(f"300{n}"), tap=tap))
        for n in range(3):
            body = shopify_500(f"400{n}")
            body["message"] = body["message"].replace("500 Server Error: Internal Server Error", "401 Client Error: Unauthorized") if n == 0 else body["message"]
            body["target"] = "exact"
            receiver.post(body)
        drain_at(receiver, datetime.now(UTC) + timedelta(minutes=1))
        assert len(top_level(slack)) == 6  # 3 connectors; 401 ≠ 500 on exact; 2 exact 500s stay below K
    finally:
        receiver.close()


def test_off_in_the_rules_file_every_tenant_alerts_alone(database_url: str, slack: FakeSlack) -> None:
    receiver = make(database_url, slack, enabled=False)
    try:
        for tenant in ("1001", "1002", "1003", "1004"):
            receiver.post(shopify_500(tenant))
        drain_at(receiver, datetime.now(UTC) + timedelta(minutes=1))
        assert len(top_level(slack)) == 4
        assert set(sum(states(receiver).values(), [])) == {"done"}
    finally:
        receiver.close()


def test_an_idle_incident_expires_with_a_last_update(database_url: str, slack: FakeSlack) -> None:
    receiver = make(database_url, slack, group_wait_seconds=0, expire_minutes=30)
    try:
        now = datetime.now(UTC) + timedelta(minutes=1)
        for tenant in ("1001", "1002", "1003"):
            receiver.post(shopify_500(tenant))
        drain_at(receiver, now)
        worker = receiver.worker()
        worker.tick(now + timedelta(minutes=31))
        drain_at(receiver, now + timedelta(minutes=32))
        incident = top_level(slack)[-1]
        assert incident.blocks[0]["text"]["text"].startswith(":grey_question: *Closed*: SYNC_FAILED on shopify → optiply for 3 tenants")
        with receiver.runtime.sessions() as session:
            assert session.scalars(select(Incident.state)).one() == "expired"
        # The signature starts afresh: a new failure is a sighting again, not a fold.
        receiver.post(shopify_500("1004", job="J9"))
        drain_at(receiver, now + timedelta(minutes=33))
        assert top_level(slack)[-1].text.startswith(":red_circle: SYNC_FAILED for tenant 1004")
    finally:
        receiver.close()


def test_a_replayed_first_update_updates_the_message_instead_of_posting_another(database_url: str, slack: FakeSlack) -> None:
    from sqlalchemy import update

    from hotglue_webhooks.worker import reopen_event

    receiver = make(database_url, slack, group_wait_seconds=0)
    try:
        now = datetime.now(UTC) + timedelta(minutes=1)
        for tenant in ("1001", "1002", "1003"):
            receiver.post(shopify_500(tenant))
        drain_at(receiver, now)
        (incident,) = [m for m in top_level(slack) if "*Incident*" in m.blocks[0]["text"]["text"]]
        with receiver.runtime.sessions.begin() as session:
            event_id = session.scalars(select(Event.id).where(Event.status == "INCIDENT_UPDATE")).one()
            # As if its post had died and the message had come from a later update.
            session.execute(
                update(ActionRecord).where(ActionRecord.event_id == event_id, ActionRecord.position == 0).values(state="dead")
            )
        assert reopen_event(receiver.runtime.sessions, event_id, now)
        drain_at(receiver, now + timedelta(seconds=5))
        assert [m.ts for m in top_level(slack) if "*Incident*" in m.blocks[0]["text"]["text"]] == [incident.ts]
        assert next(m for m in top_level(slack) if m.ts == incident.ts).history  # chat.update
        assert len(slack.replies(incident.ts)) == 1  # its members were named once
    finally:
        receiver.close()
