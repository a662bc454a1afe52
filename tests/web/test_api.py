"""The JSON admin API on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from conftest import PAYLOAD_FILES, Receiver, payload
from web.helpers import action_states, event_state, kill_actions, send


@pytest.fixture
def loaded(receiver: Receiver) -> Receiver:
    send(receiver, *(path.stem for path in PAYLOAD_FILES))
    receiver.worker().drain()
    return receiver


def get(receiver: Receiver, url: str, status: int = 200) -> dict:
    answer = receiver.client.get(url)
    assert answer.status_code == status, answer.json
    return answer.json


def statuses(answer: dict) -> list[tuple[str, str]]:
    return [(event["tenant"], event["status"]) for event in answer["events"]]


def test_events_filters(loaded: Receiver) -> None:
    assert len(get(loaded, "/api/events")["events"]) == len(PAYLOAD_FILES)
    assert statuses(get(loaded, "/api/events?tenant=3310&status=SYNC_FAILED")) == [("3310", "SYNC_FAILED")]
    failed = get(loaded, "/api/events?status=*_FAILED")["events"]
    assert {e["status"] for e in failed} == {"SYNC_FAILED", "ETL_FAILED", "EXPORT_FAILED"} and len(failed) == 4
    assert {e["sync_type"] for e in get(loaded, "/api/events?sync_type=auto_sync")["events"]} == {"auto_sync"}
    assert statuses(get(loaded, "/api/events?q=oauth2/token")) == [("3310", "SYNC_FAILED")]
    assert len(get(loaded, "/api/events?since=1h&until=2999-01-01T00:00:00Z")["events"]) == len(PAYLOAD_FILES)
    assert get(loaded, "/api/events?until=2020-01-01T00:00:00Z")["events"] == []


@pytest.mark.parametrize(
    "query",
    ["since=yesterday", "limit=0", "limit=501", "limit=x", "cursor=0", "cursor=-1", "tenant=%00", "until=1h%00"],
)
def test_bad_filters_get_400_naming_the_field(receiver: Receiver, query: str) -> None:
    answer = get(receiver, f"/api/events?{query}", status=400)
    assert answer["error"] == "Bad Request"
    assert query.split("=")[0] in answer["detail"]["query"]


def test_events_cursor_walks_every_event_once(receiver: Receiver) -> None:
    base = payload("job_created__scheduled")
    for n in range(7):
        receiver.post({**base, "s3_root": f"{base['s3_root']}-{n}"})
    seen: list[str] = []
    url = "/api/events?limit=3"
    while url:
        page = get(receiver, url)
        seen += [event["id"] for event in page["events"]]
        url = f"/api/events?limit=3&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert seen == [str(n) for n in range(7, 0, -1)]


def test_tenant_events(loaded: Receiver) -> None:
    answer = get(loaded, "/api/tenants/3310/events")
    assert {e["tenant"] for e in answer["events"]} == {"3310"} and len(answer["events"]) == 3
    assert statuses(get(loaded, "/api/tenants/3310/events?status=SYNC_FAILED")) == [("3310", "SYNC_FAILED")]
    assert get(loaded, "/api/tenants/nobody/events") == {"events": [], "next_cursor": None}
    get(loaded, "/api/tenants/3310/events?limit=0", status=400)


@pytest.mark.parametrize("tenant", ["<script>alert(1)</script>", "acme/eu", "a//b", "trailing/", "x/events", "100%"])
def test_tenant_events_of_a_tenant_id_with_slashes(receiver: Receiver, tenant: str) -> None:
    receiver.post({**payload("sync_failed__shopify_500"), "tenant": tenant})
    receiver.post(payload("sync_failed__exact_token_401"))
    quoted = quote(tenant, safe="/")
    answer = get(receiver, f"/api/tenants/{quoted}/events")
    assert [e["tenant"] for e in answer["events"]] == [tenant]
    assert answer == get(receiver, f"/api/events?tenant={quote(tenant, safe='')}")
    assert get(receiver, f"/api/tenants/{quote(tenant, safe='')}/events") == answer  # %2F decodes to / too


@pytest.mark.parametrize("tenant", ["%00", "a%00b", "x" * 1025])
def test_tenant_events_refuse_what_the_tenant_filter_refuses(receiver: Receiver, tenant: str) -> None:
    by_path = get(receiver, f"/api/tenants/{tenant}/events", status=400)
    by_query = get(receiver, f"/api/events?tenant={tenant}", status=400)
    assert by_path["error"] == by_query["error"] == "Bad Request"
    assert by_path["detail"]["path"]["tenant"] == by_query["detail"]["query"]["tenant"]


def test_event_detail_and_404s(loaded: Receiver) -> None:
    [failed] = get(loaded, "/api/events?tenant=3310&status=SYNC_FAILED")["events"]
    detail = get(loaded, f"/api/events/{failed['id']}")
    assert detail["payload"]["tenant"] == "3310"
    assert [a["kind"] for a in detail["actions"]][0] == "slack.post_message"
    assert detail["actions"][0]["request"]["url"] == "https://slack.com/api/chat.postMessage"
    assert get(loaded, "/api/events/424242", status=404)["error"] == "Not Found"
    get(loaded, "/api/events/abc", status=404)
    get(loaded, "/api/events/99999999999999999999", status=404)


def test_replay_one_event(receiver: Receiver) -> None:
    [event_id] = send(receiver, "sync_failed__shopify_500")
    worker = receiver.worker()
    worker.drain()
    kill_actions(receiver, event_id)
    answer = receiver.client.post(f"/api/events/{event_id}/replay", json={})
    assert (answer.status_code, answer.json) == (202, {"id": str(event_id), "state": "retrying"})
    assert event_state(receiver, event_id) == "retrying"
    worker.drain()
    assert action_states(receiver, event_id) == [("dry_run", 1)]
    assert receiver.client.post("/api/events/424242/replay", json={}).status_code == 404
    assert receiver.client.post(f"/api/events/{event_id}/replay", json={"wait": True}).status_code == 400


def test_dead_actions_and_bulk_replay_by_filter(receiver: Receiver) -> None:
    shopify, exact, etl = send(receiver, "sync_failed__shopify_500", "sync_failed__exact_token_401", "etl_failed__transform")
    worker = receiver.worker()
    worker.drain()
    killed = {event_id: kill_actions(receiver, event_id) for event_id in (shopify, exact, etl)}
    everything = sum(len(ids) for ids in killed.values())

    dead = get(receiver, "/api/actions?state=dead")
    assert len(dead["actions"]) == everything and dead["next_cursor"] is None
    assert {a["state"] for a in dead["actions"]} == {"dead"}
    assert {a["event"]["tenant"] for a in dead["actions"]} == {"4821", "3310"}
    assert all(a["last_error"] == "Slack chat.postMessage: 503 Service Unavailable" for a in dead["actions"])
    first = get(receiver, "/api/actions?state=dead&limit=1")
    rest = get(receiver, f"/api/actions?state=dead&cursor={first['next_cursor']}")
    assert len(rest["actions"]) == everything - 1
    assert len(get(receiver, "/api/actions?state=dead&tenant=3310")["actions"]) == len(killed[exact])
    assert get(receiver, "/api/actions?state=done")["actions"] == []
    assert "state" in str(get(receiver, "/api/actions?state=bogus", 400))  # a typo is not "nothing matched"

    answer = receiver.client.post("/api/actions/replay", json={"tenant": "3310"})
    assert answer.status_code == 202
    assert answer.json == {"actions": len(killed[exact]), "events": 1, "event_ids": [str(exact)]}
    answer = receiver.client.post("/api/actions/replay", json={"ids": [killed[etl][0]]})
    assert answer.json["event_ids"] == [str(etl)]
    assert {state for state, _ in action_states(receiver, shopify)} == {"dead"}
    worker.drain()
    assert {state for state, _ in action_states(receiver, exact) + action_states(receiver, etl)} == {"dry_run"}
    # An empty filter takes every dead action that is left.
    assert receiver.client.post("/api/actions/replay", json={}).json["event_ids"] == [str(shopify)]
    assert receiver.client.post("/api/actions/replay", json={"ids": ["x"]}).status_code == 400


def test_openapi_document_covers_ingest_and_the_admin_api(receiver: Receiver) -> None:
    spec = get(receiver, "/openapi.json")
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path, method in [
        ("/webhooks/hotglue", "post"),
        ("/api/events", "get"),
        ("/api/events/{event_id}", "get"),
        ("/api/events/{event_id}/replay", "post"),
        ("/api/actions", "get"),
        ("/api/actions/replay", "post"),
        ("/api/tenants/{tenant}/events", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ]:
        assert method in paths[path], (path, method)
    ingest = paths["/webhooks/hotglue"]["post"]
    assert {"200", "202", "400", "401", "413", "503"} <= set(ingest["responses"])
    assert ingest["parameters"][0]["name"] == "X-Hub-Signature"
    assert paths["/api/events"]["get"]["security"] == [{"bearerAuth": []}]
    assert "/" not in paths and "/login" not in paths  # the HTML pages are not API


NESTED = "[" * 5000 + "]" * 5000
HUGE = "9" * 5000


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/actions/replay", '{"ids": ' + NESTED + "}"),
        ("/api/events/1/replay", '{"a": ' + NESTED + "}"),
        ("/api/actions/replay", '{"ids": [' + HUGE + "]}"),
        ("/api/events/1/replay", '{"a": ' + HUGE + "}"),
        ("/api/actions/replay", '{"tenant": "\\ud800"}'),
        ("/api/actions/replay", '{"tenant": "a\\u0000b"}'),
    ],
    ids=["nested-ids", "nested-event", "huge-id", "huge-event", "lone-surrogate", "nul"],
)
def test_bodies_the_json_decoder_or_the_database_refuse_are_400(receiver: Receiver, url: str, body: str) -> None:
    receiver.post("sync_failed__shopify_500")
    answer = receiver.client.post(url, data=body, content_type="application/json")
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.json["error"]
