"""The dashboard for hundreds of tenants: progress stages hidden, one row per job, the
24-hour chart, the tenants' sort and state, what jobs did, dead actions described."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conftest import PAYLOAD_FILES, Receiver, payload
from hotglue_webhooks.storage.queries import PROGRESS_STATUSES, EventFilter, HourCount, list_jobs
from hotglue_webhooks.web.charts import hourly_chart
from web.helpers import send, text_of
from web.test_dashboard import ids_where, linked_events, page


def stage(s3_root: str, status: str, minute: int, tenant: str = "4821", **fields: Any) -> dict[str, Any]:
    """A shopify job's stage ``status`` at 06:``minute`` (its ``last_updated``)."""
    base = payload("sync_failed__shopify_500")
    body = {**base, "s3_root": s3_root, "status": status, "tenant": tenant,
            "last_updated": f"2026-11-28T06:{minute:02d}:00+00:00", **fields}
    if not status.endswith("_FAILED"):
        body.pop("message", None)
    return body


def post(receiver: Receiver, *bodies: dict[str, Any]) -> list[int]:
    ids = []
    for body in bodies:
        answer = receiver.post(body)
        assert answer.status_code == 202, answer.json
        ids.append(int(answer.json["id"]))
    return ids


def test_progress_statuses_are_the_lifecycle_stages_that_only_move_on() -> None:
    assert PROGRESS_STATUSES == (
        "JOB_CREATED", "DISCOVER_STARTED", "SYNC_STARTED", "SYNC_SUCCESS", "ETL_STARTED", "ETL_SUCCESS", "EXPORT_STARTED",
    )


def test_progress_hide_leaves_out_progress_stages_and_the_toggle_brings_them_back(receiver: Receiver) -> None:
    created, started, failed, completed = post(
        receiver,
        stage("4821/a", "JOB_CREATED", 1), stage("4821/a", "SYNC_STARTED", 2),
        stage("4821/a", "SYNC_FAILED", 3), stage("4821/b", "JOB_COMPLETED", 4),
    )
    everything = page(receiver, "/")
    assert linked_events(everything) == [completed, failed, started, created]
    assert 'href="/?progress=hide"' in everything and "Hide progress stages" in everything
    hidden = page(receiver, "/?progress=hide")
    assert linked_events(hidden) == [completed, failed]
    assert "2 events match, newest first." in hidden
    assert 'href="/"' in hidden and "Progress stages hidden · show" in hidden
    # The filter form keeps it; so does the pager's link (the cursor keeps every filter).
    assert '<input type="hidden" name="progress" value="hide">' in hidden
    assert linked_events(page(receiver, "/?progress=maybe")) == [completed, failed, started, created]


def test_the_job_view_shows_one_row_per_job_with_its_outcome_and_stages(receiver: Receiver) -> None:
    post(
        receiver,
        stage("4821/failed", "JOB_CREATED", 1), stage("4821/failed", "SYNC_FAILED", 3),
        stage("4821/done", "JOB_CREATED", 4), stage("4821/done", "JOB_COMPLETED", 9),
        stage("4821/running", "SYNC_STARTED", 11), stage("4821/running", "JOB_CREATED", 10),
    )
    html = page(receiver, "/?view=jobs")
    rows = re.findall(r"<tr class=\"[^\"]*\">(.*?)</tr>", html, re.S)
    assert len(rows) == 3
    outcomes = [re.findall(r'<span class="badge (\w+)">(failed at sync|completed|running)</span>', row) for row in rows]
    assert outcomes == [[("busy", "running")], [("good", "completed")], [("bad", "failed at sync")]]
    # Stages in the job's own time (last_updated), not in arrival order.
    running = re.findall(r'<span class="badge \w+">([A-Z_]+)</span>', rows[0])
    assert running == ["JOB_CREATED", "SYNC_STARTED"]
    assert "RuntimeError" in rows[2] or "500" in rows[2]  # the failure's last line
    # progress=hide still shows every stage of a job it keeps, and drops jobs with none left.
    hidden = page(receiver, "/?view=jobs&progress=hide")
    assert len(re.findall(r"<tr class=", hidden)) == 2 and "running</span>" not in hidden


