"""Reconciliation end to end: fake HotGlue's job list seeded per (flow, tenant), a real
database (SQLite and PostgreSQL), the worker, and the exact requests HotGlue and Slack
receive. What is missing from the log is stored once, as ``reconciled``, and processed by
the normal rules once; nothing else is touched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from conftest import payload
from hotglue_webhooks.fakes import FakeHotGlue, FakeSlack
from hotglue_webhooks.reconcile import PassSummary, Reconciler
from hotglue_webhooks.rules.messages import NEVER_ARRIVED
from hotglue_webhooks.storage.models import Event, ReconcilePass
from test_flows import API_KEY, ENABLED_4821, ENV, SCHEDULE_4821, TOKEN, World

FLOW = "Xk2pQ9aLm"
JOBS_4821 = f"GET /{ENV}/{FLOW}/4821/jobs"


class ReconcileWorld(World):
    """The flow tests' world, with a reconciler on the worker's clock that never sleeps."""

    def __init__(self, database_url: str, hotglue: FakeHotGlue, slack: FakeSlack) -> None:
        super().__init__(database_url, hotglue, slack)
        self.slept: list[float] = []
        self.reconciler: Reconciler = self.receiver.runtime.reconciler(clock=lambda: self.now, sleep=self.slept.append)

    def stage(self, name: str, hours_ago: float = 1.0, **changes: Any) -> dict[str, Any]:
        """A shared payload as a job of HotGlue's list, updated ``hours_ago`` before now."""
        job = payload(name)
        job["last_updated"] = (self.now - timedelta(hours=hours_ago)).isoformat()
        job.update(changes)
        return job

    def post(self, job: dict[str, Any]) -> int:
        answer = self.receiver.post(job)
        assert answer.status_code in (200, 202), answer.get_data(as_text=True)
        return int(answer.status_code)

    def reconcile(self, **options: Any) -> PassSummary:
        summary = self.reconciler.run(self.now - timedelta(hours=24), **options)
        self.worker.drain()
        return summary

    def events(self) -> list[Event]:
        with self.receiver.runtime.sessions() as session:
            return list(session.scalars(select(Event).order_by(Event.id)))


@pytest.fixture
def world(database_url: str) -> Iterator[ReconcileWorld]:
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        made = ReconcileWorld(database_url, hotglue, slack)
        yield made
        made.receiver.close()


def full_sync_writes(world: World) -> list[tuple[str, str, Any]]:
    credentials = world.hotglue.tenant_config(ENV, "4821")["apiCredentials"]  # type: ignore[index]
    return [
        ("PUT", SCHEDULE_4821, ENABLED_4821),
        ("POST", f"/{ENV}/{FLOW}/4821/linkedTargets", {"target": {"target": "optiply", "config": credentials}}),
        ("POST", f"/{ENV}/{FLOW}/4821/jobs", {"tap": "shopify", "job_name": f"wh-{FLOW}-shopify-{world.today}"}),
    ]


def test_a_full_sync_whose_completion_never_arrived_is_recovered_and_enables_the_schedule(
    world: ReconcileWorld,
) -> None:
    completed = world.stage("job_completed__full_sync")
    world.post({**completed, "status": "JOB_CREATED"})  # only JOB_CREATED arrived
    world.worker.drain()
    world.hotglue.seed_jobs(ENV, FLOW, "4821", [completed])

    summary = world.reconcile()

    assert (summary.pairs, summary.pairs_read, summary.jobs_seen, dict(summary.recovered)) == (
        1, 1, 1, {"JOB_COMPLETED": 1}
    )
    assert summary.errors == []
    assert world.writes() == full_sync_writes(world)
    created, found = world.events()
    assert (created.source, created.found_at, created.found_by_pass) == ("webhook", None, None)
    assert (found.source, found.status, found.s3_root) == ("reconciled", "JOB_COMPLETED", completed["s3_root"])
    assert found.found_at == world.now and found.found_by_pass == summary.pass_id
    assert found.state == "done"


def test_a_failure_never_received_alerts_and_says_the_webhook_never_arrived(world: ReconcileWorld) -> None:
    world.post(world.stage("job_created__scheduled", hours_ago=2))  # the pair is in the log
    failed = world.stage("sync_failed__shopify_500")
    world.hotglue.seed_jobs(ENV, FLOW, "4821", [failed])

    summary = world.reconcile()

    assert dict(summary.recovered) == {"SYNC_FAILED": 1}
    assert world.texts() == [
        ":red_circle: SYNC_FAILED for tenant 4821 on flow Xk2pQ9aLm (shopify → optiply), job Zc4Tu: "
        "singer_sdk.exceptions.RetriableAPIError: 500 Server Error: Internal Server Error for path: "
        "/admin/api/2024-01/orders.json\n" + NEVER_ARRIVED
    ]
    assert NEVER_ARRIVED in json.dumps(world.slack.messages[0].blocks)


