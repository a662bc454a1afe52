"""storage/stages.py on the real database: which other job's end counts as "already
processed" when a late stage is judged stale (issue 15 item 1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from conftest import Receiver, payload
from hotglue_webhooks.rules import JobEvent
from hotglue_webhooks.storage.db import connect
from hotglue_webhooks.storage.models import Event
from hotglue_webhooks.storage.stages import newest_terminal_stage

LATE_AT = datetime(2026, 11, 28, 6, 9, 41, 81282, tzinfo=UTC)  # sync_failed__exact_token_401's last_updated


def other_job(job_id: str, last_updated: str, **more: Any) -> dict[str, Any]:
    event = payload("sync_failed__exact_token_401")
    event.update(
        {"job_id": job_id, "s3_root": event["s3_root"].rsplit("/", 1)[0] + "/" + job_id, "last_updated": last_updated,
         "status": "JOB_COMPLETED", **more}
    )
    return event


def store(receiver: Receiver, body: dict[str, Any], **columns: Any) -> int:
    assert receiver.post(body).status_code in (200, 202)
    with receiver.runtime.sessions() as session:
        event_id = session.scalars(select(Event.id).where(Event.s3_root == body["s3_root"], Event.status == body["status"])).one()
        if columns:
            session.execute(update(Event).where(Event.id == event_id).values(**columns))
            session.commit()
    return event_id


def newest(receiver: Receiver, late_id: int) -> Any:
    late = JobEvent.from_payload(payload("sync_failed__exact_token_401"), event_key="k")
    with connect(receiver.runtime.sessions) as connection:
        return newest_terminal_stage(connection, late, late_id, LATE_AT)


def test_only_processed_or_leased_ends_of_other_jobs_of_the_flow_count(receiver: Receiver) -> None:
    late_id = store(receiver, payload("sync_failed__exact_token_401"))
    decided = datetime(2026, 11, 28, 8, tzinfo=UTC)
    # Not yet taken by a worker: the queue runs the older late stage first, so it is not stale.
    store(receiver, other_job("Pend1", "2026-11-28T09:00:00+00:00"))
    # Another flow, a progress stage, the event's own job: none counts.
    store(receiver, other_job("Flow2", "2026-11-28T09:00:00+00:00", flow_id="Vd3HsW8qc"), decided_at=decided)
    store(receiver, other_job("Prog1", "2026-11-28T09:00:00+00:00", status="SYNC_STARTED"), decided_at=decided)
    own = payload("sync_failed__exact_token_401")
    store(receiver, dict(own, status="JOB_COMPLETED", last_updated="2026-11-28T09:00:00+00:00"), decided_at=decided)
    assert newest(receiver, late_id) is None

    leased = store(receiver, other_job("Run1", "2026-11-28T07:00:00+00:00"), state="processing")
    assert newest(receiver, late_id).event_id == leased  # being acted on right now

    done = store(receiver, other_job("Done1", "2026-11-28T07:30:00+00:00"), decided_at=decided, state="done")
    found = newest(receiver, late_id)
    assert (found.event_id, found.s3_root, found.job_id, found.status, found.last_updated) == (
        done, "3310/flows/Rb7TnE4wz/jobs/2026/11/6/28/06/Done1", "Done1", "JOB_COMPLETED", "2026-11-28T07:30:00+00:00"
    )


def test_an_older_processed_end_does_not_count(receiver: Receiver) -> None:
    late_id = store(receiver, payload("sync_failed__exact_token_401"))
    store(receiver, other_job("Old1", "2026-11-28T05:00:00+00:00"), decided_at=datetime(2026, 11, 28, 5, tzinfo=UTC))
    assert newest(receiver, late_id) is None


@pytest.mark.parametrize(("later_start", "counts"), [("2026-11-28T06:06:00+00:00", True), ("2026-11-28T06:00:00+00:00", False)])
def test_a_tie_on_last_updated_is_broken_by_start_time(receiver: Receiver, later_start: str, counts: bool) -> None:
    late_id = store(receiver, payload("sync_failed__exact_token_401"))
    tie = other_job("Tie1", "2026-11-28T06:09:41.081282+00:00", start_time=later_start)
    tie_id = store(receiver, tie, decided_at=datetime(2026, 11, 28, 7, tzinfo=UTC))
    found = newest(receiver, late_id)
    assert (found.event_id if found else None) == (tie_id if counts else None)
