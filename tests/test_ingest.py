"""POST /webhooks/hotglue through the Flask app on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from conftest import PAYLOAD_FILES, SECRET, Receiver, payload, signed_headers
from hotglue_webhooks.redaction import REDACTED
from hotglue_webhooks.storage.models import Event, Rejection


def count(receiver: Receiver, model: type) -> int:
    with receiver.runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def rejections(receiver: Receiver) -> list[Rejection]:
    with receiver.runtime.sessions() as session:
        return list(session.scalars(select(Rejection).order_by(Rejection.id)))


@pytest.mark.parametrize("path", PAYLOAD_FILES, ids=lambda p: p.stem)
def test_every_shared_payload_is_accepted_once_then_duplicate(receiver: Receiver, path) -> None:
    first = receiver.post(path.stem)
    assert first.status_code == 202
    assert first.json["duplicate"] is False
    again = receiver.post(path.stem)
    assert again.status_code == 200
    assert again.json == {"id": first.json["id"], "duplicate": True}
    assert count(receiver, Event) == 1


def test_stored_event_has_key_fields_hash_and_no_signature_header(receiver: Receiver) -> None:
    body = (PAYLOAD_FILES[0].parent / "sync_failed__shopify_500.json").read_bytes()
    answer = receiver.post(body, headers={"User-Agent": "HotGlue-Webhooks/1.0"})
    with receiver.runtime.sessions() as session:
        event = session.get(Event, int(answer.json["id"]))
    import hashlib

    assert event.body_sha256 == hashlib.sha256(body).hexdigest()
    sent = json.loads(body)
    for field in ("env_id", "flow_id", "tenant", "job_id", "s3_root", "status", "sync_type", "job_name", "tap", "target", "last_updated"):
        assert getattr(event, field) == sent[field], field
    assert event.state == "pending"
    assert event.received_at.tzinfo is not None
    assert "X-Hub-Signature" not in event.headers
    assert event.headers["User-Agent"] == "HotGlue-Webhooks/1.0"


@pytest.mark.parametrize("prefix", ["", "sha1=", "SHA1="])
def test_signature_bare_hex_and_sha1_prefix_are_accepted(receiver: Receiver, prefix: str) -> None:
    body = json.dumps(payload("job_created__scheduled")).encode()
    answer = receiver.client.post("/webhooks/hotglue", data=body, headers=signed_headers(body, prefix=prefix))
    assert answer.status_code == 202


def test_uppercase_hex_digest_is_accepted(receiver: Receiver) -> None:
    body = b'{"status": "JOB_CREATED", "s3_root": "t/flows/f/jobs/1"}'
    headers = signed_headers(body)
    headers["X-Hub-Signature"] = headers["X-Hub-Signature"].upper()
    assert receiver.client.post("/webhooks/hotglue", data=body, headers=headers).status_code == 202


@pytest.mark.parametrize(
    "case",
    ["missing", "wrong_secret", "tampered_body", "reordered_keys", "whitespace", "garbage"],
)
def test_bad_signatures_get_401_and_a_rejection_record(receiver: Receiver, case: str) -> None:
    original = json.dumps(payload("sync_failed__shopify_500")).encode()
    headers = signed_headers(original)
    body = original
    if case == "missing":
        del headers["X-Hub-Signature"]
    elif case == "wrong_secret":
        headers = signed_headers(original, secret="not-the-secret")
    elif case == "tampered_body":
        body = original.replace(b"4821", b"4822")
    elif case == "reordered_keys":
        body = json.dumps(dict(reversed(list(payload("sync_failed__shopify_500").items())))).encode()
    elif case == "whitespace":
        body = json.dumps(payload("sync_failed__shopify_500"), indent=2).encode()
    elif case == "garbage":
        headers["X-Hub-Signature"] = "sha1=\u00e9not-hex"
    answer = receiver.client.post("/webhooks/hotglue", data=body, headers=headers)
    assert answer.status_code == 401
    assert "X-Hub-Signature" in answer.json["error"]
    assert count(receiver, Event) == 0
    [rejection] = rejections(receiver)
    assert rejection.status_code == 401
    assert rejection.size_bytes == len(body)
    assert "X-Hub-Signature" not in rejection.headers


def test_without_a_secret_unsigned_posts_are_accepted(database_url: str) -> None:
    receiver = Receiver(database_url, webhook_secret=None)
    try:
        assert receiver.post("job_created__scheduled", sign_it=False).status_code == 202
    finally:
        receiver.close()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[1, 2]", "body must be a JSON object, got an array"),
        (b"null", "body must be a JSON object, got null"),
        (b'"text"', "body must be a JSON object, got a string"),
        (b"\xff\xfe{}", "body is not valid UTF-8"),
        (b'{"status": "JOB_CREATED"', "body is not valid JSON: Expecting ',' delimiter at line 1 column 25"),
        (b"", "body is not valid JSON: Expecting value at line 1 column 1"),
        (b"[" * 100_000, "JSON is nested too deeply"),
        (b'{"n": ' + b"9" * 5000 + b"}", "body has a number of more than 4300 digits"),
        (b'{"a": NaN}', "body is not valid JSON: NaN is not a JSON number"),
        (b'{"a": [-Infinity]}', "body is not valid JSON: -Infinity is not a JSON number"),
        (b'{"n": 1e400}', "body is not valid JSON: the number 1e400 is out of range"),
    ],
    ids=["array", "null", "string", "invalid-utf8", "broken", "empty", "deep", "huge-int", "nan", "infinity", "1e400"],
)
def test_bodies_that_are_not_json_objects_get_400(receiver: Receiver, body: bytes, reason: str | None) -> None:
    answer = receiver.post(body)
    assert answer.status_code == 400
    if reason is not None:
        assert answer.json["error"] == reason
    assert count(receiver, Event) == 0
    [rejection] = rejections(receiver)
    assert rejection.status_code == 400
    assert len(rejection.body_excerpt or "") <= 2048 * 3


def test_body_over_the_limit_gets_413_without_being_stored(receiver: Receiver) -> None:
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    answer = receiver.post(body)
    assert answer.status_code == 413
    assert count(receiver, Event) == 0
    [rejection] = rejections(receiver)
    assert rejection.status_code == 413
    assert rejection.body_excerpt is None  # never read


def test_repeat_without_s3_root_is_a_duplicate_only_when_byte_identical(receiver: Receiver) -> None:
    body = b'{"status": "SYNC_FAILED", "tenant": "t1"}'
    first = receiver.post(body)
    assert first.status_code == 202
    assert receiver.post(body).json == {"id": first.json["id"], "duplicate": True}
    other = receiver.post(b'{"tenant": "t1", "status": "SYNC_FAILED"}')
    assert other.status_code == 202
    assert other.json["id"] != first.json["id"]


def test_same_stage_with_a_different_body_is_a_duplicate(receiver: Receiver) -> None:
    event = payload("sync_failed__shopify_500")
    first = receiver.post(event)
    event["last_updated"] = "2026-11-28T06:10:00+00:00"
    assert receiver.post(event).json == {"id": first.json["id"], "duplicate": True}
    event["status"] = "JOB_COMPLETED"
    assert receiver.post(event).status_code == 202


def test_secrets_in_the_payload_are_redacted_before_storing(receiver: Receiver) -> None:
    event = payload("sync_failed__shopify_500")
    event["override_source_config"] = {
        "access_token": "shpat_live_secret",
        "nested": [{"Client-Secret": "cs-123", "password": "pw-456", "ok": "kept"}],
    }
    answer = receiver.post(event)
    with receiver.runtime.sessions() as session:
        stored = session.get(Event, int(answer.json["id"]))
    config = stored.payload["override_source_config"]
    assert config == {
        "access_token": REDACTED,
        "nested": [{"Client-Secret": REDACTED, "password": REDACTED, "ok": "kept"}],
    }
    dumped = json.dumps(stored.payload)
    for secret in ("shpat_live_secret", "cs-123", "pw-456"):
        assert secret not in dumped


def test_odd_values_do_not_break_ingest(receiver: Receiver) -> None:
    event = {
        "tenant": "x" * 10_000,
        "status": {"not": "a string"},
        "s3_root": "a\u0000b",
        "job_name": "\ud800 lone surrogate",
        "last_updated": "not a time",
        "nested\u0000key": "value\u0000",
    }
    answer = receiver.post(json.dumps(event).encode())
    assert answer.status_code == 202
    with receiver.runtime.sessions() as session:
        stored = session.get(Event, int(answer.json["id"]))
    assert stored.tenant == "x" * 255
    assert stored.status is None
    assert stored.s3_root == "ab"


def test_admin_api_lists_and_shows_events(receiver: Receiver) -> None:
    ids = [receiver.post(p.stem).json["id"] for p in PAYLOAD_FILES]
    listed = receiver.client.get("/api/events?limit=5").json
    assert [e["id"] for e in listed["events"]] == list(reversed(ids))[:5]
    rest = receiver.client.get(f"/api/events?limit=50&cursor={listed['next_cursor']}").json
    assert [e["id"] for e in rest["events"]] == list(reversed(ids))[5:]
    assert rest["next_cursor"] is None
    failed = receiver.client.get("/api/events?tenant=3310&status=SYNC_FAILED").json["events"]
    assert [e["job_id"] for e in failed] == ["mE2kV"]
    detail = receiver.client.get(f"/api/events/{failed[0]['id']}").json
    assert detail["payload"]["tap"] == "exact"
    assert detail["actions"] == []
    assert receiver.client.get("/api/events/999999").status_code == 404
    assert receiver.client.get("/api/events/abc").status_code == 404
    assert receiver.client.get("/api/events?since=yesterday").status_code == 400
    assert receiver.client.get("/api/events?limit=0").status_code == 400


def test_admin_token_guards_the_api(database_url: str) -> None:
    receiver = Receiver(database_url, admin_token="admin-t0ken")
    try:
        assert receiver.client.get("/api/events").status_code == 401
        assert receiver.client.get("/api/events", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = receiver.client.get("/api/events", headers={"Authorization": "Bearer admin-t0ken"})
        assert ok.status_code == 200
        assert receiver.client.get("/healthz").status_code == 200
        assert receiver.client.get("/readyz").json == {"status": "ok"}
        # The webhook endpoint is guarded by the signature, not the admin token.
        assert receiver.post("job_created__scheduled").status_code == 202
    finally:
        receiver.close()


def test_a_rejection_is_logged_once_with_reason_size_and_redacted_excerpt(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = Receiver(database_url, log_format="json")
    try:
        body = b'{"password": "hunter2", "status": '
        assert receiver.post(body).status_code == 400
    finally:
        receiver.close()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    [logged] = [line for line in lines if line["event"] == "webhook_rejected"]
    assert logged["reason"].startswith("body is not valid JSON")
    assert logged["status_code"] == 400
    assert logged["size_bytes"] == len(body)
    assert logged["body_excerpt"] == '{"password": [redacted], "status": '
    assert "hunter2" not in json.dumps(lines)


def test_secrets_printed_in_the_message_text_are_redacted(receiver: Receiver) -> None:
    event = payload("sync_failed__shopify_500")
    event["message"] = "Traceback ...\nValueError: bad config {'client_secret': 'cs-live-9', 'shop': 'acme'} token=tk-42"
    answer = receiver.post(event)
    with receiver.runtime.sessions() as session:
        stored = session.get(Event, int(answer.json["id"]))
    assert stored.payload["message"] == (
        "Traceback ...\nValueError: bad config {'client_secret': [redacted], 'shop': 'acme'} token=[redacted]"
    )


@pytest.mark.parametrize(
    "body",
    [
        '{"a": "plain ascii", "b": ["x", {"c": 1}]}',
        '{"umlaut": "Grüße", "emoji": "🚀", "cjk": "東京"}',
        '{"escaped but fine": "tab\\there, quote \\" backslash \\\\ slash \\/"}',
        '{"backslash then u": "C:\\\\users"}',
        '{"nul": "a\\u0000b", "k\\u0000ey": 1}',
        '{"lone": "\\ud800 x", "pair": "\\ud83d\\ude80"}',
        '{"escaped ascii": "\\u0041"}',
    ],
)
def test_storable_text_check_never_skips_a_body_that_needs_cleaning(body: str) -> None:
    # store_event skips the walk that removes NUL and lone surrogates when the body has
    # no \u escape: without one, strict UTF-8 and strict JSON cannot produce either.
    from hotglue_webhooks.ingest import _make_storable, _may_hold_unstorable_text, parse_payload

    parsed = parse_payload(body.encode())
    cleaned = _make_storable(json.loads(json.dumps(parsed)))
    if not _may_hold_unstorable_text(body.encode()):
        assert cleaned == parsed
    assert _may_hold_unstorable_text(body.encode()) == ("\\u" in body)
