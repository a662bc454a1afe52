"""Alert threads: a repeat is a reply plus a count on the first alert; a success resolves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rules_support import example_config, make_event

from hotglue_webhooks.rules import SLACK_POST, SLACK_UPDATE, Facts, OpenAlert, RulesConfig, decide
from hotglue_webhooks.rules.alerts import fingerprint
from hotglue_webhooks.rules.messages import failure_alert, telling_line

config = example_config()
NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
FIRST = datetime(2026, 11, 28, 6, 9, 41, tzinfo=UTC)
SHOPIFY_500 = "singer_sdk.exceptions.RetriableAPIError: 500 Server Error: Internal Server Error for path: /admin/api/2024-01/orders.json"


def open_alert(print_: str, count: int = 1, first_at: datetime = FIRST) -> OpenAlert:
    first = failure_alert(make_event("sync_failed__shopify_500"))
    return OpenAlert(
        thread_key=f"production.hotglue.example.com|4821|Xk2pQ9aLm|{print_}",
        fingerprint=print_,
        channel="C0123",
        ts="1700000000.000100",
        count=count,
        first_at=first_at,
        last_at=first_at,
        text=first.text,
        blocks=tuple(first.blocks),
    )


def test_fingerprint_ignores_numbers_and_ids_but_not_the_error() -> None:
    assert fingerprint("SYNC_FAILED", "Timeout after 30s at 2026-11-28T06:05") == fingerprint(
        "SYNC_FAILED", "Timeout after 45s at 2026-11-29T07:15"
    )
    assert fingerprint("SYNC_FAILED", "order 7d0c8b52-1f3a-4c2e-9a61-0c5e2f7b9d11 refused") == fingerprint(
        "sync_failed", "order 0c5e2f7b-1f3a-4c2e-9a61-7d0c8b529d11 refused"
    )
    assert fingerprint("SYNC_FAILED", "KeyError: 'sku'") != fingerprint("SYNC_FAILED", "KeyError: 'price'")
    assert fingerprint("SYNC_FAILED", "x") != fingerprint("ETL_FAILED", "x")


def test_the_same_failure_again_replies_in_the_thread_and_counts_on_the_alert() -> None:
    event = make_event(
        "sync_failed__shopify_500",
        job_id="Zc4Tv",
        s3_root="4821/flows/Xk2pQ9aLm/jobs/2026/11/6/28/15/Zc4Tv",
        last_updated="2026-11-28T08:00:00+00:00",
    )
    print_ = fingerprint("SYNC_FAILED", telling_line(event.message))
    decision = decide(event, Facts(open_alerts=(open_alert(print_, count=2),)), config, NOW, "#hotglue-webhooks")
    reply, update = decision.actions
    assert reply.kind == SLACK_POST
    assert reply.params["channel"] == "C0123" and reply.params["thread_ts"] == "1700000000.000100"
    assert reply.params["text"] == (
        ":repeat: Failed again (3rd time): SYNC_FAILED, job Zc4Tv at 2026-11-28 08:00:00 UTC: " + SHOPIFY_500
    )
    assert reply.params["alert"] == {
        "op": "repeat", "thread_key": open_alert(print_).thread_key, "at": "2026-11-28T08:00:00+00:00"
    }
    assert update.kind == SLACK_UPDATE and update.depends_on == (reply.key,)
    assert update.params["channel"] == "C0123" and update.params["ts"] == "1700000000.000100"
    assert update.params["text"].endswith(
        "\n:repeat: Failed 3 times since 2026-11-28 06:09:41 UTC, last at 2026-11-28 08:00:00 UTC (job Zc4Tv). "
        "Details in the thread."
    )
    assert update.params["blocks"][:-1] == list(open_alert(print_).blocks)
    assert decision.notes == (
        "failure_alert: failure #3 like this since 2026-11-28 06:09 UTC: a reply in the first alert's thread, "
        "and the alert shows the count",
    )


def test_another_error_or_an_old_thread_opens_a_new_alert() -> None:
    event = make_event("sync_failed__shopify_500", s3_root="4821/flows/Xk2pQ9aLm/jobs/other")
    other = open_alert("0000000000000000")
    print_ = fingerprint("SYNC_FAILED", telling_line(event.message))
    # The window counts from the failure's own time (last_updated 2026-11-28 06:09:41).
    stale = open_alert(print_, first_at=FIRST - timedelta(hours=25))
    for facts in (Facts(open_alerts=(other,)), Facts(open_alerts=(stale,))):
        [alert] = decide(event, facts, config, NOW, "#hotglue-webhooks").actions
        assert alert.params["channel"] == "#hotglue-webhooks" and "thread_ts" not in alert.params
        assert alert.params["alert"]["op"] == "open"


def test_threading_can_be_turned_off() -> None:
    off = RulesConfig.model_validate({"slack": {"repeat_window_hours": 0}})
    event = make_event("sync_failed__shopify_500", s3_root="4821/flows/Xk2pQ9aLm/jobs/other")
    print_ = fingerprint("SYNC_FAILED", telling_line(event.message))
    [alert] = decide(event, Facts(open_alerts=(open_alert(print_),)), off, NOW, "#c").actions
    assert "thread_ts" not in alert.params


def test_a_later_success_resolves_every_open_thread_of_the_flow() -> None:
    event = make_event("job_completed__incremental")
    alerts = (open_alert("a" * 16, count=3), open_alert("b" * 16))
    decision = decide(event, Facts(open_alerts=alerts), config, NOW, "#hotglue-webhooks")
    assert [a.params["thread_ts"] for a in decision.actions] == ["1700000000.000100"] * 2
    assert decision.actions[0].params["text"] == (
        ":white_check_mark: Resolved: job tVN_B of tenant 4821 on flow Xk2pQ9aLm completed at "
        "2026-11-28 06:09:41 UTC (it had failed 3 times)."
    )
    assert [a.params["alert"]["op"] for a in decision.actions] == ["resolve", "resolve"]
    assert decide(event, Facts(), config, NOW, "#c").notes[0] == "no rule matched"
