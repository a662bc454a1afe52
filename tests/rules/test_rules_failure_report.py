"""Issue 15 item 2: every rule that changes HotGlue state plans one report, posted only
if one of those changes ends dead or skipped, saying what is still true."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rules_support import example_config, make_event

from hotglue_webhooks.rules import SLACK_ACTION_FAILED, Facts, Schedule, decide
from hotglue_webhooks.rules.messages import SECTION_LIMIT, TEXT_LIMIT, action_failed, blocks_text, schedule_step

config = example_config()
NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
CHANNEL = "#hotglue-webhooks"
SCHEDULES = Facts(
    linked_flows=("Rb7TnE4wz", "Vd3HsW8qc"),
    schedules={"Rb7TnE4wz": Schedule("cron(30 * * * ? *)", "ENABLED"), "Vd3HsW8qc": Schedule("cron(0 8 * * ? *)", "PAUSED")},
)


def report_of(decision: object) -> dict:  # type: ignore[type-arg]
    [report] = [a for a in decision.actions if a.kind == SLACK_ACTION_FAILED]  # type: ignore[attr-defined]
    return {"key": report.key, "rule": report.rule, "depends_on": report.depends_on, **report.params}


def test_the_exact_401_report_watches_every_put_and_knows_what_stays_true() -> None:
    event = make_event("sync_failed__exact_token_401")
    report = report_of(decide(event, SCHEDULES, config, NOW, CHANNEL))
    prefix = f"{event.event_key}|exact_token_401|"

    assert report == {
        "key": prefix + "slack:action_failed",
        "rule": "exact_token_401",
        "depends_on": (prefix + "schedule:Rb7TnE4wz", prefix + "schedule:Vd3HsW8qc"),
        "channel": CHANNEL,
        "title": "Exact Online refused the refresh token of tenant 3310, flow Rb7TnE4wz, and turning schedules off "
        "failed. The customer must still reconnect Exact Online",
        "tenant": "3310",
        "flow_id": "Rb7TnE4wz",
        "steps": [
            {
                "action_key": prefix + "schedule:Rb7TnE4wz",
                "what": "turn off the schedule of flow Rb7TnE4wz",
                "still_true": "the schedule of flow Rb7TnE4wz is still ENABLED",
                "done": "the schedule of flow Rb7TnE4wz is DISABLED",
            },
            {
                "action_key": prefix + "schedule:Vd3HsW8qc",
                "what": "turn off the schedule of flow Vd3HsW8qc",
                "still_true": "the schedule of flow Vd3HsW8qc is still PAUSED",
                "done": "the schedule of flow Vd3HsW8qc is DISABLED",
            },
        ],
    }


def test_a_failure_alert_alone_plans_no_report() -> None:
    decision = decide(make_event("sync_failed__shopify_500"), Facts(), config, NOW, CHANNEL)
    assert all(a.kind != SLACK_ACTION_FAILED for a in decision.actions)


@pytest.mark.parametrize(
    ("state", "previous", "known", "still_true"),
    [
        ("ENABLED", Schedule("cron(1)", "DISABLED"), True, "the schedule of flow F1 is still DISABLED"),
        ("ENABLED", None, True, "flow F1 still has no schedule"),
        ("ENABLED", None, False, "the schedule of flow F1 is as it was (it could not be read before)"),
        ("DISABLED", Schedule("cron(1)", None), True, "the schedule of flow F1 is as it was (its state was not reported)"),
    ],
)
def test_schedule_step_says_what_stays_true(state: str, previous: Schedule | None, known: bool, still_true: str) -> None:
    assert schedule_step("F1", state, previous, known)[1] == still_true


PARAMS = {
    "channel": "#c",
    "title": "A step after job J1 of tenant <t&1>, flow F1 failed",
    "tenant": "<t&1>",
    "flow_id": "F1",
    "steps": [
        {"action_key": "k1", "what": "enable the schedule of flow F1", "still_true": "the schedule of flow F1 is still DISABLED", "done": "the schedule of flow F1 is ENABLED"},
        {"action_key": "k2", "what": "link optiply in flow F1", "still_true": "optiply is still not linked in flow F1", "done": "optiply is linked in flow F1"},
        {"action_key": "k3", "what": "start job wh-F1 in flow F1", "still_true": "flow F1 has still not synced", "done": "job wh-F1 started in flow F1"},
    ],
}


def test_the_report_names_each_failed_step_its_error_and_links_the_event() -> None:
    outcomes = {"k1": ("done", None), "k2": ("dead", "HotGlue 400 on POST /e/F1/t/linkedTargets: <bad>"), "k3": ("skipped", None)}

    posted = action_failed(PARAMS, outcomes, 42, "https://hooks.example.com")

    assert posted["channel"] == "#c"
    assert posted["text"] == (
        ":x: A step after job J1 of tenant &lt;t&amp;1&gt;, flow F1 failed. Could not link optiply in flow F1 (dead): "
        "optiply is still not linked in flow F1. Last error: HotGlue 400 on POST /e/F1/t/linkedTargets: &lt;bad&gt;. "
        "Could not start job wh-F1 in flow F1 (skipped): flow F1 has still not synced. Last error: no error recorded. "
        "Done: the schedule of flow F1 is ENABLED. See https://hooks.example.com/events/42."
    )
    assert blocks_text(posted["blocks"]) == [
        ":x: *A step after job J1 of tenant &lt;t&amp;1&gt;, flow F1 failed*",
        "*Still true*\n• *Could not link optiply in flow F1* (dead): optiply is still not linked in flow F1.\n"
        "Last error: ```HotGlue 400 on POST /e/F1/t/linkedTargets: &lt;bad&gt;```\n"
        "• *Could not start job wh-F1 in flow F1* (skipped): flow F1 has still not synced.\n"
        "Last error: ```no error recorded```",
        "*Done*\n• the schedule of flow F1 is ENABLED",
        "tenant &lt;t&amp;1&gt; · flow F1 · <https://hooks.example.com/events/42|event 42>",
    ]


def test_without_a_public_url_the_report_names_the_event_id() -> None:
    posted = action_failed(PARAMS, {"k1": ("dead", "x")}, 42, None)
    assert posted["text"].endswith("Last error: x. See event 42.")
    assert blocks_text(posted["blocks"])[-1] == "tenant &lt;t&amp;1&gt; · flow F1 · event 42"


def test_a_huge_error_of_many_steps_stays_within_slack_limits() -> None:
    steps = [{"action_key": f"k{n}", "what": "w" * 300, "still_true": "s" * 300, "done": "d"} for n in range(200)]
    posted = action_failed({**PARAMS, "steps": steps}, {f"k{n}": ("dead", "e" * 100_000) for n in range(200)}, 1, None)
    assert len(posted["text"]) <= TEXT_LIMIT
    assert len(posted["blocks"]) <= 50
    assert all(0 < len(text) <= SECTION_LIMIT for text in blocks_text(posted["blocks"]))
