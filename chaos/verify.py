"""What the harness checks at the end of a scenario, from the database and the fakes' records.

- **Stored once:** each acknowledged delivery is one row of ``events`` (by ``s3_root`` and
  ``status``), with the id it was answered with.
- **Processed:** every event ``done``; every planned action recorded and succeeded.
- **Executed once:** each succeeded action matches requests at the fakes by an identity:
  the idempotency key the receiver sent (HotGlue ``Idempotency-Key`` header, Slack message
  metadata) when it sends one, else the request content (method, path and redacted JSON
  body for HotGlue; API method and JSON body for Slack). Requests with the same identity
  count as one execution, as a peer honouring idempotency keys would; the extra ones are
  duplicates. A repeated schedule PUT writes the same state again and changes nothing
  (REFERENCE.md §4): an *idempotent repeat*, counted, not a fault. Any other repeat fails
  the scenario: a *raw duplicate* when a worker ``kill -9`` fell between the two requests
  (sent, then killed before "done" was recorded: the worker looks at the peer before
  sending again, so this should not happen, issue 15), else *unexplained*.
- **Order:** within a tenant, an event acknowledged before a later-``last_updated`` event
  even arrived must be processed first.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from chaos.load import LoadResult
from hotglue_webhooks.fakes import FakeHotGlue, RecordedRequest
from hotglue_webhooks.redaction import Redactor
from hotglue_webhooks.storage.models import ActionRecord, Event

# Final states that lose nothing: "not_needed" is a failure report whose watched actions
# all succeeded (issue 15), so there was nothing to report; "folded" is a failure alert
# its incident's message carries, "held" a Slack alert a snooze held (issue 12): both are
# checked to be explained by their incident or snooze (check_folded).
SUCCEEDED = ("done", "dry_run", "not_needed", "folded", "held")
_FOLDED = re.compile(r"^folded into incident (\d+) ")
_HELD = re.compile(r"^(?:held by snooze (\d+) until |the message it follows was (?:held|folded))")
_redactor = Redactor()


@dataclass
class Figures:
    """The numbers a scenario line reports, and every problem found."""

    acknowledged: int = 0
    stored: int = 0
    processed: int = 0
    actions: int = 0
    executed_once: int = 0
    lost: int = 0
    duplicated: int = 0
    raw_duplicates: int = 0
    answers_5xx: int = 0
    peak_rss_web_mib: float = 0.0
    peak_rss_worker_mib: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str, limit: int = 12) -> None:
        """Record a problem (only the first ``limit`` of each kind are spelled out)."""
        kind = text.split(":", 1)[0]
        same = sum(1 for p in self.problems if p.split(":", 1)[0] == kind)
        if same < limit:
            self.problems.append(text)
        elif same == limit:
            self.problems.append(f"{kind}: … more of the same")


# -- rows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRow:
    id: int
    s3_root: str | None
    status: str | None
    tenant: str | None
    order_at: datetime
    received_at: datetime
    processed_at: datetime | None
    state: str
    planned_keys: tuple[str, ...]


@dataclass(frozen=True)
class ActionRow:
    id: int
    event_id: int
    key: str
    kind: str
    state: str
    attempts: int
    request: dict[str, Any] | None
    last_error: str | None


def load_rows(sessions: sessionmaker[Session]) -> tuple[list[EventRow], list[ActionRow]]:
    with sessions() as session:
        events = [
            EventRow(
                e.id, e.s3_root, e.status, e.tenant, e.order_at, e.received_at, e.processed_at, e.state,
                tuple(e.planned_keys or ()),
            )
            for e in session.scalars(select(Event).order_by(Event.id))
        ]
        actions = [
            ActionRow(a.id, a.event_id, a.idempotency_key, a.kind, a.state, a.attempts, a.request, a.last_error)
            for a in session.scalars(select(ActionRecord).order_by(ActionRecord.id))
        ]
    return events, actions


# -- deliveries ---------------------------------------------------------------------------


def check_deliveries(figures: Figures, load: LoadResult, events: list[EventRow], *, copies: int = 1) -> None:
    """Every acknowledged delivery stored exactly once, under the id it was answered with."""
    by_key: dict[tuple[str | None, str | None], list[EventRow]] = defaultdict(list)
    for event in events:
        by_key[(event.s3_root, event.status)].append(event)
    acked_keys: set[tuple[str, str]] = set()
    answers_202: dict[tuple[str, str], int] = defaultdict(int)
    for outcome in load.outcomes:
        key = outcome.delivery.key
        for attempt in outcome.attempts:
            if attempt.status == 202:
                answers_202[key] += 1
        ack = outcome.acked
        if ack is None:
            figures.problem(f"unacknowledged: {key} after {len(outcome.attempts)} attempt(s)")
            continue
        acked_keys.add(key)
        rows = by_key.get(key, [])
        if not rows:
            figures.lost += 1
            figures.problem(f"lost: acknowledged {ack.status} but not stored: {key}")
            continue
        try:
            answered_id = int(json.loads(ack.body)["id"])
        except (ValueError, KeyError, TypeError):
            # The status line came, the body did not (the process died mid-answer): the
            # sender has its 2xx, which is all HotGlue looks at.
            figures.extra["acks_without_body"] = figures.extra.get("acks_without_body", 0) + 1
            continue
        if answered_id != rows[0].id:
            figures.problem(f"wrong id: {key} answered id {answered_id}, stored as {rows[0].id}")
    figures.acknowledged = len(acked_keys)
    stored = [key for key in acked_keys if by_key.get(key)]
    figures.stored = len(stored)
    for stored_key, rows in by_key.items():
        if len(rows) > 1:
            figures.duplicated += len(rows) - 1
            figures.problem(f"stored twice: {stored_key} as events {[r.id for r in rows]}")
    for key, count in answers_202.items():
        if count > 1:
            figures.duplicated += count - 1
            figures.problem(f"accepted twice: {key} answered 202 {count} times")
    unknown = [e.id for e in events if (e.s3_root, e.status) not in acked_keys]
    figures.extra["stored_unacknowledged"] = len(unknown)
    figures.extra["resent"] = load.resent
    figures.extra["unanswered"] = load.unanswered_attempts
    figures.extra["answers"] = {str(k): v for k, v in sorted(load.status_counts().items(), key=lambda kv: str(kv[0]))}
    figures.answers_5xx += load.answers_5xx


# -- processing and actions ---------------------------------------------------------------


def check_folded(figures: Figures, sessions: sessionmaker[Session], events: list[EventRow], actions: list[ActionRow]) -> None:
    """Every ``folded`` alert names an incident that holds its tenant (so the incident's
    message or thread names it); every ``held`` one names a snooze that exists. Anything
    else in those states is a message lost."""
    from hotglue_webhooks.storage.models import IncidentMember, SnoozeRow

    tenant_of = {event.id: event.tenant for event in events}
    with sessions() as session:
        members = set(session.execute(select(IncidentMember.incident_id, IncidentMember.tenant)).tuples())
        snoozes = set(session.scalars(select(SnoozeRow.id)))
    folded = held = 0
    for action in actions:
        if action.state == "folded":
            match = _FOLDED.match(action.last_error or "")
            if match and (int(match.group(1)), tenant_of.get(action.event_id)) in members:
                folded += 1
                continue
            if _HELD.match(action.last_error or ""):  # follows a folded message
                folded += 1
                continue
            figures.lost += 1
            figures.problem(f"folded without its incident: {action.kind} {action.key}: {(action.last_error or '')[:160]}")
        elif action.state == "held":
            match = _HELD.match(action.last_error or "")
            if match and (match.group(1) is None or int(match.group(1)) in snoozes):
                held += 1
                continue
            figures.lost += 1
            figures.problem(f"held without its snooze: {action.kind} {action.key}: {(action.last_error or '')[:160]}")
    figures.extra["folded_into_incidents"] = folded
    figures.extra["held_by_snoozes"] = held


def check_processing(figures: Figures, events: list[EventRow], actions: list[ActionRow]) -> None:
    """Every event done, every planned action recorded and succeeded."""
    states: dict[str, int] = defaultdict(int)
    for event in events:
        states[event.state] += 1
    figures.processed = states.get("done", 0)
    for event in events:
        if event.state != "done":
            figures.lost += 1
            figures.problem(f"unprocessed: event {event.id} {event.status} of {event.tenant} is {event.state}")
    by_key = {a.key: a for a in actions}
    for event in events:
        for key in event.planned_keys:
            if key not in by_key:
                figures.lost += 1
                figures.problem(f"unrecorded action: event {event.id} planned {key}")
    action_states: dict[str, int] = defaultdict(int)
    for action in actions:
        action_states[action.state] += 1
        if action.state not in SUCCEEDED:
            figures.lost += 1
            figures.problem(f"action {action.state}: {action.kind} {action.key}: {(action.last_error or '')[:200]}")
    figures.actions = len(actions)
    figures.extra["action_states"] = dict(sorted(action_states.items()))
    figures.extra["action_kinds"] = dict(sorted(_count(a.kind for a in actions).items()))


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for value in values:
        counts[value] += 1
    return counts


def _token(key: str) -> str:
    try:
        from hotglue_webhooks.effects import idempotency_token  # type: ignore[attr-defined]

        return str(idempotency_token(key))
    except ImportError:
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _slack_body(request: RecordedRequest) -> dict[str, Any]:
    if isinstance(request.json, dict):
        return dict(request.json)
    return dict(request.form)


def sent_key(peer: str, request: RecordedRequest) -> str | None:
    """The idempotency key a request carries, if the receiver sent one."""
    if peer == "hotglue":
        return request.header("idempotency-key")
    metadata = _slack_body(request).get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return None
    if isinstance(metadata, dict) and isinstance(metadata.get("event_payload"), dict):
        value = metadata["event_payload"].get("idempotency_key")
        return str(value) if value else None
    return None


def content_identity(peer: str, request: RecordedRequest) -> str:
    if peer == "hotglue":
        return _canonical(["hotglue", request.method, request.raw_path, _redactor.redact(request.json)])
    body = _slack_body(request)
    body.pop("metadata", None)
    return _canonical(["slack", request.path.rstrip("/").rsplit("/", 1)[-1], _redactor.redact(body)])


def action_content_identity(action: ActionRow) -> str | None:
    request = action.request
    if not isinstance(request, dict):
        return None
    body = request.get("json")
    if action.kind.startswith("slack"):
        body = dict(body or {})
        body.pop("metadata", None)
        return _canonical(["slack", str(request.get("url", "")).rsplit("/", 1)[-1], _redactor.redact(body)])
    return _canonical(["hotglue", request.get("method"), urlsplit(str(request.get("url", ""))).path, _redactor.redact(body)])


@dataclass
class PeerRequests:
    """The write requests the fakes answered with success, and every one of them."""

    succeeded: list[tuple[str, RecordedRequest]]
    every: list[tuple[str, RecordedRequest]]


def peer_writes(hotglue: FakeHotGlue, slack: Any) -> PeerRequests:
    """Requests that change something at a peer (HotGlue non-GET; Slack chat.*)."""
    every: list[tuple[str, RecordedRequest]] = []
    succeeded: list[tuple[str, RecordedRequest]] = []
    for request in hotglue.requests:
        if request.method == "GET":
            continue
        every.append(("hotglue", request))
        if request.status is not None and 200 <= request.status < 300 and request.fault is None:
            succeeded.append(("hotglue", request))
    for request in slack.requests:
        if not request.path.rstrip("/").rsplit("/", 1)[-1].startswith("chat."):
            continue  # conversations.*: reads (the worker looking for an earlier attempt)
        every.append(("slack", request))
        if request.fault is None and slack.succeeded(request):
            succeeded.append(("slack", request))
    return PeerRequests(succeeded, every)


def check_effects(
    figures: Figures, actions: list[ActionRow], peers: PeerRequests, worker_kill_times: list[float]
) -> None:
    """Each succeeded action executed at its peer once (raw duplicates classified)."""
    succeeded_actions = [a for a in actions if a.state == "done"]
    got: dict[str, list[RecordedRequest]] = defaultdict(list)
    keyed = 0
    for peer, request in peers.succeeded:
        key = sent_key(peer, request)
        keyed += key is not None
        got[key or content_identity(peer, request)].append(request)
    figures.extra["identity"] = (
        f"idempotency key ({keyed} of {len(peers.succeeded)} writes), else content" if keyed else "request content"
    )
    expected: dict[str, list[ActionRow]] = defaultdict(list)
    for action in succeeded_actions:
        token = _token(action.key)
        identity = token if token in got else action_content_identity(action)
        if identity is None:
            figures.problem(f"no request recorded: action {action.key} is done without its request")
            continue
        expected[identity].append(action)
    executed = 0
    window = unexplained = idempotent = 0
    for identity, rows in expected.items():
        requests = sorted(got.get(identity, []), key=lambda r: r.received_at)
        executed += min(len(rows), len(requests))
        if len(requests) < len(rows):
            missing = len(rows) - len(requests)
            figures.lost += missing
            figures.problem(f"not executed: {rows[0].kind} {rows[0].key} is done, the peer saw {len(requests)}")
        for previous, extra in zip(requests[len(rows) - 1 :], requests[len(rows) :], strict=False):
            if _idempotent(extra):
                idempotent += 1
            elif any(previous.received_at < t < extra.received_at for t in worker_kill_times):
                window += 1
                figures.problem(
                    f"raw duplicate: {rows[0].kind} {rows[0].key} at {previous.received_at:.3f} and "
                    f"{extra.received_at:.3f}, a worker killed in between, sent again without finding the first"
                )
            else:
                unexplained += 1
                figures.problem(
                    f"executed twice: {rows[0].kind} {rows[0].key} at {previous.received_at:.3f} and "
                    f"{extra.received_at:.3f} with no worker killed in between"
                )
    for identity, requests in got.items():
        if identity not in expected:
            unexplained += len(requests)
            sample = requests[0]
            figures.problem(
                f"unexpected effect: {sample.method} {sample.raw_path} ({len(requests)}x) matches no succeeded action"
            )
    figures.executed_once = executed
    figures.raw_duplicates += window
    figures.duplicated += unexplained
    figures.extra["idempotent_repeats"] = figures.extra.get("idempotent_repeats", 0) + idempotent
    figures.extra["peer_writes"] = len(peers.every)
    figures.extra["peer_writes_succeeded"] = len(peers.succeeded)


def _idempotent(request: RecordedRequest) -> bool:
    """A HotGlue schedule PUT: it sets a state, so sending it again changes nothing."""
    return request.method == "PUT" and request.path.rstrip("/").endswith("/jobs/schedule")


# -- order --------------------------------------------------------------------------------


def check_order(figures: Figures, load: LoadResult, events: list[EventRow]) -> None:
    """Per tenant: what was acknowledged before a later event arrived is processed first.

    Only pairs the queue could order count: event A (earlier ``last_updated``) was
    acknowledged (so committed) before event B was even received; B processed before A is
    then a violation. Also reports how many same-tenant pairs were processed in
    ``last_updated`` order at all.
    """
    acked_at: dict[tuple[str, str], float] = {}
    for outcome in load.outcomes:
        ack = outcome.acked
        if ack is not None:
            key = outcome.delivery.key
            # The answer came back by ``finished``, so the event was committed by then. The
            # request's start would be too early: a slow request commits after others.
            acked_at[key] = min(acked_at.get(key, ack.finished), ack.finished)
    by_tenant: dict[str | None, list[EventRow]] = defaultdict(list)
    for event in events:
        if event.processed_at is not None:
            by_tenant[event.tenant].append(event)
    violations = checked = in_order_pairs = all_pairs = 0
    for rows in by_tenant.values():
        rows.sort(key=lambda e: (e.order_at, e.id))
        # Consecutive pairs in last_updated order: how often processing kept that order.
        for a, b in zip(rows, rows[1:], strict=False):
            all_pairs += 1
            assert a.processed_at is not None and b.processed_at is not None
            if a.processed_at <= b.processed_at:
                in_order_pairs += 1
        for i, a in enumerate(rows):
            a_acked = acked_at.get((a.s3_root or "", a.status or ""))
            if a_acked is None:
                continue
            for b in rows[i + 1 :]:
                if b.received_at.timestamp() <= a_acked:
                    continue
                checked += 1
                assert a.processed_at is not None and b.processed_at is not None
                if b.processed_at < a.processed_at:
                    violations += 1
                    figures.problem(
                        f"out of order: tenant {a.tenant}: event {b.id} ({b.status}, {b.order_at:%H:%M:%S}) "
                        f"processed before event {a.id} ({a.status}, {a.order_at:%H:%M:%S})"
                    )
    figures.extra["order_violations"] = violations
    figures.extra["order_pairs_checked"] = checked
    figures.extra["in_last_updated_order"] = f"{in_order_pairs}/{all_pairs}"


def check_late_created(
    figures: Figures,
    events: list[EventRow],
    actions: list[ActionRow],
    hotglue: FakeHotGlue,
    full_sync_tenants: list[str],
    token_401_tenants: list[str],
) -> None:
    """A JOB_CREATED that arrives after its JOB_COMPLETED undoes nothing."""
    from chaos.workload import ENV, EXACT_EXPORT_FLOW, EXACT_READ_FLOW, SHOP_FLOW

    completed = {e.s3_root: e for e in events if e.status == "JOB_COMPLETED" and e.processed_at is not None}
    late = [
        e
        for e in events
        if e.status == "JOB_CREATED"
        and e.s3_root in completed
        and e.received_at > (completed[e.s3_root].processed_at or e.received_at)
    ]
    created_ids = {e.id for e in events if e.status == "JOB_CREATED"}
    acting = [a for a in actions if a.event_id in created_ids]
    for action in acting:
        figures.problem(f"JOB_CREATED acted: event {action.event_id} has action {action.kind}")
    undone = 0
    for tenant in full_sync_tenants:
        schedule = hotglue.schedule(ENV, SHOP_FLOW, tenant)
        linked = [t.get("target") for t in hotglue.linked_targets(ENV, SHOP_FLOW, tenant)]
        if not schedule or schedule.get("state") != "ENABLED" or "optiply" not in linked:
            undone += 1
            figures.problem(f"undone: tenant {tenant} full sync left schedule {schedule} and targets {linked}")
    for tenant in token_401_tenants:
        for flow_id in (EXACT_READ_FLOW, EXACT_EXPORT_FLOW):
            schedule = hotglue.schedule(ENV, flow_id, tenant)
            if not schedule or schedule.get("state") != "DISABLED":
                undone += 1
                figures.problem(f"undone: tenant {tenant} Exact token failure left {flow_id} schedule {schedule}")
    figures.extra["late_job_created"] = len(late)
    figures.extra["undone"] = undone + len(acting)


# -- Retry-After --------------------------------------------------------------------------


def retry_after_violations(peers: PeerRequests, retry_after: dict[tuple[str, int], float]) -> tuple[int, int, float]:
    """Count requests made before the ``Retry-After`` of an earlier answer to the same request.

    ``retry_after`` maps (peer, status) to the seconds that answer asked for. Returns
    (violations of the same request, requests to the same peer inside any Retry-After,
    the smallest wait seen after a Retry-After answer).
    """
    by_identity: dict[str, list[tuple[str, RecordedRequest]]] = defaultdict(list)
    for peer, request in peers.every:
        identity = sent_key(peer, request) or content_identity(peer, request)
        by_identity[identity].append((peer, request))
    same = 0
    smallest = float("inf")
    for requests in by_identity.values():
        requests.sort(key=lambda pr: pr[1].received_at)
        for (peer, first), (_, then) in zip(requests, requests[1:], strict=False):
            wait = retry_after.get((peer, first.status or 0))
            if wait is None:
                continue
            gap = then.received_at - first.received_at
            smallest = min(smallest, gap)
            if gap < wait - 0.01:
                same += 1
    any_peer = 0
    for peer in ("slack", "hotglue"):
        timeline = sorted((r for p, r in peers.every if p == peer), key=lambda r: r.received_at)
        until = 0.0
        for request in timeline:
            if request.received_at < until - 0.01:
                any_peer += 1
            wait = retry_after.get((peer, request.status or 0))
            if wait is not None:
                until = max(until, request.received_at + wait)
    return same, any_peer, smallest
