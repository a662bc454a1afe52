"""The rules for silent pairs and for reconciled stages: pure, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime

from rules_support import example_config, make_event

from hotglue_webhooks.rules import Facts, JobEvent, OpenAlert, decide
from hotglue_webhooks.rules.decide import silence_thread_key
from hotglue_webhooks.rules.messages import NEVER_ARRIVED

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CHANNEL = "#hotglue-webhooks"
ENV = "production.hotglue.example.com"
config = example_config()


def notice(pairs: list[dict[str, str]]) -> JobEvent:
    payload = {"status": "PAIRS_SILENT", "env_id": ENV, "s3_root": f"~silence/{ENV}/pass-3", "pass_id": 3,
               "last_updated": "2026-12-07T09:00:00+00:00", "pairs": pairs}
    return JobEvent.from_payload(payload, event_key="notice-key", source="reconciled")


def open_alert(key: str, fingerprint: str) -> OpenAlert:
    first = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    return OpenAlert(key, fingerprint, "C1", "111.222", 1, first, first, "text", (), CHANNEL)


def test_a_silence_notice_is_one_message_opening_a_thread_per_pair() -> None:
    pairs = [
        {"tenant": "3310", "flow_id": "Rb7TnE4wz", "why": "no finished job since 2026-12-07 09:00 UTC (schedule x)",
         "expected": "2026-12-07T09:30:00+00:00"},
        {"tenant": "4821", "flow_id": "Xk2pQ9aLm", "why": "no finished job since 2026-12-07 08:00 UTC (median gap)",
         "expected": None},
        {"tenant": 5, "flow_id": None},  # not a pair: left out
    ]
    decision = decide(notice(pairs), Facts(), config, NOW, CHANNEL)

    [action] = decision.actions
    assert (action.key, action.kind, action.params["channel"]) == ("notice-key|silence_notice|slack", "slack.post_message", CHANNEL)
    assert action.params["text"] == (
        f":zzz: 2 tenant flows went silent in {ENV}: no finished job within 2 intervals of their rhythm "
        "(the webhooks and HotGlue's job list agree).\n"
        "• tenant 3310 on flow Rb7TnE4wz: no finished job since 2026-12-07 09:00 UTC (schedule x); "
        "expected by 2026-12-07 09:30:00 UTC\n"
        "• tenant 4821 on flow Xk2pQ9aLm: no finished job since 2026-12-07 08:00 UTC (median gap)"
    )
    assert action.params["alert"] == {
        "op": "open", "fingerprint": "silence", "thread_key": "silence|notice-key", "at": "2026-12-07T09:00:00+00:00",
        "pairs": [
            {"thread_key": f"silence|{ENV}|3310|Rb7TnE4wz", "tenant": "3310", "flow_id": "Rb7TnE4wz"},
            {"thread_key": f"silence|{ENV}|4821|Xk2pQ9aLm", "tenant": "4821", "flow_id": "Xk2pQ9aLm"},
        ],
    }


def test_a_stage_of_a_silent_pair_replies_back_and_leaves_failure_threads_to_their_rules() -> None:
    event = make_event("job_completed__incremental")
    silence = open_alert(silence_thread_key(event.env_id, event.tenant, event.flow_id), "silence")
    failure = open_alert("failure-thread", "abc123")

    decision = decide(event, Facts(open_alerts=(failure, silence)), config, NOW, CHANNEL)

    by_rule = {action.rule: action for action in decision.actions}
    assert set(by_rule) == {"alert_resolved", "silence_back"}
    assert by_rule["alert_resolved"].params["alert"] == {"op": "resolve", "thread_key": "failure-thread"}
    back = by_rule["silence_back"].params
    assert back["alert"] == {"op": "resolve", "thread_key": silence.thread_key}
    assert (back["thread_ts"], back["channel"]) == ("111.222", "C1")
    assert back["text"].startswith(f":white_check_mark: Back: tenant {event.tenant} on flow {event.flow_id} ended job ")


def test_only_a_reconciled_failure_says_its_webhook_never_arrived() -> None:
    webhook = make_event("sync_failed__shopify_500")
    reconciled = JobEvent.from_payload(dict(webhook.payload), event_key=webhook.event_key, source="reconciled")

    said = decide(webhook, Facts(), config, NOW, CHANNEL).actions[0].params["text"]
    found = decide(reconciled, Facts(), config, NOW, CHANNEL).actions[0].params["text"]

    assert NEVER_ARRIVED not in said
    assert found == said + "\n" + NEVER_ARRIVED
