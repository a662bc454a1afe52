"""Issue 15 item 1: an event older than a newer job's end (of the same tenant and flow)
is stale. It changes nothing and opens or resolves no alert; its first note names the newer job."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from rules_support import example_config, make_event

from hotglue_webhooks.rules import (
    SLACK_POST,
    Facts,
    FactNeeds,
    Schedule,
    TerminalStage,
    decide,
    is_stale,
    needed_facts,
)
from hotglue_webhooks.rules.decide import newer_job

config = example_config()
NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
CHANNEL = "#hotglue-webhooks"
EXACT_401 = make_event("sync_failed__exact_token_401")  # 3310 / Rb7TnE4wz, last_updated 06:09:41.081282
NEWER = TerminalStage(
    event_id=7, s3_root="3310/flows/Rb7TnE4wz/jobs/2026/11/6/28/07/Nw1Jb", job_id="Nw1Jb",
    status="JOB_COMPLETED", last_updated="2026-11-28T07:30:00+00:00", start_time="2026-11-28T07:00:00+00:00",
)
SCHEDULES = Facts(
    linked_flows=("Rb7TnE4wz", "Vd3HsW8qc"),
    schedules={"Rb7TnE4wz": Schedule("cron(30 * * * ? *)", "ENABLED"), "Vd3HsW8qc": Schedule("cron(0 8 * * ? *)", "ENABLED")},
)


def stage(**changes: Any) -> TerminalStage:
    return dataclasses.replace(NEWER, **changes)


@pytest.mark.parametrize(
    ("newest", "stale"),
    [
        (None, False),
        (NEWER, True),
        # ends before the event, or at the same moment and started no later
        (stage(last_updated="2026-11-28T06:00:00+00:00"), False),
        (stage(last_updated="2026-11-28T06:09:41.081282+00:00", start_time="2026-11-28T06:05:00.113270+00:00"), False),
        # same last_updated, started later: newer by start_time
        (stage(last_updated="2026-11-28T06:09:41.081282+00:00", start_time="2026-11-28T06:06:00+00:00"), True),
        # same last_updated, a start time missing: not judged
        (stage(last_updated="2026-11-28T06:09:41.081282+00:00", start_time=None), False),
        # another time zone, same instant as 07:30 UTC
        (stage(last_updated="2026-11-28T08:30:00+01:00"), True),
        # unreadable time: never stale on a guess
        (stage(last_updated="yesterday"), False),
        (stage(last_updated=None), False),
        # the event's own job: out-of-order stages of one job are another matter
        (stage(s3_root=EXACT_401.s3_root), False),
    ],
)
def test_newer_job_compares_last_updated_then_start_time(newest: TerminalStage | None, stale: bool) -> None:
    assert (newer_job(EXACT_401, newest) is not None) is stale


def test_an_event_without_last_updated_is_never_stale() -> None:
    event = make_event("sync_failed__exact_token_401", last_updated=None)
    assert newer_job(event, NEWER) is None


def test_a_late_exact_401_turns_nothing_off_and_names_the_newer_job() -> None:
    decision = decide(EXACT_401, dataclasses.replace(SCHEDULES, newest_terminal=NEWER), config, NOW, CHANNEL)

    assert decision.actions == ()
    assert decision.notes == (
        "stale: job 3310/flows/Rb7TnE4wz/jobs/2026/11/6/28/07/Nw1Jb (job_id Nw1Jb) ended JOB_COMPLETED at "
        "2026-11-28T07:30:00+00:00 (event 7), after this SYNC_FAILED at 2026-11-28T06:09:41.081282+00:00: "
        "no schedule change, link, job start or alert",
    )
    assert is_stale(decision.notes)


def test_the_same_exact_401_without_a_newer_job_still_turns_schedules_off() -> None:
    decision = decide(EXACT_401, SCHEDULES, config, NOW, CHANNEL)
    assert [a.kind for a in decision.actions].count("hotglue.put_schedule") == 2
    assert not is_stale(decision.notes)


@pytest.mark.parametrize("name", ["sync_failed__shopify_500", "etl_failed__transform"])
def test_a_late_failure_opens_no_alert(name: str) -> None:
    event = make_event(name)
    newer = stage(s3_root="4821/flows/Xk2pQ9aLm/jobs/x/Ok9", job_id="Ok9", last_updated="2026-11-28T23:00:00+00:00")
    decision = decide(event, Facts(newest_terminal=newer), config, NOW, CHANNEL)
    assert decision.actions == ()
    assert is_stale(decision.notes)


def test_a_late_full_sync_enables_links_and_starts_nothing() -> None:
    event = make_event("job_completed__full_sync")
    newer = stage(s3_root="4821/flows/Xk2pQ9aLm/jobs/x/Fl9", job_id="Fl9", status="SYNC_FAILED", last_updated="2026-11-28T23:00:00+00:00")
    facts = Facts(
        tenant_config={"apiCredentials": {"username": "u", "password": "p"}}, tenant_config_read=True,
        schedules={"Xk2pQ9aLm": Schedule("cron(0 */4 * * ? *)", "DISABLED")}, linked_targets={"Xk2pQ9aLm": ()},
        source_state={"Xk2pQ9aLm": None}, newest_terminal=newer,
    )
    decision = decide(event, facts, config, NOW, CHANNEL)
    assert decision.actions == ()
    assert decision.notes[0].startswith("stale: job 4821/flows/Xk2pQ9aLm/jobs/x/Fl9 (job_id Fl9) ended SYNC_FAILED")


def test_a_late_buy_order_report_is_still_posted_but_resolves_no_alert() -> None:
    event = make_event("job_completed__exact_buy_orders_failed")
    newer = stage(s3_root="3310/flows/Vd3HsW8qc/jobs/x/Ex9", last_updated="2026-11-28T23:00:00+00:00")
    decision = decide(event, Facts(newest_terminal=newer), config, NOW, CHANNEL)
    assert [(a.kind, a.rule) for a in decision.actions] == [(SLACK_POST, "buy_order_report")]
    assert is_stale(decision.notes)


def test_only_events_that_may_act_ask_for_the_newest_other_job() -> None:
    assert needed_facts(EXACT_401, config).newest_terminal
    assert needed_facts(make_event("job_completed__full_sync"), config).newest_terminal
    assert needed_facts(make_event("job_created__scheduled"), config) == FactNeeds()
    assert not needed_facts(make_event("sync_failed__exact_token_401", tenant=None, started_by=None), config).newest_terminal


@pytest.mark.parametrize(
    ("notes", "stale"),
    [(None, False), ([], False), (["no rule matched", "x"], False), (["stale: job a"], True), (["failure_alert: stale: x"], False)],
)
def test_is_stale_reads_the_first_note(notes: list[str] | None, stale: bool) -> None:
    assert is_stale(notes) is stale
