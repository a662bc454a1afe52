"""Alert threads as the worker records them (storage/slack_state.py), on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import Receiver
from hotglue_webhooks.storage.db import connect, transaction
from hotglue_webhooks.storage.slack_state import open_alerts, record_alert

T0 = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
PARAMS = {"channel": "#hotglue-webhooks", "text": "Sync failed", "blocks": [{"type": "section"}]}


def _alert(op: str, at: datetime, key: str = "env|4821|Xk2pQ9aLm|abc") -> dict[str, str]:
    return {"op": op, "thread_key": key, "tenant": "4821", "flow_id": "Xk2pQ9aLm", "fingerprint": "abc",
            "at": at.isoformat()}


def test_threads_open_count_repeats_keep_the_latest_time_and_resolve(receiver: Receiver) -> None:
    with connect(receiver.runtime.sessions) as connection:
        def record(op: str, at: datetime, key: str = "env|4821|Xk2pQ9aLm|abc") -> None:
            with transaction(connection):
                record_alert(connection, _alert(op, at, key), {"channel": "C01", "ts": "1.000100"}, PARAMS,
                             (T0, 7), now=T0 + timedelta(hours=5))

        record("open", T0)
        record("open", T0, key="env|4821|Xk2pQ9aLm|other")
        record("repeat", T0 + timedelta(hours=2))
        record("repeat", T0 + timedelta(hours=1))  # late delivery: last_at does not go back
        (first, other) = open_alerts(connection, "4821", "Xk2pQ9aLm")
        assert (first.count, first.first_at, first.last_at) == (3, T0, T0 + timedelta(hours=2))
        assert (first.channel, first.channel_name, first.ts) == ("C01", "#hotglue-webhooks", "1.000100")
        assert (first.text, first.blocks) == ("Sync failed", ({"type": "section"},))
        assert other.count == 1
        record("resolve", T0 + timedelta(hours=3))
        assert [a.thread_key for a in open_alerts(connection, "4821", "Xk2pQ9aLm")] == ["env|4821|Xk2pQ9aLm|other"]
        # Only threads opened before an event (in processing order) are its facts.
        assert open_alerts(connection, "4821", "Xk2pQ9aLm", before=(T0, 7)) == ()
        assert len(open_alerts(connection, "4821", "Xk2pQ9aLm", before=(T0, 8))) == 1
