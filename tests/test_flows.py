"""Every shared payload, end to end: signed POST → worker → the exact requests HotGlue and
Slack receive (fake peers over real HTTP), on SQLite and PostgreSQL.

What must happen for each payload: ../shared/hotglue/payloads/README.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from conftest import PAYLOAD_FILES, Receiver, payload
from hotglue_webhooks.fakes import FakeHotGlue, FakeSlack
from hotglue_webhooks.storage.models import ActionRecord, Event

ENV = "production.hotglue.example.com"
API_KEY = "hg-test-key"
TOKEN = "xoxb-test-token"


def ahead() -> datetime:
    """A fixed moment for a worker's clock, just ahead of the deliveries, so all is due.

    Taken per test: a module-level one falls behind the deliveries of tests that run
    more than a minute after import.
    """
    return datetime.now(UTC) + timedelta(minutes=1)
CREDENTIALS = {
    "username": "api@shop.example",
    "password": "pw-4821-secret",
    "client_id": "cid-4821",
    "client_secret": "cs-4821-secret",
    "account_id": 98,
}


class World:
    """The receiver wired to fake HotGlue and Slack, with tenants seeded as in production."""

    def __init__(self, database_url: str, hotglue: FakeHotGlue, slack: FakeSlack) -> None:
        self.hotglue, self.slack = hotglue, slack
        # 4821: shopify on the source flow, schedule paused, valid config, never synced.
        hotglue.set_schedule(ENV, "Xk2pQ9aLm", "4821", "cron(0 */4 * * ? *)", "DISABLED")
        hotglue.set_tenant_config(ENV, "4821", {"apiCredentials": CREDENTIALS})
        # 5077: woocommerce just linked, no schedule yet, a config with an empty password.
        hotglue.set_tenant_config(ENV, "5077", {"apiCredentials": {**CREDENTIALS, "password": ""}})
        # 3310: Exact read flow and buy-order export flow, both scheduled.
        hotglue.link_flow(ENV, "3310", "Rb7TnE4wz")
        hotglue.link_flow(ENV, "3310", "Vd3HsW8qc")
        hotglue.set_schedule(ENV, "Rb7TnE4wz", "3310", "cron(30 * * * ? *)", "ENABLED")
        hotglue.set_schedule(ENV, "Vd3HsW8qc", "3310", "cron(0 8 * * ? *)", "ENABLED")
        self.receiver = Receiver(
            database_url,
            hotglue_api_key=API_KEY,
            hotglue_api_url=hotglue.url,
            slack_bot_token=TOKEN,
            slack_api_url=slack.url,
        )
        self.worker = self.receiver.worker()
        self.now = ahead()
        self.today = self.now.date().isoformat()
        self.worker.clock = lambda: self.now

    def deliver(self, *names: str) -> None:
        for name in names:
            assert self.receiver.post(name).status_code in (200, 202)
        self.worker.drain()

    def writes(self) -> list[tuple[str, str, Any]]:
        """HotGlue requests that change something: (method, raw path, JSON body)."""
        return [(r.method, r.raw_path, r.json) for r in self.hotglue.requests if r.method != "GET"]

    def texts(self) -> list[str]:
        return [m.text for m in self.slack.messages]


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        made = World(database_url, hotglue, slack)
        yield made
        made.receiver.close()


SCHEDULE_4821 = f"/{ENV}/Xk2pQ9aLm/4821/jobs/schedule"
ENABLED_4821 = {"schedule_expression": "cron(0 */4 * * ? *)", "state": "ENABLED"}


def test_job_created_and_incremental_complete_do_nothing(world: World) -> None:
    world.deliver("job_created__scheduled", "job_completed__incremental", "job_completed__incremental_encoded_ignore")
    assert world.hotglue.requests == []
    assert world.slack.messages == []


def test_full_sync_enables_schedule_links_target_and_starts_one_job(world: World) -> None:
    world.deliver("job_completed__full_sync")
    link_body = {"target": {"target": "optiply", "config": CREDENTIALS}}
    assert world.writes() == [
        ("PUT", SCHEDULE_4821, ENABLED_4821),
        ("POST", f"/{ENV}/Xk2pQ9aLm/4821/linkedTargets", link_body),
        ("POST", f"/{ENV}/Xk2pQ9aLm/4821/jobs", {"tap": "shopify", "job_name": f"wh-Xk2pQ9aLm-shopify-{world.today}"}),
    ]
    assert all(r.headers["x-api-key"] == API_KEY for r in world.hotglue.requests)
    assert world.texts() == [
        ":large_green_circle: Schedule enabled for tenant 4821 on flow Xk2pQ9aLm: cron(0 */4 * * ? *). It was DISABLED."
    ]
    # The credentials went to HotGlue, and nowhere into our database.
    with world.receiver.runtime.sessions() as session:
        stored = json.dumps([(a.params, a.request, a.response) for a in session.scalars(select(ActionRecord))])
        facts = json.dumps([e.facts for e in session.scalars(select(Event))])
    for secret in ("pw-4821-secret", "cs-4821-secret"):
        assert secret not in stored and secret not in facts


def test_a_worker_that_lost_its_lease_sends_nothing_more(world: World) -> None:
    """Another worker took the event over (this one stalled past its lease): the stalled
    one records what it already sent, and starts no further action."""
    assert world.receiver.post("job_completed__full_sync").status_code == 202
    original = world.worker.effects.execute

    def execute_then_lose_the_lease(kind: str, params: Any, key: str = "") -> Any:
        with world.receiver.runtime.engine.begin() as connection:
            connection.execute(update(Event).values(lease_owner="another-worker"))
        return original(kind, params, key)

    world.worker.effects.execute = execute_then_lose_the_lease  # type: ignore[method-assign]
    assert world.worker.drain() == 1

    assert world.writes() == [("PUT", SCHEDULE_4821, ENABLED_4821)]  # the link and the job were not sent
    with world.receiver.runtime.sessions() as session:
        [event] = session.scalars(select(Event))
        steps = [(a.kind, a.state, a.attempts) for a in session.scalars(select(ActionRecord).order_by(ActionRecord.id))]
    assert (event.state, event.lease_owner) == ("processing", "another-worker")  # not released by the stalled one
    assert steps[0] == ("hotglue.put_schedule", "done", 1)
    assert all(state == "pending" and attempts == 0 for _, state, attempts in steps[1:]) and len(steps) > 1


def test_auto_sync_with_an_invalid_config_says_which_field_and_starts_no_job(world: World) -> None:
    world.deliver("job_completed__auto_sync")
    assert world.writes() == [
        (
            "PUT",
            f"/{ENV}/Xk2pQ9aLm/5077/jobs/schedule",
            {"schedule_expression": "cron(0 */6 * * ? *)", "state": "ENABLED"},
        ),
        (
            "POST",
            f"/{ENV}/Xk2pQ9aLm/5077/linkedTargets",
            {"target": {"target": "optiply", "config": {**CREDENTIALS, "password": ""}}},
        ),
    ]
    assert world.texts() == [
        ":large_green_circle: Schedule enabled for tenant 5077 on flow Xk2pQ9aLm: cron(0 */6 * * ? *). "
        "The tenant had no schedule for this flow; it was created with the default expression.",
        ":warning: Invalid tenant config for tenant 5077: apiCredentials.password: empty.",
    ]


@pytest.mark.parametrize(
    "name", ["job_completed__incremental_named_full_sync", "job_completed__incremental_encoded_full_sync"]
)
def test_incremental_named_as_full_sync_enables_schedule_and_links_only(world: World, name: str) -> None:
    world.deliver(name)
    assert world.writes() == [
        ("PUT", SCHEDULE_4821, ENABLED_4821),
        ("POST", f"/{ENV}/Xk2pQ9aLm/4821/linkedTargets", {"target": {"target": "optiply", "config": CREDENTIALS}}),
    ]
    assert world.texts() == [
        ":large_green_circle: Schedule enabled for tenant 4821 on flow Xk2pQ9aLm: cron(0 */4 * * ? *). It was DISABLED."
    ]


def test_failures_become_slack_alerts(world: World) -> None:
    world.deliver("sync_failed__shopify_500", "etl_failed__transform")
    assert world.hotglue.requests == []
    assert world.texts() == [
        ":red_circle: SYNC_FAILED for tenant 4821 on flow Xk2pQ9aLm (shopify → optiply), job Zc4Tu: "
        "singer_sdk.exceptions.RetriableAPIError: 500 Server Error: Internal Server Error for path: "
        "/admin/api/2024-01/orders.json",
        ":red_circle: ETL_FAILED for tenant 4821 on flow Xk2pQ9aLm (shopify → optiply), job Et7Lq: "
        "ETL script failed: KeyError: 'sku'",
    ]
    assert {m.channel for m in world.slack.messages} == {"#hotglue-webhooks"}


def test_dead_exact_token_turns_every_schedule_of_the_tenant_off(world: World) -> None:
    world.deliver("sync_failed__exact_token_401")
    assert world.writes() == [
        ("PUT", f"/{ENV}/Rb7TnE4wz/3310/jobs/schedule", {"schedule_expression": "cron(30 * * * ? *)", "state": "DISABLED"}),
        ("PUT", f"/{ENV}/Vd3HsW8qc/3310/jobs/schedule", {"schedule_expression": "cron(0 8 * * ? *)", "state": "DISABLED"}),
    ]
    alert, turned_off = world.texts()
    assert alert.startswith(":red_circle: SYNC_FAILED for tenant 3310 on flow Rb7TnE4wz (exact → optiply), job mE2kV: ")
    assert turned_off == (
        ":lock: Schedules turned off for tenant 3310: Exact Online refused its refresh token. "
        "The customer must reconnect Exact Online. Turned off: Rb7TnE4wz, Vd3HsW8qc."
    )
    assert world.hotglue.schedule(ENV, "Rb7TnE4wz", "3310")["state"] == "DISABLED"


def test_buy_order_export_report_counts_distinct_failed_orders(world: World) -> None:
    world.deliver("job_completed__exact_buy_orders_failed")
    assert world.hotglue.requests == []
    [message] = world.slack.messages
    assert message.text == (
        ":package: Export to Exact Online for tenant 3310: 3 of 4 buy orders failed, "
        "plus 1 error not tied to a buy order."
    )
    blocks = json.dumps(message.blocks, ensure_ascii=False)
    assert "• 2× `Item 1045-B is blocked for purchase`" in blocks


def test_crashed_buy_order_export_says_the_count_is_unknown(world: World) -> None:
    world.deliver("export_failed__exact_crash")
    assert world.hotglue.requests == []
    assert world.texts() == [
        ":red_circle: EXPORT_FAILED for tenant 3310 on flow Vd3HsW8qc (optiply → exact), job Cr4sH: "
        "AttributeError: 'NoneType' object has no attribute 'strftime'\n"
        "Number of failed buy orders unknown: the export left no report."
    ]


def test_all_payloads_twice_and_replayed_produce_each_effect_once(world: World) -> None:
    names = [p.stem for p in PAYLOAD_FILES]
    world.deliver(*names)
    writes, texts = world.writes(), world.texts()
    # 11 messages, plus "resolved" replies: 4821's ETL failure is resolved by its next
    # completed job on the flow, 3310's crashed export by its next finished export.
    assert len(texts) == 13
    resolved = [m for m in world.slack.messages if m.text.startswith(":white_check_mark: Resolved")]
    # Different tenants: no order between them (failures are claimed first).
    assert sorted((m.thread_ts is not None, m.text.split(" of tenant ")[1][:4]) for m in resolved) == [
        (True, "3310"),
        (True, "4821"),
    ]
    world.deliver(*names)  # duplicate deliveries
    from hotglue_webhooks.worker import reopen_event

    with world.receiver.runtime.sessions() as session:
        ids = list(session.scalars(select(Event.id)))
    for event_id in ids:
        reopen_event(world.receiver.runtime.sessions, event_id, world.now)
    world.worker.drain()
    assert world.writes() == writes
    assert world.texts() == texts


def test_a_job_started_by_the_receiver_never_starts_another(world: World) -> None:
    event = payload("job_completed__full_sync")
    event["job_name"] = "wh-Xk2pQ9aLm-shopify-2026-11-27"
    world.hotglue.add_linked_target(ENV, "Xk2pQ9aLm", "4821", "optiply")
    world.receiver.post(event)
    world.worker.drain()
    assert [w[0] for w in world.writes()] == ["PUT"]  # the schedule, no job


def test_one_receiver_job_per_tenant_flow_tap_and_day(world: World) -> None:
    first = payload("job_completed__full_sync")
    second = dict(first, s3_root=first["s3_root"] + "-again", job_id="Q7mZs")
    world.receiver.post(first)
    world.receiver.post(second)
    world.worker.drain()
    jobs = [w for w in world.writes() if w[1].endswith("/jobs")]
    assert jobs == [("POST", f"/{ENV}/Xk2pQ9aLm/4821/jobs", {"tap": "shopify", "job_name": f"wh-Xk2pQ9aLm-shopify-{world.today}"})]


def test_a_failed_fact_read_retries_the_event_later(world: World) -> None:
    world.hotglue.fail_next(3, 503, match="GET /tenant/*")  # more than the client retries inline
    world.receiver.post("job_completed__full_sync")
    world.worker.drain()
    with world.receiver.runtime.sessions() as session:
        [event] = session.scalars(select(Event))
    assert event.state == "retrying" and event.decided_at is None
    assert "503" in event.last_error
    assert world.writes() == []
    world.worker.clock = lambda: world.now + timedelta(hours=1)
    world.worker.drain()
    assert [w[0] for w in world.writes()] == ["PUT", "POST", "POST"]


def test_events_of_an_unconfigured_environment_are_flagged_not_acted_on(
    database_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[environments."dev.hotglue.example.com"]\napi_key_env = "HGW_TEST_DEV_KEY"\n')
    monkeypatch.setenv("HGW_TEST_DEV_KEY", "dev-key")
    with FakeHotGlue(api_key="dev-key") as hotglue, FakeSlack(token=TOKEN) as slack:
        receiver = Receiver(
            database_url, rules_file=str(rules), hotglue_api_url=hotglue.url, slack_bot_token=TOKEN, slack_api_url=slack.url
        )
        try:
            receiver.post("sync_failed__shopify_500")  # env_id production..., not configured
            dev = dict(payload("etl_failed__transform"), env_id="dev.hotglue.example.com")
            receiver.post(dev)
            receiver.worker().drain()
            with receiver.runtime.sessions() as session:
                production, development = session.scalars(select(Event).order_by(Event.id))
        finally:
            receiver.close()
        assert production.decision == [
            "flagged, no action runs: env_id 'production.hotglue.example.com' is not listed under "
            "[environments] in the rules file"
        ]
        assert [m.text.split(":")[1] for m in slack.messages] == ["red_circle"]
        assert "ETL_FAILED" in slack.messages[0].text


def test_dry_run_records_every_action_type_with_its_request_and_sends_nothing(database_url: str) -> None:
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        World(database_url, hotglue, slack).receiver.close()  # seeds the fake's tenants
        receiver = Receiver(
            database_url, dry_run=True, hotglue_api_key=API_KEY, hotglue_api_url=hotglue.url,
            slack_bot_token=TOKEN, slack_api_url=slack.url,
        )
        try:
            receiver.post("job_completed__full_sync")
            receiver.post("sync_failed__exact_token_401")
            receiver.worker().drain()
            with receiver.runtime.sessions() as session:
                recorded = list(session.scalars(select(ActionRecord).order_by(ActionRecord.id)))
        finally:
            receiver.close()
        assert {r.method for r in hotglue.requests} == {"GET"}  # facts were read, nothing written
        assert slack.requests == []
        url = hotglue.url
    # A dry-run HotGlue write did not fail: the failure reports watching them are not needed.
    assert {a.state for a in recorded if a.kind != "slack.action_failed"} == {"dry_run"}
    assert [a.state for a in recorded if a.kind == "slack.action_failed"] == ["not_needed", "not_needed"]
    assert {a.kind for a in recorded} == {
        "hotglue.put_schedule", "hotglue.link_target", "hotglue.start_job", "slack.post_message", "slack.action_failed"
    }
    link = next(a for a in recorded if a.kind == "hotglue.link_target")
    assert link.request["method"] == "POST"
    assert link.request["url"] == f"{url}/{ENV}/Xk2pQ9aLm/4821/linkedTargets"
    assert link.request["headers"]["x-api-key"] == "[redacted]"
    assert link.request["json"]["target"]["config"]["password"] == "[redacted]"
    assert link.request["json"]["target"]["config"]["username"] == CREDENTIALS["username"]


def test_a_100_kb_traceback_still_posts_within_slack_limits(world: World) -> None:
    event = payload("sync_failed__shopify_500")
    frames = "".join(f'  File "/app/module_{n}.py", line {n}, in handler_{n}\n    call_{n}()\n' for n in range(1500))
    event["message"] = "Traceback (most recent call last):\n" + frames + "ValueError: the last line tells"
    assert len(event["message"]) > 100_000
    world.receiver.post(event)
    world.worker.drain()
    [message] = world.slack.messages  # the fake refuses over-long blocks with invalid_blocks
    assert message.text.endswith("ValueError: the last line tells")
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in message.blocks)


def failed_again(name: str, job_id: str, last_updated: str) -> dict[str, Any]:
    """The payload ``name`` as another job of the same tenant and flow, failing the same way."""
    event = payload(name)
    event.update(job_id=job_id, s3_root=event["s3_root"].rsplit("/", 1)[0] + "/" + job_id, last_updated=last_updated)
    return event


def test_a_repeated_failure_threads_counts_and_a_success_resolves(world: World) -> None:
    world.deliver("sync_failed__shopify_500")
    world.receiver.post(failed_again("sync_failed__shopify_500", "Zc4Tv", "2026-11-28T07:09:41+00:00"))
    world.receiver.post(failed_again("sync_failed__shopify_500", "Zc4Tw", "2026-11-28T08:09:41+00:00"))
    world.worker.drain()
    first, *replies = world.slack.messages
    assert first.thread_ts is None and [r.thread_ts for r in replies] == [first.ts, first.ts]
    assert [r.text.split(":")[1:3] for r in replies] == [["repeat", " Failed again (2nd time)"], ["repeat", " Failed again (3rd time)"]]
    # The first alert now carries the count (chat.update), its earlier versions kept by the fake.
    assert first.text.endswith(
        ":repeat: Failed 3 times since 2026-11-28 06:09:41 UTC, last at 2026-11-28 08:09:41 UTC (job Zc4Tw). "
        "Details in the thread."
    )
    assert len(first.history) == 2
    # Every post carries its action's idempotency key, for the peer (and us) to spot a resend.
    tokens = [m.metadata["event_payload"]["idempotency_key"] for m in world.slack.messages]
    assert len(set(tokens)) == 3 and all(len(t) == 32 for t in tokens)

    success = failed_again("job_completed__incremental", "Ok1", "2026-11-28T09:00:00+00:00")
    world.receiver.post(success)
    world.worker.drain()
    resolved = world.slack.messages[-1]
    assert resolved.thread_ts == first.ts
    assert resolved.text == (
        ":white_check_mark: Resolved: job Ok1 of tenant 4821 on flow Xk2pQ9aLm completed at 2026-11-28 09:00:00 UTC "
        "(it had failed 3 times)."
    )
    # Resolved: the next failure opens a new top-level alert.
    world.receiver.post(failed_again("sync_failed__shopify_500", "Zc4Tx", "2026-11-28T10:00:00+00:00"))
    world.worker.drain()
    assert world.slack.messages[-1].thread_ts is None


def test_hotglue_writes_carry_an_idempotency_key(world: World) -> None:
    world.deliver("job_completed__full_sync")
    keys = [r.headers.get("idempotency-key") for r in world.hotglue.requests if r.method != "GET"]
    assert len(keys) == 3 and len(set(keys)) == 3 and all(k and len(k) == 32 for k in keys)


def test_slack_is_paced_per_channel_by_the_sender(database_url: str) -> None:
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        receiver = Receiver(
            database_url, slack_bot_token=TOKEN, slack_api_url=slack.url, hotglue_api_url=hotglue.url,
            slack_min_interval_seconds=1.0, slack_pacing_horizon_seconds=1.5,
            incidents={"enabled": False},  # three tenants, one error: pacing of their own alerts here
        )
        try:
            for tenant in ("t1", "t2", "t3"):
                receiver.post(dict(payload("etl_failed__transform"), tenant=tenant, s3_root=f"{tenant}/flows/F/jobs/1"))
            worker = receiver.worker()
            waits: list[float] = []
            now = ahead()
            worker.clock, worker.sleep = (lambda: now), waits.append
            worker.drain()
            assert len(slack.messages) == 2  # the third channel slot is beyond the horizon
            assert waits == [1.0]
            with receiver.runtime.sessions() as session:
                waiting = session.scalars(select(ActionRecord).where(ActionRecord.state == "pending")).one()
            assert waiting.next_attempt_at == now + timedelta(seconds=2) and waiting.attempts == 0
            worker.clock = lambda: now + timedelta(seconds=2)
            worker.drain()
            assert len(slack.messages) == 3
        finally:
            receiver.close()


def test_a_slack_429_books_the_channel_for_every_action_and_threads_pace_by_name(database_url: str) -> None:
    from hotglue_webhooks.storage.models import SlackPacing

    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        receiver = Receiver(
            database_url, slack_bot_token=TOKEN, slack_api_url=slack.url, hotglue_api_url=hotglue.url,
            slack_min_interval_seconds=1.0,
        )
        try:
            slack.fail_next(1, 429, headers={"Retry-After": "30"})
            for tenant in ("t1", "t2"):
                receiver.post(dict(payload("etl_failed__transform"), tenant=tenant, s3_root=f"{tenant}/flows/F/jobs/1"))
            worker = receiver.worker()
            now = ahead()
            worker.clock, worker.sleep = (lambda: now), (lambda seconds: None)
            worker.drain()
            assert len(slack.requests) == 1 and slack.messages == []  # the 429, nothing after it
            with receiver.runtime.sessions() as session:
                booked = session.get(SlackPacing, "#hotglue-webhooks")
                waiting = list(session.scalars(select(ActionRecord).order_by(ActionRecord.id)))
            assert booked.next_at >= now + timedelta(seconds=30)
            assert all(a.next_attempt_at >= now + timedelta(seconds=30) for a in waiting)
            # After the wait both go out, a slot apart; a repeat in a thread paces by the name.
            later = now + timedelta(seconds=31)
            worker.clock = lambda: later
            worker.drain()
            worker.clock = lambda: later + timedelta(seconds=2)
            worker.drain()
            assert len(slack.messages) == 2
            again = dict(payload("etl_failed__transform"), tenant="t1", s3_root="t1/flows/F/jobs/2")
            receiver.post(again)
            worker.clock = lambda: later + timedelta(seconds=10)
            worker.drain()
            with receiver.runtime.sessions() as session:
                threaded = [a for a in session.scalars(select(ActionRecord)) if a.params.get("pace")]
            assert {a.kind for a in threaded} == {"slack.post_message", "slack.update_message"}
            assert {a.params["pace"] for a in threaded} == {"#hotglue-webhooks"}
            assert {a.params["channel"] for a in threaded} == {slack.messages[0].channel_id}
        finally:
            receiver.close()
