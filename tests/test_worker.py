"""The worker on a real database: processing, ordering, leases, retries, dead actions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sqlalchemy import Connection, select

from conftest import PAYLOAD_FILES, Receiver, payload
from hotglue_webhooks.storage.models import ActionRecord, Event
from hotglue_webhooks.storage.queue import claim_next
from hotglue_webhooks.worker import RetryPolicy, reopen_event


@pytest.fixture
def connection(receiver: Receiver) -> Iterator[Connection]:
    """A connection of the receiver's database, held as a worker holds one."""
    with receiver.runtime.engine.connect() as held:
        yield held


def events(receiver: Receiver) -> list[Event]:
    with receiver.runtime.sessions() as session:
        return list(session.scalars(select(Event).order_by(Event.id)))


def actions(receiver: Receiver, event_id: int | None = None) -> list[ActionRecord]:
    with receiver.runtime.sessions() as session:
        query = select(ActionRecord).order_by(ActionRecord.id)
        if event_id is not None:
            query = query.where(ActionRecord.event_id == event_id)
        return list(session.scalars(query))


def test_every_shared_payload_is_processed_and_failures_get_a_dry_run_slack_alert(receiver: Receiver) -> None:
    for path in PAYLOAD_FILES:
        assert receiver.post(path.stem).status_code == 202
    worker = receiver.worker()
    assert worker.drain() == len(PAYLOAD_FILES)
    stored = events(receiver)
    assert {e.state for e in stored} == {"done"}
    assert all(e.decision for e in stored)
    for event in stored:
        alerts = [a for a in actions(receiver, event.id) if a.rule == "failure_alert"]
        if event.status.endswith("_FAILED"):
            [alert] = alerts
            assert alert.state == "dry_run"
            assert alert.kind == "slack.post_message"
            assert alert.request["method"] == "POST"
            assert alert.request["url"] == "https://slack.com/api/chat.postMessage"
            assert alert.request["json"]["channel"] == "#hotglue-webhooks"
            assert event.tenant in alert.request["json"]["text"]
        else:
            assert alerts == []
    # Nothing left to do, and a duplicate delivery adds nothing.
    assert worker.drain() == 0
    assert receiver.post("sync_failed__shopify_500").json["duplicate"] is True
    assert worker.drain() == 0


def test_unknown_status_is_stored_with_no_rule_matched(receiver: Receiver) -> None:
    event = payload("job_created__scheduled")
    event["status"] = "SOMETHING_NEW"
    receiver.post(event)
    receiver.worker().drain()
    [stored] = events(receiver)
    assert stored.state == "done"
    assert stored.decision == ["no rule matched", "unknown status 'SOMETHING_NEW': stored, no action"]
    assert actions(receiver) == []


def test_events_of_one_tenant_run_in_last_updated_order(receiver: Receiver, connection: Connection) -> None:
    late = payload("sync_failed__shopify_500")
    late["last_updated"] = "2026-11-28T07:00:00+00:00"
    early = payload("etl_failed__transform")
    early["last_updated"] = "2026-11-28T06:00:00+00:00"
    other = payload("sync_failed__exact_token_401")
    late_id = receiver.post(late).json["id"]
    early_id = receiver.post(early).json["id"]
    other_id = receiver.post(other).json["id"]
    now = datetime.now(UTC)
    first = claim_next(connection, "w1", now, 60)
    second = claim_next(connection, "w2", now, 60)
    # Tenant 4821's earlier event first; tenant 3310 runs in parallel; 4821's later one waits.
    assert first is not None and second is not None
    assert {str(first.id), str(second.id)} == {early_id, other_id}
    assert claim_next(connection, "w3", now, 60) is None
    assert late_id not in (str(first.id), str(second.id))


def test_a_claim_reads_the_event_with_its_lease(receiver: Receiver, connection: Connection) -> None:
    sent = payload("sync_failed__shopify_500")
    event_id = int(receiver.post(sent).json["id"])
    start = datetime.now(UTC)
    claim = claim_next(connection, "w1", start, 60)
    assert claim is not None
    assert (claim.id, claim.owner, claim.attempts, claim.decided) == (event_id, "w1", 1, False)
    assert claim.payload["tenant"] == sent["tenant"] and claim.payload["status"] == "SYNC_FAILED"
    assert claim.order == (claim.order_at, event_id)
    # Its lease expires unprocessed: the next claim counts a second attempt.
    again = claim_next(connection, "w2", start + timedelta(seconds=61), 60)
    assert again is not None and (again.id, again.owner, again.attempts) == (event_id, "w2", 2)


