"""Fuzzing POST /slack/interactions: whatever arrives, signed or not, the answer is a
clear 2xx/4xx, never a 5xx (hypothesis)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Receiver
from test_interactions import SIGNING_SECRET, slack_headers

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
ACTION_IDS = st.sampled_from(["hgw_enable_schedules", "hgw_retry_job", "hgw_replay", "hgw_snooze", "other", ""])
VALUES = st.one_of(
    st.text(max_size=40),
    st.builds(lambda t, e: json.dumps({"tenant": t, "event": e}), st.text(max_size=12), st.text(max_size=64)),
    JSON.map(json.dumps),
)
PAYLOADS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["block_actions", "view_submission", "shortcut"]) | st.text(max_size=8),
        "user": JSON | st.fixed_dictionaries({"id": st.text(max_size=12), "username": st.text(max_size=12)}),
        "container": JSON | st.fixed_dictionaries({"message_ts": st.text(max_size=20), "channel_id": st.text(max_size=12)}),
        "actions": JSON | st.lists(st.fixed_dictionaries({"action_id": ACTION_IDS, "value": VALUES}), max_size=2),
        "response_url": st.text(max_size=30) | JSON,
    }
)
BODIES = st.one_of(
    PAYLOADS.map(lambda p: urlencode({"payload": json.dumps(p)}).encode()),
    JSON.map(lambda p: urlencode({"payload": json.dumps(p)}).encode()),
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: ("payload=" + t).encode("utf-8", "surrogatepass")),
)


def test_no_click_body_gets_a_5xx(database_url: str) -> None:
    receiver = Receiver(database_url, slack_signing_secret=SIGNING_SECRET, log_level="ERROR")
    try:
        @given(body=BODIES, signed=st.booleans(), skew=st.sampled_from([0, 0, -299, 301, -10_000]))
        @settings(max_examples=150, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
        def check(body: bytes, signed: bool, skew: int) -> None:
            import time

            headers = slack_headers(body, timestamp=int(time.time()) + skew) if signed else {
                "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Signature": "v0=00",
                "X-Slack-Request-Timestamp": "x",
            }
            answer = receiver.client.post("/slack/interactions", data=body, headers=headers)
            assert answer.status_code < 500, (answer.status_code, body[:200])
            if not signed or abs(skew) > 300:
                assert answer.status_code == 401

        check()
    finally:
        receiver.close()


def test_odd_headers_are_401_not_500(database_url: str) -> None:
    receiver = Receiver(database_url, slack_signing_secret=SIGNING_SECRET, log_level="ERROR")
    try:
        for timestamp in ("", "1e9", "-1", "99999999999999999999999", "１２３", " 1"):
            for signature in ("", "v0=", "v1=abc", "x" * 5000):
                headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
                assert receiver.client.post("/slack/interactions", data=b"payload=%7B%7D", headers=headers).status_code == 401
    finally:
        receiver.close()
