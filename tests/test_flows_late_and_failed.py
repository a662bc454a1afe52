"""Issue 15, end to end on the real database and fake peers: a late event of an older job
undoes nothing (item 1), a failed state-changing action is never silent (item 2), and
Exact's dead token is recognised as the connectors write it (item 6)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from conftest import Receiver, payload
from hotglue_webhooks.fakes import FakeHotGlue, FakeSlack
from hotglue_webhooks.storage.models import ActionRecord, Event, SlackThread
from test_flows import API_KEY, ENV, TOKEN, World

PUBLIC_URL = "https://hooks.example.com"
RB7, VD3 = "Rb7TnE4wz", "Vd3HsW8qc"


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    """The flow tests' world, with two attempts per action and a public dashboard URL."""
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        made = World(database_url, hotglue, slack)
        made.receiver.close()
        made.receiver = Receiver(
            database_url, hotglue_api_key=API_KEY, hotglue_api_url=hotglue.url, slack_bot_token=TOKEN,
            slack_api_url=slack.url, max_attempts=2, public_url=PUBLIC_URL,
        )
        made.worker = made.receiver.worker()
        made.worker.clock = lambda: made.now
        yield made
        made.receiver.close()


def settle(world: World) -> None:
    """Run the worker until nothing is left, moving its clock past every retry."""
    for _ in range(6):
        world.worker.drain()
        world.now += timedelta(hours=2)


def completed_3310(job_id: str, last_updated: str, **more: Any) -> dict[str, Any]:
    """A full sync of tenant 3310's Exact flow that completed at ``last_updated``."""
    event = payload("job_completed__full_sync")
    event.update(
        tenant="3310", started_by="3310", flow_id=RB7, tap="exact", job_id=job_id,
        job_name=f"{RB7}-exact-{job_id}", s3_root=f"3310/flows/{RB7}/jobs/2026/11/6/28/07/{job_id}",
        start_time="2026-11-28T07:00:00+00:00", last_updated=last_updated, **more,
    )
    return event


def stored(world: World, status: str, tenant: str) -> Event:
    with world.receiver.runtime.sessions() as session:
        return session.scalars(select(Event).where(Event.status == status, Event.tenant == tenant)).one()


# --- 1. a late event must not undo a newer one ------------------------------------------


def test_a_late_exact_401_of_an_older_job_does_not_turn_the_schedules_off_again(world: World) -> None:
    world.receiver.post(completed_3310("Nw1Jb", "2026-11-28T07:30:00+00:00"))
    settle(world)
    before_writes, before_texts = world.writes(), world.texts()
    assert before_writes == [("PUT", f"/{ENV}/{RB7}/3310/jobs/schedule", {"schedule_expression": "cron(30 * * * ? *)", "state": "ENABLED"})]

    world.receiver.post("sync_failed__exact_token_401")  # its job ended at 06:09, delivered late
    settle(world)

    assert world.writes() == before_writes  # no schedule turned off
    assert world.texts() == before_texts  # no alert, no "turned off" message
    assert world.hotglue.schedule(ENV, RB7, "3310")["state"] == "ENABLED"
    assert world.hotglue.schedule(ENV, VD3, "3310")["state"] == "ENABLED"
    late = stored(world, "SYNC_FAILED", "3310")
    newer = stored(world, "JOB_COMPLETED", "3310")
    assert late.decision == [
        f"stale: job 3310/flows/{RB7}/jobs/2026/11/6/28/07/Nw1Jb (job_id Nw1Jb) ended JOB_COMPLETED at "
        f"2026-11-28T07:30:00+00:00 (event {newer.id}), after this SYNC_FAILED at 2026-11-28T06:09:41.081282+00:00: "
        "no schedule change, link, job start or alert"
    ]
    with world.receiver.runtime.sessions() as session:
        assert list(session.scalars(select(ActionRecord).where(ActionRecord.event_id == late.id))) == []