def test_a_worker_killed_after_claiming_loses_nothing(receiver: Receiver, connection: Connection) -> None:
    receiver.post("sync_failed__shopify_500")
    start = datetime.now(UTC)
    assert claim_next(connection, "dead-worker", start, 60) is not None  # ...and then it dies
    worker = receiver.worker()
    assert worker.drain() == 0  # the lease still holds
    worker.clock = lambda: start + timedelta(seconds=61)
    assert worker.drain() == 1
    [stored] = events(receiver)
    assert stored.state == "done"
    assert stored.attempts == 2
    [alert] = actions(receiver)
    assert alert.state == "dry_run"
    assert alert.attempts == 1


def test_an_event_it_cannot_read_is_retried_then_parked_dead(receiver: Receiver) -> None:
    event_id = int(receiver.post("sync_failed__shopify_500").json["id"])
    with receiver.runtime.sessions.begin() as session:  # e.g. stored by an older version
        session.get(Event, event_id).payload = ["not", "an", "object"]  # type: ignore[union-attr]
    worker = receiver.worker()
    worker.retry = RetryPolicy(max_attempts=2, base_seconds=0.0, max_seconds=0.0)
    assert worker.drain() == 2  # a first crash, retried at once, a second one: dead
    [stored] = events(receiver)
    assert (stored.state, stored.attempts, stored.lease_owner) == ("dead", 2, None)
    assert stored.last_error is not None and stored.last_error.startswith("AttributeError")
    assert actions(receiver) == []


def test_replay_decides_again_without_repeating_done_actions(receiver: Receiver) -> None:
    event_id = int(receiver.post("sync_failed__shopify_500").json["id"])
    worker = receiver.worker()
    worker.drain()
    [before] = actions(receiver)
    assert reopen_event(receiver.runtime.sessions, event_id, datetime.now(UTC))
    assert worker.drain() == 1
    [after] = actions(receiver)
    assert (after.id, after.state, after.attempts) == (before.id, "dry_run", 1)
    assert events(receiver)[0].state == "done"
    assert not reopen_event(receiver.runtime.sessions, 424242, datetime.now(UTC))


def test_retry_policy_grows_exponentially_with_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=2, max_seconds=60)
    assert policy.delay(1, None, rand=lambda: 1.0) == 2
    assert policy.delay(1, None, rand=lambda: 0.0) == 1
    assert policy.delay(3, None, rand=lambda: 1.0) == 8
    assert policy.delay(10, None, rand=lambda: 1.0) == 60
    assert policy.delay(1, 30.0, rand=lambda: 1.0) == 30


def test_slack_alert_is_posted_once_to_the_slack_api(database_url: str) -> None:
    from hotglue_webhooks.fakes import FakeSlack

    with FakeSlack(token="xoxb-test") as slack:
        receiver = Receiver(database_url, slack_bot_token="xoxb-test", slack_api_url=slack.url)
        try:
            receiver.post("sync_failed__shopify_500")
            worker = receiver.worker()
            worker.drain()
            receiver.post("sync_failed__shopify_500")  # duplicate delivery
            worker.drain()
            [alert] = actions(receiver)
        finally:
            receiver.close()
        [message] = slack.messages
        [request] = slack.requests_to("POST /api/chat.postMessage")
    assert request.headers["authorization"] == "Bearer xoxb-test"
    assert message.channel == "#hotglue-webhooks"
    assert alert.state == "done"
    assert alert.response["ts"] == message.ts
    assert alert.request["json"]["text"] == message.text
    assert "xoxb-test" not in str(alert.request)


def test_transient_failures_back_off_then_the_action_is_parked_dead(database_url: str) -> None:
    from hotglue_webhooks.fakes import FakeSlack

    with FakeSlack(token="xoxb-test") as slack:
        receiver = Receiver(
            database_url, slack_bot_token="xoxb-test", slack_api_url=slack.url,
            max_attempts=3, retry_base_seconds=10, retry_max_seconds=1000,
        )
        try:
            slack.fail_next(1, 429, headers={"Retry-After": "120"})
            slack.outage(3600, status=503)
            receiver.post("sync_failed__shopify_500")
            worker = receiver.worker()
            now = datetime.now(UTC)
            worker.clock = lambda: now

            assert worker.drain() == 1
            [alert] = actions(receiver)
            assert (alert.state, alert.attempts) == ("retrying", 1)
            assert alert.next_attempt_at >= now + timedelta(seconds=120)  # Retry-After honoured
            assert "429" in alert.last_error
            assert events(receiver)[0].state == "retrying"
            assert worker.drain() == 0  # not before its time

            now = alert.next_attempt_at + timedelta(seconds=1)
            assert worker.drain() == 1
            [alert] = actions(receiver)
            assert (alert.state, alert.attempts) == ("retrying", 2)
            wait = alert.next_attempt_at - now
            assert timedelta(seconds=10) <= wait <= timedelta(seconds=20)  # 10·2^(2-1) s, jittered

            now = alert.next_attempt_at + timedelta(seconds=1)
            assert worker.drain() == 1
            [alert] = actions(receiver)
            assert (alert.state, alert.attempts) == ("dead", 3)
            assert "503" in alert.last_error
            assert events(receiver)[0].state == "done"
            assert len(slack.requests_to("POST /api/chat.postMessage")) == 3

            # Replay after the outage: the dead action gets fresh attempts and completes.
            slack.end_outage()
            assert reopen_event(receiver.runtime.sessions, alert.event_id, now)
            assert worker.drain() == 1
            [alert] = actions(receiver)
            assert (alert.state, alert.attempts) == ("done", 1)
            assert len(slack.messages) == 1
        finally:
            receiver.close()


