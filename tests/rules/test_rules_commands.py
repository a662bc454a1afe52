"""Buttons and commands (pure): the action_id table, button values, which message gets
which button, and the actions each command plans."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hotglue_webhooks.rules import (
    HOTGLUE_PUT_SCHEDULE, HOTGLUE_START_JOB, SLACK_ACTION_FAILED, SLACK_UPDATE, Facts, JobEvent, Schedule, decide,
)
from hotglue_webhooks.rules.model import IncidentSnapshot
from hotglue_webhooks.rules.commands import (
    ACTION_IDS, RECEIVER_REPLAY, RECEIVER_SNOOZE, SLACK_RESPOND, BadValue, ButtonValue, CommandFacts, CommandRequest,
    IncidentValue, PastCommand, SlackPost, TurnedOff, command_for, decode_value, plan_command, updated_blocks,
)
from rules_support import example_config, make_event

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
CONFIG = example_config()
ENV = "production.hotglue.example.com"


def request(command: str, **changes: object) -> CommandRequest:
    fields: dict[str, object] = dict(
        id=7, command=command, origin="slack", event_key="cmdkey", user_id="U0ALICE", user_name="alice",
        requested_at=NOW, env_id=ENV, tenant="3310", responds=True,
    )
    fields.update(changes)
    return CommandRequest(**fields)  # type: ignore[arg-type]


def actions_block(blocks: list[dict[str, object]]) -> list[dict[str, object]]:
    return [b for b in blocks if b.get("type") == "actions"]


def test_every_action_id_names_its_command_and_no_other_is_taken() -> None:
    assert {command_for(a) for a in ACTION_IDS} == {"enable_schedules", "retry_job", "snooze", "snooze_incident", "replay"}
    assert all(command in action_id for action_id, command in ACTION_IDS.items())
    for other in ("enable_schedules", "hgw_", "hgw_drop_tables", None, 5, ["hgw_replay"]):
        assert command_for(other) is None


@pytest.mark.parametrize(
    "text",
    ["", "{", "[]", '{"tenant": "1"}', '{"tenant": "", "event": "e"}', '{"tenant": 1, "event": "e"}',
     '{"tenant": "1", "event": "e", "key": "x"}', "x" * 2001, '{"tenant": "\\ud800", "event": "e"}', None, 3,
     '{"incident": "4"}', '{"incident": 0}', '{"incident": true}', '{"incident": 1.5}', '{"incident": 4, "tenant": "1"}',
     '{"incident": 9223372036854775808}'],
)
def test_a_value_that_does_not_decode_is_refused(text: object) -> None:
    with pytest.raises(BadValue):
        decode_value(text)


def test_a_value_round_trips() -> None:
    value = ButtonValue("t/ü\u202e", "a" * 64)
    assert decode_value(value.encode()) == value
    assert decode_value(IncidentValue(12).encode()) == IncidentValue(12)


def test_buttons_only_when_asked_and_on_the_messages_that_need_a_person() -> None:
    failed = make_event("sync_failed__shopify_500")
    plain = decide(failed, Facts(), CONFIG, NOW, "#hgw")
    assert all(not actions_block(a.params["blocks"]) for a in plain.actions if "blocks" in a.params)
    (alert,) = decide(failed, Facts(), CONFIG, NOW, "#hgw", buttons=True).actions
    (block,) = actions_block(alert.params["blocks"])
    button, snooze = block["elements"]  # type: ignore[misc]
    assert button["action_id"] == "hgw_retry_job" and button["text"]["text"] == "Retry job"
    assert decode_value(button["value"]) == ButtonValue("4821", failed.event_key)
    assert snooze["action_id"] == "hgw_snooze" and snooze["text"]["text"] == "Snooze 24 h"
    assert decode_value(snooze["value"]) == ButtonValue("4821", failed.event_key)

    exact = make_event("sync_failed__exact_token_401")
    facts = Facts(linked_flows=("Rb7TnE4wz",), schedules={"Rb7TnE4wz": Schedule("cron(30 * * * ? *)", "ENABLED")})
    decision = decide(exact, facts, CONFIG, NOW, "#hgw", buttons=True)
    by_action = {
        e["action_id"] for a in decision.actions for b in actions_block(a.params.get("blocks") or []) for e in b["elements"]
    }
    assert by_action == {"hgw_retry_job", "hgw_snooze", "hgw_enable_schedules"}
    report = next(a for a in decision.actions if a.kind == SLACK_ACTION_FAILED)
    assert report.params["buttons"][0]["action_id"] == "hgw_replay"
    # Nothing turned off: no Re-enable button.
    none_off = decide(exact, Facts(linked_flows=("Rb7TnE4wz",), schedules={"Rb7TnE4wz": None}), CONFIG, NOW, "#hgw", buttons=True)
    assert "hgw_enable_schedules" not in json.dumps([a.params for a in none_off.actions])


MESSAGE = SlackPost(
    "C0CHAN", "1700000000.000200", ":lock: Schedules turned off for tenant 3310",
    (
        {"type": "section", "text": {"type": "mrkdwn", "text": "turned off"}},
        {"type": "actions", "block_id": "hgw_commands", "elements": [
            {"type": "button", "action_id": "hgw_enable_schedules", "value": "v"},
            {"type": "button", "action_id": "hgw_snooze", "value": "v"},
        ]},
    ),
    "#hotglue-webhooks",
)
OFF = (
    TurnedOff(ENV, "Rb7TnE4wz", "3310", {"schedule_expression": "cron(30 * * * ? *)", "state": "DISABLED"}, 1),
    TurnedOff(ENV, "Vd3HsW8qc", "3310", {"schedule_expression": "cron(0 8 * * ? *)", "state": "DISABLED",
                                         "job_type": "write", "connector_id": "exact"}, 1),
)


def test_enable_schedules_writes_back_each_expression_then_updates_the_message() -> None:
    decision = plan_command(request("enable_schedules"), CommandFacts(message=MESSAGE, turned_off=OFF), CONFIG, NOW, "#hgw")
    puts = [a for a in decision.actions if a.kind == HOTGLUE_PUT_SCHEDULE]
    assert [(a.params["flow_id"], a.params["body"]) for a in puts] == [
        ("Rb7TnE4wz", {"schedule_expression": "cron(30 * * * ? *)", "state": "ENABLED"}),
        ("Vd3HsW8qc", {"schedule_expression": "cron(0 8 * * ? *)", "state": "ENABLED", "job_type": "write", "connector_id": "exact"}),
    ]
    assert all(a.key.startswith("cmdkey|command|") and a.rule == "command" for a in decision.actions)
    update = next(a for a in decision.actions if a.kind == SLACK_UPDATE)
    assert set(update.depends_on) == {a.key for a in puts}
    assert (update.params["channel"], update.params["ts"], update.params["pace"]) == ("C0CHAN", MESSAGE.ts, "#hotglue-webhooks")
    line = ":white_check_mark: Schedules re-enabled by <@U0ALICE> at 2026-12-07 09:30 UTC"
    assert update.params["text"] == f"{MESSAGE.text}\n{line}"
    # Only the clicked button goes; Snooze stays.
    (block,) = actions_block(update.params["blocks"])
    assert [e["action_id"] for e in block["elements"]] == ["hgw_snooze"]
    assert update.params["blocks"][-1]["elements"][0]["text"] == line
    report = decision.actions[-1]
    assert report.kind == SLACK_ACTION_FAILED and set(report.depends_on) == {a.key for a in puts}


def test_enable_schedules_with_nothing_off_only_says_so() -> None:
    decision = plan_command(request("enable_schedules"), CommandFacts(message=MESSAGE), CONFIG, NOW, "#hgw")
    (respond,) = decision.actions
    assert respond.kind == SLACK_RESPOND and respond.params["command_id"] == 7
    assert "No schedule of this tenant is still turned off" in respond.params["body"]["text"]


def test_a_repeat_or_a_refused_click_only_answers_the_clicker() -> None:
    first = PastCommand("enable_schedules", "slack", "U0BOB", "bob", NOW, succeeded=True, done_at=NOW)
    (answer,) = plan_command(request("enable_schedules", duplicate_of=first), CommandFacts(), CONFIG, NOW, "#hgw").actions
    assert answer.params["body"] == {
        "text": ":information_source: Re-enable schedules: already done by <@U0BOB> at 2026-12-07 09:30 UTC.",
        "response_type": "ephemeral", "replace_original": False,
    }
    running = PastCommand("retry_job", "dashboard", "admin", "dashboard", NOW)
    (answer,) = plan_command(request("retry_job", duplicate_of=running), CommandFacts(), CONFIG, NOW, "#hgw").actions
    assert "already asked for (still running) by an admin on the dashboard" in answer.params["body"]["text"]
    (answer,) = plan_command(request("replay", refused="You may not."), CommandFacts(), CONFIG, NOW, "#hgw").actions
    assert answer.params["body"]["text"] == ":no_entry: You may not."
    # A dashboard repeat has nobody to answer: nothing runs, the notes say why.
    quiet = plan_command(request("retry_job", duplicate_of=running, responds=False), CommandFacts(), CONFIG, NOW, "#hgw")
    assert quiet.actions == () and "no response_url" in quiet.notes[-1]


def test_retry_job_starts_the_flow_under_the_loop_guarded_name_once_per_failed_job() -> None:
    failed = make_event("sync_failed__shopify_500")
    decision = plan_command(request("retry_job", tenant="4821"), CommandFacts(job=failed), CONFIG, NOW, "#hgw")
    start = decision.actions[0]
    assert start.kind == HOTGLUE_START_JOB
    assert start.params == {"env_id": ENV, "flow_id": "Xk2pQ9aLm", "tenant": "4821",
                            "body": {"tap": "shopify", "job_name": "wh-Xk2pQ9aLm-shopify-2026-12-07"}}
    assert start.params["body"]["job_name"].startswith(CONFIG.jobs.loop_guard_prefix)
    assert start.key == f"retry_job|{ENV}|4821|Xk2pQ9aLm|{failed.s3_root}"
    v2 = make_event("sync_failed__shopify_500", tap=None, connector_id="c", job_type="read")
    decision = plan_command(request("retry_job"), CommandFacts(job=v2), CONFIG, NOW, "#hgw")
    assert [a.kind for a in decision.actions] == [SLACK_RESPOND]


def test_replay_reopens_the_reported_event() -> None:
    decision = plan_command(request("replay"), CommandFacts(replay_event_id=42), CONFIG, NOW, "#hgw")
    assert decision.actions[0].kind == RECEIVER_REPLAY and decision.actions[0].params == {"event_id": 42}


def test_updated_blocks_replace_the_done_lines_and_drop_an_empty_actions_block() -> None:
    once = updated_blocks(MESSAGE.blocks, {"hgw_enable_schedules"}, ["a"])
    twice = updated_blocks(once, {"hgw_enable_schedules", "hgw_snooze"}, ["a", "b"])
    assert actions_block(twice) == []
    assert [b.get("block_id") for b in twice].count("hgw_commands_done") == 1
    assert twice[-1]["elements"][0]["text"] == "a\nb"


# --- the snooze buttons ------------------------------------------------------------------------

ALERT = SlackPost(
    "C0CHAN", "1700000000.000300", ":red_circle: SYNC_FAILED for tenant 4821 on flow Xk2pQ9aLm",
    (
        {"type": "section", "text": {"type": "mrkdwn", "text": "failed"}},
        {"type": "actions", "block_id": "hgw_commands", "elements": [
            {"type": "button", "action_id": "hgw_retry_job", "value": "v"},
            {"type": "button", "action_id": "hgw_snooze", "value": "v"},
        ]},
    ),
    "#hotglue-webhooks",
)
SIGNATURE = "3f9a0c1d2e4b5a69"
INCIDENT = IncidentSnapshot(
    id=4, signature=SIGNATURE, state="open", stage="SYNC_FAILED", connector="shopify → optiply",
    error_line="HTTP 500 from Shopify", channel="#outages", channel_id="C0OUT", ts="1700000000.000400",
    first_seen_at=NOW - timedelta(minutes=20), resolved_at=None, closed_at=None, now=NOW, tenants=5, recovered=1,
    listed=("1001", "1002", "1003", "1004", "1005"), new_members=(),
)
UNTIL = "2026-12-08T09:30:00+00:00"


@pytest.mark.parametrize(
    ("command", "changes", "facts", "kinds", "params"),
    [
        # Snooze 24 h: the tenant's alerts, by the Slack user's name, then the message.
        ("snooze", {"tenant": "4821"}, CommandFacts(message=ALERT), [RECEIVER_SNOOZE, SLACK_UPDATE],
         {"scope": "tenant", "target": "4821", "until": UNTIL, "by": "alice",
          "reason": "Snooze 24 h on the alert of tenant 4821, clicked in Slack (command 7)"}),
        # No Slack user name (Slack always sends one, but): the user id.
        ("snooze", {"tenant": "4821", "user_name": None}, CommandFacts(message=ALERT), [RECEIVER_SNOOZE, SLACK_UPDATE],
         {"scope": "tenant", "target": "4821", "until": UNTIL, "by": "U0ALICE",
          "reason": "Snooze 24 h on the alert of tenant 4821, clicked in Slack (command 7)"}),
        # From the dashboard with no Slack message to update: only the snooze.
        ("snooze", {"tenant": "4821", "origin": "dashboard", "user_id": "admin", "user_name": "dashboard",
                    "responds": False}, CommandFacts(), [RECEIVER_SNOOZE],
         {"scope": "tenant", "target": "4821", "until": UNTIL, "by": "dashboard",
          "reason": "Snooze 24 h on the alert of tenant 4821, clicked in the dashboard (command 7)"}),
        ("snooze", {"tenant": None}, CommandFacts(message=ALERT), [SLACK_RESPOND], None),
        # Snooze incident: the incident's signature, then its message as it stands now.
        ("snooze_incident", {"tenant": None}, CommandFacts(incident=INCIDENT), [RECEIVER_SNOOZE, SLACK_UPDATE],
         {"scope": "signature", "target": SIGNATURE, "until": UNTIL, "by": "alice",
          "reason": "Snooze incident on incident 4, clicked in Slack (command 7)"}),
        ("snooze_incident", {"tenant": None}, CommandFacts(), [SLACK_RESPOND], None),  # purged
        ("snooze_incident", {"tenant": None}, CommandFacts(incident=replace(INCIDENT, state="resolved")),
         [SLACK_RESPOND], None),
    ],
)
def test_snooze_plans(
    command: str, changes: dict[str, object], facts: CommandFacts, kinds: list[str], params: dict[str, str] | None
) -> None:
    decision = plan_command(request(command, **changes), facts, CONFIG, NOW, "#hgw")
    assert [a.kind for a in decision.actions] == kinds
    if params is None:
        return
    snooze = decision.actions[0]
    assert snooze.params == params and snooze.key == "cmdkey|command|snooze" and snooze.rule == "command"
    # Nothing of HotGlue changes, so no failure report; the update waits for the snooze.
    for update in decision.actions[1:]:
        assert update.depends_on == (snooze.key,)


def test_snooze_updates_the_alert_without_its_button_and_says_who_snoozed_until_when() -> None:
    decision = plan_command(request("snooze", tenant="4821"), CommandFacts(message=ALERT), CONFIG, NOW, "#hgw")
    update = decision.actions[1]
    line = ":white_check_mark: This tenant's alerts snoozed until 2026-12-08 09:30 UTC by <@U0ALICE> at 2026-12-07 09:30 UTC"
    assert update.params["text"] == f"{ALERT.text}\n{line}"
    (block,) = actions_block(update.params["blocks"])
    assert [e["action_id"] for e in block["elements"]] == ["hgw_retry_job"]
    assert update.params["blocks"][-1]["elements"][0]["text"] == line
    (answer,) = plan_command(
        request("snooze", tenant=None), CommandFacts(message=ALERT), CONFIG, NOW, "#hgw"
    ).actions
    assert answer.params["body"]["text"] == ":warning: This message names no tenant: nothing snoozed."


def test_snooze_incident_updates_the_incident_message_as_it_stands_now() -> None:
    decision = plan_command(request("snooze_incident", tenant=None), CommandFacts(incident=INCIDENT), CONFIG, NOW, "#hgw")
    update = decision.actions[1]
    assert (update.params["channel"], update.params["ts"], update.params["pace"]) == ("C0OUT", INCIDENT.ts, "#outages")
    assert actions_block(update.params["blocks"]) == []
    assert "is failing for 5 tenants" in update.params["blocks"][0]["text"]["text"]
    line = (
        ":white_check_mark: Incident snoozed (alerts with its signature held) until 2026-12-08 09:30 UTC by "
        "<@U0ALICE> at 2026-12-07 09:30 UTC"
    )
    assert update.params["blocks"][-1]["elements"][0]["text"] == line and update.params["text"].endswith(f"\n{line}")
    (answer,) = plan_command(
        request("snooze_incident", tenant=None), CommandFacts(incident=replace(INCIDENT, state="expired")), CONFIG, NOW,
        "#hgw",
    ).actions
    assert answer.params["body"]["text"] == ":information_source: The incident is already expired: nothing snoozed."


def test_an_earlier_snooze_keeps_its_line_with_its_until_when_another_button_acts() -> None:
    earlier = PastCommand("snooze", "slack", "U0BOB", "bob", NOW, succeeded=True, done_at=NOW,
                          until=NOW + timedelta(hours=24))
    job = make_event("sync_failed__shopify_500")
    facts = CommandFacts(message=ALERT, earlier=(earlier,), job=job)
    decision = plan_command(request("retry_job", tenant="4821"), facts, CONFIG, NOW, "#hgw")
    update = next(a for a in decision.actions if a.kind == SLACK_UPDATE)
    assert update.params["blocks"][-1]["elements"][0]["text"] == (
        ":white_check_mark: This tenant's alerts snoozed until 2026-12-08 09:30 UTC by <@U0BOB> at 2026-12-07 09:30 UTC\n"
        ":white_check_mark: Job retried by <@U0ALICE> at 2026-12-07 09:30 UTC"
    )
    assert actions_block(update.params["blocks"]) == []  # both buttons gone


@pytest.mark.parametrize(
    ("incident", "button"),
    [
        (INCIDENT, True),
        (replace(INCIDENT, state="resolved", resolved_at=NOW), False),
        (replace(INCIDENT, state="expired", closed_at=NOW), False),
        # Snoozed already (here, the CLI or the Incidents page): the message says so instead.
        (replace(INCIDENT, snoozed=("carol", NOW + timedelta(hours=2))), False),
    ],
)
def test_the_incident_message_has_snooze_incident_while_open_and_not_snoozed(incident: IncidentSnapshot, button: bool) -> None:
    event = JobEvent.from_payload({"status": "INCIDENT_UPDATE", "incident_id": 4, "seq": 2}, event_key="k")
    for buttons in (False, True):
        (update,) = decide(event, Facts(incident=incident), CONFIG, NOW, "#hgw", buttons=buttons).actions
        elements = [e for b in actions_block(update.params["blocks"]) for e in b["elements"]]
        if buttons and button:
            (element,) = elements
            assert element["action_id"] == "hgw_snooze_incident" and element["text"]["text"] == "Snooze incident"
            assert decode_value(element["value"]) == IncidentValue(4)
        else:
            assert elements == []
    texts = [b["elements"][0]["text"] for b in update.params["blocks"] if b["type"] == "context"]
    if incident.snoozed is not None:
        assert texts[-1] == (
            ":zzz: Snoozed by carol until 2026-12-07 11:30 UTC: new alerts with this signature are held"
        )
