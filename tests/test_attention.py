"""Needs attention end to end: webhooks through the worker (fake HotGlue and Slack), then
GET /api/attention and /attention; each row clears by itself when its condition ends.
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from conftest import payload
from hotglue_webhooks.storage.commands import Click, store_command
from hotglue_webhooks.storage.models import COMMAND_DASHBOARD
from hotglue_webhooks.worker import reopen_event
from test_flows import CREDENTIALS, ENV, World, world  # noqa: F401  (the fixture)
from web.helpers import kill_actions


def rows(world: World) -> list[dict[str, Any]]:
    answer = world.receiver.client.get("/api/attention")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["count"] == len(body["tenants"])
    return list(body["tenants"])


def reasons(world: World) -> dict[str, list[str]]:
    return {row["tenant"]: [r["reason"] for r in row["reasons"]] for row in rows(world)}


def failure(n: int, tenant: str = "4821", status: str = "SYNC_FAILED") -> dict[str, Any]:
    body = payload("sync_failed__shopify_500")
    body.update(status=status, job_id=f"J{n}", s3_root=f"{tenant}/flows/Xk2pQ9aLm/jobs/2026/12/07/J{n}",
                last_updated=f"2026-12-07T0{n}:00:00+00:00", tenant=tenant)
    return body


def completed(n: int) -> dict[str, Any]:
    body = failure(n, status="JOB_COMPLETED")
    body.update(sync_type="incremental_sync", message=None)
    return body


def test_nothing_waits_on_a_quiet_receiver(world: World) -> None:
    assert rows(world) == []
    page = world.receiver.client.get("/attention").get_data(as_text=True)
    assert "Nobody is waiting" in page and 'id="attention-count"' not in page


def test_exact_reconnect_waits_until_its_schedules_are_on_again(world: World) -> None:
    world.deliver("sync_failed__exact_token_401")
    (row,) = rows(world)
    assert row["tenant"] == "3310"
    (reason,) = row["reasons"]
    assert reason["reason"] == "exact_reconnect"
    assert reason["detail"] == "Exact Online refused the refresh token; schedules off: Rb7TnE4wz, Vd3HsW8qc"
    assert reason["what_to_do"].startswith("Ask the customer to reconnect Exact Online")
    assert row["last_event"]["status"] == "SYNC_FAILED" and row["age_seconds"] >= 0
    page = world.receiver.client.get("/attention").get_data(as_text=True)
    assert 'id="attention-count">1<' in page and "exact_reconnect" in page and f'/events/{row["last_event"]["id"]}' in page

    store_command(world.receiver.runtime.sessions, Click(
        idempotency_key="t|1", origin=COMMAND_DASHBOARD, action_id="enable_schedules", command="enable_schedules",
        user_id="admin", user_name="dashboard", env_id=ENV, tenant="3310", flow_id=None, target={},
    ), world.now)
    world.worker.drain()
    assert rows(world) == []


def test_invalid_config_waits_until_a_valid_one_is_seen(world: World) -> None:
    world.deliver("job_completed__auto_sync")
    assert reasons(world) == {"5077": ["invalid_config"]}
    world.hotglue.set_tenant_config(ENV, "5077", {"apiCredentials": CREDENTIALS})
    again = payload("job_completed__auto_sync")
    again.update(job_id="b92Le", s3_root="5077/flows/Xk2pQ9aLm/jobs/2026/11/6/28/10/b92Le",
                 last_updated="2026-11-28T10:15:44+00:00", sync_type="full_sync")
    assert world.receiver.post(again).status_code == 202
    world.worker.drain()
    assert reasons(world) == {}


def test_dead_actions_wait_until_replayed_and_done(world: World) -> None:
    world.deliver("sync_failed__shopify_500")
    event_id = 1
    kill_actions(world.receiver, event_id)
    assert reasons(world) == {"4821": ["dead_actions"]}
    (row,) = rows(world)
    assert row["reasons"][0]["event_id"] == str(event_id)
    reopen_event(world.receiver.runtime.sessions, event_id, world.now)
    world.worker.drain()
    assert reasons(world) == {}


def test_repeated_failures_of_a_flow_wait_until_a_job_of_it_completes(world: World) -> None:
    for n in (1, 2):
        assert world.receiver.post(failure(n)).status_code == 202
    world.worker.drain()
    assert reasons(world) == {}  # two: below the rules file's 3
    assert world.receiver.post(failure(3)).status_code == 202
    world.worker.drain()
    (row,) = rows(world)
    assert [r["reason"] for r in row["reasons"]] == ["repeated_failures"]
    assert row["reasons"][0]["detail"] == "3 failures of flow Xk2pQ9aLm within 24 h, none completed since"
    assert world.receiver.post(completed(4)).status_code == 202
    world.worker.drain()
    assert reasons(world) == {}


def test_oldest_first(world: World) -> None:
    world.deliver("job_completed__auto_sync")  # 5077 first
    world.deliver("sync_failed__exact_token_401")  # then 3310
    assert [row["tenant"] for row in rows(world)] == ["5077", "3310"]


def test_members_of_an_open_incident_wait_until_they_recover_or_it_resolves(world: World) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from hotglue_webhooks.storage.models import Incident
    from test_incidents import completed as completed_job
    from test_incidents import shopify_500

    for tenant in ("1001", "1002", "1003"):
        assert world.receiver.post(shopify_500(tenant)).status_code == 202
    world.worker.drain()  # the third tenant opens the incident (no group wait here)
    world.now += timedelta(minutes=1)
    assert world.receiver.post(shopify_500("1004")).status_code == 202  # joins later
    world.worker.drain()
    with world.receiver.runtime.sessions() as session:
        incident = session.scalars(select(Incident)).one()
    assert reasons(world) == {tenant: ["incident"] for tenant in ("1001", "1002", "1003", "1004")}
    listed = {row["tenant"]: row["reasons"][0] for row in rows(world)}
    joined = listed["1004"]
    assert joined["incident_id"] == str(incident.id) and joined["group"] == incident.signature
    assert joined["flow_id"] == "Xk2pQ9aLm"
    assert joined["detail"].startswith(f"in incident {incident.id} (SYNC_FAILED on shopify")
    assert "Snooze incident" in joined["what_to_do"]
    # Seen before it opened: in it since the opening; a later joiner since it joined.
    assert listed["1001"]["since"] == incident.opened_at.isoformat()
    assert joined["since"] == world.now.isoformat()
    assert [row["tenant"] for row in rows(world)][-1] == "1004"  # oldest first
    page = world.receiver.client.get("/attention").get_data(as_text=True)
    assert 'id="attention-count">4<' in page
    assert f"/incidents?scope=signature&amp;target={incident.signature}#snooze" in page

    # One tenant recovers: it clears, the others still wait; all recovered: the incident
    # resolves and nobody waits.
    assert world.receiver.post(completed_job("1001")).status_code == 202
    world.worker.drain()
    assert sorted(reasons(world)) == ["1002", "1003", "1004"]
    for tenant in ("1002", "1003", "1004"):
        assert world.receiver.post(completed_job(tenant)).status_code == 202
    world.worker.drain()
    with world.receiver.runtime.sessions() as session:
        assert session.scalars(select(Incident.state)).one() == "resolved"
    assert rows(world) == []