def test_a_late_plain_failure_opens_no_alert_and_the_api_says_stale(world: World) -> None:
    success = payload("job_completed__incremental")
    success.update(job_id="Ok9", s3_root=success["s3_root"].rsplit("/", 1)[0] + "/Ok9", last_updated="2026-11-28T20:00:00+00:00")
    world.receiver.post(success)
    settle(world)
    world.receiver.post("sync_failed__shopify_500")  # 4821's failure of 06:09, after the 20:00 success
    settle(world)

    assert world.slack.messages == []
    with world.receiver.runtime.sessions() as session:
        assert list(session.scalars(select(SlackThread))) == []
    late = stored(world, "SYNC_FAILED", "4821")
    assert late.decision[0].startswith("stale: job 4821/flows/Xk2pQ9aLm/jobs/2026/11/6/28/06/Ok9 (job_id Ok9) ended JOB_COMPLETED")
    answer = world.receiver.client.get(f"/api/events/{late.id}").get_json()
    assert answer["stale"] is True
    listed = world.receiver.client.get("/api/events?tenant=4821").get_json()
    assert {row["status"]: row["stale"] for row in listed["events"]} == {"SYNC_FAILED": True, "JOB_COMPLETED": False}
    # The dashboard: one stale badge in the list (the late failure's row), the reason on its page.
    listing = world.receiver.client.get("/").get_data(as_text=True)
    badge = '<span class="badge muted" title="a newer job of this tenant\'s flow had already ended: nothing changed">stale</span>'
    assert listing.count(badge) == 1
    detail = world.receiver.client.get(f"/events/{late.id}").get_data(as_text=True)
    assert "Stale: a newer job of this tenant's flow had already ended" in detail
    assert "stale: job 4821/flows/Xk2pQ9aLm/jobs/2026/11/6/28/06/Ok9 (job_id Ok9) ended JOB_COMPLETED" in detail


def test_an_earlier_failure_delivered_first_still_alerts_and_the_newer_success_resolves(world: World) -> None:
    world.receiver.post("sync_failed__shopify_500")
    settle(world)
    success = payload("job_completed__incremental")
    success.update(job_id="Ok9", s3_root=success["s3_root"].rsplit("/", 1)[0] + "/Ok9", last_updated="2026-11-28T20:00:00+00:00")
    world.receiver.post(success)
    settle(world)
    assert [m.text.split(" ")[0] for m in world.slack.messages] == [":red_circle:", ":white_check_mark:"]


# --- 2. a failed action is never silent -------------------------------------------------


def test_a_schedule_put_that_dies_is_reported_with_what_is_still_true(world: World) -> None:
    world.hotglue.fail_next(20, 500, headers={"Retry-After": "0"}, match=f"PUT /{ENV}/{VD3}/3310/jobs/schedule")
    world.receiver.post("sync_failed__exact_token_401")
    settle(world)

    assert world.hotglue.schedule(ENV, RB7, "3310")["state"] == "DISABLED"
    assert world.hotglue.schedule(ENV, VD3, "3310")["state"] == "ENABLED"
    event = stored(world, "SYNC_FAILED", "3310")
    alert, report = world.texts()
    assert alert.startswith(":red_circle: SYNC_FAILED for tenant 3310")
    assert report == (
        ":x: Exact Online refused the refresh token of tenant 3310, flow Rb7TnE4wz, and turning schedules off failed. "
        "The customer must still reconnect Exact Online. Could not turn off the schedule of flow Vd3HsW8qc (dead): "
        "the schedule of flow Vd3HsW8qc is still ENABLED. Last error: HotGlue 500 on PUT "
        f'/{ENV}/{VD3}/3310/jobs/schedule: {{"message": "Internal Server Error"}}. '
        "Done: the schedule of flow Rb7TnE4wz is DISABLED. "
        f"See {PUBLIC_URL}/events/{event.id}."
    )
    blocks = world.slack.messages[-1].blocks
    assert blocks[-1]["elements"][0]["text"] == f"tenant 3310 · flow Rb7TnE4wz · <{PUBLIC_URL}/events/{event.id}|event {event.id}>"
    with world.receiver.runtime.sessions() as session:
        states = {a.idempotency_key.split("|", 1)[1]: a.state for a in session.scalars(select(ActionRecord))}
    assert states == {
        "failure_alert|slack": "done",
        f"exact_token_401|schedule:{RB7}": "done",
        f"exact_token_401|schedule:{VD3}": "dead",
        "exact_token_401|slack": "skipped",  # "turned off" would not be true
        "exact_token_401|slack:action_failed": "done",
    }


