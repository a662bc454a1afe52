"""Slack messages: exact texts and blocks, Slack's limits, escaping, no secrets."""

from __future__ import annotations

from typing import Any

import pytest
from rules_support import make_event

from hotglue_webhooks.rules.buy_orders import BuyOrderReport, ErrorGroup, read_buy_orders
from hotglue_webhooks.rules.config import DEFAULT_TENANT_CONFIG_SCHEMA
from hotglue_webhooks.rules.messages import (
    FIELD_LIMIT,
    SECTION_LIMIT,
    TEXT_LIMIT,
    SlackMessage,
    blocks_text,
    buy_order_report,
    exact_token_401,
    failure_alert,
    scrub,
    telling_line,
    tenant_config_invalid,
)
from hotglue_webhooks.rules.tenant_config import config_problems


def assert_within_limits(message: SlackMessage) -> None:
    assert len(message.text) <= TEXT_LIMIT
    for block in message.blocks:
        for field in block.get("fields", ()):
            assert len(field["text"]) <= FIELD_LIMIT
        assert len(block.get("fields", ())) <= 10
    assert all(0 < len(t) <= SECTION_LIMIT for t in blocks_text(message.blocks))


def fields(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in pairs]}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_failure_alert_blocks() -> None:
    message = failure_alert(make_event("sync_failed__shopify_500"))

    assert message.blocks == [
        section(":red_circle: *Job failed: SYNC_FAILED* for tenant *4821*"),
        fields(
            ("Tenant", "4821"),
            ("Flow", "Xk2pQ9aLm"),
            ("Tap → target", "shopify → optiply"),
            ("Job id", "Zc4Tu"),
            ("Job name", "Xk2pQ9aLm-shopify-20261128-060500"),
            ("Status", "SYNC_FAILED"),
            ("When", "2026-11-28 06:09:41 UTC"),
        ),
        section(
            "*Error*\n```singer_sdk.exceptions.RetriableAPIError: 500 Server Error: Internal Server Error "
            "for path: /admin/api/2024-01/orders.json```"
        ),
        section(
            "*Traceback*\n```Traceback (most recent call last):\n"
            '  File "/usr/local/lib/python3.10/site-packages/singer_sdk/streams/rest.py", line 301, in request_records\n'
            "    resp = decorated_request(prepared_request, context)\n"
            "singer_sdk.exceptions.RetriableAPIError: 500 Server Error: Internal Server Error for path: "
            "/admin/api/2024-01/orders.json```"
        ),
    ]


def test_failure_alert_of_a_crashed_export_says_the_count_is_unknown() -> None:
    message = failure_alert(make_event("export_failed__exact_crash"), buy_order_export=True)

    assert message.blocks[-1] == section(
        "*Buy orders*\nNumber of failed buy orders unknown: the export left no report."
    )
    assert message.blocks[2] == section(
        "*Error*\n```AttributeError: 'NoneType' object has no attribute 'strftime'```"
    )


def test_failure_alert_shows_the_first_lines_of_a_long_traceback() -> None:
    message = failure_alert(make_event("sync_failed__exact_token_401"))

    assert message.blocks[3]["text"]["text"].startswith(
        "*Traceback* (first 10 of 13 lines)\n```Traceback (most recent call last):\n"
    )
    assert message.blocks[3]["text"]["text"].endswith(
        "During handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):```"
    )


def test_100_kb_traceback_still_gives_valid_blocks() -> None:
    frame = '  File "/x.py", line 1, in <module>\n    boom(' + "y" * 500 + ")\n"
    message = "Traceback (most recent call last):\n" + frame * 200 + "ValueError: " + "z" * 20_000
    assert len(message) > 100_000

    alert = failure_alert(make_event("sync_failed__shopify_500", message=message, job_name="n" * 5000))

    assert_within_limits(alert)
    assert alert.blocks[2]["text"]["text"].startswith("*Error*\n```ValueError: zzz")
    assert alert.blocks[2]["text"]["text"].endswith("…```")
    assert "&lt;module&gt;" in alert.blocks[3]["text"]["text"]
    assert "<module>" not in alert.blocks[3]["text"]["text"]


