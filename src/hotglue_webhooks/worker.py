"""The worker: the only place that joins load → decide → act → record.

One loop per thread: claim an event (with a lease), decide its actions once (rules are
pure; facts come from HotGlue), record every action under its idempotency key *before*
executing it, execute, record the outcome. Transient failures are retried with
exponential back-off and jitter (``Retry-After`` honoured); after ``max_attempts`` an
action is parked as ``dead``. A worker killed at any instant loses nothing: the lease
expires and another worker takes the event again; an action recorded as done is never
executed again.
"""

from __future__ import annotations

import functools
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Connection, Update, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks import metrics
from hotglue_webhooks.clients.errors import PeerError
from hotglue_webhooks.effects import ActionImpossible, Effects
from hotglue_webhooks.facts import facts_for_record, gather_facts
from hotglue_webhooks.redaction import Redactor
from hotglue_webhooks.retention import claim_purge_slot, purge
from hotglue_webhooks.rules import SLACK_POST, SLACK_UPDATE, Decision, Facts, JobEvent, RulesConfig, decide, needed_facts
from hotglue_webhooks.settings import Settings
from hotglue_webhooks.storage.db import read_connection, write_session, write_transaction
from hotglue_webhooks.storage.models import (
    ACTION_DEAD,
    ACTION_DONE,
    ACTION_DRY_RUN,
    ACTION_FINAL,
    ACTION_PENDING,
    ACTION_RETRYING,
    ACTION_RUNNING,
    ACTION_SKIPPED,
    ACTION_SUCCEEDED,
    EVENT_DEAD,
    EVENT_DONE,
    EVENT_RETRYING,
    ActionRecord,
    Event,
    UTCDateTime,
)
from hotglue_webhooks.storage.queue import Claim, claim_next, release, renew
from hotglue_webhooks.storage.slack_state import open_alerts, push_back, record_alert, reserve_slot

if TYPE_CHECKING:
    from hotglue_webhooks.runtime import Environment

log = structlog.get_logger("hotglue_webhooks.worker")

SLACK_KINDS = (SLACK_POST, SLACK_UPDATE)


def pacing_key(params: Any) -> str:
    """The channel a Slack action counts against: its name as first posted to."""
    return str(params.get("pace") or params.get("channel"))