def test_a_failed_link_is_reported_once_with_the_skipped_job_start(world: World) -> None:
    world.hotglue.fail_next(20, 400, match=f"POST /{ENV}/Xk2pQ9aLm/4821/linkedTargets")
    world.receiver.post("job_completed__full_sync")
    settle(world)

    event = stored(world, "JOB_COMPLETED", "4821")
    enabled, report = world.texts()
    assert enabled.startswith(":large_green_circle: Schedule enabled for tenant 4821")
    assert report.startswith(
        ":x: A step after job Q7mZr of tenant 4821, flow Xk2pQ9aLm failed. Could not link optiply in flow Xk2pQ9aLm "
        "(dead): optiply is still not linked in flow Xk2pQ9aLm. Last error: HotGlue 400 on POST "
    )
    assert (
        f"Could not start job wh-Xk2pQ9aLm-shopify-{world.today} in flow Xk2pQ9aLm (skipped): flow Xk2pQ9aLm has "
        "still not synced: no job of this receiver runs for it today. Last error: a step it depends on did not succeed."
    ) in report
    assert report.endswith(f"Done: the schedule of flow Xk2pQ9aLm is ENABLED. See {PUBLIC_URL}/events/{event.id}.")
    assert not any(w[1].endswith("/jobs") for w in world.writes())


def test_a_job_start_that_dies_is_reported(world: World) -> None:
    world.hotglue.fail_next(20, 400, match=f"POST /{ENV}/Xk2pQ9aLm/4821/jobs")
    world.receiver.post("job_completed__full_sync")
    settle(world)

    event = stored(world, "JOB_COMPLETED", "4821")
    assert world.texts()[-1] == (
        ":x: A step after job Q7mZr of tenant 4821, flow Xk2pQ9aLm failed. Could not start job "
        f"wh-Xk2pQ9aLm-shopify-{world.today} in flow Xk2pQ9aLm (dead): flow Xk2pQ9aLm has still not synced: no job of "
        f'this receiver runs for it today. Last error: HotGlue 400 on POST /{ENV}/Xk2pQ9aLm/4821/jobs: '
        '{"message": "Bad Request"}. Done: the schedule of flow Xk2pQ9aLm is ENABLED; optiply is linked in flow '
        f"Xk2pQ9aLm. See {PUBLIC_URL}/events/{event.id}."
    )


def test_without_a_public_url_the_report_names_the_event(database_url: str) -> None:
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        world = World(database_url, hotglue, slack)
        try:
            hotglue.fail_next(20, 404, match=f"PUT /{ENV}/Xk2pQ9aLm/4821/jobs/schedule")
            world.deliver("job_completed__incremental_named_full_sync")
            event = stored(world, "JOB_COMPLETED", "4821")
            report = world.texts()[-1]
        finally:
            world.receiver.close()
    assert report == (
        ":x: A step after job Hh20p of tenant 4821, flow Xk2pQ9aLm failed. Could not enable the schedule of flow "
        "Xk2pQ9aLm (dead): the schedule of flow Xk2pQ9aLm is still DISABLED. Last error: HotGlue 404 on PUT "
        f'/{ENV}/Xk2pQ9aLm/4821/jobs/schedule: {{"message": "Not Found"}}. Done: optiply is linked in flow Xk2pQ9aLm. '
        f"See event {event.id}."
    )


def test_when_every_action_succeeds_the_report_is_not_needed(world: World) -> None:
    world.receiver.post("sync_failed__exact_token_401")
    settle(world)
    assert not any(text.startswith(":x:") for text in world.texts())
    with world.receiver.runtime.sessions() as session:
        [report] = session.scalars(select(ActionRecord).where(ActionRecord.kind == "slack.action_failed"))
    assert report.state == "not_needed"


# --- 6. Exact's dead token as the connectors write it -----------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token?refresh_token=x&grant_type=refresh_token",
        "401 Client Error: Unauthorized for url: https://START.EXACTONLINE.BE/api/oauth2/token: {'error': 'invalid_grant'}",
    ],
)
def test_exact_401_with_a_query_or_more_text_turns_the_schedules_off(world: World, line: str) -> None:
    event = payload("sync_failed__exact_token_401")
    event["message"] = f"RuntimeError: Failed OAuth login, response was '{{'error': 'invalid_grant'}}'. {line}"
    world.receiver.post(event)
    settle(world)
    assert [(w[1], w[2]["state"]) for w in world.writes()] == [
        (f"/{ENV}/{RB7}/3310/jobs/schedule", "DISABLED"),
        (f"/{ENV}/{VD3}/3310/jobs/schedule", "DISABLED"),
    ]


def test_exact_401_on_a_longer_token_path_turns_nothing_off(world: World) -> None:
    event = payload("sync_failed__exact_token_401")
    event["message"] = (
        "RuntimeError: Failed OAuth login, response was '{}'. "
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/tokenx"
    )
    world.receiver.post(event)
    settle(world)
    assert world.writes() == []
    assert [t.split(" ")[0] for t in world.texts()] == [":red_circle:"]