def test_a_job_fully_received_changes_nothing(world: ReconcileWorld) -> None:
    completed = world.stage("job_completed__full_sync")
    world.post({**completed, "status": "JOB_CREATED"})
    world.post(completed)
    world.worker.drain()
    before = (world.writes(), world.texts(), [e.id for e in world.events()])
    world.hotglue.seed_jobs(ENV, FLOW, "4821", [completed])

    summary = world.reconcile()

    # Seen: the seeded job and the one the full sync started (still JOB_CREATED).
    assert dict(summary.recovered) == {} and summary.jobs_seen == 2
    assert (world.writes(), world.texts(), [e.id for e in world.events()]) == before
    assert {e.source for e in world.events()} == {"webhook"}


def test_two_passes_recover_once_and_a_late_webhook_is_a_duplicate(world: ReconcileWorld) -> None:
    completed = world.stage("job_completed__full_sync")
    world.post({**completed, "status": "JOB_CREATED"})
    world.hotglue.seed_jobs(ENV, FLOW, "4821", [completed])

    first, second = world.reconcile(), world.reconcile()
    late = world.receiver.post(completed)
    world.worker.drain()

    assert (dict(first.recovered), dict(second.recovered)) == ({"JOB_COMPLETED": 1}, {})
    found = world.events()[1]
    assert (late.status_code, late.get_json()) == (200, {"id": str(found.id), "duplicate": True})
    assert world.writes() == full_sync_writes(world)
    assert len(world.events()) == 2


def test_running_jobs_and_stages_before_the_end_are_never_stored(world: ReconcileWorld) -> None:
    world.post(world.stage("job_created__scheduled", hours_ago=3))
    running = world.stage("job_completed__full_sync", status="SYNC_STARTED", s3_root="4821/flows/x/jobs/running")
    old = world.stage("job_completed__full_sync", hours_ago=48, s3_root="4821/flows/x/jobs/old")
    world.hotglue.seed_jobs(ENV, FLOW, "4821", [running, old])

    summary = world.reconcile()

    assert (summary.jobs_seen, dict(summary.recovered)) == (2, {})
    assert [e.status for e in world.events()] == ["JOB_CREATED"]


def test_a_job_list_answering_429_then_500_is_read_after_the_retry_after(world: ReconcileWorld) -> None:
    world.post(world.stage("job_created__scheduled", hours_ago=2))
    world.hotglue.seed_jobs(ENV, FLOW, "4821", [world.stage("sync_failed__shopify_500")])
    world.hotglue.fail_next(1, 429, headers={"Retry-After": "0"}, match=JOBS_4821)
    world.hotglue.fail_next(1, 500, match=JOBS_4821)

    summary = world.reconcile()

    assert [r.status for r in world.hotglue.requests_to(JOBS_4821)] == [429, 500, 200]
    assert (dict(summary.recovered), summary.errors) == ({"SYNC_FAILED": 1}, [])


def test_a_pair_whose_list_cannot_be_read_is_reported_and_the_others_go_on(world: ReconcileWorld) -> None:
    world.post(world.stage("job_created__scheduled", hours_ago=2))
    other = world.stage("job_created__scheduled", hours_ago=2, tenant="5077", started_by="5077",
                        s3_root="5077/flows/Xk2pQ9aLm/jobs/a")
    world.post(other)
    world.hotglue.seed_jobs(ENV, FLOW, "5077", [{**other, "status": "JOB_COMPLETED", "sync_type": "incremental_sync"}])
    world.hotglue.outage(60, status=500, match=JOBS_4821)

    summary = world.reconcile()

    assert summary.errors == [f"{ENV}/{FLOW}/4821: HotGlue 500 on GET /{ENV}/{FLOW}/4821/jobs: "
                              '{"message": "Internal Server Error"}']
    assert (summary.pairs, summary.pairs_read, dict(summary.recovered)) == (2, 1, {"JOB_COMPLETED": 1})