def test_a_permanent_failure_is_dead_at_once(database_url: str) -> None:
    from hotglue_webhooks.fakes import FakeSlack

    with FakeSlack(token="the-real-token") as slack:
        receiver = Receiver(database_url, slack_bot_token="a-wrong-token", slack_api_url=slack.url)
        try:
            receiver.post("sync_failed__shopify_500")
            receiver.worker().drain()
            [alert] = actions(receiver)
        finally:
            receiver.close()
    assert (alert.state, alert.attempts) == ("dead", 1)
    assert "invalid_auth" in alert.last_error
    assert "a-wrong-token" not in alert.last_error


def test_a_dead_action_still_shows_the_request_it_tried(database_url: str) -> None:
    from hotglue_webhooks.fakes import FakeSlack

    with FakeSlack(token="xoxb-test") as slack:
        receiver = Receiver(database_url, slack_bot_token="xoxb-test", slack_api_url=slack.url, max_attempts=1)
        try:
            slack.outage(60, status=503)
            receiver.post("sync_failed__shopify_500")
            receiver.worker().drain()
            [alert] = actions(receiver)
        finally:
            receiver.close()
    assert alert.state == "dead"
    assert alert.request["url"].endswith("/api/chat.postMessage")
    assert alert.request["json"]["channel"] == "#hotglue-webhooks"
    assert alert.request["headers"]["Authorization"] == "[redacted]"


