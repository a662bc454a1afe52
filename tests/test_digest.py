"""The daily digest: one message per channel after the configured hour, within Slack's limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import Receiver, payload
from hotglue_webhooks.fakes import FakeSlack
from hotglue_webhooks.rules.messages import SECTION_LIMIT, daily_digest

TOKEN = "xoxb-test-token"


def test_the_digest_lists_yesterday_once_per_channel(database_url: str) -> None:
    with FakeSlack(token=TOKEN) as slack:
        receiver = Receiver(database_url, slack_bot_token=TOKEN, slack_api_url=slack.url, public_url="https://h.example")
        try:
            rules = receiver.runtime.rules
            receiver.runtime.rules = rules.model_copy(update={"digest": rules.digest.model_copy(update={"enabled": True})})
            for tenant in ("1001", "1002", "1003"):
                receiver.post(dict(payload("sync_failed__shopify_500"), tenant=tenant, started_by=tenant, s3_root=f"{tenant}/f/j/1"))
            receiver.post("job_completed__incremental")  # 4821 finished a job: not still failing
            worker = receiver.worker()
            today = datetime.now(UTC)
            worker.clock = lambda: today + timedelta(minutes=1)
            worker.drain()
            tomorrow = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
            worker.tick(tomorrow + timedelta(hours=7, minutes=59))  # before 08:00 UTC: nothing
            assert not any(m.text.startswith(":spiral_calendar_pad:") for m in slack.messages)
            count = len(slack.messages)
            worker.tick(tomorrow + timedelta(hours=8, minutes=1))
            worker.tick(tomorrow + timedelta(hours=9))  # once a day, however many looks
            worker.clock = lambda: tomorrow + timedelta(hours=9, minutes=1)
            worker.drain()
            (digest,) = slack.messages[count:]
            assert digest.channel == "#hotglue-webhooks"
            assert digest.text == (
                f":spiral_calendar_pad: Daily digest for {today.date().isoformat()} (UTC): 3 failures. "
                "3 still failing, 0 dead actions, 0 waiting for a human."
            )
            sections = [block["text"]["text"] for block in digest.blocks]
            assert sections[1].startswith("*Incidents*\n• SYNC_FAILED on shopify → optiply: 3 tenants (`")
            assert "<https://h.example/tenants/1002|1002>: 1" in sections[2]
            assert sections[3] == "*Still failing* (3)\n<https://h.example/tenants/1001|1001>, <https://h.example/tenants/1002|1002>, <https://h.example/tenants/1003|1003>"
        finally:
            receiver.close()


def test_long_lists_are_counted_and_linked_within_slacks_limits() -> None:
    tenants = [{"tenant": f"t{n:05d}" + "x" * 150, "failures": n} for n in range(2000)]
    digest = {
        "failures": 4000, "incidents": [{"group": "a" * 16, "what": "SYNC_FAILED on shopify → optiply", "tenants": 300}] * 40,
        "tenants": tenants, "still_failing": [t["tenant"] for t in tenants], "dead_actions": 7,
        "dead_by_kind": {"hotglue.put_schedule": 7}, "waiting": [{"tenant": "3310", "why": "Exact Online refused its refresh token: the customer must reconnect"}],
    }
    message = daily_digest("2026-12-06", digest, "https://h.example", listed=15)
    assert len(message.blocks) <= 50 and len(message.text) <= 40_000
    for block in message.blocks:
        assert len(block["text"]["text"]) <= SECTION_LIMIT
    texts = "\n".join(block["text"]["text"] for block in message.blocks)
    by_tenant = next(b["text"]["text"] for b in message.blocks if b["text"]["text"].startswith("*Failures by tenant*"))
    shown = by_tenant.count("\n• ")
    assert 0 < shown <= 15 and by_tenant.endswith(f"\n…and <https://h.example/tenants?sort=failures|{2000 - shown} more tenants>")
    assert "…and <https://h.example/incidents|25 more incidents>" in texts
    assert "*Dead actions*: 7 (7× hotglue.put_schedule); replay them from <https://h.example/dead|the dead actions page>." in texts
    without_url = daily_digest("2026-12-06", digest, None, listed=15)
    assert "more tenants (see the dashboard /tenants?sort=failures)" in "\n".join(b["text"]["text"] for b in without_url.blocks)
