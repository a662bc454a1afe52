"""SlackClient against the fake Slack over real HTTP: exact requests, limits, errors, 429s."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from hotglue_webhooks.clients import (
    SlackApiError,
    SlackClient,
    SlackRateLimited,
    SlackServerError,
    SlackTransportError,
    fit_message,
)
from hotglue_webhooks.fakes import CannedResponse, FakeSlack

CHANNEL = "#hotglue-webhooks"
BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": "SYNC_FAILED: acme"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Tenant* acme\n*Flow* Xk2pQ9aLm"}},
]


def test_post_message_sends_exactly_the_described_request(fake_slack: FakeSlack, slack: SlackClient) -> None:
    described = slack.post_message_request(CHANNEL, "SYNC_FAILED for acme", BLOCKS)

    posted = slack.post_message(CHANNEL, "SYNC_FAILED for acme", BLOCKS)

    [request] = fake_slack.requests
    assert (request.method, fake_slack.root_url + request.raw_path) == ("POST", described["url"])
    assert described["url"] == fake_slack.url + "chat.postMessage"
    assert request.header("authorization") == f"Bearer {fake_slack.token}"
    assert request.header("content-type") == "application/json;charset=utf-8"
    assert request.json == described["json"] == {"channel": CHANNEL, "text": "SYNC_FAILED for acme", "blocks": BLOCKS}
    assert posted == {"channel": FakeSlack.channel_id(CHANNEL), "ts": "1700000000.000100"}
    [message] = fake_slack.messages
    assert (message.channel, message.text, message.blocks, message.thread_ts, message.ts) == (
        CHANNEL,
        "SYNC_FAILED for acme",
        BLOCKS,
        None,
        "1700000000.000100",
    )


def test_thread_reply_and_increasing_ts(fake_slack: FakeSlack, slack: SlackClient) -> None:
    first = slack.post_message(CHANNEL, "first alert", BLOCKS)
    reply = slack.post_message(CHANNEL, "failed again", None, thread_ts=first["ts"])

    assert (first["ts"], reply["ts"]) == ("1700000000.000100", "1700000000.000200")
    assert fake_slack.requests[1].json == {"channel": CHANNEL, "text": "failed again", "thread_ts": first["ts"]}
    assert [m.text for m in fake_slack.replies(first["ts"])] == ["failed again"]


def test_update_message(fake_slack: FakeSlack, slack: SlackClient) -> None:
    posted = slack.post_message(CHANNEL, "SYNC_FAILED for acme", BLOCKS)
    new_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "failed 2 times"}}]

    described = slack.update_message_request(posted["channel"], posted["ts"], "failed 2 times", new_blocks)
    updated = slack.update_message(posted["channel"], posted["ts"], "failed 2 times", new_blocks)

    assert updated == posted
    request = fake_slack.requests[-1]
    assert fake_slack.root_url + request.raw_path == described["url"] == fake_slack.url + "chat.update"
    assert request.json == described["json"] == {
        "channel": posted["channel"],
        "ts": posted["ts"],
        "text": "failed 2 times",
        "blocks": new_blocks,
    }
    [message] = fake_slack.messages
    assert (message.text, message.blocks) == ("failed 2 times", new_blocks)
    assert message.history == [("SYNC_FAILED for acme", BLOCKS)]


def test_send_makes_exactly_the_described_call(fake_slack: FakeSlack, slack: SlackClient) -> None:
    posted = slack.send(slack.post_message_request(CHANNEL, "first", BLOCKS))
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "failed 2 times"}}]
    described = slack.update_message_request(posted["channel"], posted["ts"], "second", blocks)

    assert slack.send(described) == posted
    assert [(fake_slack.root_url + r.raw_path, r.json) for r in fake_slack.requests][-1] == (
        described["url"], described["json"]
    )
    [message] = fake_slack.messages
    assert (message.text, message.blocks) == ("second", blocks)


def test_update_of_an_unknown_message_is_a_permanent_api_error(slack: SlackClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        slack.update_message("C0000000000", "1.000000", "x")
    assert (caught.value.error, caught.value.transient, caught.value.status_code) == ("message_not_found", False, 200)


@pytest.mark.parametrize("base_url", ["{root}/api", "{root}/api/"])
def test_base_url_with_or_without_trailing_slash(fake_slack: FakeSlack, base_url: str) -> None:
    client = SlackClient(fake_slack.token, base_url=base_url.format(root=fake_slack.root_url))
    client.post_message(CHANNEL, "hello")
    assert fake_slack.requests[0].raw_path == "/api/chat.postMessage"
    assert client.post_message_request(CHANNEL, "hello")["url"] == fake_slack.url + "chat.postMessage"


def test_describers_redact_the_token(slack: SlackClient, fake_slack: FakeSlack) -> None:
    token = fake_slack.token
    assert token is not None
    for described in (
        slack.post_message_request(CHANNEL, "hi", BLOCKS, thread_ts="1.2"),
        slack.update_message_request("C1234567", "1.2", "hi", BLOCKS),
    ):
        assert described["method"] == "POST"
        assert described["headers"] == {"Authorization": "[redacted]", "Content-Type": "application/json;charset=utf-8"}
        assert token not in json.dumps(described)
    assert token not in repr(slack)


@pytest.mark.parametrize(("token", "error"), [("xoxb-wrong", "invalid_auth"), (None, "not_authed")])
def test_bad_token_is_a_permanent_api_error(fake_slack: FakeSlack, token: str | None, error: str) -> None:
    client = SlackClient(token, base_url=fake_slack.url)
    with pytest.raises(SlackApiError) as caught:
        client.post_message(CHANNEL, "hi")
    assert (caught.value.error, caught.value.transient) == (error, False)
    assert caught.value.summary == f"Slack chat.postMessage failed: {error} (HTTP 200)"
    assert "xoxb-wrong" not in str(caught.value)


def test_ok_false_ratelimited_is_transient(fake_slack: FakeSlack, slack: SlackClient) -> None:
    fake_slack.fail_next(1, 200, body={"ok": False, "error": "ratelimited"})
    with pytest.raises(SlackApiError) as caught:
        slack.post_message(CHANNEL, "hi")
    assert (caught.value.error, caught.value.transient) == ("ratelimited", True)


# --- 429, 5xx, transport -----------------------------------------------------------------


def test_429_is_retried_after_retry_after(fake_slack: FakeSlack, slack: SlackClient, waits: list[float]) -> None:
    fake_slack.fail_next(2, 429, headers={"Retry-After": "2"})

    posted = slack.post_message(CHANNEL, "hi")

    assert waits == [2.0, 2.0]
    assert [r.status for r in fake_slack.requests] == [429, 429, 200]
    assert posted["ts"] == "1700000000.000100"
    assert len(fake_slack.messages) == 1


def test_429_beyond_the_retry_budget_is_raised(fake_slack: FakeSlack, waits: list[float]) -> None:
    fake_slack.fail_next(2, 429, headers={"Retry-After": "1"})
    client = SlackClient(fake_slack.token, base_url=fake_slack.url, max_retry_count=1, sleep=waits.append)

    with pytest.raises(SlackRateLimited) as caught:
        client.post_message(CHANNEL, "hi")

    assert (caught.value.retry_after, caught.value.transient, caught.value.status_code) == (1.0, True, 429)
    assert waits == [1.0] and len(fake_slack.requests) == 2 and fake_slack.messages == []


def test_long_retry_after_is_left_to_the_worker(fake_slack: FakeSlack, slack: SlackClient, waits: list[float]) -> None:
    fake_slack.fail_next(1, 429, headers={"Retry-After": "30"})

    with pytest.raises(SlackRateLimited) as caught:
        slack.post_message(CHANNEL, "hi")

    assert caught.value.retry_after == 30.0
    assert waits == [] and len(fake_slack.requests) == 1


def test_no_inline_retry_with_a_zero_count(fake_slack: FakeSlack, waits: list[float]) -> None:
    fake_slack.fail_next(1, 429, headers={"Retry-After": "1"})
    client = SlackClient(fake_slack.token, base_url=fake_slack.url, max_retry_count=0, sleep=waits.append)
    with pytest.raises(SlackRateLimited):
        client.post_message(CHANNEL, "hi")
    assert waits == []


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_a_server_error_and_not_repeated(
    fake_slack: FakeSlack, slack: SlackClient, waits: list[float], status: int
) -> None:
    # Slack may have posted before failing: repeating could post the alert twice.
    fake_slack.fail_next(1, status, body="<html>upstream error</html>")
    with pytest.raises(SlackServerError) as caught:
        slack.post_message(CHANNEL, "hi")
    assert (caught.value.status_code, caught.value.transient) == (status, True)
    assert len(fake_slack.requests) == 1 and waits == []


@pytest.mark.parametrize("body", [b"{broken", b"<html>proxy</html>"])
def test_a_200_that_is_not_json_is_a_server_error(fake_slack: FakeSlack, slack: SlackClient, body: bytes) -> None:
    fake_slack.enqueue(CannedResponse(200, body))
    with pytest.raises(SlackServerError, match="not valid JSON|not JSON"):
        slack.post_message(CHANNEL, "hi")


def test_other_http_errors_are_api_errors(fake_slack: FakeSlack, slack: SlackClient) -> None:
    fake_slack.fail_next(1, 404, body="not found")
    with pytest.raises(SlackApiError) as caught:
        slack.post_message(CHANNEL, "hi")
    assert (caught.value.error, caught.value.transient, caught.value.status_code) == ("http_404", False, 404)


def test_connection_refused_is_retried_then_a_transport_error(closed_port: int, waits: list[float]) -> None:
    client = SlackClient(
        "xoxb-t", base_url=f"http://127.0.0.1:{closed_port}/api/", connection_retries=2, sleep=waits.append
    )
    with pytest.raises(SlackTransportError) as caught:
        client.post_message(CHANNEL, "hi")
    assert caught.value.transient is True and caught.value.status_code is None
    assert waits == [0.5, 1.0]


def test_timeout_is_a_transport_error(fake_slack: FakeSlack, waits: list[float]) -> None:
    fake_slack.fail_next(1, status=None, delay=2.0)
    client = SlackClient(fake_slack.token, base_url=fake_slack.url, timeout=0.2, sleep=waits.append)
    with pytest.raises(SlackTransportError):
        client.post_message(CHANNEL, "hi")
    assert len(fake_slack.requests) == 1


# --- limits safety net -------------------------------------------------------------------


def test_a_100_kb_traceback_still_posts(fake_slack: FakeSlack, slack: SlackClient) -> None:
    traceback = "Traceback (most recent call last):\n" + "  File \"x.py\", line 1, in <module>\n" * 3000
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "H" * 400}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "```" + traceback + "```"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2500}]},
    ]
    original = copy.deepcopy(blocks)

    slack.post_message(CHANNEL, traceback * 2, blocks)

    assert blocks == original  # the caller's blocks are not modified
    [message] = fake_slack.messages
    assert message.text is not None and message.blocks is not None
    header, section, fields = message.blocks
    assert len(header["text"]["text"]) <= 150
    text = section["text"]["text"]
    assert len(text) <= 3000
    assert text.startswith("```Traceback") and text.endswith("… (truncated)\n```")
    assert len(fields["fields"][0]["text"]) <= 2000
    assert 39_900 < len(message.text) <= 40_000 and message.text.endswith("… (truncated)")


def test_fit_message_keeps_short_messages_and_fills_empty_text() -> None:
    assert fit_message("hi", BLOCKS) == ("hi", BLOCKS)
    assert fit_message("", BLOCKS)[0] == "SYNC_FAILED: acme"
    assert fit_message("  ", None) == ("(no text)", None)
    assert len(fit_message("x", [{"type": "divider"}] * 60)[1] or []) == 50
    exact = "a" * 3000
    assert fit_message("t", [{"type": "section", "text": {"type": "mrkdwn", "text": exact}}])[1] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": exact}}
    ]


def test_empty_text_posts_without_a_warning(fake_slack: FakeSlack, slack: SlackClient) -> None:
    # slack_sdk warns when text is missing; warnings are errors in this test suite.
    slack.post_message(CHANNEL, "", BLOCKS)
    assert fake_slack.messages[0].text == "SYNC_FAILED: acme"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_the_fake_rejects_what_the_safety_net_prevents(fake_slack: FakeSlack) -> None:
    import httpx

    with httpx.Client() as raw:
        answer = raw.post(
            fake_slack.url + "chat.postMessage",
            headers={"Authorization": f"Bearer {fake_slack.token}"},
            json={"channel": CHANNEL, "text": "x", "blocks": [_section("a" * 3001)]},
        ).json()
    assert answer == {"ok": False, "error": "invalid_blocks"}


# --- finding a message already posted (conversations.history / replies, metadata) ---------


def _meta(token: str) -> dict[str, Any]:
    return {"event_type": "hotglue_webhooks_action", "event_payload": {"idempotency_key": token}}


def test_find_message_matches_metadata_in_history_since_oldest(fake_slack: FakeSlack, slack: SlackClient) -> None:
    for n in range(5):
        slack.post_message(CHANNEL, f"message {n}", metadata=_meta(f"tok{n}"))
    posted = slack.post_message(CHANNEL, "the one", metadata=_meta("wanted"))

    found = slack.find_message(CHANNEL, "hotglue_webhooks_action", {"idempotency_key": "wanted"}, oldest=0.0)

    assert found == posted
    assert slack.find_message(CHANNEL, "hotglue_webhooks_action", {"idempotency_key": "other"}, oldest=0.0) is None
    assert slack.find_message(CHANNEL, "another_type", {"idempotency_key": "wanted"}, oldest=0.0) is None
    # Only since ``oldest``: the message at 1700000000.0006 is not after 1700000000.0007.
    assert slack.find_message(CHANNEL, "hotglue_webhooks_action", {"idempotency_key": "wanted"}, 1700000000.0007) is None
    [listing] = fake_slack.requests_to("POST /api/conversations.list")
    assert listing.form["types"] == "public_channel,private_channel"
    history = fake_slack.requests_to("POST /api/conversations.history")
    assert {r.form["channel"] for r in history} == {FakeSlack.channel_id(CHANNEL)}
    assert all(r.form["include_all_metadata"] == "true" for r in history)


def test_the_fake_returns_metadata_only_when_asked_and_pages_by_cursor(fake_slack: FakeSlack, slack: SlackClient) -> None:
    for n in range(3):
        slack.post_message(CHANNEL, f"message {n}", metadata=_meta(f"tok{n}"))
    channel = FakeSlack.channel_id(CHANNEL)
    plain = slack.web.api_call("conversations.history", params={"channel": channel}).data
    assert [m["text"] for m in plain["messages"]] == ["message 2", "message 1", "message 0"]
    assert all("metadata" not in m for m in plain["messages"])
    first = slack.web.api_call(
        "conversations.history", params={"channel": channel, "limit": "2", "include_all_metadata": "true"}
    ).data
    assert first["has_more"] is True and [m["metadata"] for m in first["messages"]] == [_meta("tok2"), _meta("tok1")]
    cursor = first["response_metadata"]["next_cursor"]
    rest = slack.web.api_call("conversations.history", params={"channel": channel, "cursor": cursor}).data
    assert ([m["text"] for m in rest["messages"]], rest["has_more"]) == (["message 0"], False)
    with pytest.raises(SlackApiError, match="no channel named #no-such-channel") as raised:
        slack.find_message("#no-such-channel", "hotglue_webhooks_action", {}, 0.0)
    assert raised.value.error == "channel_not_found"


def test_find_message_in_a_thread_reads_conversations_replies(fake_slack: FakeSlack, slack: SlackClient) -> None:
    parent = slack.post_message(CHANNEL, "alert", metadata=_meta("parent"))
    reply = slack.post_message(CHANNEL, "again", thread_ts=parent["ts"], metadata=_meta("reply"))
    wanted = {"idempotency_key": "reply"}

    # A thread reply is not in the channel's history, only in the thread.
    assert slack.find_message(parent["channel"], "hotglue_webhooks_action", wanted, 0.0) is None
    assert slack.find_message(parent["channel"], "hotglue_webhooks_action", wanted, 0.0, thread_ts=parent["ts"]) == reply
    [replies] = fake_slack.requests_to("POST /api/conversations.replies")
    assert replies.form["ts"] == parent["ts"]


def test_a_failed_lookup_raises_a_slack_error(fake_slack: FakeSlack, slack: SlackClient) -> None:
    slack.post_message(CHANNEL, "alert")
    fake_slack.fail_next(1, 503, match="POST /api/conversations.history")
    with pytest.raises(SlackServerError):
        slack.find_message(CHANNEL, "hotglue_webhooks_action", {}, 0.0)
