"""The needs-attention judgement (pure): each reason, when it clears, and the order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hotglue_webhooks.rules.attention import (
    DEAD_ACTIONS, EXACT_RECONNECT, INCIDENT, INVALID_CONFIG, REPEATED_FAILURES, Failure, InIncident, TenantSignals,
    attention_rows, reasons_of,
)
from hotglue_webhooks.rules.config import AttentionRules

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CONFIG = AttentionRules(repeated_failures=3, window_hours=24)


def ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def failures(flow: str, *hours: float) -> tuple[Failure, ...]:
    return tuple(Failure(flow, ago(h), int(h * 10) + 1, ago(h)) for h in hours)


@pytest.mark.parametrize(
    ("signals", "reasons"),
    [
        (TenantSignals("t"), []),
        (TenantSignals("t", turned_off=((ago(5), "Rb7", 1), (ago(5), "Vd3", 1))), [EXACT_RECONNECT]),
        (TenantSignals("t", invalid_config=(ago(2), 4)), [INVALID_CONFIG]),
        # A valid config seen after the invalid one clears it.
        (TenantSignals("t", invalid_config=(ago(2), 4), valid_config_after=True), []),
        (TenantSignals("t", dead=(ago(1), 2, 9)), [DEAD_ACTIONS]),
        (TenantSignals("t", failures=failures("F", 1, 2, 3)), [REPEATED_FAILURES]),
        # Two are not "repeated" at N = 3.
        (TenantSignals("t", failures=failures("F", 1, 2)), []),
        # Failures of two flows do not add up.
        (TenantSignals("t", failures=failures("F", 1, 2) + failures("G", 3)), []),
        # Outside the window they do not count.
        (TenantSignals("t", failures=failures("F", 1, 2, 25)), []),
        # A completed job of the flow after the failures clears them; one before does not.
        (TenantSignals("t", failures=failures("F", 2, 3, 4), completed={"F": ago(1)}), []),
        (TenantSignals("t", failures=failures("F", 2, 3, 4), completed={"F": ago(5)}), [REPEATED_FAILURES]),
        (TenantSignals("t", failures=failures("F", 1, 3, 4), completed={"F": ago(2)}), []),
        # Several reasons, oldest first.
        (
            TenantSignals("t", turned_off=((ago(1), "Rb7", 1),), dead=(ago(6), 1, 3), invalid_config=(ago(3), 2)),
            [DEAD_ACTIONS, INVALID_CONFIG, EXACT_RECONNECT],
        ),
    ],
)
def test_reasons(signals: TenantSignals, reasons: list[str]) -> None:
    assert [r.reason for r in reasons_of(signals, CONFIG, NOW)] == reasons


def test_a_reason_says_since_when_which_event_and_what_to_do() -> None:
    (reason,) = reasons_of(TenantSignals("t", failures=failures("F", 1, 2, 3)), CONFIG, NOW)
    assert reason.since == ago(3) and reason.event_id == 11 and reason.flow_id == "F"
    assert reason.detail == "3 failures of flow F within 24 h, none completed since"
    assert reason.what_to_do == "Look at the last error; once the cause is fixed, Retry job."
    (exact,) = reasons_of(TenantSignals("t", turned_off=((ago(5), "Vd3", 7), (ago(6), "Rb7", 7))), CONFIG, NOW)
    assert exact.since == ago(6) and exact.detail.endswith("schedules off: Rb7, Vd3")
    assert exact.what_to_do.startswith("Ask the customer to reconnect Exact Online, then Re-enable schedules")


def test_the_threshold_comes_from_the_rules_file() -> None:
    signals = TenantSignals("t", failures=failures("F", 1, 2))
    assert [r.reason for r in reasons_of(signals, AttentionRules(repeated_failures=2), NOW)] == [REPEATED_FAILURES]
    assert reasons_of(signals, AttentionRules(repeated_failures=2, window_hours=1.5), NOW) == []


def test_rows_are_oldest_first() -> None:
    rows = attention_rows(
        [
            TenantSignals("new", dead=(ago(1), 1, 1)),
            TenantSignals("old", invalid_config=(ago(9), 2)),
            TenantSignals("fine"),
        ],
        CONFIG,
        NOW,
    )
    assert [(row.tenant, row.age_seconds(NOW)) for row in rows] == [("old", 9 * 3600), ("new", 3600)]


def in_incident(incident_id: int, since_hours: float, *flows: str) -> InIncident:
    return InIncident(incident_id, "3f9a0c1d2e4b5a69", ago(since_hours), tuple(flows), 40 + incident_id,
                      "SYNC_FAILED", "shopify → optiply")


@pytest.mark.parametrize(
    ("signals", "reasons"),
    [
        # A member of an open incident (storage lists only open ones, flows not recovered).
        (TenantSignals("t", incidents=(in_incident(4, 1, "F"),)), [INCIDENT]),
        # In two incidents: one reason each, oldest first, beside the others.
        (
            TenantSignals("t", incidents=(in_incident(5, 1, "G"), in_incident(4, 3, "F")), dead=(ago(2), 1, 3)),
            [INCIDENT, DEAD_ACTIONS, INCIDENT],
        ),
        # Closed, or every flow recovered: storage lists nothing, so nothing waits.
        (TenantSignals("t", incidents=()), []),
    ],
)
def test_incident_reasons(signals: TenantSignals, reasons: list[str]) -> None:
    assert [r.reason for r in reasons_of(signals, CONFIG, NOW)] == reasons


def test_an_incident_reason_names_the_incident_and_that_it_can_be_snoozed() -> None:
    (reason,) = reasons_of(TenantSignals("t", incidents=(in_incident(4, 2, "F", "G"),)), CONFIG, NOW)
    assert (reason.since, reason.flow_id, reason.event_id, reason.incident_id, reason.group) == (
        ago(2), "F", 44, 4, "3f9a0c1d2e4b5a69",
    )
    assert reason.detail == (
        "in incident 4 (SYNC_FAILED on shopify → optiply, signature 3f9a0c1d2e4b5a69) with other tenants; "
        "flows F, G not recovered"
    )
    assert "incident 4" in reason.what_to_do and "Snooze incident" in reason.what_to_do
