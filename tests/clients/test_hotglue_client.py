"""HotGlueClient against the fake HotGlue over real HTTP: exact requests, retries, errors."""

from __future__ import annotations

import email.utils
import json
import pickle
import time
from typing import Any

import httpx
import pytest

from hotglue_webhooks.clients import (
    HotGlueAuthError,
    HotGlueBadRequest,
    HotGlueClient,
    HotGlueError,
    HotGlueNotFound,
    HotGlueRateLimited,
    HotGlueServerError,
    HotGlueTransportError,
    describe_request,
)
from hotglue_webhooks.clients.errors import parse_retry_after
from hotglue_webhooks.fakes import EMPTY, CannedResponse, FakeHotGlue

ENV = "prod.hotglue.example.com"
FLOW = "Xk2pQ9aLm"
ENABLE = {"schedule_expression": "cron(0 */6 * * ? *)", "state": "ENABLED"}


# --- exact requests ----------------------------------------------------------------------


def test_put_schedule_sends_the_documented_request(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    answer = hotglue.put_schedule(ENV, FLOW, "acme_2", ENABLE)

    assert answer == {}
    [request] = fake_hotglue.requests
    assert (request.method, request.raw_path, request.query_string) == (
        "PUT",
        f"/{ENV}/{FLOW}/acme_2/jobs/schedule",
        "",
    )
    assert request.json == ENABLE
    assert request.header("x-api-key") == fake_hotglue.api_key
    assert request.header("content-type") == "application/json"
    assert fake_hotglue.schedule(ENV, FLOW, "acme_2") == ENABLE


@pytest.mark.parametrize(
    ("tenant", "encoded"),
    [("acme_2", "acme_2"), ("a/b c", "a%2Fb%20c"), ("ü?#%", "%C3%BC%3F%23%25"), ("acme.shop-1~", "acme.shop-1~")],
)
def test_ids_are_url_encoded_as_one_path_segment(
    fake_hotglue: FakeHotGlue, hotglue: HotGlueClient, tenant: str, encoded: str
) -> None:
    hotglue.put_schedule(ENV, FLOW, tenant, ENABLE)
    hotglue.get_tenant_config(ENV, tenant)
    hotglue.list_linked_flows(ENV, tenant)

    put, config, flows = fake_hotglue.requests
    assert put.raw_path == f"/{ENV}/{FLOW}/{encoded}/jobs/schedule"
    assert config.raw_path == f"/tenant/{ENV}/{encoded}/config"
    assert (flows.raw_path, flows.query) == (f"/{ENV}/flows/linked", {"tenant_id": tenant})
    # The fake split the path before decoding: the tenant is one id, not two segments.
    assert fake_hotglue.schedule(ENV, FLOW, tenant) == ENABLE


def test_empty_ids_are_refused_before_sending(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        hotglue.get_schedule(ENV, FLOW, "")
    assert fake_hotglue.requests == []


def test_start_job_v1_and_v2(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    job = hotglue.start_job(ENV, FLOW, "acme", {"tap": "shopify", "job_name": "wh-Xk2pQ9aLm-shopify-2024-05-01"})
    job_v2 = hotglue.start_job_v2(ENV, "Vd3HsW8qc", "acme", {"connector_id": "exact", "job_type": "write"})

    v1, v2 = fake_hotglue.requests
    assert (v1.method, v1.raw_path, v1.json) == (
        "POST",
        f"/{ENV}/{FLOW}/acme/jobs",
        {"tap": "shopify", "job_name": "wh-Xk2pQ9aLm-shopify-2024-05-01"},
    )
    assert (v2.method, v2.raw_path, v2.json) == (
        "POST",
        f"/v2/{ENV}/Vd3HsW8qc/acme/jobs",
        {"connector_id": "exact", "job_type": "write"},
    )
    assert job["status"] == "JOB_CREATED"
    assert job["job_name"] == "wh-Xk2pQ9aLm-shopify-2024-05-01"
    assert job["s3_root"].startswith(f"acme/flows/{FLOW}/jobs/") and job["s3_root"].endswith("/" + job["job_id"])
    assert job_v2["job_id"] != job["job_id"]
    assert [j["job_id"] for j in fake_hotglue.jobs] == [job["job_id"], job_v2["job_id"]]


def test_get_job_status_passes_s3_root_as_job_root(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    job = hotglue.start_job(ENV, FLOW, "acme", {"tap": "shopify"})
    fake_hotglue.clear()

    status = hotglue.get_job_status(ENV, FLOW, "acme", job["s3_root"])

    [request] = fake_hotglue.requests
    assert (request.method, request.raw_path, request.query) == (
        "GET",
        f"/{ENV}/{FLOW}/acme/jobs/status",
        {"job_root": job["s3_root"]},
    )
    assert status == job
    with pytest.raises(HotGlueNotFound):
        hotglue.get_job_status(ENV, FLOW, "acme", "acme/flows/x/jobs/unknown")


def test_linked_sources_with_and_without_config(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    fake_hotglue.add_linked_source(ENV, FLOW, "acme", "shopify", {"shop": "acme", "access_token": "shpat_1"})

    with_config = hotglue.list_linked_sources(ENV, FLOW, "acme")
    without = hotglue.list_linked_sources(ENV, FLOW, "acme", config=False)

    first, second = fake_hotglue.requests
    assert (first.raw_path, first.query) == (f"/{ENV}/{FLOW}/acme/linkedSources", {"config": "true"})
    assert (second.raw_path, second.query) == (f"/{ENV}/{FLOW}/acme/linkedSources", {})
    assert with_config == [{"tap": "shopify", "config": {"shop": "acme", "access_token": "shpat_1"}}]
    assert without == [{"tap": "shopify"}]


def test_source_state_get_put_delete(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    assert hotglue.get_source_state(ENV, FLOW, "acme") == {}  # never synced
    state = {"bookmarks": {"Orders": {"updated_at": "2024-05-01T00:00:00Z"}}}

    hotglue.put_source_state(ENV, FLOW, "acme", state)
    assert hotglue.get_source_state(ENV, FLOW, "acme") == state
    hotglue.delete_source_state(ENV, FLOW, "acme")

    assert fake_hotglue.source_state(ENV, FLOW, "acme") is None
    assert [(r.method, r.raw_path) for r in fake_hotglue.requests] == [
        ("GET", f"/{ENV}/{FLOW}/acme/linkedSources/state"),
        ("PUT", f"/{ENV}/{FLOW}/acme/linkedSources/state"),
        ("GET", f"/{ENV}/{FLOW}/acme/linkedSources/state"),
        ("DELETE", f"/{ENV}/{FLOW}/acme/linkedSources/state"),
    ]
    assert fake_hotglue.requests[1].json == state
    assert fake_hotglue.requests[3].body == b""


@pytest.mark.parametrize("body", [None, EMPTY])
def test_source_state_null_or_empty_reads_as_none(
    fake_hotglue: FakeHotGlue, hotglue: HotGlueClient, body: Any
) -> None:
    fake_hotglue.enqueue(CannedResponse(200, body))
    assert hotglue.get_source_state(ENV, FLOW, "acme") is None


def test_link_target_then_list(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    body = {"target": {"target": "optiply", "config": {"username": "u", "password": "p"}}}

    hotglue.link_target(ENV, FLOW, "acme", body)
    targets = hotglue.list_linked_targets(ENV, FLOW, "acme")

    post, get = fake_hotglue.requests
    assert (post.method, post.raw_path, post.json) == ("POST", f"/{ENV}/{FLOW}/acme/linkedTargets", body)
    assert (get.method, get.raw_path) == ("GET", f"/{ENV}/{FLOW}/acme/linkedTargets")
    assert targets == [{"name": "optiply", "raw": {"target": "optiply", "config": {"username": "u", "password": "p"}}}]


@pytest.mark.parametrize(
    ("answer", "names"),
    [
        ([{"target": "optiply", "config": {}}], ["optiply"]),
        ([{"target": {"target": "optiply"}}], ["optiply"]),
        (["optiply", "exact"], ["optiply", "exact"]),
        ([{"name": "optiply"}, {"id": "t1"}], ["optiply", "t1"]),
        ([{"config": {}}], [None]),
        ({"target": "optiply"}, ["optiply"]),
        (None, []),
        ([], []),
    ],
)
def test_linked_target_names_from_unconfirmed_shapes(
    fake_hotglue: FakeHotGlue, hotglue: HotGlueClient, answer: Any, names: list[str | None]
) -> None:
    fake_hotglue.enqueue(CannedResponse(200, answer))
    assert [t["name"] for t in hotglue.list_linked_targets(ENV, FLOW, "acme")] == names


def test_tenants_and_linked_flows(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    fake_hotglue.link_flow(ENV, "acme", "Rb7TnE4wz", name="ERP")
    fake_hotglue.add_linked_source(ENV, FLOW, "acme", "shopify")
    fake_hotglue.add_tenant(ENV, "beta")

    assert hotglue.list_linked_flows(ENV, "acme") == [
        {"id": "Rb7TnE4wz", "name": "ERP", "version": 1},
        {"id": FLOW, "name": FLOW, "version": 1},
    ]
    assert hotglue.linked_flow_ids(ENV, "acme") == ["Rb7TnE4wz", FLOW]
    assert hotglue.list_tenants(ENV) == ["beta", "acme"]
    assert fake_hotglue.requests[-1].raw_path == f"/tenants/{ENV}"


def test_linked_flows_and_tenants_accept_bare_ids(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    fake_hotglue.enqueue(CannedResponse(200, ["Rb7TnE4wz"]), CannedResponse(200, [{"id": "acme"}, "beta", 7]))
    assert hotglue.list_linked_flows(ENV, "acme") == [{"id": "Rb7TnE4wz"}]
    assert hotglue.list_tenants(ENV) == ["acme", "beta", "7"]


# --- "none" shapes -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["404", "empty", "{}", "null", "no_expression"])
def test_get_schedule_reads_every_none_shape_as_none(
    fake_hotglue: FakeHotGlue, hotglue: HotGlueClient, shape: Any
) -> None:
    fake_hotglue.no_schedule = shape
    assert hotglue.get_schedule(ENV, FLOW, "acme") is None
    [request] = fake_hotglue.requests
    assert (request.method, request.raw_path) == ("GET", f"/{ENV}/{FLOW}/acme/jobs/schedule")


@pytest.mark.parametrize(
    "answer", [{"schedule_expression": None, "state": "ENABLED"}, {"schedule_expression": "  "}, [], b'"x"', 42]
)
def test_get_schedule_without_an_expression_is_none(
    fake_hotglue: FakeHotGlue, hotglue: HotGlueClient, answer: Any
) -> None:
    fake_hotglue.enqueue(CannedResponse(200, answer))
    assert hotglue.get_schedule(ENV, FLOW, "acme") is None


def test_get_schedule_returns_the_schedule(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    fake_hotglue.set_schedule(ENV, FLOW, "acme", "cron(0 3 * * ? *)", "DISABLED")
    assert hotglue.get_schedule(ENV, FLOW, "acme") == {"schedule_expression": "cron(0 3 * * ? *)", "state": "DISABLED"}


def test_tenant_config_is_returned(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    config = {"apiCredentials": {"username": "u", "password": "p", "account_id": 98}}
    fake_hotglue.set_tenant_config(ENV, "acme", config)
    assert hotglue.get_tenant_config(ENV, "acme") == config


@pytest.mark.parametrize("status", [400, 404, 500])
def test_no_config_error_is_none_whatever_the_status(
    fake_hotglue: FakeHotGlue, hotglue: HotGlueClient, waits: list[float], status: int
) -> None:
    fake_hotglue.no_config_status = status
    assert hotglue.get_tenant_config(ENV, "acme") is None
    assert len(fake_hotglue.requests) == 1  # a 500 "no config" is an answer, not retried
    assert waits == []


@pytest.mark.parametrize("answer", [EMPTY, None, {"message": "No config found for tenant"}])
def test_tenant_config_none_shapes(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient, answer: Any) -> None:
    fake_hotglue.enqueue(CannedResponse(200, answer))
    assert hotglue.get_tenant_config(ENV, "acme") is None


def test_other_tenant_config_errors_raise(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    fake_hotglue.fail_next(1, 404, body={"message": "Environment not found"})
    with pytest.raises(HotGlueNotFound):
        hotglue.get_tenant_config(ENV, "acme")


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "transient"),
    [
        (400, HotGlueBadRequest, False),
        (401, HotGlueAuthError, False),
        (403, HotGlueAuthError, False),
        (404, HotGlueNotFound, False),
        (409, HotGlueBadRequest, False),
        (422, HotGlueBadRequest, False),
        (423, HotGlueRateLimited, True),
        (429, HotGlueRateLimited, True),
        (500, HotGlueServerError, True),
        (502, HotGlueServerError, True),
        (503, HotGlueServerError, True),
        (302, HotGlueBadRequest, False),
    ],
)
def test_status_maps_to_error(
    fake_hotglue: FakeHotGlue, status: int, error: type[HotGlueError], transient: bool
) -> None:
    fake_hotglue.fail_next(1, status, headers={"Location": "http://elsewhere.example/"} if status == 302 else None)
    with HotGlueClient(fake_hotglue.url, fake_hotglue.api_key, max_retries=0) as client:
        with pytest.raises(error) as caught:
            client.put_schedule(ENV, FLOW, "acme", ENABLE)
    assert type(caught.value) is error
    assert caught.value.status_code == status
    assert caught.value.transient is transient
    assert caught.value.summary.startswith(f"HotGlue {status} on PUT /{ENV}/{FLOW}/acme/jobs/schedule")
    assert len(fake_hotglue.requests) == 1


def test_wrong_key_is_an_auth_error_that_does_not_show_the_key(fake_hotglue: FakeHotGlue) -> None:
    with HotGlueClient(fake_hotglue.url, "wrong-key-123") as client:
        with pytest.raises(HotGlueAuthError) as caught:
            client.list_tenants(ENV)
        assert "wrong-key-123" not in repr(client)
    assert fake_hotglue.requests[0].header("x-api-key") == "wrong-key-123"
    assert "wrong-key-123" not in str(caught.value) + repr(caught.value)


def test_error_summaries_hide_the_key_and_secrets(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    key = fake_hotglue.api_key
    assert key is not None
    fake_hotglue.fail_next(1, 400, body={"message": f"bad request with key {key}", "config": {"password": "hunter2"}})
    with pytest.raises(HotGlueBadRequest) as caught:
        hotglue.link_target(ENV, FLOW, "acme", {"target": {"target": "optiply"}})
    text = str(caught.value)
    assert key not in text and "hunter2" not in text
    assert text == (
        f"HotGlue 400 on POST /{ENV}/{FLOW}/acme/linkedTargets: "
        '{"message": "bad request with key [redacted]", "config": {"password": "[redacted]"}}'
    )


def test_long_error_bodies_are_cut(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    fake_hotglue.fail_next(1, 400, body="x" * 10_000)
    with pytest.raises(HotGlueBadRequest) as caught:
        hotglue.list_tenants(ENV)
    assert len(caught.value.summary) < 300


def test_a_read_answered_with_non_json_is_a_server_error(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    fake_hotglue.enqueue(CannedResponse(200, "<html>proxy</html>"))
    with pytest.raises(HotGlueServerError, match="not JSON"):
        hotglue.get_schedule(ENV, FLOW, "acme")


def test_a_write_answered_with_non_json_returns_the_text(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    # The write happened; raising would make the worker send it again.
    fake_hotglue.enqueue(CannedResponse(200, "OK"))
    assert hotglue.put_schedule(ENV, FLOW, "acme", ENABLE) == "OK"


def test_errors_survive_pickling() -> None:
    error = HotGlueRateLimited("HotGlue 429 on GET /x", status_code=429, retry_after=5.0)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.summary, copy.status_code, copy.retry_after, copy.transient) == (
        HotGlueRateLimited,
        "HotGlue 429 on GET /x",
        429,
        5.0,
        True,
    )


# --- retries -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 423, 503])
def test_retry_after_seconds_is_honoured(
    fake_hotglue: FakeHotGlue, hotglue: HotGlueClient, waits: list[float], status: int
) -> None:
    fake_hotglue.fail_next(2, status, headers={"Retry-After": "3"})
    fake_hotglue.set_schedule(ENV, FLOW, "acme", "cron(0 3 * * ? *)")

    assert hotglue.get_schedule(ENV, FLOW, "acme") == {"schedule_expression": "cron(0 3 * * ? *)", "state": "ENABLED"}
    assert waits == [3.0, 3.0]
    assert [r.status for r in fake_hotglue.requests] == [status, status, 200]


def test_retry_after_http_date_is_honoured(
    fake_hotglue: FakeHotGlue, hotglue: HotGlueClient, waits: list[float]
) -> None:
    fake_hotglue.fail_next(1, 429, headers={"Retry-After": email.utils.formatdate(time.time() + 4, usegmt=True)})

    hotglue.list_tenants(ENV)

    [wait] = waits
    assert 2.5 <= wait <= 4.0  # the date has 1-second precision


def test_a_long_retry_after_is_raised_for_the_worker_instead_of_slept(
    fake_hotglue: FakeHotGlue, hotglue: HotGlueClient, waits: list[float]
) -> None:
    fake_hotglue.fail_next(1, 429, headers={"Retry-After": "30"})

    with pytest.raises(HotGlueRateLimited) as caught:
        hotglue.put_schedule(ENV, FLOW, "acme", ENABLE)

    assert (caught.value.retry_after, caught.value.transient, caught.value.status_code) == (30.0, True, 429)
    assert waits == []
    assert len(fake_hotglue.requests) == 1
    assert fake_hotglue.schedule(ENV, FLOW, "acme") is None


def test_back_off_grows_with_jitter_then_gives_up(
    fake_hotglue: FakeHotGlue, hotglue: HotGlueClient, waits: list[float]
) -> None:
    fake_hotglue.fail_next(3, 502)

    with pytest.raises(HotGlueServerError) as caught:
        hotglue.put_schedule(ENV, FLOW, "acme", ENABLE)

    assert caught.value.retry_after is None
    assert len(fake_hotglue.requests) == 3  # max_retries=2
    first, second = waits
    assert 0.25 <= first <= 0.5 and 0.5 <= second <= 1.0


def test_back_off_is_capped_by_max_inline_wait(fake_hotglue: FakeHotGlue, waits: list[float]) -> None:
    fake_hotglue.fail_next(4, 503)
    with HotGlueClient(
        fake_hotglue.url, fake_hotglue.api_key, max_retries=4, backoff_base=2.0, max_inline_wait=3.0, sleep=waits.append
    ) as client:
        client.list_tenants(ENV)
    assert len(waits) == 4 and all(w <= 3.0 for w in waits) and waits[-1] == 3.0


def test_post_is_not_repeated_after_a_5xx(
    fake_hotglue: FakeHotGlue, hotglue: HotGlueClient, waits: list[float]
) -> None:
    # HotGlue may have started the job before failing; a second POST could start another.
    fake_hotglue.fail_next(1, 500, match="POST *")

    with pytest.raises(HotGlueServerError) as caught:
        hotglue.start_job(ENV, FLOW, "acme", {"tap": "shopify"})

    assert caught.value.transient is True
    assert len(fake_hotglue.requests) == 1 and waits == []


def test_post_is_repeated_after_429(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient, waits: list[float]) -> None:
    fake_hotglue.fail_next(1, 429, headers={"Retry-After": "0"})

    hotglue.start_job(ENV, FLOW, "acme", {"tap": "shopify"})

    assert waits == [0.0]
    assert [r.status for r in fake_hotglue.requests] == [429, 200]
    assert len(fake_hotglue.jobs) == 1
    assert fake_hotglue.requests[0].body == fake_hotglue.requests[1].body


def test_read_timeout_is_retried(fake_hotglue: FakeHotGlue, waits: list[float]) -> None:
    fake_hotglue.fail_next(1, status=None, delay=2.0)  # slower than the client waits
    with HotGlueClient(fake_hotglue.url, fake_hotglue.api_key, timeout=0.2, sleep=waits.append) as client:
        assert client.list_tenants(ENV) == []
    assert len(fake_hotglue.requests) == 2 and len(waits) == 1


def test_read_timeout_on_post_is_raised_without_repeating(fake_hotglue: FakeHotGlue, waits: list[float]) -> None:
    fake_hotglue.fail_next(1, status=None, delay=2.0)
    with HotGlueClient(fake_hotglue.url, fake_hotglue.api_key, timeout=0.2, sleep=waits.append) as client:
        with pytest.raises(HotGlueTransportError) as caught:
            client.start_job(ENV, FLOW, "acme", {"tap": "shopify"})
    assert caught.value.transient is True and caught.value.status_code is None
    assert "ReadTimeout" in caught.value.summary
    assert len(fake_hotglue.requests) == 1 and waits == []


def test_connection_refused_is_a_transport_error_after_retries(closed_port: int, waits: list[float]) -> None:
    with HotGlueClient(f"http://127.0.0.1:{closed_port}", "k", sleep=waits.append) as client:
        with pytest.raises(HotGlueTransportError) as caught:
            client.start_job(ENV, FLOW, "acme", {"tap": "shopify"})  # never reached HotGlue: safe to repeat
    assert caught.value.transient is True
    assert len(waits) == 2


def test_transport_is_injectable() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"schedule_expression": "cron(0 1 * * ? *)", "state": "ENABLED"})

    with HotGlueClient("https://api.hotglue.com/", "k", transport=httpx.MockTransport(answer)) as client:
        assert client.get_schedule(ENV, FLOW, "acme")
    assert str(seen[0].url) == f"https://api.hotglue.com/{ENV}/{FLOW}/acme/jobs/schedule"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("5", 5.0), (" 1.5 ", 1.5), ("-3", 0.0), ("soon", None), ("", None), (None, None), ("nan", None)],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0


# --- dry-run requests --------------------------------------------------------------------


def test_write_requests_are_sent_exactly_as_described(fake_hotglue: FakeHotGlue, hotglue: HotGlueClient) -> None:
    calls: list[tuple[str, tuple[Any, ...]]] = [
        ("put_schedule", (ENV, FLOW, "a/b c", ENABLE)),
        ("start_job", (ENV, FLOW, "acme_2", {"tap": "shopify", "job_name": "wh-x"})),
        ("start_job_v2", (ENV, FLOW, "acme_2", {"connector_id": "exact", "job_type": "write"})),
        ("link_target", (ENV, FLOW, "acme_2", {"target": {"target": "optiply", "config": {"username": "u"}}})),
        ("put_source_state", (ENV, FLOW, "acme_2", {"bookmarks": {}})),
        ("delete_source_state", (ENV, FLOW, "acme_2")),
    ]
    for name, args in calls:
        described = describe_request(getattr(hotglue, f"{name}_request")(*args))
        fake_hotglue.clear()
        getattr(hotglue, name)(*args)
        [sent] = fake_hotglue.requests
        assert described["method"] == sent.method, name
        assert described["url"] == fake_hotglue.url + sent.raw_path, name
        assert described["json"] == sent.json, name
        assert described["headers"]["x-api-key"] == "[redacted]"
        assert sent.header("x-api-key") == fake_hotglue.api_key


def test_describe_request_redacts_the_key_and_secret_values(hotglue: HotGlueClient) -> None:
    body = {"target": {"target": "optiply", "config": {"username": "u", "password": "p1", "client_secret": "s1"}}}
    request = hotglue.link_target_request(ENV, FLOW, "acme_2", body)

    described = describe_request(request)

    assert described == {
        "method": "POST",
        "url": f"{hotglue.base_url}/{ENV}/{FLOW}/acme_2/linkedTargets",
        "headers": {
            "host": hotglue.base_url.removeprefix("http://"),
            "accept": "application/json",
            "accept-encoding": request.headers["accept-encoding"],
            "connection": "keep-alive",
            "user-agent": "hotglue-webhooks",
            "x-api-key": "[redacted]",
            "content-length": request.headers["content-length"],
            "content-type": "application/json",
        },
        "json": {
            "target": {
                "target": "optiply",
                "config": {"username": "u", "password": "[redacted]", "client_secret": "[redacted]"},
            }
        },
    }
    assert json.loads(request.content) == body  # only the description is redacted
    assert describe_request(request, redact_body=False)["json"] == body


def test_requests_can_be_built_without_a_key() -> None:
    with HotGlueClient("https://api.hotglue.com", None) as client:
        request = client.put_schedule_request(ENV, FLOW, "acme", ENABLE)
    assert "x-api-key" not in request.headers
    assert describe_request(request)["url"] == f"https://api.hotglue.com/{ENV}/{FLOW}/acme/jobs/schedule"