def test_one_huge_line_and_entities_are_cut_cleanly() -> None:
    alert = failure_alert(make_event("sync_failed__shopify_500", message="<&>" * 50_000))

    assert_within_limits(alert)
    error = alert.blocks[2]["text"]["text"]
    assert error.endswith("&gt;…```") or error.endswith("&amp;…```") or error.endswith("&lt;…```")


@pytest.mark.parametrize(
    ("message", "line"),
    [
        (None, None),
        ("", None),
        ("  \n ", None),
        ("Job failed", "Job failed"),
        ("Traceback (most recent call last):\n  File \"a\", line 1\nKeyError: 'x'\n\n", "KeyError: 'x'"),
        ('Traceback (most recent call last):\n  File "a", line 1\n    x()', "x()"),
    ],
)
def test_telling_line(message: str | None, line: str | None) -> None:
    assert telling_line(message) == line


def test_tenant_config_message_never_shows_secrets() -> None:
    secret_config = {
        "apiCredentials": {"username": "u", "password": 12345, "client_secret": "", "client_id": "cid-SECRET"}
    }
    problems = config_problems(secret_config, DEFAULT_TENANT_CONFIG_SCHEMA)

    message = tenant_config_invalid(make_event("job_completed__auto_sync"), problems)

    shown = message.text + "".join(blocks_text(message.blocks))
    assert "12345" not in shown and "cid-SECRET" not in shown
    assert message.blocks[1] == section(
        "*Problems*\n• `apiCredentials.account_id`: missing\n• `apiCredentials.client_secret`: empty\n"
        "• `apiCredentials.password`: integer, expected string"
    )


def test_buy_order_blocks_group_errors_and_list_ids() -> None:
    report = BuyOrderReport(
        found_at="target_state",
        orders=3,
        failed=2,
        extra_errors=0,
        errors=(ErrorGroup("Item <X> & co blocked", 2, ("BO-1",)), ErrorGroup("", 1, ())),
    )

    message = buy_order_report(make_event("job_completed__exact_buy_orders_failed"), report)

    assert message.text == ":package: Export to Exact Online for tenant 3310: 2 of 3 buy orders failed."
    assert message.blocks[0] == section(
        ":package: *Export to Exact Online for tenant 3310*\n2 of 3 buy orders failed."
    )
    assert message.blocks[2:] == [
        section("*Errors*\n• 2× `Item &lt;X&gt; &amp; co blocked` (ids: `BO-1`)\n• 1× (no error text)"),
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "Report read from the payload's `target_state`."}],
        },
    ]


def test_shared_buy_order_fixture_message() -> None:
    ev = make_event("job_completed__exact_buy_orders_failed")
    report = read_buy_orders(ev.payload, ["BuyOrders"])
    assert report is not None

    message = buy_order_report(ev, report)

    assert message.blocks[0] == section(
        ":package: *Export to Exact Online for tenant 3310*\n3 of 4 buy orders failed, plus 1 error not tied to a buy order."
    )
    assert message.blocks[2] == section(
        "*Errors*\n• 2× `Item 1045-B is blocked for purchase`\n• 1× `Supplier 8f2c... does not exist`\n"
        "• 1× `Warehouse uuid missing in config file`"
    )


def test_many_errors_are_cut_with_a_count() -> None:
    report = BuyOrderReport(
        "message", 500, 500, 0, tuple(ErrorGroup(f"error {i} " + "x" * 250, 1, ()) for i in range(500))
    )

    message = buy_order_report(make_event("job_completed__exact_buy_orders_failed"), report)

    assert_within_limits(message)
    errors = message.blocks[2]["text"]["text"]
    assert errors.endswith(" more")
    shown = errors.count("\n• ")
    assert errors.endswith(f"\n…and {500 - shown} more")