@pytest.mark.parametrize(
    "answer",
    [
        {"jobs": []},  # an object, not an array
        b"\"garbage\"",  # a JSON string
        [{"status": "JOB_COMPLETED", "last_updated": "2026-01-01T00:00:00Z"}],  # no s3_root
        ["a string"],
    ],
)
def test_a_list_of_an_unexpected_shape_is_skipped_and_nothing_is_stored(
    world: ReconcileWorld, answer: Any
) -> None:
    world.post(world.stage("job_created__scheduled", hours_ago=2))
    completed = world.stage("job_completed__full_sync")
    # A good job beside the bad one: nothing of the list is trusted.
    body = [completed, *answer] if isinstance(answer, list) else answer
    world.hotglue.fail_next(1, 200, body=body, match=JOBS_4821)

    summary = world.reconcile()

    assert dict(summary.recovered) == {} and summary.pairs_read == 0
    assert len(summary.errors) == 1 and "skipped, unexpected shape" in summary.errors[0]
    assert [e.status for e in world.events()] == ["JOB_CREATED"]
    assert world.writes() == []


def test_a_pass_that_stopped_half_way_resumes_without_reading_a_pair_again(world: ReconcileWorld) -> None:
    tenants = ["4821", "5077", "6000"]
    for tenant in tenants:
        created = world.stage("job_created__scheduled", hours_ago=2, tenant=tenant, started_by=tenant,
                              s3_root=f"{tenant}/flows/{FLOW}/jobs/a", job_id=f"j{tenant}")
        world.post(created)
        world.hotglue.seed_jobs(ENV, FLOW, tenant, [{**created, "status": "SYNC_FAILED", "message": "boom"}])

    class Stop(Exception):
        pass

    def stop_after_first(progress: Any) -> None:
        if progress.position == 1:
            raise Stop

    with pytest.raises(Stop):
        world.reconciler.run(world.now - timedelta(hours=24), progress=stop_after_first)
    world.now += timedelta(minutes=10)  # past the lease: the pass is abandoned
    summary = world.reconcile()

    reads = [r.raw_path.split("/")[3] for r in world.hotglue.requests_to("GET */jobs")]
    assert reads == tenants  # each list read once
    assert summary.resumed_at == 1 and summary.pairs_read == 3
    # The first pair's verdict, judged before the stop, is kept (and it was not read again).
    assert set(summary.rhythms) == {f"{ENV}/{FLOW}/{tenant}" for tenant in tenants}
    assert dict(summary.recovered) == {"SYNC_FAILED": 3}
    assert sorted(e.tenant for e in world.events() if e.source == "reconciled") == tenants
    with world.receiver.runtime.sessions() as session:
        passes = list(session.scalars(select(ReconcilePass)))
    assert [(p.next_index, p.finished_at is not None) for p in passes] == [(3, True)]


def test_dry_run_stores_nothing_and_lists_what_it_would_recover(world: ReconcileWorld) -> None:
    world.post(world.stage("job_created__scheduled", hours_ago=2))
    failed = world.stage("sync_failed__shopify_500")
    world.hotglue.seed_jobs(ENV, FLOW, "4821", [failed])

    summary = world.reconcile(dry_run=True)

    assert summary.would_recover == [
        {"pair": f"{ENV}/{FLOW}/4821", "s3_root": failed["s3_root"], "status": "SYNC_FAILED",
         "last_updated": failed["last_updated"]}
    ]
    assert summary.pass_id is None
    assert [e.status for e in world.events()] == ["JOB_CREATED"]
    with world.receiver.runtime.sessions() as session:
        assert list(session.scalars(select(ReconcilePass))) == []
    assert world.slack.messages == []


def test_hotglue_calls_are_paced_and_a_long_retry_after_is_waited_out(world: ReconcileWorld) -> None:
    world.post(world.stage("job_created__scheduled", hours_ago=2))
    world.hotglue.seed_jobs(ENV, FLOW, "4821", [world.stage("sync_failed__shopify_500")])
    # Longer than the client waits inline (5 s): the pass holds its calls for it.
    world.hotglue.fail_next(1, 429, headers={"Retry-After": "30"}, match=JOBS_4821)

    summary = world.reconcile()

    assert dict(summary.recovered) == {"SYNC_FAILED": 1}
    assert any(29 <= wait <= 30 for wait in world.slept)


def test_one_worker_at_a_time_runs_the_periodic_pass(database_url: str) -> None:
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        world = ReconcileWorld(database_url, hotglue, slack)
        try:
            other = world.receiver.worker()
            for worker in (world.worker, other):
                assert worker.reconciler is not None
                worker.reconciler.sleep = lambda _s: None
                worker.clock = lambda: world.now
            world.post(world.stage("job_created__scheduled", hours_ago=2))
            hotglue.seed_jobs(ENV, FLOW, "4821", [world.stage("sync_failed__shopify_500")])

            assert world.worker.maybe_reconcile() is True
            assert other.maybe_reconcile() is False  # within HGW_RECONCILE_INTERVAL_SECONDS
            world.now += timedelta(seconds=901)
            assert other.maybe_reconcile() is True
            world.worker.drain()

            assert len(hotglue.requests_to(JOBS_4821)) == 2
            assert [e.source for e in world.events()] == ["webhook", "reconciled"]
            assert len(slack.messages) == 1
        finally:
            world.receiver.close()