def test_job_pages_follow_the_cursor_without_repeating_a_job(receiver: Receiver) -> None:
    for n in range(5):
        post(receiver, stage(f"4821/{n}", "JOB_CREATED", n), stage(f"4821/{n}", "JOB_COMPLETED", n + 30))
    # Job 0 gets a late stage: it is the newest job now, and must not show up again later.
    post(receiver, stage("4821/0", "SYNC_SUCCESS", 20))
    sessions = receiver.runtime.sessions
    seen: list[str | None] = []
    before = None
    for _ in range(5):
        jobs, before = list_jobs(sessions, EventFilter(), limit=2, before_id=before)
        seen += [job.s3_root for job in jobs]
        assert all(len(job.stages) == (3 if job.s3_root == "4821/0" else 2) for job in jobs)
        if before is None:
            break
    assert seen == ["4821/0", "4821/4", "4821/3", "4821/2", "4821/1"]


def test_the_chart_shows_24_hours_by_default_and_7_days_on_request(receiver: Receiver) -> None:
    send(receiver, "sync_failed__shopify_500")
    day = page(receiver, "/")
    assert day.count('<rect class="hit"') == 24
    assert "Events and failures per hour, last 24 hours" in day and 'href="/?chart=7d"' in day
    week = page(receiver, "/?chart=7d&tenant=4821")
    assert week.count('<rect class="hit"') == 168
    assert "last 7 days" in week and 'href="/?tenant=4821"' in week  # back to 24 h, filters kept


def test_a_day_label_near_the_right_edge_ends_at_its_tick() -> None:
    start = datetime(2026, 12, 1, 2, tzinfo=UTC)  # the last midnight is 2 hours before the end
    chart = hourly_chart([HourCount(hour=start + timedelta(hours=n), events=1, failures=0) for n in range(168)])
    days = [tick for tick in chart.x_ticks if tick.label[0].isalpha()]
    assert [tick.anchor for tick in days] == ["start"] * 6 + ["end"]
    day = hourly_chart([HourCount(hour=start + timedelta(hours=n), events=1, failures=0) for n in range(24)])
    assert [tick.label for tick in day.x_ticks][:3] == ["03:00", "06:00", "09:00"]
    assert day.span == "24 hours" and chart.span == "7 days"


@pytest.mark.parametrize(("status", "box"), [("SYNC_FAILED", "message-block"), ("JOB_COMPLETED", "message-plain")])
def test_hotglues_message_is_an_error_box_only_on_a_failure(receiver: Receiver, status: str, box: str) -> None:
    [event_id] = post(receiver, {**stage("4821/m", status, 5), "message": "Finished: 1841 products"})
    html = page(receiver, f"/events/{event_id}")
    assert f'<pre class="{box}">Finished: 1841 products</pre>' in html
    other = "message-plain" if box == "message-block" else "message-block"
    assert f'class="{other}"' not in html


def tenant_rows(html: str) -> list[tuple[str, str]]:
    """Return (tenant, state text) per row of the tenants page, in page order."""
    rows = re.findall(r'<td><a href="/tenants/([^"]+)">.*?</a></td>\s*<td>(.*?)</td>', html, re.S)
    return [(tenant, " ".join(re.sub(r"<[^>]+>", " ", state).split())) for tenant, state in rows]