def test_exact_token_401_message_blocks() -> None:
    line = "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token"

    message = exact_token_401(
        make_event("sync_failed__exact_token_401"),
        line,
        [("Rb7TnE4wz", "cron(0 */6 * * ? *)")],
        ["Xk2pQ9aLm"],
        [("Vd3HsW8qc", "timeout")],
    )

    assert message.blocks == [
        section(
            ":lock: *Schedules turned off for tenant 3310*\nExact Online answered "
            f"`{line}`: the tenant's refresh token is no longer valid. The customer must reconnect Exact Online; "
            "until then every job that talks to Exact fails."
        ),
        section("*Turned off* (state DISABLED, expression kept)\n• `Rb7TnE4wz`: `cron(0 */6 * * ? *)`"),
        section("*Without a schedule*\n• `Xk2pQ9aLm`"),
        section("*Not turned off*\n• `Vd3HsW8qc`: schedule unknown (timeout)"),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "SYNC_FAILED · flow Rb7TnE4wz · job mE2kV (`Rb7TnE4wz-exact-20261128-063000`) · 2026-11-28 06:09:41 UTC",
                }
            ],
        },
    ]


def test_missing_values_read_unknown_and_v2_connectors_are_named() -> None:
    ev = make_event(
        "sync_failed__shopify_500",
        tenant=None,
        started_by=None,
        tap=None,
        target=None,
        connector_id="exact",
        job_type="write",
        last_updated="not a date",
        message=None,
    )

    message = failure_alert(ev)

    assert (
        message.text
        == ":red_circle: SYNC_FAILED for tenant unknown on flow Xk2pQ9aLm (exact (write)), job Zc4Tu."
    )
    assert message.blocks[1]["fields"][2]["text"] == "*Connector*\nexact (write)"
    assert message.blocks[1]["fields"][6]["text"] == "*When*\nnot a date"
    assert message.blocks[2] == section("*Error*\nHotGlue sent no message.")


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("login with password=hunter2 failed", "login with password=[redacted] failed"),
        ("{'client_secret': 'abc def', 'x': 1}", "{'client_secret': [redacted], 'x': 1}"),
        ('{"refresh_token": "r-1", "ok": true}', '{"refresh_token": [redacted], "ok": true}'),
        ("GET /x?access_token=abc&y=2", "GET /x?access_token=[redacted]&y=2"),
        ("Authorization: Bearer eyJ.abc", "Authorization: [redacted]"),
        ("x-api-key: k-1", "x-api-key: [redacted]"),
        ("'error_description': 'Old refresh token used.'", "'error_description': 'Old refresh token used.'"),
        (
            "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token",
            "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token",
        ),
    ],
)
def test_scrub_redacts_secret_looking_values(text: str, scrubbed: str) -> None:
    assert scrub(text) == scrubbed


def test_failure_alert_scrubs_secrets_from_the_message() -> None:
    alert = failure_alert(
        make_event(
            "sync_failed__shopify_500",
            message="Traceback:\n  x\nValueError: bad config {'password': 'hunter2'}",
        )
    )

    shown = alert.text + "".join(blocks_text(alert.blocks))
    assert "hunter2" not in shown
    assert alert.blocks[2] == section("*Error*\n```ValueError: bad config {'password': [redacted]}```")


def test_prose_after_token_reaches_slack_as_it_is() -> None:
    # tap-shopify's own error text: "Shopify" is the next word of a sentence, not a token.
    alert = failure_alert(make_event("sync_failed__shopify_500", message="Invalid API token: Shopify returned 401"))

    assert alert.blocks[2] == section("*Error*\n```Invalid API token: Shopify returned 401```")


def test_repeat_line_after_an_error_ending_in_token_is_redacted_to_itself() -> None:
    # The Exact 401 alert's error line ends in ".../oauth2/token"; the count line that
    # chat.update appends starts with ":repeat:". The stored request is redacted with the
    # free-text rules and must still be what was sent.
    from datetime import UTC, datetime

    from hotglue_webhooks.redaction import Redactor
    from hotglue_webhooks.rules.messages import repeat_count_update
    from hotglue_webhooks.rules.model import OpenAlert

    event = make_event("sync_failed__exact_token_401")
    first = failure_alert(event)
    at = datetime(2026, 11, 28, 6, 30, tzinfo=UTC)
    alert = OpenAlert("k", "f", "C1", "1.2", 1, at, at, first.text, tuple(first.blocks))
    update = repeat_count_update(alert, 2, event)
    assert first.text.endswith("/api/oauth2/token") and "\n:repeat: Failed 2 times" in update.text

    params = update.params("C1")
    assert Redactor().redact(params) == params
