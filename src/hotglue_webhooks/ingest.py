"""Turn a raw webhook request into a stored event: parse, redact, key, store.

The Flask view (``web/webhooks.py``) handles HTTP; this module owns what an accepted
webhook becomes. No Slack or HotGlue call ever happens here (STYLE.md: receive →
decide → act).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Insert, select
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks.redaction import Redactor
from hotglue_webhooks.rules.decide import is_urgent
from hotglue_webhooks.storage.db import insert_unless_present, write_alone_or_grouped, write_session
from hotglue_webhooks.storage.models import EVENT_PENDING, SOURCE_RECONCILED, SOURCE_WEBHOOK, Event, Rejection

# Key fields copied to columns, with their column width (longer values are cut in the
# column; the payload keeps the whole value).
KEY_FIELDS: dict[str, int] = {
    "env_id": 255,
    "flow_id": 255,
    "tenant": 255,
    "job_id": 255,
    "s3_root": 1024,
    "status": 64,
    "sync_type": 64,
    "job_name": 1024,
    "tap": 255,
    "target": 255,
    "last_updated": 64,
}
# Headers never stored, not even redacted: they authenticate the sender.
DROPPED_HEADERS = frozenset({"x-hub-signature", "authorization", "cookie", "x-api-key"})
MAX_HEADER_VALUE = 512
BODY_EXCERPT_BYTES = 2048
MAX_RECORDED_SIZE = 2**62


class BadPayload(ValueError):
    """The body is not a JSON object; ``str()`` is the one-line reason for the 400."""


@dataclass(frozen=True)
class Stored:
    """The answer to an accepted delivery: the event id, and whether it was a repeat."""

    event_id: int
    duplicate: bool


def parse_payload(body: bytes) -> dict[str, Any]:
    """Decode ``body`` as a UTF-8 JSON object.

    Raises BadPayload for invalid UTF-8, broken JSON, nesting too deep to parse, numbers
    too long to convert, or any JSON value that is not an object.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPayload("body is not valid UTF-8") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise BadPayload("JSON is nested too deeply") from None
    except json.JSONDecodeError as error:
        raise BadPayload(f"body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except BadPayload:
        raise
    except ValueError as error:  # e.g. an integer beyond Python's digit limit
        if "digits" in str(error):
            raise BadPayload(f"body has a number of more than {sys.get_int_max_str_digits()} digits") from None
        raise BadPayload(f"body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise BadPayload(f"body must be a JSON object, got {_json_type(value)}")
    return value


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) does not, and neither do
    # PostgreSQL or SQLite's JSON functions: one such event would break search for all.
    raise BadPayload(f"body is not valid JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):  # 1e400: valid JSON syntax, but no database can store it
        raise BadPayload(f"body is not valid JSON: the number {text[:40]} is out of range")
    return number


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _clean_text(value: Any, width: int) -> str | None:
    """Return a column-safe string: text only, valid UTF-8, no NUL (PostgreSQL refuses it), cut to width."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        return None
    return _text_safe(value)[:width] or None


def _text_safe(text: str) -> str:
    """Return ``text`` without NUL (PostgreSQL refuses it) and with lone surrogates (from
    ``"\\ud800"`` escapes, which no database can encode) replaced by ``?``."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _may_hold_unstorable_text(body: bytes) -> bool:
    """Return False when no string parsed from ``body`` can hold NUL or a lone surrogate.

    The body was decoded as strict UTF-8 (no encoded surrogates) and parsed as strict JSON
    (no raw control characters in strings), so either can only come from a ``\\u`` escape.
    """
    return b"\\u" in body


def _make_storable(value: Any) -> Any:
    """Make every string of a JSON value storable: see :func:`_text_safe`. Works in place."""
    stack: list[Any] = [value]
    # Work in place on the already-copied (redacted) structure.
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key in list(item):
                child = item[key]
                if isinstance(key, str) and _text_safe(key) != key:
                    del item[key]
                    key = _text_safe(key)
                    item[key] = child
                if isinstance(child, str):
                    item[key] = _text_safe(child)
                else:
                    stack.append(child)
        elif isinstance(item, list):
            for index, child in enumerate(item):
                if isinstance(child, str):
                    item[index] = _text_safe(child)
                else:
                    stack.append(child)
    return value


def parse_time(value: str | None) -> datetime | None:
    """Parse an ISO-8601 timestamp as aware UTC; None when absent or unparseable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # not ISO-8601, or UTC falls outside years 1-9999
        return None


def dedupe_key(payload: dict[str, Any], body_sha256: str) -> str:
    """Return the delivery's dedupe key: SHA-256 of (s3_root, status), else of the body.

    (``s3_root``, ``status``) is the natural idempotency key of a job stage: ``job_id``
    alone is not unique (REFERENCE.md §2).
    """
    s3_root = payload.get("s3_root")
    if isinstance(s3_root, str) and s3_root:
        status = payload.get("status")
        status_text = status if isinstance(status, str) else json.dumps(status)
        material = f"job\x1f{s3_root}\x1f{status_text}"
    else:
        material = f"body\x1f{body_sha256}"
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()


def useful_headers(headers: list[tuple[str, str]], redactor: Redactor) -> dict[str, str]:
    """Return the headers worth keeping: no credentials, secret-looking ones redacted."""
    kept = [
        (name, value[:MAX_HEADER_VALUE].replace("\x00", ""))
        for name, value in headers
        if name.lower() not in DROPPED_HEADERS
    ]
    return redactor.redact_headers(kept)


def store_event(
    sessions: sessionmaker[Session],
    body: bytes,
    payload: dict[str, Any],
    headers: dict[str, str],
    redactor: Redactor,
    now: datetime | None = None,
) -> Stored:
    """Store one accepted delivery (redacted) as a pending event, or find its first copy.

    The event row is its own processing record: it is committed pending, so a worker
    picks it up; nothing else needs to happen for it to be processed.
    """
    now = now or datetime.now(UTC)
    row = _event_row(body, payload, headers, redactor, now)
    # Committed before this returns (so before the 2xx): one INSERT that commits by
    # itself, shared with the other webhooks this process is storing at the moment (one
    # multi-row INSERT: write_alone_or_grouped). The unique dedupe_key decides a repeat
    # (also one racing a concurrent delivery): no row comes back.
    stored = write_alone_or_grouped(sessions, _EventInsert(row), _insert_events)
    if stored is None:  # purged between the two statements: the stage is gone, store it anew
        return store_event(sessions, body, payload, headers, redactor, now)
    return stored


def store_found_stage(
    sessions: sessionmaker[Session],
    job: dict[str, Any],
    redactor: Redactor,
    pass_id: int | None,
    now: datetime | None = None,
) -> Stored:
    """Store a job stage found in HotGlue's job list (reconciliation) as a pending event.

    The same path as a webhook: same dedupe key (``s3_root`` + ``status``), same redaction,
    same queue; ``source`` is ``reconciled``, with ``found_at`` (``now``) and
    ``found_by_pass``. A stage already stored (its webhook arrived) answers a duplicate and
    changes nothing; its late webhook then answers a duplicate too. ``job`` is one item of
    ``GET /{env_id}/{flow_id}/{tenant}/jobs`` (REFERENCE.md §7), as HotGlue sent it.
    """
    now = now or datetime.now(UTC)
    body = json.dumps(job, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
    row = _event_row(body, job, {}, redactor, now)
    row.update(source=SOURCE_RECONCILED, found_at=now, found_by_pass=pass_id)
    stored = write_alone_or_grouped(sessions, _EventInsert(row), _insert_events)
    if stored is None:
        return store_found_stage(sessions, job, redactor, pass_id, now)
    return stored


def store_own_event(
    connection: Connection, payload: dict[str, Any], now: datetime, *, due: datetime | None = None,
    order_group: str | None = None, source: str = SOURCE_WEBHOOK,
) -> int | None:
    """Store one of the receiver's own events (an incident update, a snooze's end, a digest,
    a person's command) within the caller's write transaction on ``connection``; return
    its id, or None when one with the same dedupe key (``s3_root`` + ``status``) is
    already stored.

    ``payload`` holds no secret (it is ours), but passes the same redaction; ``due`` is
    when the worker may take it (default ``now``); ``order_group`` serialises it with
    others of its group (default: a group of its own); ``source`` is the ``events.source``
    (``command`` for a command's queue item). Every one is urgent: people wait for it.
    """
    body = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
    row = _event_row(body, payload, {}, _OWN_REDACTOR, now)
    if order_group is not None:
        row["order_group"] = order_group
    row["next_attempt_at"] = due or now
    row["source"] = source
    row["urgent"] = True  # claimed first (storage/queue.py)
    event_id: int | None = connection.scalar(_insert_event(connection.dialect.name), row)
    return event_id


_OWN_REDACTOR = Redactor()


def _event_row(
    body: bytes, payload: dict[str, Any], headers: dict[str, str], redactor: Redactor, now: datetime
) -> dict[str, Any]:
    """The ``events`` row of one job stage, redacted, keyed and queued as pending."""
    body_sha256 = hashlib.sha256(body).hexdigest()
    key = dedupe_key(payload, body_sha256)
    # Keys and every string (HotGlue's message is a traceback that can print a config; a
    # config value can be a URL with a password): see redaction.Redactor.redact.
    redacted = redactor.redact(payload)
    if _may_hold_unstorable_text(body):
        # Dropping a NUL can join a secret back together ("pass\0word=…"): redact again.
        redacted = redactor.redact(_make_storable(redacted))
    fields = {name: _clean_text(payload.get(name), width) for name, width in KEY_FIELDS.items()}
    if fields["tenant"] is None:
        fields["tenant"] = _clean_text(payload.get("started_by"), KEY_FIELDS["tenant"])
    order_at = parse_time(fields["last_updated"]) or now
    return {
        "dedupe_key": key,
        "body_sha256": body_sha256,
        "received_at": now,
        "size_bytes": len(body),
        "headers": headers,
        "payload": redacted,
        "order_group": fields["tenant"] or f"~{key[:32]}",
        "order_at": order_at,
        "state": EVENT_PENDING,
        "next_attempt_at": now,
        "attempts": 0,
        # Every row carries every column: rows stored together are one multi-row INSERT.
        "source": SOURCE_WEBHOOK,
        "found_at": None,
        "found_by_pass": None,
        "urgent": is_urgent(fields["status"], fields["sync_type"]),
        **fields,
    }


class _EventInsert:
    """Insert one event row unless its dedupe_key is stored: its Stored, or None when the
    first copy was purged between the two statements."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row

    def __call__(self, connection: Connection) -> Stored | None:
        event_id = connection.scalar(_insert_event(connection.dialect.name), self.row)
        if event_id is not None:
            return Stored(event_id, duplicate=False)
        first = connection.scalar(select(Event.id).where(Event.dedupe_key == self.row["dedupe_key"]))
        return None if first is None else Stored(first, duplicate=True)


def _insert_events(connection: Connection, inserts: list[Any]) -> list[Stored | None]:
    """Several :class:`_EventInsert` at once: one multi-row INSERT that commits by itself
    (SQLAlchemy's "insertmanyvalues"), then one SELECT for the repeats. A key twice in the
    batch: the first is stored, the second is its duplicate. (Should the SELECT fail after
    the INSERT committed, each insert runs again alone and its row answers as a repeat.)"""
    rows = [insert.row for insert in inserts]
    created = {key: event_id for event_id, key in connection.execute(_insert_events_returning(connection.dialect.name), rows)}
    repeats = {row["dedupe_key"] for row in rows} - created.keys()
    existing: dict[str, int] = {}
    if repeats:
        existing = {
            key: event_id
            for event_id, key in connection.execute(
                select(Event.id, Event.dedupe_key).where(Event.dedupe_key.in_(sorted(repeats)))
            )
        }
    answers: list[Stored | None] = []
    for row in rows:
        key = row["dedupe_key"]
        if key in created:
            existing[key] = created.pop(key)  # a later copy in this batch is its duplicate
            answers.append(Stored(existing[key], duplicate=False))
        elif key in existing:
            answers.append(Stored(existing[key], duplicate=True))
        else:
            answers.append(None)
    return answers


@functools.cache
def _insert_events_returning(dialect: str) -> Insert:
    insert = insert_unless_present(dialect, Event.__table__, "dedupe_key")  # type: ignore[arg-type]
    return insert.returning(Event.id, Event.dedupe_key)


@functools.cache
def _insert_event(dialect: str) -> Insert:
    """The event INSERT for a dialect, built once (SQLAlchemy then reuses its compiled form)."""
    insert = insert_unless_present(dialect, Event.__table__, "dedupe_key")  # type: ignore[arg-type]
    return insert.returning(Event.id)


def store_rejection(
    sessions: sessionmaker[Session],
    *,
    status_code: int,
    reason: str,
    headers: dict[str, str],
    size_bytes: int | None,
    body: bytes | None,
    remote_addr: str | None,
    redactor: Redactor,
    now: datetime | None = None,
) -> int:
    """Record a refused request with a redacted, truncated excerpt of its body."""
    excerpt = None
    if body:
        excerpt = redactor.redact_text(body[:BODY_EXCERPT_BYTES].decode("utf-8", "replace")).replace("\x00", "")
    rejection = Rejection(
        received_at=now or datetime.now(UTC),
        status_code=status_code,
        reason=reason[:255],
        remote_addr=(remote_addr or "")[:64] or None,
        headers=headers,
        # A lying Content-Length can exceed any column (2**63 and up): keep it in range.
        size_bytes=None if size_bytes is None else min(size_bytes, MAX_RECORDED_SIZE),
        body_excerpt=excerpt,
    )
    with write_session(sessions) as session:
        session.add(rejection)
        session.flush()
        return rejection.id