def test_tenants_say_still_failing_or_recovered_and_sort_by_failures_dead_and_last_failure(receiver: Receiver) -> None:
    from web.helpers import kill_actions

    post(
        receiver,
        # 1111 failed twice, then its flow completed: recovered (in the job's own time).
        stage("1111/a", "SYNC_FAILED", 1, tenant="1111"), stage("1111/b", "SYNC_FAILED", 2, tenant="1111"),
        stage("1111/c", "JOB_COMPLETED", 3, tenant="1111"),
        # 2222 completed, then failed: still failing.
        stage("2222/a", "JOB_COMPLETED", 1, tenant="2222"), stage("2222/b", "SYNC_FAILED", 2, tenant="2222"),
    )
    [quiet] = post(receiver, stage("3333/a", "JOB_COMPLETED", 1, tenant="3333", sync_type="full_sync"))
    receiver.worker().drain()
    kill_actions(receiver, quiet)
    newest_first = page(receiver, "/tenants")
    assert tenant_rows(newest_first) == [
        ("3333", "no failure"), ("2222", "still failing flow Xk2pQ9aLm"), ("1111", "recovered flow Xk2pQ9aLm"),
    ]
    assert "1 still failing" in newest_first
    assert [t for t, _ in tenant_rows(page(receiver, "/tenants?sort=failures"))] == ["1111", "2222", "3333"]
    assert [t for t, _ in tenant_rows(page(receiver, "/tenants?sort=dead"))][0] == "3333"
    assert [t for t, _ in tenant_rows(page(receiver, "/tenants?sort=last_failure"))] == ["2222", "1111", "3333"]
    assert 'href="/tenants?sort=failures"' in newest_first
    assert '<a class="sort" aria-sort="descending" href="/tenants?sort=dead">Dead actions ↓</a>' in page(
        receiver, "/tenants?sort=dead"
    )
    assert tenant_rows(page(receiver, "/tenants?sort=bogus")) == tenant_rows(newest_first)


@pytest.mark.parametrize(
    ("kind", "params", "key", "said"),
    [
        ("hotglue.put_schedule",
         {"flow_id": "Rb7TnE4wz", "tenant": "3310", "body": {"schedule_expression": "cron(0 */6 * * ? *)", "state": "DISABLED"}},
         "k|exact_token_401|schedule:Rb7TnE4wz",
         "Disable the schedule of flow Rb7TnE4wz for tenant 3310 (cron(0 */6 * * ? *))"),
        ("hotglue.put_schedule",
         {"flow_id": "Xk2pQ9aLm", "tenant": "4821", "body": {"schedule_expression": "rate(1 hour)", "state": "ENABLED"}},
         "k|full_sync|schedule:Xk2pQ9aLm",
         "Enable the schedule of flow Xk2pQ9aLm for tenant 4821 (rate(1 hour))"),
        ("hotglue.link_target",
         {"flow_id": "Vd3HsW8qc", "tenant": "4821", "body": {"{config}": 1}, "config_from": "optiply"},
         "k|full_sync|link:Vd3HsW8qc:target-optiply",
         "Link target target-optiply in flow Vd3HsW8qc for tenant 4821 (config from optiply)"),
        ("hotglue.start_job",
         {"flow_id": "Vd3HsW8qc", "tenant": "4821", "body": {"tap": "shopify", "job_name": "wh-Vd3HsW8qc-shopify-2026-12-07"}},
         "start_job|…",
         "Start job wh-Vd3HsW8qc-shopify-2026-12-07 (tap shopify) in flow Vd3HsW8qc for tenant 4821"),
        ("slack.post_message", {"channel": "#hotglue-webhooks", "text": ":x: SYNC_FAILED for 4821\nmore"}, "k|failure_alert|slack",
         "Post to #hotglue-webhooks: “:x: SYNC_FAILED for 4821…”"),
        ("slack.update_message", {"channel": "C123", "ts": "1.2", "text": "3 times"}, "k",
         "Update Slack message 1.2 in C123: “3 times”"),
        ("hotglue.put_schedule", {"body": "not an object"}, "k", "Set to ? the schedule of flow ? for tenant ? (?)"),
        ("something.new", {}, "k", "something.new"),
    ],
)
def test_an_action_says_what_it_does(kind: str, params: dict[str, Any], key: str, said: str) -> None:
    from hotglue_webhooks.web.describe import describe_action

    assert describe_action(kind, params, key) == said