def test_library_log_lines_are_json_with_the_event_bound(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from hotglue_webhooks.fakes import FakeHotGlue

    with FakeHotGlue(api_key="k") as hotglue:
        receiver = Receiver(database_url, log_format="json", hotglue_api_key="k", hotglue_api_url=hotglue.url)
        try:
            hotglue.fail_next(1, 503, match="GET /tenant/*")  # the client logs its inline retry
            event_id = receiver.post("job_completed__full_sync").json["id"]
            receiver.worker().drain()
        finally:
            receiver.close()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    [retry] = [line for line in lines if "retrying" in line["event"] and line.get("logger")]
    assert retry["logger"] == "hotglue_webhooks.clients.hotglue_api"
    assert (retry["event_id"], retry["tenant"], retry["flow_id"]) == (int(event_id), "4821", "Xk2pQ9aLm")


def _stage(name: str, tenant: str, minute: int, job: str = "a") -> dict:
    """A shared payload as tenant ``tenant``'s job ``job``, last updated at 06:``minute``."""
    event = payload(name)
    event["tenant"] = tenant
    event["s3_root"] = f"{tenant}/flows/Xk2pQ9aLm/jobs/2026/11/6/28/06/{job}"
    event["last_updated"] = f"2026-11-28T06:{minute:02d}:00+00:00"
    return event


def _claim_ids(connection: Connection, now: datetime, count: int) -> list[int]:
    ids = []
    for number in range(count):
        claim = claim_next(connection, f"w{number}", now, 60)
        if claim is None:
            break
        ids.append(claim.id)
    return ids


def test_a_failure_is_claimed_before_earlier_progress_stages_of_other_tenants(
    receiver: Receiver, connection: Connection
) -> None:
    # A burst: thirty progress stages of other tenants arrive first, then one failure.
    progress = [int(receiver.post(_stage("job_created__scheduled", f"t{n}", 1)).json["id"]) for n in range(30)]
    failed = int(receiver.post(_stage("sync_failed__shopify_500", "t99", 5)).json["id"])
    full_sync = int(receiver.post(_stage("job_completed__full_sync", "t98", 6)).json["id"])
    incremental = int(receiver.post(_stage("job_completed__incremental", "t97", 0)).json["id"])
    claimed = _claim_ids(connection, datetime.now(UTC), 40)
    # Urgent first in their own order, then the rest in order; nothing left out or twice.
    assert claimed[:2] == [failed, full_sync]
    assert claimed[2:] == progress + [incremental]


def test_a_failure_brings_its_own_tenants_earlier_stages_with_it_in_order(
    receiver: Receiver, connection: Connection
) -> None:
    others = [int(receiver.post(_stage("job_created__scheduled", f"t{n}", 1)).json["id"]) for n in range(20)]
    started = int(receiver.post(_stage("job_created__scheduled", "t99", 2)).json["id"])
    failed = int(receiver.post(_stage("sync_failed__shopify_500", "t99", 5)).json["id"])
    now = datetime.now(UTC)
    # The failure waits only behind its own tenant's earlier stage, which jumps the line.
    first = claim_next(connection, "w1", now, 60)
    assert first is not None and first.id == started
    # While that one is processing, the failure stays behind it: others are claimed.
    second = claim_next(connection, "w2", now, 60)
    assert second is not None and second.id in others
    with connection.begin():
        connection.execute(
            Event.__table__.update().where(Event.id == started).values(state="done", lease_owner=None)
        )
    third = claim_next(connection, "w3", now, 60)
    assert third is not None and third.id == failed


def test_a_late_earlier_stage_of_a_failing_tenant_is_claimed_before_its_failure(
    receiver: Receiver, connection: Connection
) -> None:
    # Out of order: the failure is delivered first, its job's earlier stage after it.
    failed = int(receiver.post(_stage("sync_failed__shopify_500", "t99", 5)).json["id"])
    others = [int(receiver.post(_stage("job_created__scheduled", f"t{n}", 1)).json["id"]) for n in range(5)]
    started = int(receiver.post(_stage("job_created__scheduled", "t99", 2)).json["id"])
    now = datetime.now(UTC)
    assert _claim_ids(connection, now, 1) == [started]
    # The failure waits for it; the other tenants' stages come next, in order.
    assert _claim_ids(connection, now, 10) == others


def test_an_urgent_event_retrying_later_does_not_jump_the_line(receiver: Receiver, connection: Connection) -> None:
    failed = int(receiver.post(_stage("sync_failed__shopify_500", "t99", 5)).json["id"])
    progress = int(receiver.post(_stage("job_created__scheduled", "t1", 1)).json["id"])
    now = datetime.now(UTC)
    with connection.begin():
        connection.execute(
            Event.__table__.update().where(Event.id == failed)
            .values(state="retrying", next_attempt_at=now + timedelta(seconds=30))
        )
    assert _claim_ids(connection, now, 5) == [progress]
    assert _claim_ids(connection, now + timedelta(seconds=31), 5) == [failed]


def test_the_receivers_own_events_and_commands_are_claimed_before_a_backlog(
    receiver: Receiver, connection: Connection
) -> None:
    """An incident update, a digest or a person's command (ingest.store_own_event) waits
    behind no other tenant's progress stages: people wait for them."""
    from hotglue_webhooks.ingest import store_own_event
    from hotglue_webhooks.storage.db import transaction

    backlog = [int(receiver.post(_stage("job_created__scheduled", f"t{n}", 1)).json["id"]) for n in range(10)]
    now = datetime.now(UTC)
    with transaction(connection) as tx:
        digest = store_own_event(
            tx, {"status": "DAILY_DIGEST", "s3_root": "~digest/2026-11-27/#ops", "last_updated": now.isoformat()}, now
        )
        command = store_own_event(
            tx, {"status": "COMMAND", "s3_root": "~command/1", "command_id": 1, "tenant": "t3"}, now,
            source="command",
        )
    assert digest is not None and command is not None
    urgent = {e.id: e.urgent for e in events(receiver)}
    assert urgent[digest] and urgent[command]
    assert not any(urgent[event_id] for event_id in backlog)
    # The digest has a group of its own; the command is its tenant's, and t3's progress
    # stage was earlier: it comes along first (per-tenant order holds) ...
    t3 = backlog[3]
    assert _claim_ids(connection, now, 2) == [digest, t3]
    with connection.begin():
        connection.execute(Event.__table__.update().where(Event.id == t3).values(state="done", lease_owner=None))
    # ... and once it is done, the command goes before the rest of the backlog.
    assert _claim_ids(connection, now, 20) == [command, *(event_id for event_id in backlog if event_id != t3)]


def test_urgency_is_stored_at_ingest(receiver: Receiver) -> None:
    for name in ("sync_failed__exact_token_401", "job_completed__auto_sync", "job_completed__incremental",
                 "job_created__scheduled", "etl_failed__transform"):
        receiver.post(name)
    urgent = {e.status + ":" + (e.sync_type or ""): e.urgent for e in events(receiver)}
    assert urgent == {
        "SYNC_FAILED:" + (payload("sync_failed__exact_token_401").get("sync_type") or ""): True,
        "JOB_COMPLETED:auto_sync": True,
        "JOB_COMPLETED:incremental_sync": False,
        "JOB_CREATED:" + (payload("job_created__scheduled").get("sync_type") or ""): False,
        "ETL_FAILED:" + (payload("etl_failed__transform").get("sync_type") or ""): True,
    }