def test_a_zero_interval_turns_the_periodic_pass_off(database_url: str) -> None:
    from conftest import Receiver

    receiver = Receiver(database_url, reconcile_interval_seconds=0)
    try:
        worker = receiver.worker()
        assert worker.reconciler is None and worker.maybe_reconcile() is False
    finally:
        receiver.close()


def test_the_summary_counts_pairs_jobs_stages_by_status_and_errors() -> None:
    summary = PassSummary(pass_id=1, pairs=3, pairs_read=2, jobs_seen=7)
    summary.recovered.update({"SYNC_FAILED": 1, "JOB_COMPLETED": 2})
    summary.errors.append("e/f/t: HotGlue 500")
    assert summary.lines() == [
        "pairs read: 2 of 3",
        "jobs seen: 7",
        "stages recovered: 3 (JOB_COMPLETED 2, SYNC_FAILED 1)",
        "errors: 1",
        "  e/f/t: HotGlue 500",
        "silent pairs: 0",
    ]


def test_a_recovered_stage_shows_its_origin_in_the_api_dashboard_and_metrics(world: ReconcileWorld) -> None:
    world.post(world.stage("job_created__scheduled", hours_ago=2))
    world.post(world.stage("job_completed__incremental", hours_ago=2))
    world.hotglue.seed_jobs(ENV, FLOW, "4821", [world.stage("sync_failed__shopify_500")])
    summary = world.reconcile()
    created, incremental, found = world.events()
    client = world.receiver.client

    api = client.get(f"/api/events/{found.id}").get_json()
    assert (api["source"], api["found_by_pass"], api["found_at"]) == (
        "reconciled", str(summary.pass_id), found.found_at.isoformat()  # type: ignore[union-attr]
    )
    assert client.get(f"/api/events/{created.id}").get_json()["source"] == "webhook"

    page = client.get(f"/events/{found.id}").get_data(as_text=True)
    assert (
        f"Its webhook never arrived: reconciliation pass {summary.pass_id} found this stage in HotGlue's job list at "
        in page
    )
    assert "Its webhook never arrived" not in client.get(f"/events/{created.id}").get_data(as_text=True)
    listing = client.get("/").get_data(as_text=True)
    assert listing.count('<span class="badge warn">reconciled</span>') == 1
    assert '<span class="number">1</span> of 2 finished or failed stages (50.0 %)' in listing

    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'hgw_terminal_stages_stored{source="reconciled"} 1.0' in metrics
    assert 'hgw_terminal_stages_stored{source="webhook"} 1.0' in metrics
    assert "hgw_webhook_gap_ratio 0.5" in metrics
    assert 'hgw_reconciled_stages_total{status="SYNC_FAILED"}' in metrics


def completed_3310(world: ReconcileWorld, hours_ago: float, job_id: str) -> dict[str, Any]:
    return world.stage(
        "job_completed__incremental", hours_ago=hours_ago, tenant="3310", started_by="3310", flow_id="Rb7TnE4wz",
        job_id=job_id, s3_root=f"3310/flows/Rb7TnE4wz/jobs/{job_id}",
    )


def test_a_tenant_past_its_rhythm_gets_one_silence_message_cleared_by_its_next_stage(world: ReconcileWorld) -> None:
    # 3310's Rb7TnE4wz flow runs hourly at :30 (cron(30 * * * ? *)).
    last = completed_3310(world, 1, "j1")
    world.post(last)
    assert world.reconcile().silent == []
    assert world.slack.messages == []

    world.now += timedelta(hours=2)  # 3 h since the last finished job: past 2 intervals + 30 min
    silent = world.reconcile()
    again = world.reconcile()

    assert [(s["tenant"], s["flow_id"]) for s in silent.silent] == [("3310", "Rb7TnE4wz")]
    assert len(silent.notices) == 1 and again.notices == [] and len(again.silent) == 1
    when = datetime.fromisoformat(last["last_updated"])
    expected = when.replace(minute=30, second=0, microsecond=0) + (timedelta(hours=1) if when.minute >= 30 else timedelta())
    assert world.texts() == [
        f":zzz: 1 tenant flow went silent in {ENV}: no finished job within 2 intervals of their rhythm "
        "(the webhooks and HotGlue's job list agree).\n"
        f"• tenant 3310 on flow Rb7TnE4wz: no finished job since {when:%Y-%m-%d %H:%M} UTC "
        f"(schedule cron(30 * * * ? *)); expected by {expected:%Y-%m-%d %H:%M:%S} UTC"
    ]
    notice = world.slack.messages[0]

    back = completed_3310(world, 0, "j2")
    world.post(back)
    world.worker.drain()
    assert world.texts()[1:] == [
        f":white_check_mark: Back: tenant 3310 on flow Rb7TnE4wz ended job j2 with JOB_COMPLETED at "
        f"{datetime.fromisoformat(back['last_updated']):%Y-%m-%d %H:%M:%S} UTC (silent since {when:%Y-%m-%d %H:%M:%S} UTC)."
    ]
    assert world.slack.messages[1].thread_ts == notice.ts
    assert world.reconcile().silent == [] and len(world.slack.messages) == 2