def test_the_dead_actions_page_says_what_each_action_would_do(receiver: Receiver) -> None:
    from web.helpers import kill_actions

    [event_id] = send(receiver, "job_completed__full_sync")
    receiver.worker().drain()
    kill_actions(receiver, event_id)
    html = page(receiver, "/dead")
    assert re.search(r"Enable the schedule of flow Xk2pQ9aLm for tenant 4821 \(\S.*?\)<br>", html)
    assert "Post to #hotglue-webhooks: “" in html
    assert "<th>What it would do</th>" in html


def test_the_tenant_page_says_what_a_successful_job_did_and_shows_hotglues_times(receiver: Receiver) -> None:
    body = {**payload("job_completed__full_sync"), "start_time": "2026-11-28T06:04:59.500000+00:00"}
    late_created = {**body, "status": "JOB_CREATED", "last_updated": "2026-11-28T06:05:00.000000+00:00"}
    post(receiver, body, late_created)  # JOB_CREATED arrives after JOB_COMPLETED
    receiver.worker().drain()
    html = page(receiver, "/tenants/4821")
    assert "5 done" not in html and "dry_run</span>" not in html
    did = re.findall(r'<ul class="did">(.*?)</ul>', html, re.S)
    assert len(did) == 1
    lines = [" ".join(re.sub(r"<[^>]+>", " ", line).split()) for line in re.findall(r"<li[^>]*>(.*?)</li>", did[0], re.S)]
    assert lines[0].startswith("dry run, would: Enable the schedule of flow Xk2pQ9aLm for tenant 4821 (")
    assert any(line.startswith("dry run, would: Post to #hotglue-webhooks: “") for line in lines)
    # HotGlue's own times beside the receipt, and the stages in the job's time order.
    assert "job started 2026-11-28 06:04:59 · last updated 2026-11-28 06:09:41 (HotGlue's times)" in html
    stages = re.findall(r'<ol class="stages">(.*?)</ol>', html, re.S)[0]
    assert re.findall(r'<span class="badge \w+">([A-Z_]+)</span>', stages) == ["JOB_CREATED", "JOB_COMPLETED"]
    # An action that died says so, with what it did not do.
    from web.helpers import kill_actions

    kill_actions(receiver, min(linked_events(html)))
    dead = page(receiver, "/tenants/4821")
    assert re.search(r'<li class="bad"><span class="state">dead, did not:</span> <a [^>]+>Enable the schedule of flow Xk2pQ9aLm', dead)


def test_the_api_takes_progress_hide_too_and_documents_it(receiver: Receiver) -> None:
    created, failed = post(receiver, stage("4821/a", "JOB_CREATED", 1), stage("4821/a", "SYNC_FAILED", 3))
    answer = receiver.client.get("/api/events?progress=hide")
    assert answer.status_code == 200 and [e["id"] for e in answer.json["events"]] == [str(failed)]
    assert len(receiver.client.get("/api/tenants/4821/events?progress=show").json["events"]) == 2
    refused = receiver.client.get("/api/events?progress=maybe")
    assert refused.status_code == 400 and "progress" in text_of(refused)
    document = receiver.client.get("/openapi.json").json
    names = [p["name"] for p in document["paths"]["/api/events"]["get"]["parameters"]]
    assert "progress" in names


def test_the_event_page_lists_the_jobs_stages_in_hotglues_time(receiver: Receiver) -> None:
    failed, created = post(receiver, stage("4821/e", "SYNC_FAILED", 9), stage("4821/e", "JOB_CREATED", 1))
    html = page(receiver, f"/events/{failed}")
    stages = re.findall(r'<ol class="stages">(.*?)</ol>', html, re.S)[0]
    assert re.findall(r'<span class="badge \w+">([A-Z_]+)</span>', stages) == ["JOB_CREATED", "SYNC_FAILED"]
    assert re.findall(r'>(\d\d:\d\d:\d\d)</span>', stages) == ["06:01:00", "06:09:00"]
