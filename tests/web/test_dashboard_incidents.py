"""The dashboard's incidents page: incidents listed, the snooze form, Lift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import Receiver, payload
from web.helpers import csrf_token

from hotglue_webhooks.storage.models import SnoozeRow


def page(receiver: Receiver, path: str) -> str:
    answer = receiver.client.get(path)
    assert answer.status_code == 200, answer.status_code
    return answer.get_data(as_text=True)


def test_incidents_are_listed_with_a_snooze_link(database_url: str) -> None:
    receiver = Receiver(database_url, incidents={"group_wait_seconds": 0})
    try:
        for tenant in ("1001", "1002", "1003"):
            receiver.post(dict(payload("sync_failed__shopify_500"), tenant=tenant, started_by=tenant, s3_root=f"{tenant}/f/j/1"))
        worker = receiver.worker()
        worker.clock = lambda: datetime.now(UTC) + timedelta(minutes=1)
        worker.drain()
        html = page(receiver, "/incidents")
        assert "SYNC_FAILED on shopify → optiply" in html
        assert '<td class="num" data-label="tenants">3</td>' in html
        assert "/incidents?scope=signature&amp;target=" in html and "Snooze…" in html
        assert ">Incidents</a>" in page(receiver, "/")  # in the navigation
    finally:
        receiver.close()


def test_the_snooze_form_records_who_and_until_and_lift_ends_it(receiver: Receiver) -> None:
    html = page(receiver, "/incidents")
    assert "No snooze in force." in html
    token = csrf_token(html)
    assert receiver.client.post("/snoozes", data={"scope": "tenant", "target": "4821", "duration": "2h"}).status_code == 400  # no CSRF token
    answer = receiver.client.post(
        "/snoozes", data={"csrf_token": token, "scope": "tenant", "target": "4821", "duration": "2h", "by": "carol",
                          "reason": "Shopify migration"},
    )
    assert answer.status_code == 302
    html = page(receiver, "/incidents")
    assert "Snoozed tenant 4821 until " in html and "carol" in html and "Shopify migration" in html
    with receiver.runtime.sessions() as session:
        row = session.query(SnoozeRow).one()
        assert row.by == "carol" and row.until > datetime.now(UTC) + timedelta(minutes=119)
    assert receiver.client.post(f"/snoozes/{row.id}/lift", data={"csrf_token": token}).status_code == 302
    assert "No snooze in force." in page(receiver, "/incidents")
    assert receiver.client.post("/snoozes/999/lift", data={"csrf_token": token}).status_code == 404


def test_a_bad_snooze_is_refused_with_its_reason(receiver: Receiver) -> None:
    token = csrf_token(page(receiver, "/incidents"))
    for data, reason in [
        ({"scope": "signature", "target": "4821", "duration": "2h", "by": "x"}, "is not an incident signature"),
        ({"scope": "tenant", "target": "4821", "until": "2020-01-01T00:00Z", "by": "x"}, "is not in the future"),
        ({"scope": "tenant", "target": "4821", "until": "soon", "by": "x"}, "is not a time"),
        ({"scope": "tenant", "target": "", "duration": "2h", "by": "x"}, "snooze target is empty"),
    ]:
        answer = receiver.client.post("/snoozes", data={"csrf_token": token, **data})
        assert answer.status_code == 400 and reason in answer.get_data(as_text=True)
    with receiver.runtime.sessions() as session:
        assert session.query(SnoozeRow).count() == 0
