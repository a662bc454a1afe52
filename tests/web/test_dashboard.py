"""The dashboard pages through Flask's test client on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from conftest import PAYLOAD_FILES, Receiver, payload
from hotglue_webhooks.retention import purge
from hotglue_webhooks.storage.models import Event
from web.helpers import action_states, csrf_token, event_state, kill_actions, send, text_of


def linked_events(html: str) -> list[int]:
    """Return the event ids a page links to, in page order, each once."""
    seen: dict[int, None] = {}
    for found in re.finditer(r'href="/events/(\d+)', html):
        seen.setdefault(int(found.group(1)), None)
    return list(seen)


def page(receiver: Receiver, url: str, status: int = 200) -> str:
    response = receiver.client.get(url)
    assert response.status_code == status, text_of(response)[:500]
    return text_of(response)


@pytest.fixture
def loaded(receiver: Receiver) -> Receiver:
    """Every shared payload, received and processed."""
    send(receiver, *(path.stem for path in PAYLOAD_FILES))
    receiver.worker().drain()
    return receiver


def ids_where(receiver: Receiver, **columns: Any) -> set[int]:
    from sqlalchemy import select

    with receiver.runtime.sessions() as session:
        query = select(Event.id)
        for name, value in columns.items():
            query = query.where(getattr(Event, name) == value)
        return set(session.scalars(query))


def test_event_list_shows_every_event_newest_first_with_badges_and_the_chart(loaded: Receiver) -> None:
    html = page(loaded, "/")
    assert linked_events(html) == list(range(len(PAYLOAD_FILES), 0, -1))
    assert f"{len(PAYLOAD_FILES)} events, newest first." in html
    assert '<span class="badge bad">SYNC_FAILED</span>' in html
    assert '<span class="badge good">JOB_COMPLETED</span>' in html
    # HotGlue's message is summarised by its last line under a failed job.
    assert "RuntimeError: Failed OAuth login" in html
    assert f'aria-label="{len(PAYLOAD_FILES)} events and 4 failures in the last 24 hours' in html
    # The retention state sits in the footer.
    assert "Retention 30 days" in html and "last purge never" in html


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("tenant=3310", {"tenant": "3310"}),
        ("flow_id=Rb7TnE4wz", {"flow_id": "Rb7TnE4wz"}),
        ("status=SYNC_FAILED", {"status": "SYNC_FAILED"}),
        ("sync_type=full_sync", {"sync_type": "full_sync"}),
        ("tenant=3310&status=SYNC_FAILED", {"tenant": "3310", "status": "SYNC_FAILED"}),
    ],
)
def test_filters_narrow_the_list_and_stay_in_the_form(loaded: Receiver, query: str, where: dict[str, str]) -> None:
    html = page(loaded, "/?" + query)
    expected = ids_where(loaded, **where)
    assert expected and set(linked_events(html)) == expected
    for value in where.values():
        assert f'value="{value}"' in html or f"<option selected>{value}</option>" in html


def test_any_failure_text_and_time_filters(loaded: Receiver) -> None:
    failed = {i for i in ids_where(loaded) if i in _failed_ids(loaded)}
    assert set(linked_events(page(loaded, "/?status=*_FAILED"))) == failed
    # Text matches HotGlue's message or the job name, case-insensitively.
    assert set(linked_events(page(loaded, "/?q=EXACTONLINE.nl/api/oauth2"))) == ids_where(
        loaded, status="SYNC_FAILED", tenant="3310"
    )
    assert set(linked_events(page(loaded, "/?q=full+sync+after"))) == ids_where(loaded, job_name="Full Sync after reconnect")
    assert linked_events(page(loaded, "/?q=100%25")) == []  # % is a character, not a wildcard
    assert len(linked_events(page(loaded, "/?since=1h"))) == len(PAYLOAD_FILES)
    assert linked_events(page(loaded, "/?until=2020-01-01T00:00:00Z")) == []
    html = page(loaded, "/?since=last+tuesday")
    assert "since: “last tuesday” is not a time" in html
    assert len(linked_events(html)) == len(PAYLOAD_FILES)


def _failed_ids(receiver: Receiver) -> set[int]:
    with receiver.runtime.sessions() as session:
        from sqlalchemy import select

        return {i for i, s in session.execute(select(Event.id, Event.status)) if s.endswith("_FAILED")}


def test_the_list_is_paginated_with_a_cursor_that_keeps_the_filters(receiver: Receiver) -> None:
    base = payload("sync_failed__shopify_500")
    for n in range(55):
        receiver.post({**base, "s3_root": f"{base['s3_root']}-{n}"})
    receiver.post(payload("sync_failed__exact_token_401"))  # another tenant
    first = page(receiver, "/?tenant=4821")
    shown = linked_events(first)
    assert len(shown) == 50 and shown == sorted(shown, reverse=True)
    assert "55 events match, newest first." in first
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older and "tenant=4821" in older.group(1)
    second = page(receiver, older.group(1).replace("&amp;", "&"))
    rest = linked_events(second)
    assert len(rest) == 5 and max(rest) < min(shown)
    assert 'rel="next"' not in second and "← Newest" in second


def test_event_detail_shows_fields_payload_decision_and_actions(loaded: Receiver) -> None:
    [event_id] = ids_where(loaded, tenant="3310", status="SYNC_FAILED")
    html = page(loaded, f"/events/{event_id}")
    assert "Rb7TnE4wz-exact-20261128-063000" in html
    assert "3310/flows/Rb7TnE4wz/jobs/2026/11/6/28/06/mE2kV" in html  # parsed s3_root
    assert "HotGlue's message" in html and "Old refresh token used." in html
    assert "What the rules decided" in html and "failure_alert" in html
    assert "slack.post_message" in html and "POST https://slack.com/api/chat.postMessage" in html
    assert '<span class="badge okish">dry_run</span>' in html
    assert '&#34;tenant&#34;: &#34;3310&#34;' in html  # the pretty payload, escaped
    assert 'name="csrf_token"' in html and "Replay</button>" in html
    assert 'http-equiv="refresh"' not in html  # done: nothing to watch


def test_no_rule_matched_is_shown(receiver: Receiver) -> None:
    [event_id] = send(receiver, "job_created__scheduled")
    receiver.worker().drain()
    html = page(receiver, f"/events/{event_id}")
    assert "<li>no rule matched" in html
    assert "No actions: nothing to do for this event." in html


def test_unknown_pages_answer_404_in_html(receiver: Receiver) -> None:
    assert "There is no event 999" in page(receiver, "/events/999", 404)
    assert "No events of tenant nobody" in page(receiver, "/tenants/nobody", 404)
    page(receiver, "/events/99999999999999999999999", 404)


def test_replay_needs_the_csrf_token_then_reopens_the_event(receiver: Receiver) -> None:
    [event_id] = send(receiver, "sync_failed__shopify_500")
    worker = receiver.worker()
    worker.drain()
    kill_actions(receiver, event_id)
    refused = receiver.client.post(f"/events/{event_id}/replay")
    assert refused.status_code == 400 and "The CSRF token is missing." in text_of(refused)
    assert event_state(receiver, event_id) == "done"

    token = csrf_token(page(receiver, f"/events/{event_id}"))
    answer = receiver.client.post(f"/events/{event_id}/replay", data={"csrf_token": token})
    assert answer.status_code == 302 and answer.headers["Location"] == f"/events/{event_id}"
    html = page(receiver, f"/events/{event_id}")
    assert f"Event {event_id} is queued again." in html
    assert 'http-equiv="refresh"' in html  # open: the page follows the worker
    assert action_states(receiver, event_id) == [("pending", 0)]
    worker.drain()
    assert action_states(receiver, event_id) == [("dry_run", 1)]
    assert receiver.client.post("/events/424242/replay", data={"csrf_token": token}).status_code == 404


def test_tenant_page_groups_stages_by_job_newest_job_first(receiver: Receiver) -> None:
    base = payload("sync_failed__exact_token_401")
    stages = ["JOB_CREATED", "SYNC_STARTED", "SYNC_FAILED"]
    for minute, status in enumerate(stages):
        receiver.post({**base, "status": status, "last_updated": f"2026-11-28T06:0{minute}:00+00:00"})
    later = {**base, "s3_root": base["s3_root"] + "-later", "job_name": "later-job", "status": "JOB_CREATED"}
    receiver.post(later)
    receiver.post(payload("sync_failed__shopify_500"))  # another tenant
    receiver.worker().drain()
    html = page(receiver, "/tenants/3310")
    assert html.index("later-job") < html.index("Rb7TnE4wz-exact-20261128-063000")
    first_job = html[html.index("Rb7TnE4wz-exact-20261128-063000") :]
    positions = [first_job.index(f">{status}</span>") for status in stages]
    assert positions == sorted(positions)
    assert "RuntimeError: Failed OAuth login" in first_job
    assert "Xk2pQ9aLm-shopify" not in html


def test_tenant_page_pages_by_job(receiver: Receiver) -> None:
    base = payload("job_created__scheduled")
    for n in range(23):
        receiver.post({**base, "s3_root": f"{base['s3_root']}-{n}", "job_name": f"job-{n:02d}"})
    first = page(receiver, "/tenants/4821")
    assert "job-22" in first and "job-03" in first and "job-02" not in first
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older
    second = page(receiver, older.group(1).replace("&amp;", "&"))
    assert all(f"job-{n:02d}" in second for n in range(3)) and "job-03" not in second


@pytest.mark.parametrize("tenant", ["<script>alert(1)</script>", "acme/eu", "a//b", "trailing/", "x/events", "100%"])
def test_a_tenant_id_with_slashes_or_markup_has_a_working_escaped_page(receiver: Receiver, tenant: str) -> None:
    receiver.post({**payload("sync_failed__shopify_500"), "tenant": tenant})
    receiver.post(payload("sync_failed__exact_token_401"))  # another tenant
    listed = page(receiver, "/tenants")
    links = [link.replace("&amp;", "&") for link in re.findall(r'href="(/tenants/[^"]+)"', listed)]
    assert "<script>" not in listed
    [link] = [link for link in links if link != "/tenants/3310"]
    html = page(receiver, link)
    assert "Xk2pQ9aLm-shopify" in html and "Rb7TnE4wz-exact" not in html
    assert "<script>alert" not in html
    if tenant.startswith("<script>"):
        assert link == "/tenants/%3Cscript%3Ealert(1)%3C/script%3E"
        assert "Tenant &lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_tenant_page_for_a_tenant_id_no_filter_accepts_is_400(receiver: Receiver) -> None:
    assert "The tenant id must not contain NUL characters." in page(receiver, "/tenants/a%00b", 400)
    page(receiver, "/tenants/a/b", 404)  # valid, just unknown


def test_tenants_page_lists_recent_tenants_with_failures(loaded: Receiver) -> None:
    html = page(loaded, "/tenants")
    assert [t for t in re.findall(r'href="/tenants/(\w+)"', html)] == ["4821", "3310", "5077"] or {
        t for t in re.findall(r'href="/tenants/(\w+)"', html)
    } == {"4821", "3310", "5077"}
    assert 'href="/?tenant=3310&amp;status=%2A_FAILED"' in html or "tenant=3310" in html
    found = page(loaded, "/tenants?q=33")
    assert re.findall(r'href="/tenants/(\w+)"', found) == ["3310"]


def test_dead_letters_are_listed_filtered_and_replayed_in_bulk(receiver: Receiver) -> None:
    shopify, exact, etl = send(receiver, "sync_failed__shopify_500", "sync_failed__exact_token_401", "etl_failed__transform")
    worker = receiver.worker()
    worker.drain()
    dead_ids = {event_id: kill_actions(receiver, event_id) for event_id in (shopify, exact, etl)}
    html = page(receiver, "/dead")
    total = sum(len(ids) for ids in dead_ids.values())
    assert f"{total} dead actions." in html
    assert "Slack chat.postMessage: 503 Service Unavailable" in html
    assert f'<span class="count bad">{total}</span>' in html  # the nav shows the dead letters

    only_3310 = page(receiver, "/dead?tenant=3310")
    assert f"{len(dead_ids[exact])} dead action" in only_3310
    token = csrf_token(only_3310)
    assert receiver.client.post("/dead/replay", data={"tenant": "3310", "scope": "all"}).status_code == 400
    answer = receiver.client.post("/dead/replay", data={"csrf_token": token, "tenant": "3310", "scope": "all"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/dead?tenant=3310"
    assert f"Replayed {len(dead_ids[exact])} dead action(s) of 1 event(s)" in page(receiver, "/dead?tenant=3310")
    assert {state for state, _ in action_states(receiver, exact)} == {"pending"}
    assert {state for state, _ in action_states(receiver, shopify)} == {"dead"}

    chosen = dead_ids[etl][0]
    answer = receiver.client.post("/dead/replay", data={"csrf_token": token, "scope": "selected", "ids": [str(chosen)]})
    assert answer.status_code == 302
    assert {state for state, _ in action_states(receiver, etl)} == {"pending"}
    assert {state for state, _ in action_states(receiver, shopify)} == {"dead"}
    nothing = receiver.client.post("/dead/replay", data={"csrf_token": token, "scope": "selected"}, follow_redirects=True)
    assert "Tick at least one dead action" in text_of(nothing)
    worker.drain()
    assert f"{len(dead_ids[shopify])} dead action" in page(receiver, "/dead")


@pytest.mark.parametrize(
    ("form", "complaint"),
    [
        ({"scope": "bogus"}, "scope “bogus”: say scope=all"),
        ({"ids": "80"}, "no scope: say scope=all"),
        ({}, "no scope: say scope=all"),
        ({"scope": "selected", "ids": "abc"}, "“abc” is not an action id"),
        ({"scope": "selected", "ids": "-1"}, "“-1” is not an action id"),
        ({"scope": "selected", "ids": "0"}, "“0” is not an action id"),
        ({"scope": "selected", "ids": ["1", "99999999999999999999"]}, "“99999999999999999999” is not an action id"),
    ],
)
def test_a_bulk_replay_without_a_known_scope_or_with_bad_ids_replays_nothing(
    database_url: str, capsys: pytest.CaptureFixture[str], form: dict[str, Any], complaint: str
) -> None:
    receiver = Receiver(database_url, log_format="json")
    try:
        events = send(receiver, "sync_failed__shopify_500", "sync_failed__exact_token_401")
        receiver.worker().drain()
        for event_id in events:
            kill_actions(receiver, event_id)
        token = csrf_token(page(receiver, "/dead"))
        capsys.readouterr()
        answer = receiver.client.post("/dead/replay", data={"csrf_token": token, **form})
        assert answer.status_code == 400
        assert f"Nothing was replayed: {complaint}" in text_of(answer)
        assert 'href="/dead">Back to the dead actions' in text_of(answer)
        assert {state for event_id in events for state, _ in action_states(receiver, event_id)} == {"dead"}
    finally:
        receiver.close()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    refused = [line for line in lines if line["event"] == "dead_replay_refused"]
    assert len(refused) == 1 and complaint in refused[0]["reason"]
    assert not [line for line in lines if line["event"] == "dead_actions_replayed"]


def test_a_selected_replay_without_ids_is_explained_and_logged(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = Receiver(database_url, log_format="json")
    try:
        [event_id] = send(receiver, "sync_failed__shopify_500")
        receiver.worker().drain()
        [action_id] = kill_actions(receiver, event_id)
        token = csrf_token(page(receiver, "/dead"))
        capsys.readouterr()
        answer = receiver.client.post("/dead/replay", data={"csrf_token": token, "scope": "selected"})
        assert answer.status_code == 302 and answer.headers["Location"] == "/dead"
        assert '<p class="flash warn" role="status">Tick at least one dead action' in page(receiver, "/dead")
        assert action_states(receiver, event_id) == [("dead", 8)]
        logged = capsys.readouterr().err
        assert '"event": "dead_replay_refused"' in logged and "scope=selected without ids" in logged

        # A replay that finds nothing dead says so, rather than "Replayed 0".
        with_done = {"csrf_token": token, "scope": "selected", "ids": str(action_id)}
        assert receiver.client.post("/dead/replay", data=with_done).status_code == 302
        assert "Replayed 1 dead action(s) of 1 event(s)" in page(receiver, "/dead")
        assert receiver.client.post("/dead/replay", data=with_done).status_code == 302
        assert "Nothing was replayed: no dead action matches" in page(receiver, "/dead")
    finally:
        receiver.close()


def test_retention_state_shows_the_last_purge(receiver: Receiver) -> None:
    send(receiver, "sync_failed__shopify_500")
    purge(receiver.runtime.sessions, 30)
    html = page(receiver, "/")
    assert "last purge never" not in html and "last purge <time datetime=" in html
    assert "oldest stored event <time datetime=" in html


def test_chart_counts_events_and_failures_per_hour(receiver: Receiver) -> None:
    from hotglue_webhooks.storage.queries import EventFilter, hourly_counts

    first, second, third = send(receiver, "sync_failed__shopify_500", "job_created__scheduled", "etl_failed__transform")
    now = datetime(2026, 11, 29, 12, 30, tzinfo=UTC)
    with receiver.runtime.sessions.begin() as session:
        session.execute(update(Event).where(Event.id == first).values(received_at=datetime(2026, 11, 29, 9, 5, tzinfo=UTC)))
        session.execute(update(Event).where(Event.id == second).values(received_at=datetime(2026, 11, 29, 9, 59, tzinfo=UTC)))
        session.execute(update(Event).where(Event.id == third).values(received_at=now - timedelta(days=8)))
    counts = hourly_counts(receiver.runtime.sessions, now)
    assert len(counts) == 168 and counts[-1].hour == datetime(2026, 11, 29, 12, tzinfo=UTC)
    busy = [(c.hour.hour, c.events, c.failures) for c in counts if c.events]
    assert busy == [(9, 2, 1)]
    only = hourly_counts(receiver.runtime.sessions, now, filters=EventFilter(tenant="nobody"))
    assert sum(c.events for c in only) == 0
