"""Faults the reliability harness (``python -m chaos``) found, one test each.

Each was found failing, then fixed at its root; the test keeps it fixed. A fault not
fixed yet is marked ``xfail(strict=True)``: the mark goes with the fix.
"""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from conftest import Receiver, payload, signed_headers
from hotglue_webhooks.storage.models import Event, Rejection

PATH = "/webhooks/hotglue"


def rejections(receiver: Receiver) -> list[Rejection]:
    with receiver.runtime.sessions() as session:
        return list(session.scalars(select(Rejection)))


@pytest.mark.parametrize("last_updated", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_a_last_updated_at_the_edge_of_the_calendar_is_stored(receiver: Receiver, last_updated: str) -> None:
    # Valid ISO-8601, but converting it to UTC leaves Python's datetime range.
    event = dict(payload("job_created__scheduled"), last_updated=last_updated)
    assert receiver.post(event).status_code == 202


def test_a_content_length_beyond_64_bits_is_refused_with_413(receiver: Receiver) -> None:
    body = b"{}"
    answer = receiver.client.post(
        PATH, data=body, headers=signed_headers(body), environ_overrides={"CONTENT_LENGTH": str(2**63)}
    )
    assert answer.status_code == 413
    assert [r.status_code for r in rejections(receiver)] == [413]


class _BrokenChunks(io.RawIOBase):
    """A request body stream as gunicorn gives it for an invalid chunk size line."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        from gunicorn.http.errors import InvalidChunkSize

        raise InvalidChunkSize(b"zz")


def test_a_body_that_cannot_be_read_is_refused_with_400_and_recorded(receiver: Receiver) -> None:
    answer = receiver.client.post(
        PATH,
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked", "X-Hub-Signature": "00"},
        environ_overrides={"wsgi.input": _BrokenChunks(), "wsgi.input_terminated": True},
    )
    assert answer.status_code == 400
    assert [r.status_code for r in rejections(receiver)] == [400]


def test_a_body_shorter_than_its_content_length_is_recorded_as_a_rejection(receiver: Receiver) -> None:
    body = json.dumps(payload("job_created__scheduled")).encode()
    answer = receiver.client.post(
        PATH,
        headers=signed_headers(body),
        # The client promised 10 more bytes, then closed the connection.
        environ_overrides={"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body) + 10)},
    )
    assert answer.status_code == 400
    assert [r.status_code for r in rejections(receiver)] == [400]


def test_a_chunked_body_over_the_limit_is_refused_with_413(receiver: Receiver) -> None:
    body = b"[" * (2 * 1024 * 1024)
    answer = receiver.client.post(
        PATH,
        headers={**signed_headers(body), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert answer.status_code == 413


def test_a_tenant_with_a_lone_surrogate_escape_is_processed(receiver: Receiver) -> None:
    # "\ud800" is valid JSON; Python decodes it to a str that cannot be encoded as UTF-8,
    # and the worker binds the payload's tenant in a query.
    body = json.dumps(dict(payload("sync_failed__shopify_500"), tenant="\ud800")).encode()
    assert receiver.post(body).status_code == 202
    receiver.worker().drain()
    with receiver.runtime.sessions() as session:
        [event] = session.scalars(select(Event))
    assert event.state == "done"


def test_an_event_that_always_crashes_is_parked_and_its_tenant_moves_on(receiver: Receiver) -> None:
    first = payload("sync_failed__shopify_500")
    later = dict(payload("etl_failed__transform"), last_updated="2099-01-01T00:00:00+00:00")
    assert receiver.post(first).status_code == 202
    assert receiver.post(later).status_code == 202
    worker = receiver.worker()
    plan = worker.plan

    def crash_on_the_first(job: Any, *args: Any, **kwargs: Any) -> Any:
        if job.s3_root == first["s3_root"]:
            raise RuntimeError("a bug of ours, met by this one payload")
        return plan(job, *args, **kwargs)

    worker.plan = crash_on_the_first  # type: ignore[method-assign]
    now = datetime.now(UTC)
    for step in range(40):  # far more than max_attempts (8) lease expiries
        worker.clock = lambda step=step: now + timedelta(seconds=step * (receiver.settings.lease_seconds + 3600))
        try:
            worker.run_once()
        except RuntimeError:
            pass  # the loop logs worker_loop_error and carries on; the lease brings it back
    with receiver.runtime.sessions() as session:
        states = {e.s3_root: e.state for e in session.scalars(select(Event))}
    assert states[later["s3_root"]] == "done"
    assert states[first["s3_root"]] not in ("pending", "processing", "retrying")


def test_each_log_line_is_written_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    import structlog

    from hotglue_webhooks.logs import configure_logging

    writes: list[str] = []

    class Stderr:
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    real = sys.stderr
    monkeypatch.setattr(sys, "stderr", Stderr())
    try:
        configure_logging("INFO", "json")
        structlog.get_logger("hotglue_webhooks.ingest").warning("webhook_rejected", reason="not a JSON object")
    finally:
        monkeypatch.setattr(sys, "stderr", real)
        configure_logging("INFO", "console")
    # One write() per line, newline included: an O_APPEND write is never split between
    # two processes, two writes can be.
    assert writes and all(text.endswith("\n") and text.count("\n") == 1 for text in writes)