def test_many_pairs_silent_at_once_are_one_message_and_a_disabled_schedule_is_never_silent(
    world: ReconcileWorld,
) -> None:
    for number in range(25):
        tenant = f"t{number:02d}"
        world.hotglue.set_schedule(ENV, FLOW, tenant, "cron(0 * * * ? *)", "ENABLED")
        world.post(world.stage("job_completed__incremental", hours_ago=5, tenant=tenant, started_by=tenant,
                               s3_root=f"{tenant}/flows/{FLOW}/jobs/x"))
    world.hotglue.set_schedule(ENV, FLOW, "off", "cron(0 * * * ? *)", "DISABLED")
    world.post(world.stage("job_completed__incremental", hours_ago=5, tenant="off", started_by="off",
                           s3_root=f"off/flows/{FLOW}/jobs/x"))

    summary = world.reconcile()

    assert len(summary.silent) == 25 and "off" not in {s["tenant"] for s in summary.silent}
    assert len(world.slack.messages) == 1
    text = world.texts()[0]
    assert text.startswith(f":zzz: 25 tenant flows went silent in {ENV}")
    assert text.count("\n• tenant ") == 20 and text.endswith("• … and 5 more (the tenants page lists them all)")


def test_the_tenants_page_shows_each_flows_last_job_and_expected_next_one(world: ReconcileWorld) -> None:
    last = completed_3310(world, 3, "j1")
    world.post(last)
    world.reconcile()

    page = world.receiver.client.get("/tenants").get_data(as_text=True)
    when = datetime.fromisoformat(last["last_updated"])
    expected = when.replace(minute=30, second=0, microsecond=0) + (timedelta(hours=1) if when.minute >= 30 else timedelta())
    assert (
        f'<div class="bad"><span class="mono">Rb7TnE4wz</span>: {when:%Y-%m-%d %H:%M} → {expected:%Y-%m-%d %H:%M}'
        ' <span class="badge bad">silent</span></div>'
    ) in page


def test_all_tenants_also_reads_hotglues_tenants_and_their_linked_flows(world: ReconcileWorld) -> None:
    world.post(world.stage("job_created__scheduled", hours_ago=2))  # 4821 is in the log
    world.hotglue.add_tenant(ENV, "7000")  # 7000 is not: only HotGlue knows it
    world.hotglue.link_flow(ENV, "7000", FLOW)
    lost = world.stage("sync_failed__shopify_500", tenant="7000", started_by="7000", s3_root="7000/flows/x/jobs/1")
    world.hotglue.seed_jobs(ENV, FLOW, "7000", [lost])

    only_log = world.reconciler.run(world.now - timedelta(hours=24), dry_run=True)
    world.reconciler.all_tenants = True
    summary = world.reconcile()

    assert only_log.pairs == 1
    assert summary.pairs == 4  # 4821's flow, and 7000's and 3310's two linked flows
    assert dict(summary.recovered) == {"SYNC_FAILED": 1}
    assert [e.tenant for e in world.events() if e.source == "reconciled"] == ["7000"]


def test_a_recovered_stage_is_redacted_like_a_webhook(world: ReconcileWorld) -> None:
    world.post(world.stage("job_created__scheduled", hours_ago=2))
    failed = world.stage(
        "sync_failed__shopify_500", override_source_config={"password": "pw-in-the-job-list"},
        message="login failed with password=pw-in-the-message",
    )
    world.hotglue.seed_jobs(ENV, FLOW, "4821", [failed])

    world.reconcile()

    stored = json.dumps([e.payload for e in world.events()]) + json.dumps([m.text for m in world.slack.messages])
    assert "pw-in-the-job-list" not in stored and "pw-in-the-message" not in stored
    assert world.events()[-1].payload["override_source_config"] == {"password": "[redacted]"}
