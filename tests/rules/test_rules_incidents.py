"""Incident signatures and the grouping decision: pure, table-tested with real connector texts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rules_support import make_event

from hotglue_webhooks.rules.config import IncidentRules
from hotglue_webhooks.rules.incidents import (
    FOLD, HOLD, OPEN, POST, SignatureState, incident_expired, judge, normalise_error, recovers, signature,
)
from hotglue_webhooks.rules.messages import scrub, telling_line

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

# Telling lines as the connectors print them (tap-shopify and tap-exact on singer_sdk /
# hotglue_singer_sdk, target-exact, requests' raise_for_status; REFERENCE §5).
SHOPIFY_500 = "singer_sdk.exceptions.RetriableAPIError: 500 Server Error: Internal Server Error for path: /admin/api/2024-01/orders.json"
SHOPIFY_500_CURSOR = (
    "hotglue_singer_sdk.exceptions.RetriableAPIError: 500 Server Error: Internal Server Error for path: "
    "/admin/api/2024-01/orders.json?limit=250&page_info=eyJsYXN0X2lkIjo0NTY3ODkwMTIzLCJsYXN0X3ZhbHVlIjoiMjAyNi0xMS0yOCJ9"
)
SHOPIFY_429_SHOP = (
    "requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for url: "
    "https://acme-4821.myshopify.com/admin/api/2024-01/orders.json?limit=250&page_info=abc123XYZ0987654321"
)
SHOPIFY_429_OTHER_SHOP = (
    "requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for url: "
    "https://bikes-5077.myshopify.com/admin/api/2024-01/orders.json?limit=250&page_info=QWERTY98765432100000"
)
EXACT_401 = "requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token"
EXACT_500 = "requests.exceptions.HTTPError: 500 Server Error: Internal Server Error for url: https://start.exactonline.nl/api/oauth2/token"
TARGET_EXACT_400 = (
    "singer_sdk.exceptions.FatalAPIError: 400 Client Error: Bad Request for path: "
    "/api/v1/3086745/purchaseorder/PurchaseOrders (request id: 7f3c9e21-aa01-4c77-9b1e-2d8e6f5a4b10)"
)
TARGET_EXACT_400_OTHER = (
    "singer_sdk.exceptions.FatalAPIError: 400 Client Error: Bad Request for path: "
    "/api/v1/1180332/purchaseorder/PurchaseOrders (request id: 0c5e2f7b-1f3a-4c2e-9a61-7d0c8b529d11)"
)
TIMESTAMPED = "Exception: Request failed with status code 503 at 2026-11-28T06:05:00.113270+00:00 (x-request-id=Ab12Cd34Ef56Gh78)"
TIMESTAMPED_LATER = "Exception: Request failed with status code 503 at 2026-11-28T07:41:13.000001+00:00 (x-request-id=Zz99Yy88Xx77Ww66)"


@pytest.mark.parametrize(
    ("a", "tenant_a", "b", "tenant_b"),
    [
        (SHOPIFY_500, "4821", SHOPIFY_500_CURSOR, "5077"),  # page_info cursor, the SDK fork
        (SHOPIFY_429_SHOP, "4821", SHOPIFY_429_OTHER_SHOP, "5077"),  # the shop's host, its cursor
        (TARGET_EXACT_400, "3310", TARGET_EXACT_400_OTHER, "4821"),  # division numbers, request ids
        (TIMESTAMPED, "1", TIMESTAMPED_LATER, "2"),  # timestamps, request ids
        ("RuntimeError: tenant 4821 has no config", "4821", "RuntimeError: tenant 5077 has no config", "5077"),
    ],
)
def test_noise_does_not_split_one_problem(a: str, tenant_a: str, b: str, tenant_b: str) -> None:
    assert normalise_error(a, tenant_a) == normalise_error(b, tenant_b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (EXACT_401, EXACT_500),  # a 401 and a 500
        (SHOPIFY_500, SHOPIFY_429_SHOP),
        ("KeyError: 'sku'", "KeyError: 'price'"),
        (TIMESTAMPED, TIMESTAMPED.replace("503", "502")),
    ],
)
def test_different_problems_stay_apart(a: str, b: str) -> None:
    assert normalise_error(a) != normalise_error(b)


def test_the_normalised_line_reads_as_the_error() -> None:
    assert normalise_error(SHOPIFY_500_CURSOR) == (
        "singer_sdk.exceptions.retriableapierror: 500 server error: internal server error for path: /admin/api/#/orders.json"
    )
    assert normalise_error(EXACT_401) == (
        "requests.exceptions.httperror: 401 client error: unauthorized for url: https://#.exactonline.nl/api/oauth#/token"
    )
    assert normalise_error("") == normalise_error(None) == ""


def test_the_signature_is_error_connector_and_stage() -> None:
    shared = make_event("sync_failed__shopify_500")
    line = telling_line(scrub(shared.message or ""))
    one = signature(shared, line)
    assert one is not None and len(one.id) == 16 and one.connector == "shopify → optiply" and one.stage == "SYNC_FAILED"
    other_tenant = make_event("sync_failed__shopify_500", tenant="5077", started_by="5077", job_id="Q1")
    assert signature(other_tenant, line) == one  # same problem, another tenant
    woo = make_event("sync_failed__shopify_500", tap="woocommerce")
    assert signature(woo, line).id != one.id  # type: ignore[union-attr]  # same text, another connector
    other_target = make_event("sync_failed__shopify_500", target="exact")
    assert signature(other_target, line).id != one.id  # type: ignore[union-attr]
    etl = make_event("sync_failed__shopify_500", status="ETL_FAILED")
    assert signature(etl, line).id != one.id  # type: ignore[union-attr]  # another failed stage


def test_a_tenant_id_inside_the_text_does_not_count() -> None:
    a = signature(make_event("sync_failed__shopify_500", tenant="4821"), "ValueError: tenant 4821: no webshop_handle")
    b = signature(
        make_event("sync_failed__shopify_500", tenant="5077", started_by="5077"), "ValueError: tenant 5077: no webshop_handle"
    )
    assert a is not None and b is not None
    assert a.id == b.id and a.normalised == "valueerror: tenant #: no webshop_handle"
    assert b.error_line == "ValueError: tenant 5077: no webshop_handle"  # the message shows the text as sent


def test_no_signature_without_a_failure_or_a_tenant() -> None:
    assert signature(make_event("job_completed__full_sync"), "x") is None
    assert signature(make_event("sync_failed__shopify_500", tenant=None, started_by=None), "x") is None


RULES = IncidentRules()


@pytest.mark.parametrize(
    ("state", "now", "kind", "until"),
    [
        # The first sighting waits the group wait, counted from itself.
        (SignatureState(1, NOW), NOW, HOLD, NOW + timedelta(seconds=30)),
        (SignatureState(2, NOW - timedelta(seconds=10)), NOW, HOLD, NOW + timedelta(seconds=20)),
        # Seen once: posted after the wait, never later.
        (SignatureState(1, NOW - timedelta(seconds=30)), NOW, POST, None),
        (SignatureState(2, NOW - timedelta(minutes=5)), NOW, POST, None),
        # K tenants within the window: an incident, from the start.
        (SignatureState(3, NOW - timedelta(seconds=2)), NOW, OPEN, None),
        (SignatureState(3, NOW - timedelta(minutes=9)), NOW, OPEN, None),
        # An open incident takes the rest...
        (SignatureState(1, NOW, incident_id=7, incident_last_change=NOW - timedelta(minutes=1)), NOW, FOLD, None),
        # ...unless it has been idle past expire_minutes: then it starts again.
        (SignatureState(1, NOW, incident_id=7, incident_last_change=NOW - timedelta(hours=2)), NOW, HOLD, NOW + timedelta(seconds=30)),
    ],
)
def test_judge(state: SignatureState, now: datetime, kind: str, until: datetime | None) -> None:
    verdict = judge(state, now, RULES)
    assert (verdict.kind, verdict.until) == (kind, until)
    assert verdict.why and "\n" not in verdict.why


def test_judge_off_or_without_wait() -> None:
    assert judge(SignatureState(5, NOW), NOW, IncidentRules(enabled=False)).kind == POST
    assert judge(SignatureState(1, NOW), NOW, IncidentRules(group_wait_seconds=0)).kind == POST
    assert judge(SignatureState(2, NOW), NOW, IncidentRules(min_tenants=2)).kind == OPEN


def test_expiry_and_recovery() -> None:
    assert not incident_expired(None, NOW, RULES)
    assert not incident_expired(NOW - timedelta(minutes=119), NOW, RULES)
    assert incident_expired(NOW - timedelta(minutes=120), NOW, RULES)
    assert recovers(make_event("job_completed__incremental"))
    assert not recovers(make_event("sync_failed__shopify_500"))


def test_whole_tracebacks_of_two_tenants_are_one_signature() -> None:
    # The shared tap-exact payload's traceback, as two tenants' jobs send it: another
    # site-packages path, another line number, the other tenant.
    first = make_event("sync_failed__exact_token_401")
    other_message = (first.message or "").replace("/home/hotglue/.venv", "/usr/local").replace("line 58", "line 61")
    second = make_event("sync_failed__exact_token_401", tenant="5077", started_by="5077", message=other_message)
    one = signature(first, telling_line(scrub(first.message or "")))
    two = signature(second, telling_line(scrub(second.message or "")))
    assert one is not None and two is not None and one.id == two.id
    assert one.normalised.startswith("runtimeerror: failed oauth login, response was")
    assert one.connector == "exact → optiply"
