"""Counting failed buy orders in the target's report, with the quirks of REFERENCE §5."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rules_support import load_payload

from hotglue_webhooks.rules.buy_orders import BuyOrderReport, ErrorGroup, find_report, read_buy_orders

STREAMS = ["BuyOrders"]


def report(*bookmarks: dict[str, Any]) -> dict[str, Any]:
    return {"bookmarks": {"BuyOrders": list(bookmarks)}, "summary": {"BuyOrders": {}}}


def test_shared_fixture_counts_distinct_hashes() -> None:
    assert read_buy_orders(load_payload("job_completed__exact_buy_orders_failed"), STREAMS) == BuyOrderReport(
        found_at="target_state",
        orders=4,
        failed=3,
        extra_errors=1,
        errors=(
            ErrorGroup("Item 1045-B is blocked for purchase", 2, ()),
            ErrorGroup("Supplier 8f2c... does not exist", 1, ()),
            ErrorGroup("Warehouse uuid missing in config file", 1, ()),
        ),
    )


@pytest.mark.parametrize(
    ("bookmarks", "orders", "failed", "extra"),
    [
        ([{"success": None, "hash": "a", "error": "x"}], 1, 1, 0),  # null is a failure
        ([{"success": "true", "hash": "a"}], 1, 1, 0),  # only JSON true is a success
        (
            [{"success": False, "hash": "a", "error": "x"}, {"success": False, "error": "x"}],
            1,
            1,
            1,
        ),  # hash-less twin
        ([{"success": False, "hash": "a"}, {"success": False, "hash": "a"}], 1, 1, 0),  # same order twice
        (
            [{"success": True, "hash": "a"}, {"success": False, "hash": "a"}],
            1,
            1,
            0,
        ),  # any failed bookmark fails it
        ([{"success": True}, {"success": True, "hash": ""}], 2, 0, 0),  # hash-less successes still count
        ([{"success": False, "hash": 12}, {"success": False, "hash": {"x": 1}}], 1, 1, 1),
        ([], 0, 0, 0),
    ],
)
def test_counting_quirks(bookmarks: list[dict[str, Any]], orders: int, failed: int, extra: int) -> None:
    counted = read_buy_orders({"target_state": report(*bookmarks)}, STREAMS)

    assert counted is not None
    assert (counted.orders, counted.failed, counted.extra_errors) == (orders, failed, extra)


def test_errors_are_grouped_by_count_with_ids_and_empty_text() -> None:
    counted = read_buy_orders(
        {
            "r": report(
                {"success": False, "hash": "a", "error": ""},
                {"success": False, "hash": "b", "error": " Blocked ", "id": "BO-2"},
                {"success": False, "hash": "c", "error": "Blocked", "id": 3},
                {"success": False, "hash": "d"},
                {"success": False, "hash": "e", "error": {"code": 1}},
            )
        },
        STREAMS,
    )

    assert counted is not None
    assert counted.errors == (
        ErrorGroup("", 2, ()),
        ErrorGroup("Blocked", 2, ("BO-2", "3")),
        ErrorGroup('{"code": 1}', 1, ()),
    )


def test_report_as_json_inside_message() -> None:
    body = json.dumps(report({"success": False, "hash": "a", "error": "x"}))

    assert find_report({"message": body}, STREAMS) == ("message", json.loads(body))
    assert find_report({"message": f"Export done. Report: {body}"}, STREAMS) == ("message", json.loads(body))


def test_report_under_any_key_or_nested_or_as_json_string() -> None:
    found = report({"success": True, "hash": "a"})

    assert find_report({"whatever": found}, STREAMS) == ("whatever", found)
    assert find_report({"result": {"target": found}}, STREAMS) == ("result.target", found)
    assert find_report({"target_state": json.dumps(found)}, STREAMS) == ("target_state", found)


def test_singer_state_and_other_streams_are_not_reports() -> None:
    payload = {
        "state": {"bookmarks": {"orders": {"replication_key_value": "2026-11-01"}}},
        "other": {"bookmarks": {"Invoices": [{"success": False}]}},
        "message": "Traceback (most recent call last): {not json}",
    }

    assert read_buy_orders(payload, STREAMS) is None
    assert read_buy_orders(payload, ["Invoices"]) is not None


def test_no_report_means_unknown() -> None:
    assert read_buy_orders(load_payload("export_failed__exact_crash"), STREAMS) is None


def test_hostile_json_does_not_raise() -> None:
    assert read_buy_orders({"message": "{" * 100_000 + "}" * 100_000, "x": "[" * 50_000}, STREAMS) is None