# How soon to look again at an event whose action waits for a dependency of another event.
DEPENDENCY_WAIT_SECONDS = 5.0
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with jitter: attempt n waits base·2^(n-1) s, capped, ±50 %."""

    max_attempts: int
    base_seconds: float
    max_seconds: float

    def delay(self, attempts: int, retry_after: float | None, rand: Callable[[], float] = random.random) -> float:
        """Return seconds to wait after the ``attempts``-th failed attempt (≥ ``retry_after``)."""
        exponential = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        jittered = exponential * (0.5 + rand() / 2)
        return max(jittered, retry_after or 0.0)


class Worker:
    """Process events from the queue; ``run`` blocks until ``stop`` is set."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        rules: RulesConfig,
        effects: Effects,
        environment: Callable[[str | None], Environment],
        redactor: Redactor,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.rules = rules
        self.effects = effects
        self.environment = environment
        self.redactor = redactor
        self.clock = clock
        self.sleep = sleep
        self.retry = RetryPolicy(settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds)
        self.name = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"

    # -- loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event, threads: int | None = None) -> None:
        """Run ``threads`` claim loops (default ``HGW_WORKER_THREADS``) until ``stop`` is set."""
        count = threads or self.settings.worker_threads
        loops = [
            threading.Thread(target=self._loop, args=(stop, f"{self.name}/{n}"), name=f"worker-{n}", daemon=True)
            for n in range(count)
        ]
        for thread in loops:
            thread.start()
        for thread in loops:
            thread.join()

    def _loop(self, stop: threading.Event, owner: str) -> None:
        while not stop.is_set():
            try:
                self.maybe_purge()
                if not self.run_once(owner):
                    stop.wait(self.settings.poll_seconds)
            except Exception:  # keep the loop alive; the lease brings the event back
                log.exception("worker_loop_error", worker=owner)
                stop.wait(self.settings.poll_seconds)

    def maybe_purge(self) -> None:
        """Purge old events if no worker has done so within ``purge_interval_seconds``."""
        now = self.clock()
        if claim_purge_slot(self.sessions, now, self.settings.purge_interval_seconds):
            result = purge(self.sessions, self.settings.retention_days, now, self.settings.purge_batch_size)
            log.info(
                "purged", events=result.events, actions=result.actions, rejections=result.rejections,
                cutoff=result.cutoff.isoformat(),
            )

    def run_once(self, owner: str | None = None) -> bool:
        """Claim and process one due event; return False when none was due."""
        claim = claim_next(self.sessions, owner or self.name, self.clock(), self.settings.lease_seconds)
        if claim is None:
            return False
        self.process(claim)
        return True

    def drain(self, max_events: int = 10_000) -> int:
        """Process due events until none is left (tests, ``replay``); return how many."""
        count = 0
        while count < max_events and self.run_once():
            count += 1
        return count

    # -- one event ----------------------------------------------------------------------

    def process(self, claim: Claim) -> None:
        """Decide (once) and act for a leased event, then release it."""
        job = JobEvent.from_payload(claim.payload, event_key=claim.dedupe_key)
        # Bound for this thread, so library lines (HotGlue client, httpx) carry them too.
        structlog.contextvars.bind_contextvars(event_id=claim.id, tenant=job.tenant, flow_id=job.flow_id)
        try:
            self._process(claim, job)
        except Exception as error:  # a bug of ours met by this event: never retry it forever
            self._crashed(claim, error)
        finally:
            structlog.contextvars.unbind_contextvars("event_id", "tenant", "flow_id")

    def _crashed(self, claim: Claim, error: Exception) -> None:
        """Retry an event whose processing raised; park it ``dead`` after ``max_attempts``.

        Parking frees the tenant's later events (they wait for every earlier open one).
        """
        text = _short(self.redactor.redact_text(f"{type(error).__name__}: {error}"))
        now = self.clock()
        with write_transaction(self.sessions) as connection:
            if claim.attempts >= self.retry.max_attempts:
                release(connection, claim, state=EVENT_DEAD, next_attempt_at=now, last_error=text)
                log.exception("event_dead", attempts=claim.attempts, error=text)
            else:
                delay = self.retry.delay(claim.attempts, None)
                release(
                    connection, claim, state=EVENT_RETRYING, next_attempt_at=now + timedelta(seconds=delay),
                    last_error=text,
                )
                log.exception("event_crashed", attempts=claim.attempts, retry_in_seconds=round(delay, 3))

    def _process(self, claim: Claim, job: JobEvent) -> None:
        run = _Run(claim, log.bind(status=job.status))
        actions = None
        if not claim.decided:
            try:
                actions = self._decide_and_record(run, job)
            except PeerError as error:
                self._retry_event(run, error)
                return
        next_at = None if run.released else self._act(run, actions)
        if run.released:
            return
        now = self.clock()
        with write_transaction(self.sessions) as connection:
            if next_at is None:
                self._release_done(connection, run, now)
            else:
                release(connection, claim, state=EVENT_RETRYING, next_attempt_at=next_at)

    def _release_done(self, connection: Connection, run: _Run, now: datetime) -> None:
        """Hand the event back ``done`` within ``connection``'s transaction."""
        release(connection, run.claim, state=EVENT_DONE, next_attempt_at=now, processed_at=now)
        run.released = True
        run.log.info("event_processed")

    def plan(self, job: JobEvent, order: tuple[datetime, int] | None = None) -> tuple[Facts, Decision]:
        """Read the facts ``job`` needs from HotGlue and decide; execute nothing.

        ``order`` is the stored event's (``order_at``, id): our own alert threads count as
        facts only when opened before it. Raises PeerError when a read fails transiently.
        """
        environment = self.environment(job.env_id)
        if environment.flagged:
            return Facts(), Decision(actions=(), notes=(f"flagged, no action runs: {environment.flagged}",))
        facts = gather_facts(
            needed_facts(job, self.rules), job, environment.reader,
            open_alerts=lambda tenant, flow_id: open_alerts(self.sessions, tenant, flow_id, before=order),
        )
        return facts, decide(job, facts, self.rules, self.clock(), environment.slack_channel)

    def _decide_and_record(self, run: _Run, job: JobEvent) -> list[_Step]:
        """Decide and record the event's actions; return those still to run.

        When none is left to run, the event is released ``done`` in the same transaction.
        """
        facts, decision = self.plan(job, run.claim.order)
        for attempt in range(3):
            try:
                return self._record_decision(run, decision, facts_for_record(facts, self.redactor))
            except IntegrityError:
                # Another worker recorded an action with the same key at the same moment
                # (e.g. the one-per-day job trigger); the next pass sees it and skips it.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _record_decision(self, run: _Run, decision: Decision, facts: dict[str, Any]) -> list[_Step]:
        now = self.clock()
        event_id = run.claim.id
        keys = [action.key for action in decision.actions]
        with write_transaction(self.sessions) as connection:
            owners: dict[str, int] = (
                {key: owner for key, owner in connection.execute(_KEY_OWNERS, {"keys": keys})} if keys else {}
            )
            new = [
                {
                    "event_id": event_id,
                    "idempotency_key": action.key,
                    "position": position,
                    "kind": action.kind,
                    "rule": action.rule,
                    "params": self.redactor.redact(dict(action.params)),
                    "depends_on": list(action.depends_on),
                    "state": ACTION_PENDING,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for position, action in enumerate(decision.actions)
                if action.key not in owners
            ]
            if new:
                connection.execute(insert(ActionRecord), new)
            notes = list(decision.notes)
            notes += [
                f"not repeated: {key} was already recorded by event {owners[key]}"
                for key in keys
                if key in owners and owners[key] != event_id
            ]
            connection.execute(
                _RECORD_DECISION,
                {"event_id": event_id, "decision": notes, "facts": facts, "planned_keys": keys, "now": now},
            )
            # This event's actions: the ones just added, and on a replay its earlier ones.
            to_run = _steps_to_run(connection, event_id)
            if not to_run:
                self._release_done(connection, run, now)
        return to_run

    def _retry_event(self, run: _Run, error: PeerError) -> None:
        delay = self.retry.delay(run.claim.attempts, error.retry_after)
        run.log.warning("facts_read_failed", error=str(error), retry_in_seconds=round(delay, 3))
        with write_transaction(self.sessions) as connection:
            release(
                connection, run.claim, state=EVENT_RETRYING,
                next_attempt_at=self.clock() + timedelta(seconds=delay), last_error=_short(str(error)),
            )

    def _act(self, run: _Run, actions: list[_Step] | None) -> datetime | None:
        """Run the event's due actions in order; return when to look again, None if all ended.

        ``actions`` None reads them (an event decided by an earlier claim).
        """
        if actions is None:
            with read_connection(self.sessions) as connection:
                actions = _steps_to_run(connection, run.claim.id)
        wake: list[datetime] = []
        for index, action in enumerate(actions):
            now = self.clock()
            if action.next_attempt_at and action.next_attempt_at > now:
                wake.append(action.next_attempt_at)
                continue
            # The last action, with nothing to come back for: finishing it ends the event,
            # in the same transaction.
            run.last = index == len(actions) - 1 and not wake
            started = self._start(run, action, now)
            if started == _LOST:
                run.log.warning("lease_lost")
                return now  # another worker owns the event now; our release will be refused
            if started == _WAITING:
                wake.append(now + timedelta(seconds=DEPENDENCY_WAIT_SECONDS))
                continue
            if started != _STARTED:
                continue  # skipped, or finished by another worker meanwhile
            retry_at = self._execute(run, action)
            if retry_at is not None:
                wake.append(retry_at)
        return min(wake) if wake else None

    def _start(self, run: _Run, action: _Step, now: datetime) -> str:
        """Renew the event's lease, check the action's dependencies and mark it running,
        in one transaction. Returns _STARTED, _WAITING, _LOST, or _ENDED (skipped now, or
        finished by another worker)."""
        # What is about to be sent, so a failed or dead action shows it too (the outcome
        # replaces it with the request actually sent).
        preview = self._preview(action) if action.request is None else None
        with write_transaction(self.sessions) as connection:
            if not renew(connection, run.claim, now, self.settings.lease_seconds):
                return _LOST
            blocker = _dependency_state(connection, action.depends_on)
            if blocker == "waiting":
                return _WAITING
            if blocker == "failed":
                failed = "a step it depends on did not succeed"
                self._end(connection, run, action, ACTION_SKIPPED, now, last_error=failed)
                return _ENDED
            values: dict[str, Any] = {"action_id": action.id, "now": now}
            if preview is not None:
                values["request"] = preview
            attempts = connection.execute(_MARK_RUNNING[preview is not None], values).scalar()
            if attempts is None:
                return _ENDED  # finished by another worker meanwhile
        action.attempts, action.state = attempts, ACTION_RUNNING
        return _STARTED

    def _paced(self, action: _Step) -> tuple[bool, datetime | None]:
        """Reserve the action's Slack channel slot: ``(True, at)`` to send at ``at``,
        ``(False, at)`` to come back at ``at``, ``(True, None)`` for no pacing.

        Slack allows about one message per second per channel: the sender paces itself
        (across all worker processes) rather than retrying into 429s.
        """
        if action.kind not in SLACK_KINDS or self.effects.slack_dry_run:
            return True, None
        reserved, at = reserve_slot(
            self.sessions, pacing_key(action.params), self.clock(), self.settings.slack_min_interval_seconds,
            self.settings.slack_pacing_horizon_seconds,
        )
        if not reserved:
            # Not an attempt: hand the action back as it was, to come back at the slot.
            attempts = action.attempts - 1
            self._update_action(
                action.id, attempts=attempts, state=ACTION_RETRYING if attempts else ACTION_PENDING, next_attempt_at=at
            )
        return reserved, at

    def _execute(self, run: _Run, action: _Step) -> datetime | None:
        """Execute one action marked running; return its next attempt time if it must be retried."""
        # The channel slot is reserved last, right before sending, so no bookkeeping time
        # falls between the slot and the request.
        go, slot = self._paced(action)
        if not go:
            return slot
        if slot is not None:
            wait = (slot - self.clock()).total_seconds()
            if wait > 0:
                self.sleep(wait)
        log_action = run.log.bind(action=action.kind, key=action.idempotency_key, attempt=action.attempts)
        try:
            outcome = self.effects.execute(action.kind, action.params, action.idempotency_key)
        except PeerError as error:
            return self._failed(run, action, str(error), error.transient, error.retry_after, log_action)
        except ActionImpossible as error:
            return self._failed(run, action, str(error), False, None, log_action)
        except Exception as error:  # a bug of ours: retry, and park it dead in the end
            log_action.exception("action_crashed")
            return self._failed(run, action, f"{type(error).__name__}: {error}", True, None, log_action)
        state = ACTION_DRY_RUN if outcome.dry_run else ACTION_DONE
        alert = action.params.get("alert")
        self._finish(
            run, action, state,
            request=self.redactor.redact(outcome.request),
            response=self.redactor.redact(outcome.response) if outcome.response is not None else None,
            # The alert thread is recorded with the outcome, in one transaction.
            alert=(alert, outcome.response, action.params, run.claim.order) if alert and outcome.response else None,
        )
        log_action.info("action_" + state)
        return None

    def _failed(
        self, run: _Run, action: _Step, error: str, transient: bool, retry_after: float | None, bound: Any
    ) -> datetime | None:
        error = _short(self.redactor.redact_text(error))
        if retry_after and action.kind in SLACK_KINDS:
            # Slack's 429 is per channel: every worker waits it out, not just this action.
            push_back(self.sessions, pacing_key(action.params), self.clock() + timedelta(seconds=retry_after))
        if transient and action.attempts < self.retry.max_attempts:
            delay = self.retry.delay(action.attempts, retry_after)
            retry_at = self.clock() + timedelta(seconds=delay)
            self._update_action(
                action.id, state=ACTION_RETRYING, next_attempt_at=retry_at, last_error=error, updated_at=self.clock()
            )
            metrics.count_retry(action.kind)
            bound.warning("action_retrying", error=error, retry_in_seconds=round(delay, 3))
            return retry_at
        self._finish(run, action, ACTION_DEAD, last_error=error)
        bound.error("action_dead", error=error)
        return None

    def _preview(self, action: _Step) -> dict[str, Any] | None:
        try:
            preview: dict[str, Any] = self.redactor.redact(self.effects.preview(action.kind, action.params))
        except (ActionImpossible, KeyError, TypeError, ValueError):
            return None  # the execution itself will report what is wrong
        return preview

    def _finish(
        self, run: _Run, action: _Step, state: str, *, alert: tuple[Any, Any, Any, Any] | None = None, **outcome: Any
    ) -> None:
        """End the action in ``state`` (see :meth:`_end`; ``outcome``: its ``last_error``,
        ``request``, ``response``), recording the alert thread in the same transaction."""
        now = self.clock()
        if alert is None:
            with write_transaction(self.sessions) as connection:
                self._end(connection, run, action, state, now, **outcome)
            return
        with write_session(self.sessions) as session:
            record_alert(session, *alert, now=now)
            session.flush()
            self._end(session.connection(), run, action, state, now, **outcome)

    def _end(self, connection: Connection, run: _Run, action: _Step, state: str, now: datetime, **outcome: Any) -> None:
        """Record the action's final ``state`` within ``connection``'s transaction (unless it
        already ended), with the ``outcome`` columns that are not None, and when it was the
        event's last, release the event ``done`` in the same transaction."""
        fields = {name: value for name, value in outcome.items() if value is not None}
        connection.execute(
            _end_statement(tuple(sorted(fields))), {"action_id": action.id, "state": state, "now": now, **fields}
        )
        action.state = state
        if run.last:
            self._release_done(connection, run, now)
        metrics.count_action(action.kind, state)

    def _update_action(self, action_id: int, **values: Any) -> None:
        """Set columns of one action in a transaction of its own."""
        with write_transaction(self.sessions) as connection:
            connection.execute(update(ActionRecord).where(ActionRecord.id == action_id).values(**values))


@dataclass
class _Run:
    """One claim being processed: ``last`` is set while the event's last action runs,
    ``released`` once the event is handed back."""

    claim: Claim
    log: Any
    last: bool = False
    released: bool = False


_STARTED, _WAITING, _LOST, _ENDED = "started", "waiting", "lost", "ended"
@dataclass
class _Step:
    """What the worker needs of one recorded action (a row of ``actions``)."""

    id: int
    idempotency_key: str
    kind: str
    params: dict[str, Any]
    depends_on: list[str]
    state: str
    attempts: int
    next_attempt_at: datetime | None
    request: dict[str, Any] | None


_STEPS_OF_EVENT = (
    select(*(ActionRecord.__table__.c[name] for name in _Step.__dataclass_fields__))
    .where(ActionRecord.event_id == bindparam("event_id"))
    .order_by(ActionRecord.position)
)
_KEY_OWNERS = select(ActionRecord.idempotency_key, ActionRecord.event_id).where(
    ActionRecord.idempotency_key.in_(bindparam("keys", expanding=True))
)
_RECORD_DECISION = (
    update(Event)
    .where(Event.id == bindparam("event_id"))
    .values(
        decision=bindparam("decision", type_=Event.__table__.c.decision.type),
        facts=bindparam("facts", type_=Event.__table__.c.facts.type),
        planned_keys=bindparam("planned_keys", type_=Event.__table__.c.planned_keys.type),
        decided_at=bindparam("now", type_=UTCDateTime()),
    )
)


def _steps_to_run(connection: Connection, event_id: int) -> list[_Step]:
    """The event's actions that have not ended, in the order decided."""
    return [
        _Step(**row._mapping)
        for row in connection.execute(_STEPS_OF_EVENT, {"event_id": event_id})
        if row.state not in ACTION_FINAL
    ]


_DEPENDENCY_STATES = select(ActionRecord.idempotency_key, ActionRecord.state).where(
    ActionRecord.idempotency_key.in_(bindparam("keys", expanding=True))
)
# Mark an action running and count the attempt, unless it ended meanwhile; [True] also
# records the request about to be sent.
_MARK_RUNNING = {
    with_request: update(ActionRecord)
    .where(ActionRecord.id == bindparam("action_id"), ActionRecord.state.not_in(ACTION_FINAL))
    .values(
        state=ACTION_RUNNING,
        attempts=ActionRecord.attempts + 1,
        updated_at=bindparam("now", type_=UTCDateTime()),
        **({"request": bindparam("request", type_=ActionRecord.__table__.c.request.type)} if with_request else {}),
    )
    .returning(ActionRecord.attempts)
    for with_request in (False, True)
}


@functools.cache
def _end_statement(fields: tuple[str, ...]) -> Update:
    """``UPDATE actions`` to a final state, also setting ``fields`` (each a bound
    parameter of its name); one statement per shape, built once."""
    columns = ActionRecord.__table__.c
    return (
        update(ActionRecord)
        .where(ActionRecord.id == bindparam("action_id"), ActionRecord.state.not_in(ACTION_FINAL))
        .values(
            state=bindparam("state"),
            updated_at=bindparam("now", type_=UTCDateTime()),
            completed_at=bindparam("now", type_=UTCDateTime()),
            next_attempt_at=None,
            **{name: bindparam(name, type_=columns[name].type) for name in fields},
        )
    )


def _dependency_state(connection: Connection, keys: list[str]) -> str | None:
    """None when every action ``keys`` names succeeded, "failed" when one is dead or
    skipped, else "waiting"."""
    if not keys:
        return None
    states: dict[str, str] = {key: state for key, state in connection.execute(_DEPENDENCY_STATES, {"keys": keys})}
    if any(states.get(key) in (ACTION_DEAD, ACTION_SKIPPED) for key in keys):
        return "failed"
    if all(states.get(key) in ACTION_SUCCEEDED for key in keys):
        return None
    return "waiting"


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def reopen_event(sessions: sessionmaker[Session], event_id: int, now: datetime) -> bool:
    """Queue an event to be decided again (replay): actions already done stay done.

    Dead and skipped actions of the event get a fresh set of attempts. Returns False
    when the event does not exist.
    """
    with write_session(sessions) as session:
        event = session.get(Event, event_id)
        if event is None:
            return False
        for record in session.scalars(select(ActionRecord).where(ActionRecord.event_id == event_id)):
            if record.state in (ACTION_DEAD, ACTION_SKIPPED, ACTION_RETRYING):
                record.state = ACTION_PENDING
                record.attempts = 0
                record.next_attempt_at = None
                record.completed_at = None
                record.updated_at = now
        event.decided_at = None
        event.state = EVENT_RETRYING
        event.next_attempt_at = now
        event.lease_owner = None
        event.lease_expires_at = None
        event.processed_at = None
    return True


def reopen_events(
    sessions: sessionmaker[Session], event_ids: list[int], now: datetime, progress: Callable[[int], None] | None = None
) -> int:
    """Reopen each event (bulk replay, see :func:`reopen_event`); return how many existed.

    ``progress`` is called with each event id once it is reopened.
    """
    reopened = 0
    for event_id in event_ids:
        reopened += reopen_event(sessions, event_id, now)
        if progress:
            progress(event_id)
    return reopened
