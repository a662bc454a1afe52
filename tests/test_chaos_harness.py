"""The reliability harness's own logic (workload, duplicate and order checks), without processes.

The scenarios themselves run as ``python -m chaos`` (``--small`` in CI).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

from conftest import FIXTURES
from chaos import verify
from chaos.load import Attempt, LoadResult, Outcome
from chaos.verify import ActionRow, EventRow, Figures, PeerRequests
from chaos.scenarios import named_tenants
from chaos.workload import DISTINCT_ERRORS, build, failures_in_a_minute, load_templates, outage_and_distinct
from hotglue_webhooks.rules import JobEvent
from hotglue_webhooks.rules.incidents import signature
from hotglue_webhooks.rules.messages import incident_members, scrub, telling_line
from hotglue_webhooks.rules.model import IncidentMemberView
from hotglue_webhooks.fakes import RecordedRequest

TEMPLATES = load_templates(FIXTURES)


def test_the_load_has_the_asked_size_unique_jobs_and_increasing_last_updated() -> None:
    workload = build(TEMPLATES, webhooks=600, tenants=30, seed=3)
    assert len(workload.deliveries) == 600
    assert len({d.key for d in workload.deliveries}) == 600
    assert len({d.tenant for d in workload.deliveries}) <= 30
    moments = [d.last_updated for d in workload.deliveries]
    assert moments == sorted(moments)
    # Each job's stages come in lifecycle order and share one s3_root and job_id.
    by_job: dict[str, list[str]] = {}
    for delivery in workload.deliveries:
        by_job.setdefault(delivery.s3_root, []).append(delivery.status)
        assert delivery.s3_root.endswith("/" + delivery.job_id)
        assert json.loads(delivery.body)["s3_root"] == delivery.s3_root
    assert all(stages[0] == "JOB_CREATED" for stages in by_job.values())
    statuses = Counter(d.status for d in workload.deliveries)
    assert statuses["JOB_COMPLETED"] and statuses["SYNC_FAILED"]


def test_the_same_seed_gives_the_same_load() -> None:
    first = build(TEMPLATES, webhooks=200, tenants=10, seed=9, start=datetime(2026, 1, 1, tzinfo=UTC))
    again = build(TEMPLATES, webhooks=200, tenants=10, seed=9, start=datetime(2026, 1, 1, tzinfo=UTC))
    assert [d.body for d in first.deliveries] == [d.body for d in again.deliveries]


def test_failures_in_a_minute_cover_every_tenant_then_resolve_some() -> None:
    workload = failures_in_a_minute(TEMPLATES, failures=50, tenants=20, resolved=5, seed=1)
    failed = [d for d in workload.deliveries if d.status == "SYNC_FAILED"]
    assert len(failed) == 50 and len({d.tenant for d in failed}) == 20
    assert [d.status for d in workload.deliveries[50:]] == ["JOB_COMPLETED"] * 5


def test_the_outage_is_one_signature_despite_its_noise_and_the_distinct_errors_ten() -> None:
    workload, down, distinct = outage_and_distinct(TEMPLATES, outage=300, repeats=20, resolved=10, seed=2)
    failures = [d for d in workload.deliveries if d.kind != "resolved"]
    assert len(failures) == 330 and len(down) == 300 and len(distinct) == len(DISTINCT_ERRORS) == 10
    signatures: dict[str, set[str]] = {}
    for delivery in failures:
        payload = json.loads(delivery.body)
        event = JobEvent.from_payload(payload, event_key=delivery.key[0])
        made = signature(event, telling_line(scrub(event.message or "")))
        assert made is not None
        signatures.setdefault(delivery.kind, set()).add(made.id)
    assert len(signatures["outage"]) == 1  # cursors and request ids do not split it
    assert len(signatures["distinct"]) == 10 and not signatures["distinct"] & signatures["outage"]
    assert [d.kind for d in workload.deliveries[-10:]] == ["resolved"] * 10


def test_the_budget_reads_every_way_slack_names_a_tenant() -> None:
    reply = incident_members(
        [IncidentMemberView(1, "1001", "F"), IncidentMemberView(2, "1002", "F", "C1", "1.2")], "https://h.example", 1, 2
    )
    assert named_tenants({"text": reply.text, "blocks": reply.blocks}) == {"1001", "1002"}
    top = {"text": "x", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Tenants*: 1001, 1003 and 5 more (all in the thread)"}}]}
    assert named_tenants(top) == {"1001", "1003"}
    alert = {"text": ":red_circle: ETL_FAILED for tenant 2001 on flow F (shopify → optiply), job J: x", "blocks": []}
    assert named_tenants(alert) == {"2001"}


SCHEDULE = "/e/f/t/jobs/schedule"
JOBS = "/e/f/t/jobs"


def request(at: float, body: dict[str, object], key: str | None = None, path: str = SCHEDULE) -> RecordedRequest:
    headers = {"idempotency-key": key} if key else {}
    method = "PUT" if path == SCHEDULE else "POST"
    return RecordedRequest(
        method=method, path=path, raw_path=path, query={}, query_string="",
        headers=headers, json=body, form={}, body=json.dumps(body).encode(), received_at=at, status=200,
    )


def action(key: str, body: dict[str, object], path: str = SCHEDULE) -> ActionRow:
    method, kind = ("PUT", "hotglue.put_schedule") if path == SCHEDULE else ("POST", "hotglue.start_job")
    described = {"method": method, "url": f"http://hotglue{path}", "json": body}
    return ActionRow(1, 1, key, kind, "done", 1, described, None)


def test_a_repeat_after_a_worker_kill_is_a_raw_duplicate_any_other_is_unexplained_both_fail() -> None:
    body = {"tap": "shopify", "job_name": "wh-f-shopify-2026-01-01"}
    twice = [("hotglue", request(10.0, body, path=JOBS)), ("hotglue", request(20.0, body, path=JOBS))]
    killed_between = Figures()
    verify.check_effects(
        killed_between, [action("k", body, JOBS)], PeerRequests(twice, twice), worker_kill_times=[15.0]
    )
    assert (killed_between.executed_once, killed_between.raw_duplicates, killed_between.duplicated) == (1, 1, 0)
    assert killed_between.problems[0].startswith("raw duplicate: hotglue.start_job k")
    unexplained = Figures()
    verify.check_effects(unexplained, [action("k", body, JOBS)], PeerRequests(twice, twice), worker_kill_times=[25.0])
    assert (unexplained.raw_duplicates, unexplained.duplicated) == (0, 1)
    assert unexplained.problems[0].startswith("executed twice")


def test_a_repeated_schedule_put_is_an_idempotent_repeat_not_a_duplicate() -> None:
    body = {"schedule_expression": "cron(0 * * * ? *)", "state": "ENABLED"}
    twice = [("hotglue", request(10.0, body)), ("hotglue", request(20.0, body))]
    figures = Figures()
    verify.check_effects(figures, [action("k", body)], PeerRequests(twice, twice), worker_kill_times=[15.0])
    assert (figures.executed_once, figures.raw_duplicates, figures.duplicated) == (1, 0, 0)
    assert figures.extra["idempotent_repeats"] == 1 and figures.problems == []


def test_an_action_done_but_never_seen_by_the_peer_is_lost_and_an_unknown_request_is_flagged() -> None:
    body = {"state": "DISABLED"}
    figures = Figures()
    stray = [("hotglue", request(1.0, {"state": "ENABLED"}))]
    verify.check_effects(figures, [action("k", body)], PeerRequests(stray, stray), worker_kill_times=[])
    assert figures.lost == 1 and figures.duplicated == 1


def test_idempotency_keys_identify_requests_when_the_receiver_sends_them() -> None:
    from chaos.verify import _token

    body = {"state": "ENABLED"}
    sent = [("hotglue", request(1.0, {"other": "content"}, key=_token("k")))]
    figures = Figures()
    verify.check_effects(figures, [action("k", body)], PeerRequests(sent, sent), worker_kill_times=[])
    assert (figures.executed_once, figures.lost, figures.duplicated) == (1, 0, 0)
    assert figures.extra["identity"].startswith("idempotency key")


def test_order_is_violated_only_by_events_the_queue_could_have_ordered() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def event(id_: int, status: str, order: int, received: float, processed: float) -> EventRow:
        return EventRow(
            id_, f"root/{id_}", status, "t1", t0 + timedelta(minutes=order),
            datetime.fromtimestamp(received, UTC), datetime.fromtimestamp(processed, UTC), "done", (),
        )

    def outcome(row: EventRow, acked_at: float, sent_at: float | None = None) -> Outcome:
        from chaos.workload import Delivery

        delivery = Delivery(0, "t1", "j", row.s3_root or "", row.status or "", row.order_at, "k", b"")
        sent = acked_at if sent_at is None else sent_at
        return Outcome(delivery, [Attempt("x", sent, 202, body=b"{}", finished=acked_at)])

    early = event(1, "JOB_CREATED", 0, received=100.0, processed=300.0)
    late_but_first = event(2, "JOB_COMPLETED", 1, received=200.0, processed=250.0)
    load = LoadResult([outcome(early, 100.0), outcome(late_but_first, 200.0)], 1.0)
    figures = Figures()
    verify.check_order(figures, load, [early, late_but_first])
    assert figures.extra["order_violations"] == 1  # the earlier one was acknowledged first
    # Had the earlier event arrived after the later one, the queue could not have known.
    arrived_late = event(1, "JOB_CREATED", 0, received=260.0, processed=300.0)
    load = LoadResult([outcome(arrived_late, 260.0), outcome(late_but_first, 200.0)], 1.0)
    figures = Figures()
    verify.check_order(figures, load, [arrived_late, late_but_first])
    assert figures.extra["order_violations"] == 0
    # Sent before the later one arrived but answered after it: it may have been committed
    # after the later one was received, so the queue could not have known either.
    slow_answer = event(1, "JOB_CREATED", 0, received=150.0, processed=300.0)
    load = LoadResult([outcome(slow_answer, 210.0, sent_at=150.0), outcome(late_but_first, 200.0)], 1.0)
    figures = Figures()
    verify.check_order(figures, load, [slow_answer, late_but_first])
    assert figures.extra["order_violations"] == 0


def test_retry_after_is_checked_per_request() -> None:
    body = {"channel": "#c", "text": "t"}

    def post(at: float, status: int) -> RecordedRequest:
        recorded = request(at, body)
        recorded.path = recorded.raw_path = "/api/chat.postMessage"
        recorded.method, recorded.status = "POST", status
        return recorded

    early = [("slack", post(0.0, 429)), ("slack", post(4.0, 200))]
    assert verify.retry_after_violations(PeerRequests([], early), {("slack", 429): 5.0})[0] == 1
    on_time = [("slack", post(0.0, 429)), ("slack", post(5.2, 200))]
    assert verify.retry_after_violations(PeerRequests([], on_time), {("slack", 429): 5.0})[0] == 0
