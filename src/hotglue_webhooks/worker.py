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

import dataclasses
import functools
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ContextManager

import structlog
from sqlalchemy import Connection, Update, bindparam, case, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks import metrics
from hotglue_webhooks.clients.errors import PeerError
from hotglue_webhooks.effects import ActionImpossible, Effects, Outcome
from hotglue_webhooks.facts import facts_for_record, gather_facts
from hotglue_webhooks.ingest import parse_time
from hotglue_webhooks.redaction import Redactor
from hotglue_webhooks.retention import claim_purge_slot, claim_slot, purge
from hotglue_webhooks.rules import (
    SLACK_ACTION_FAILED, SLACK_POST, SLACK_UPDATE, Decision, Facts, JobEvent, OpenAlert, RulesConfig,
    TerminalStage, decide, is_stale, needed_facts,
)
from hotglue_webhooks.rules.incidents import FOLD, HOLD, OPEN, incident_expired, judge, recovers
from hotglue_webhooks.rules.commands import RECEIVER_REPLAY, RECEIVER_SNOOZE, SLACK_RESPOND, plan_command
from hotglue_webhooks.rules.messages import action_failed
from hotglue_webhooks.rules.config import SNOOZE_SUMMARY
from hotglue_webhooks.rules.model import (
    ALERT_INCIDENT_ANNOUNCE, ALERT_INCIDENT_POST, DAILY_DIGEST, INCIDENT_UPDATE, SNOOZE_ENDED,
)
from hotglue_webhooks.settings import Settings
from hotglue_webhooks.storage.commands import forget_response_url, load_command, response_url
from hotglue_webhooks.storage.db import connect, transaction, write_session
from hotglue_webhooks.storage.models import (
    ACTION_DEAD,
    ACTION_DONE,
    ACTION_DRY_RUN,
    ACTION_FINAL,
    ACTION_FOLDED,
    ACTION_HELD,
    ACTION_NOT_NEEDED,
    ACTION_PENDING,
    ACTION_RETRYING,
    ACTION_RUNNING,
    ACTION_SKIPPED,
    ACTION_SUCCEEDED,
    EVENT_DEAD,
    EVENT_DONE,
    EVENT_RETRYING,
    SOURCE_COMMAND,
    ActionRecord,
    Event,
    UTCDateTime,
)
from hotglue_webhooks.storage.queue import LEASE_HELD, Claim, claim_next, release, renew
from hotglue_webhooks.storage import incidents as incident_state
from hotglue_webhooks.storage.slack_state import open_alerts, push_back, record_alert, reserve_slot
from hotglue_webhooks.storage.digest import store_due_digests
from hotglue_webhooks.storage.snoozes import count_held, end_due, snooze_in_force, snooze_once
from hotglue_webhooks.storage.stages import newest_terminal_stage

if TYPE_CHECKING:
    from hotglue_webhooks.environment import Environment
    from hotglue_webhooks.reconcile import Reconciler

RECONCILE_SLOT_KEY = "reconcile.last_pass"
_OWN_NOTICES = frozenset({INCIDENT_UPDATE, SNOOZE_ENDED, DAILY_DIGEST})

log = structlog.get_logger("hotglue_webhooks.worker")

SLACK_KINDS = (SLACK_POST, SLACK_UPDATE, SLACK_ACTION_FAILED)
_OWN_ACTIONS = frozenset({RECEIVER_REPLAY, RECEIVER_SNOOZE})
"""Action kinds the worker carries out on its own database, with no peer request."""


def pacing_key(params: Any) -> str:
    """The channel a Slack action counts against: its name as first posted to."""
    return str(params.get("pace") or params.get("channel"))
# How soon to look again at an event whose action waits for a dependency of another event.
DEPENDENCY_WAIT_SECONDS = 5.0
# How often a worker looks for events whose worker died (an expired lease), in seconds.
EXPIRED_CHECK_SECONDS = 1.0
# How often a worker process looks for what time makes due (idle incidents, ended
# snoozes, the daily digest), in seconds.
TICK_SECONDS = 5.0
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
        reconciler: Reconciler | None = None,
    ) -> None:
        self.settings = settings
        self.reconciler = reconciler
        self.sessions = sessions
        self.rules = rules
        self.effects = effects
        self.environment = environment
        self.redactor = redactor
        self.clock = clock
        self.sleep = sleep
        self.retry = RetryPolicy(settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds)
        self.buttons = settings.slack_buttons
        self.name = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self._expired_checked_at: datetime | None = None
        self._purge_checked_at: datetime | None = None
        self._ticked_at: datetime | None = None
        # Turns (issue 11): at most ``worker_threads`` events at a time work on the
        # database and in the rules; an event waiting for a peer gives its turn and its
        # connection back, so up to ``worker_in_flight`` events wait on slow peers at once.
        self._turns = Turns(settings.worker_threads)
        self._quiet_until = 0.0  # time.monotonic() before which no loop looks for work

    # -- loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event, threads: int | None = None) -> None:
        """Run ``threads`` claim loops until ``stop`` is set (default: ``HGW_WORKER_IN_FLIGHT``,
        at least ``HGW_WORKER_THREADS``). A loop holds one event at a time; at most
        ``HGW_WORKER_THREADS`` of them hold a turn (a database connection, the rules) at once."""
        count = threads or max(self.settings.worker_threads, self.settings.worker_in_flight)
        loops = [
            threading.Thread(target=self._loop, args=(stop, f"{self.name}/{n}"), name=f"worker-{n}", daemon=True)
            for n in range(count)
        ]
        if self.reconciler is not None:
            # Its own thread: a pass paces its HotGlue calls for minutes; the claim loops
            # keep processing (also the stages it recovers).
            loops.append(threading.Thread(target=self._reconcile_loop, args=(stop,), name="reconcile", daemon=True))
        for thread in loops:
            thread.start()
        for thread in loops:
            thread.join()

    def _loop(self, stop: threading.Event, owner: str) -> None:
        poll = self.settings.poll_seconds
        while not stop.is_set():
            try:
                # An empty queue is looked at about once per poll by the whole process,
                # not once per loop: with dozens of loops that was a write transaction
                # each (SQLite: the write lock) every poll while idle.
                quiet = self._quiet_until - time.monotonic()
                if quiet > 0:
                    stop.wait(quiet + random.uniform(0, poll / 2))
                    continue
                with self._turns:
                    self.maybe_purge()
                    self.maybe_tick()
                if self.run_once(owner):
                    self._quiet_until = 0.0  # its tenant's next event may be due now
                else:
                    self._quiet_until = time.monotonic() + poll
                    stop.wait(poll)
            except Exception:  # keep the loop alive; the lease brings the event back
                log.exception("worker_loop_error", worker=owner)
                stop.wait(poll)

    def maybe_purge(self) -> None:
        """Purge old events if no worker has done so within ``purge_interval_seconds``.

        The shared slot (a write transaction) is looked at no more than once per
        ``purge_interval_seconds / 60`` (at most a minute) per worker process: before every
        claim it cost a write transaction per event.
        """
        now = self.clock()
        interval = self.settings.purge_interval_seconds
        if not _due(self._purge_checked_at, now, min(60.0, interval / 60)):
            return
        self._purge_checked_at = now
        if claim_purge_slot(self.sessions, now, interval):
            result = purge(self.sessions, self.settings.retention_days, now, self.settings.purge_batch_size)
            log.info(
                "purged", events=result.events, actions=result.actions, rejections=result.rejections,
                cutoff=result.cutoff.isoformat(),
            )

    def maybe_tick(self) -> None:
        """At most every :data:`TICK_SECONDS` per process: :meth:`tick`."""
        now = self.clock()
        if not _due(self._ticked_at, now, TICK_SECONDS):
            return
        self._ticked_at = now
        self.tick(now)

    def tick(self, now: datetime | None = None) -> None:
        """Store the receiver's own events that time makes due, in one write transaction:
        the last update of incidents idle past ``expire_minutes``, the summary of each
        snooze that ended, and (when ``[digest]`` is on) the daily digest of each channel.
        Each has a fixed dedupe key, so workers ticking at once store it once."""
        now = now or self.clock()
        channel = self.environment(None).slack_channel
        with connect(self.sessions) as connection, transaction(connection) as tx:
            incident_state.expire_idle(tx, now, self.rules.incidents)
            end_due(tx, now, self.rules.channel_for(SNOOZE_SUMMARY, channel))
            if self.rules.digest.enabled:
                store_due_digests(tx, now, self.rules, self.environment_channels())

    def environment_channels(self) -> dict[str, list[str | None]]:
        """Digest channel → the env_ids whose events it covers (None: events of an
        environment not listed in the rules file)."""
        default = self.environment(None).slack_channel
        if self.rules.digest.channels:
            return {channel: [] for channel in self.rules.digest.channels}
        channels: dict[str, list[str | None]] = {default: [None]}
        for env_id in self.rules.environments:
            channels.setdefault(self.rules.environment_channel(env_id, default), []).append(env_id)
        return channels

    def _reconcile_loop(self, stop: threading.Event) -> None:
        interval = self.settings.reconcile_interval_seconds
        while not stop.is_set():
            try:
                self.maybe_reconcile()
            except Exception:  # a pass resumes where it stopped; keep the loop alive
                log.exception("reconcile_error")
            stop.wait(min(60.0, interval / 60))

    def maybe_reconcile(self) -> bool:
        """Run a reconciliation pass if no worker started one within
        ``reconcile_interval_seconds`` (the purge's shared slot, under its own key);
        return whether this worker ran it."""
        interval = self.settings.reconcile_interval_seconds
        if self.reconciler is None or interval <= 0:
            return False
        now = self.clock()
        if not claim_slot(self.sessions, RECONCILE_SLOT_KEY, now, interval):
            return False
        since = now - timedelta(seconds=self.settings.reconcile_window_seconds)
        self.reconciler.run(since, trigger="worker")
        return True

    def run_once(self, owner: str | None = None) -> bool:
        """Claim and process one due event; return False when none was due.

        Runs in one of the process's turns. One database connection serves the event
        from claim to release, except while it waits for a peer (HotGlue, Slack): then
        the turn and the connection are given back (:meth:`_waiting`). A checkout per
        step cost as much as some of the steps (docs/benchmarks.md).
        """
        with self._turns:
            now = self.clock()
            expired = _due(self._expired_checked_at, now, EXPIRED_CHECK_SECONDS)
            if expired:
                self._expired_checked_at = now
            connection = connect(self.sessions)
            try:
                claim = claim_next(connection, owner or self.name, now, self.settings.lease_seconds, expired=expired)
                if claim is None:
                    return False
                connection = self.process(claim, connection)
            finally:
                connection.close()
        return True

    def drain(self, max_events: int = 10_000) -> int:
        """Process due events until none is left (tests, ``replay``); return how many."""
        count = 0
        self._expired_checked_at = None  # look for expired leases on the first claim
        while count < max_events and self.run_once():
            count += 1
        return count

    # -- one event ----------------------------------------------------------------------

    def process(self, claim: Claim, connection: Connection) -> Connection:
        """Decide (once) and act for a leased event, then release it; every transaction
        runs on ``connection``, or, after a wait for a peer gave it back to the pool, on
        the one checked out after. Returns the connection it holds at the end (the
        caller closes it)."""
        run = _Run(claim, log.bind(event_id=claim.id), connection)
        try:
            # Inside the try: a stored payload it cannot read (e.g. not an object) is a
            # crash of this event like any other, not a lease left to expire forever.
            job = JobEvent.from_payload(claim.payload, event_key=claim.dedupe_key, source=claim.source)
            # Bound for this thread, so library lines (HotGlue client, httpx) carry them too.
            structlog.contextvars.bind_contextvars(event_id=claim.id, tenant=job.tenant, flow_id=job.flow_id)
            run.log = log.bind(status=job.status)
            self._process(run, job)
        except Exception as error:  # a bug of ours met by this event: never retry it forever
            try:
                self._crashed(run, error)
            except BaseException:  # e.g. the database is gone: no connection is left out
                run.connection.close()
                raise
        finally:
            structlog.contextvars.unbind_contextvars("event_id", "tenant", "flow_id")
        return run.connection

    @contextmanager
    def _waiting(self, run: _Run) -> Iterator[None]:
        """While a peer request (or a Slack slot's wait) runs: give the event's connection
        back to the pool and its turn to another event; take a turn and a connection
        again after. No transaction is open here (each one ends before a request)."""
        run.connection.close()
        self._turns.give()
        try:
            yield
        finally:
            self._turns.take(back=True)
            run.connection = connect(self.sessions)

    def _crashed(self, run: _Run, error: Exception) -> None:
        """Retry an event whose processing raised; park it ``dead`` after ``max_attempts``.

        Parking frees the tenant's later events (they wait for every earlier open one).
        """
        claim = run.claim
        text = _short(self.redactor.redact_text(f"{type(error).__name__}: {error}"))
        now = self.clock()
        with transaction(run.connection) as connection:
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

    def _process(self, run: _Run, job: JobEvent) -> None:
        """Decide, then run the actions one at a time. Each transaction ends one step and
        starts the next: recording the decision starts the first action, recording an
        action's outcome starts the following one, and the last one releases the event."""
        if run.claim.decided:
            with transaction(run.connection) as connection:
                run.steps = _steps_to_run(connection, run.claim.id)
                step = self._next(connection, run)
        else:
            try:
                if job.source != SOURCE_COMMAND and needed_facts(job, self.rules).from_hotglue:
                    # HotGlue reads: outside the turn; our own reads among them take a
                    # turn and a pooled connection each (_reading).
                    with self._waiting(run):
                        facts, decision = self.plan(job, run.claim.order, None)
                else:
                    facts, decision = self.plan(job, run.claim.order, run.connection)
            except PeerError as error:
                self._retry_event(run, error)
                return
            step = self._record_decision(run, decision, facts_for_record(facts, self.redactor), job)
        while step is not None:
            result = self._execute(run, step)
            with transaction(run.connection) as connection:
                self._record(connection, run, step, result)
                step = self._next(connection, run)

    def plan(
        self, job: JobEvent, order: tuple[datetime, int] | None = None, connection: Connection | None = None
    ) -> tuple[Facts, Decision]:
        """Read the facts ``job`` needs from HotGlue and decide; execute nothing.

        ``order`` is the stored event's (``order_at``, id): our own alert threads count as
        facts only when opened before it; without it (``explain`` of a file) the event's
        ``last_updated`` places it. ``connection`` reads them and the newest end of another
        job of the tenant's flow (default: one of its own). Raises PeerError when a read
        fails transiently.
        """
        environment = self.environment(job.env_id)
        if job.source == SOURCE_COMMAND:
            return Facts(), self._plan_command(job, connection, environment.slack_channel)
        # The receiver's own Slack notices (an incident's update, a snooze's summary, the
        # digest) name their channel and call no HotGlue API: never flagged.
        if environment.flagged and job.status not in _OWN_NOTICES:
            return Facts(), Decision(actions=(), notes=(f"flagged, no action runs: {environment.flagged}",))
        if job.status == INCIDENT_UPDATE:
            facts = Facts(incident=self._take_flush(job, connection), public_url=self.settings.public_url)
            return facts, decide(job, facts, self.rules, self.clock(), environment.slack_channel, buttons=self.buttons)

        def alerts(tenant: str, flow_id: str) -> tuple[OpenAlert, ...]:
            with self._reading(connection) as reading:
                return open_alerts(reading, tenant, flow_id, before=order)

        def newest() -> TerminalStage | None:
            if order is not None:
                order_at, event_id = order
            else:
                parsed = parse_time(job.last_updated)
                if parsed is None:
                    return None
                order_at, event_id = parsed, 0
            with self._reading(connection) as reading:
                return newest_terminal_stage(reading, job, event_id, order_at)

        facts = gather_facts(
            needed_facts(job, self.rules), job, environment.reader, open_alerts=alerts, newest_terminal=newest
        )
        facts = dataclasses.replace(facts, public_url=self.settings.public_url)
        return facts, decide(job, facts, self.rules, self.clock(), environment.slack_channel, buttons=self.buttons)

    def _plan_command(self, job: JobEvent, connection: Connection | None, channel: str) -> Decision:
        """Load a person's command (``commands`` row) and what it acts on from our own
        records, then plan it (``rules/commands.py``). A command whose row is gone plans nothing."""
        command_id = job.payload.get("command_id")
        if not isinstance(command_id, int):
            return Decision(actions=(), notes=("command: the queue item names no command",))
        try:
            with self._reading(connection) as reading:
                request, facts = load_command(
                    reading, command_id, job.event_key, now=self.clock(), incidents=self.rules.incidents
                )
        except LookupError as error:
            return Decision(actions=(), notes=(f"command: {error}",))
        return plan_command(request, facts, self.rules, self.clock(), channel)

    def _reading(self, connection: Connection | None) -> ContextManager[Connection]:
        """``connection`` (the event's own, held by the caller) when given, else one of
        the pool's, in a turn of its own, for the duration of the ``with`` (``explain`` of
        a file has none; an event reading HotGlue gave its own back)."""
        return nullcontext(connection) if connection is not None else self._pooled()

    @contextmanager
    def _pooled(self) -> Iterator[Connection]:
        # An event under way (it holds a lease): it goes before loops that would claim.
        self._turns.take(back=True)
        try:
            with connect(self.sessions) as connection:
                yield connection
        finally:
            self._turns.give()

    def _take_flush(self, job: JobEvent, connection: Connection | None) -> Any:
        """Read the incident of an ``INCIDENT_UPDATE`` event and clear its pending update, in
        a write transaction of its own (changes after it ask for the next update)."""
        incident_id, seq = job.payload.get("incident_id"), job.payload.get("seq")
        if connection is None or not isinstance(incident_id, int) or not isinstance(seq, int):
            return None
        with transaction(connection) as tx:
            return incident_state.take_flush(
                tx, incident_id, seq, self.clock(), self.rules.incidents, self.settings.public_url
            )

    def _record_decision(self, run: _Run, decision: Decision, facts: dict[str, Any], job: JobEvent) -> _Step | None:
        """Record the event's actions and start the first one (in one transaction);
        return it, or None when none is left to run (the event is then released).

        A finished job (not stale) also marks its tenant's flow recovered in the incidents
        it is in, in the same transaction.
        """
        for attempt in range(3):
            try:
                with transaction(run.connection) as connection:
                    self._insert_actions(connection, run, decision, facts)
                    if recovers(job) and not is_stale(decision.notes):
                        incident_state.recover(
                            connection, str(job.tenant), str(job.flow_id), self.clock(), self.rules.incidents
                        )
                    # This event's actions: the ones just added, and on a replay its earlier ones.
                    run.steps = _steps_to_run(connection, run.claim.id)
                    return self._next(connection, run)
            except IntegrityError:
                # Another worker recorded an action with the same key at the same moment
                # (e.g. the one-per-day job trigger); the next pass sees it and skips it.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _insert_actions(self, connection: Connection, run: _Run, decision: Decision, facts: dict[str, Any]) -> None:
        now = self.clock()
        event_id = run.claim.id
        keys = [action.key for action in decision.actions]
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
                # Keys only: the params are our rules' own text (a Slack message saying
                # "apiCredentials.password: empty" names a field); payload text in them
                # was redacted at ingest.
                "params": self.redactor.redact(dict(action.params), free_text=False),
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

    def _retry_event(self, run: _Run, error: PeerError) -> None:
        delay = self.retry.delay(run.claim.attempts, error.retry_after)
        run.log.warning("facts_read_failed", error=str(error), retry_in_seconds=round(delay, 3))
        with transaction(run.connection) as connection:
            release(
                connection, run.claim, state=EVENT_RETRYING,
                next_attempt_at=self.clock() + timedelta(seconds=delay), last_error=_short(str(error)),
            )

    # -- the actions, one transaction between two of them ---------------------------------

    def _next(self, connection: Connection, run: _Run) -> _Step | None:
        """Start the event's next due action within ``connection``'s write transaction
        and return it; when none is left to start, release the event (``done``, or
        ``retrying`` at the earliest time one of its actions waits for) and return None."""
        lease = self.settings.lease_seconds
        while run.steps:
            step = run.steps.pop(0)
            now = self.clock()
            if step.next_attempt_at and step.next_attempt_at > now:
                run.wake.append(step.next_attempt_at)
                continue
            # The lease is extended once a third of it is used up (not before every
            # action: a statement each); marking an action running checks it is held.
            if (run.until - now).total_seconds() < lease * 2 / 3 and not self._renew(connection, run, now):
                return None
            if self._start(connection, run, step, now):
                return step
            if run.lost:
                return None
        now = self.clock()
        if run.wake:
            held = release(connection, run.claim, state=EVENT_RETRYING, next_attempt_at=min(run.wake))
        else:
            held = release(connection, run.claim, state=EVENT_DONE, next_attempt_at=now, processed_at=now)
        if not held:
            run.log.warning("lease_lost")
        elif not run.wake:
            run.log.info("event_processed")
        return None

    def _start(self, connection: Connection, run: _Run, step: _Step, now: datetime) -> bool:
        """Check the action's dependencies, reserve its Slack channel slot, and mark it
        running; return False when it does not run now (waiting, skipped, or ended by
        another worker meanwhile)."""
        if step.kind == SLACK_ACTION_FAILED:
            # It runs *because* a step it watches failed, so it has its own test.
            report = self._failure_report(connection, run, step, now)
            if report is None:
                return False
            # Sent (and paced, previewed, recorded) as the Slack post it now is.
            step.kind, step.params = SLACK_POST, report
        else:
            blocker = _dependency_state(connection, step.depends_on)
            if blocker in (ACTION_HELD, ACTION_FOLDED):
                # E.g. the count update of a repeat whose reply a snooze held: it follows it.
                self._end(connection, step, blocker, now, last_error=f"the message it follows was {blocker}")
                return False
            if blocker == "waiting":
                run.wake.append(now + timedelta(seconds=DEPENDENCY_WAIT_SECONDS))
                return False
            if blocker == "failed":
                self._end(connection, step, ACTION_SKIPPED, now, last_error="a step it depends on did not succeed")
                return False
        if step.kind in SLACK_KINDS and not self._gate(connection, run, step, now):
            return False
        if step.kind in SLACK_KINDS and not self.effects.slack_dry_run:
            # Slack allows about one message per second per channel: the sender paces
            # itself (across all worker processes) rather than retrying into 429s. The
            # slot is reserved in the transaction that marks the action running.
            reserved, at = reserve_slot(
                connection, pacing_key(step.params), now, self.settings.slack_min_interval_seconds,
                self.settings.slack_pacing_horizon_seconds,
            )
            if not reserved:  # not an attempt: the action comes back at the slot
                connection.execute(_COME_BACK, {"action_id": step.id, "at": at, "now": now})
                run.wake.append(at)
                return False
            step.send_at = at if at > now else None
        if step.kind == SLACK_RESPOND:
            # Read just before sending, never stored with the action (a capability URL).
            url = response_url(connection, int(step.params.get("command_id") or 0))
            step.params = {**step.params, "response_url": url} if url else dict(step.params)
        # What is about to be sent, so a failed or dead action shows it too (the outcome
        # replaces it with the request actually sent).
        values: dict[str, Any] = {
            "action_id": step.id, "now": now, "held_event": run.claim.id, "held_owner": run.claim.owner,
        }
        if step.request is None:
            values["request"] = self._preview(step)
        attempts = connection.execute(_MARK_RUNNING["request" in values], values).scalar()
        if attempts is None:
            # Ended meanwhile, or the lease went to another worker (then nothing more runs).
            self._renew(connection, run, now)
            return False
        # Recorded as started by an attempt that never recorded its end (its worker
        # died): whether that attempt reached the peer is unknown until looked for.
        step.unknown_since = step.updated_at if step.state == ACTION_RUNNING else None
        step.attempts, step.state = attempts, ACTION_RUNNING
        return True

    def _gate(self, connection: Connection, run: _Run, step: _Step, now: datetime) -> bool:
        """Decide, just before a Slack message goes out, whether it goes out now: False
        when a snooze holds it (ended ``held``), its incident takes it (ended ``folded``),
        or it waits for its signature's group wait (comes back then, not an attempt).

        The grouping decision is the pure :func:`hotglue_webhooks.rules.incidents.judge`;
        the state it reads and what it records live in ``storage/incidents.py``, all
        within this transaction. An incident thread reply gets its channel and
        ``thread_ts`` here, from the incident's message posted before it.
        """
        params = step.params
        about, grouping = params.get("about"), params.get("incident")
        rules = self.rules.incidents
        if isinstance(about, Mapping):
            signatures = [str(about["group"])] if about.get("group") else []
            held = snooze_in_force(connection, about.get("tenant"), signatures, now)
            if held is not None:
                snooze_id, until = held
                count_held(connection, snooze_id)
                if isinstance(grouping, Mapping):
                    sighting = incident_state.Sighting.of(grouping)
                    incident_state.sight(connection, sighting, run.claim.id, now, rules, snoozed=True)
                self._end(
                    connection, step, ACTION_HELD, now,
                    last_error=f"held by snooze {snooze_id} until {until:%Y-%m-%d %H:%M} UTC; a summary follows it",
                )
                return False
        if isinstance(grouping, Mapping) and rules.enabled:
            sighting = incident_state.Sighting.of(grouping)
            state, member = incident_state.sight(connection, sighting, run.claim.id, now, rules)
            if state.incident_id is not None and incident_expired(state.incident_last_change, now, rules):
                incident_state.expire(connection, state.incident_id, now, rules)
                state, member = incident_state.sight(connection, sighting, run.claim.id, now, rules)
            verdict = judge(state, now, rules)
            if verdict.kind == HOLD and verdict.until is not None:
                connection.execute(_COME_BACK, {"action_id": step.id, "at": verdict.until, "now": now})
                run.wake.append(verdict.until)
                return False
            if verdict.kind in (OPEN, FOLD):
                if verdict.kind == OPEN:
                    incident_id = incident_state.open_incident(connection, sighting, now, rules)
                else:
                    incident_id = int(state.incident_id or 0)
                    incident_state.fold(connection, member, incident_id, now, rules)
                self._end(
                    connection, step, ACTION_FOLDED, now,
                    last_error=f"folded into incident {incident_id} (signature {sighting.signature}): {verdict.why}",
                )
                run.log.info("alert_folded", incident_id=incident_id, group=sighting.signature)
                return False
            incident_state.post_alone(connection, member)
        alert = params.get("alert")
        if isinstance(alert, Mapping) and alert.get("op") == ALERT_INCIDENT_POST:
            # Posted meanwhile (by a later update, this one being replayed): the incident
            # keeps one message, so this becomes an update of it.
            posted = incident_state.thread_of(connection, int(alert["incident_id"]))
            if posted is not None:
                step.kind = SLACK_UPDATE
                step.params = {**params, "channel": posted[0], "ts": posted[1]}
        thread_of = params.get("incident_thread")
        if thread_of is not None:
            thread = incident_state.thread_of(connection, int(thread_of))
            if thread is None:
                self._end(connection, step, ACTION_SKIPPED, now, last_error="the incident's message was not posted")
                return False
            step.params = {**params, "channel": thread[0], "thread_ts": thread[1]}
        return True

    def _failure_report(
        self, connection: Connection, run: _Run, step: _Step, now: datetime
    ) -> dict[str, Any] | None:
        """Return the Slack post of a ``slack.action_failed`` report when one of the
        actions it watches ended dead or skipped; else None: waiting for them to end, or
        (all succeeded) the report is ended ``not_needed``.

        Only the event's own actions count: a watched key another event recorded (the
        once-a-day job start) is that event's to report.
        """
        rows = connection.execute(_DEPENDENCY_OUTCOMES, {"keys": step.depends_on}).all()
        mine = {row.idempotency_key: row for row in rows if row.event_id == run.claim.id}
        open_ = [row for row in mine.values() if row.state not in ACTION_FINAL]
        if open_:
            # Look again when the first of them is retried, not every few seconds of an
            # hour-long back-off.
            retries = [row.next_attempt_at for row in open_ if row.next_attempt_at and row.next_attempt_at > now]
            soon = now + timedelta(seconds=DEPENDENCY_WAIT_SECONDS)
            run.wake.append(max(soon, min(retries)) if len(retries) == len(open_) else soon)
            return None
        if not any(row.state in (ACTION_DEAD, ACTION_SKIPPED) for row in mine.values()):
            self._end(connection, step, ACTION_NOT_NEEDED, now)
            return None
        outcomes = {key: (row.state, row.last_error) for key, row in mine.items()}
        return action_failed(step.params, outcomes, run.claim.id, self.settings.public_url)

    def _renew(self, connection: Connection, run: _Run, now: datetime) -> bool:
        """Extend the event's lease; False (and ``run.lost``) when another worker owns it now."""
        until = renew(connection, run.claim, now, self.settings.lease_seconds)
        if until is None:
            run.lost = True
            run.log.warning("lease_lost")
            return False
        run.until = until
        return True

    def _execute(self, run: _Run, step: _Step) -> Outcome | _Failure:
        """Send one action marked running (after waiting for its Slack slot); no database
        work here, so no transaction is held across the request, and neither the turn nor
        the connection (the receiver's own actions keep them: they are database work)."""
        if step.kind in _OWN_ACTIONS:
            return self._send(run, step)
        with self._waiting(run):
            return self._send(run, step)

    def _send(self, run: _Run, step: _Step) -> Outcome | _Failure:
        if step.send_at is not None:
            wait = (step.send_at - self.clock()).total_seconds()
            if wait > 0:
                self.sleep(wait)
        lookup: str | None = None
        if step.unknown_since is not None:
            found, lookup = self._find_earlier(run, step, step.unknown_since)
            if found is not None:
                return found
        try:
            if step.kind == RECEIVER_REPLAY:
                return self._replay(step)
            if step.kind == RECEIVER_SNOOZE:
                return self._snooze(step)
            outcome = self.effects.execute(step.kind, step.params, step.idempotency_key)
        except PeerError as error:
            return _Failure(_with_lookup(str(error), lookup), error.transient, error.retry_after)
        except ActionImpossible as error:
            return _Failure(_with_lookup(str(error), lookup), False, None)
        except Exception as error:  # a bug of ours: retry, and park it dead in the end
            run.log.exception("action_crashed", action=step.kind, key=step.idempotency_key, attempt=step.attempts)
            return _Failure(_with_lookup(f"{type(error).__name__}: {error}", lookup), True, None)
        if lookup is not None:
            outcome = Outcome(outcome.dry_run, outcome.request, {**(outcome.response or {}), "lookup": lookup})
        return outcome

    def _find_earlier(self, run: _Run, step: _Step, since: datetime) -> tuple[Outcome | None, str | None]:
        """Look at the peer for what an outcome-unknown earlier attempt (started at
        ``since``) did: (its Outcome, None) when it arrived; (None, a note for the record)
        when it did not, or when looking failed (the action is then sent anyway: a
        duplicate rather than a loss)."""
        bound = run.log.bind(action=step.kind, key=step.idempotency_key, attempt=step.attempts)
        try:
            found = self.effects.find_earlier(step.kind, step.params, step.idempotency_key, since)
        except Exception as error:  # PeerError, or a bug of ours: either way, send
            text = _short(self.redactor.redact_text(f"{type(error).__name__}: {error}"))
            bound.warning("earlier_attempt_lookup_failed", error=text, attempt_started=since.isoformat())
            return None, f"lookup failed, sent anyway: {text}"
        if found is None:
            return None, None
        bound.info("earlier_attempt_found", attempt_started=since.isoformat(), found_by=(found.response or {}).get("found_by"))
        return found, None

    def _replay(self, step: _Step) -> Outcome:
        """The receiver's own action of a Replay command: reopen the event (no peer call;
        the worker's connection holds no transaction meanwhile)."""
        event_id = int(step.params["event_id"])
        if not reopen_event(self.sessions, event_id, self.clock()):
            raise ActionImpossible(f"event {event_id} is no longer stored")
        return Outcome(False, {"method": "REPLAY", "event_id": event_id}, {"reopened": True})

    def _snooze(self, step: _Step) -> Outcome:
        """The receiver's own action of a snooze button: store the snooze its params name,
        once (``snooze_once``: run again after a crash, it finds the one it made)."""
        params = step.params
        until = parse_time(params.get("until"))
        if until is None:
            raise ActionImpossible(f"the snooze's until {params.get('until')!r} is not a time")
        try:
            with write_session(self.sessions) as session:
                made, new = snooze_once(
                    session, scope=str(params.get("scope")), target=str(params.get("target") or ""), until=until,
                    by=str(params.get("by") or ""), reason=params.get("reason"), now=self.clock(),
                    max_days=self.rules.snooze.max_days,
                )
        except ValueError as error:
            raise ActionImpossible(str(error)) from None
        request = {"method": "SNOOZE", "scope": made.scope, "target": made.target, "until": made.until.isoformat()}
        return Outcome(False, request, {"snooze_id": made.id, "new": new, "by": made.by})

    def _record(self, connection: Connection, run: _Run, step: _Step, result: Outcome | _Failure) -> None:
        """Record what sending ``step`` did, within ``connection``'s write transaction."""
        now = self.clock()
        bound = run.log.bind(action=step.kind, key=step.idempotency_key, attempt=step.attempts)
        if isinstance(result, _Failure):
            error = _short(self.redactor.redact_text(result.error))
            if result.retry_after and step.kind in SLACK_KINDS:
                # Slack's 429 is per channel: every worker waits it out, not just this action.
                push_back(connection, pacing_key(step.params), now + timedelta(seconds=result.retry_after))
            if result.transient and step.attempts < self.retry.max_attempts:
                delay = self.retry.delay(step.attempts, result.retry_after)
                retry_at = now + timedelta(seconds=delay)
                connection.execute(
                    _RETRY, {"action_id": step.id, "at": retry_at, "last_error": error, "now": now}
                )
                run.wake.append(retry_at)
                metrics.count_retry(step.kind)
                bound.warning("action_retrying", error=error, retry_in_seconds=round(delay, 3))
                return
            self._end(connection, step, ACTION_DEAD, now, last_error=error)
            bound.error("action_dead", error=error)
            return
        state = ACTION_DRY_RUN if result.dry_run else ACTION_DONE
        if step.kind == SLACK_RESPOND and not result.dry_run:
            forget_response_url(connection, int(step.params.get("command_id") or 0))
        alert = step.params.get("alert")
        op = alert.get("op") if isinstance(alert, Mapping) else None
        if op == ALERT_INCIDENT_ANNOUNCE and isinstance(alert, Mapping):
            # Named in the thread (or would have been, in dry-run): not listed again.
            members = [int(m) for m in alert.get("members") or []]
            incident_state.mark_announced(connection, members, now)
        elif op == ALERT_INCIDENT_POST and isinstance(alert, Mapping) and result.response:
            incident_state.record_post(connection, int(alert["incident_id"]), result.response, step.params)
        elif alert and result.response:
            # The alert thread is recorded with the outcome, in the same transaction.
            record_alert(connection, alert, result.response, step.params, run.claim.order, now=now)
        self._end(
            connection, step, state, now,
            request=self.redactor.redact(result.request),
            response=self.redactor.redact(result.response) if result.response is not None else None,
        )
        bound.info("action_" + state)

    def _preview(self, step: _Step) -> dict[str, Any] | None:
        try:
            preview: dict[str, Any] = self.redactor.redact(self.effects.preview(step.kind, step.params))
        except (ActionImpossible, KeyError, TypeError, ValueError):
            return None  # the execution itself will report what is wrong
        return preview

    def _end(self, connection: Connection, step: _Step, state: str, now: datetime, **outcome: Any) -> None:
        """Record the action's final ``state`` within ``connection``'s transaction (unless it
        already ended), with the ``outcome`` columns (``last_error``, ``request``,
        ``response``) that are not None."""
        fields = {name: value for name, value in outcome.items() if value is not None}
        connection.execute(
            _end_statement(tuple(sorted(fields))), {"action_id": step.id, "state": state, "now": now, **fields}
        )
        step.state = state
        metrics.count_action(step.kind, state)


class Turns:
    """At most ``size`` holders at once (``with turns:`` takes one and gives it back).

    An event coming back from a peer request (``take(back=True)``) goes before loops
    that want to claim a new event: it holds a lease, its tenant's later events wait for
    it, and its alert may be the next step. One wakes per turn given (no stampede of the
    waiting loops).
    """

    def __init__(self, size: int) -> None:
        self._free = size
        self._back = 0  # events waiting to come back
        self._new = 0  # loops waiting to claim
        self._lock = threading.Lock()
        self._back_ready = threading.Condition(self._lock)
        self._new_ready = threading.Condition(self._lock)

    def take(self, back: bool = False) -> None:
        with self._lock:
            if back:
                self._back += 1
                try:
                    while self._free == 0:
                        self._back_ready.wait()
                finally:
                    self._back -= 1
            else:
                self._new += 1
                try:
                    while self._free == 0 or self._back:
                        self._new_ready.wait()
                finally:
                    self._new -= 1
            self._free -= 1
            if self._free:  # more were given meanwhile than woke: pass the word on
                (self._back_ready if self._back else self._new_ready).notify()

    def waiting(self) -> tuple[int, int]:
        """(events back from a peer, loops that would claim) waiting for a turn now."""
        with self._lock:
            return self._back, self._new

    def give(self) -> None:
        with self._lock:
            self._free += 1
            if self._back:
                self._back_ready.notify()
            else:
                self._new_ready.notify()

    def __enter__(self) -> Turns:
        self.take()
        return self

    def __exit__(self, *exc: object) -> None:
        self.give()


@dataclass
class _Run:
    """One claim being processed on one ``connection``: ``steps`` still to look at, in
    order, ``wake``, the times at which the ones that did not run can run, and ``lost``
    once the lease went to another worker."""

    claim: Claim
    log: Any
    connection: Connection
    steps: list[_Step] = field(default_factory=list)
    wake: list[datetime] = field(default_factory=list)
    lost: bool = False

    def __post_init__(self) -> None:
        self.until = self.claim.until  # when the lease expires, as last taken or renewed


@dataclass(frozen=True)
class _Failure:
    """An action's request failed: ``transient`` ones are retried (not before
    ``retry_after`` seconds)."""

    error: str
    transient: bool
    retry_after: float | None


@dataclass
class _Step:
    """What the worker needs of one recorded action (a row of ``actions``); ``send_at``
    is the Slack slot reserved for it when that lies ahead."""

    id: int
    idempotency_key: str
    kind: str
    params: dict[str, Any]
    depends_on: list[str]
    state: str
    attempts: int
    next_attempt_at: datetime | None
    request: dict[str, Any] | None
    updated_at: datetime | None = None
    send_at: datetime | None = None
    unknown_since: datetime | None = None
    """When an earlier attempt started whose outcome is unknown (set when marked running)."""


# Every field of _Step but the worker's own ``send_at`` and ``unknown_since`` is a column
# of ``actions``.
_STEP_COLUMNS = tuple(name for name in _Step.__dataclass_fields__ if name not in ("send_at", "unknown_since"))
_STEPS_OF_EVENT = (
    select(*(ActionRecord.__table__.c[name] for name in _STEP_COLUMNS))
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
_DEPENDENCY_OUTCOMES = select(
    ActionRecord.idempotency_key, ActionRecord.state, ActionRecord.last_error, ActionRecord.event_id,
    ActionRecord.next_attempt_at,
).where(ActionRecord.idempotency_key.in_(bindparam("keys", expanding=True)))
# Mark an action running and count the attempt, unless it ended meanwhile or the event's
# lease is no longer held by ``owner``; [True] also records the request about to be sent.
_MARK_RUNNING = {
    with_request: update(ActionRecord)
    .where(ActionRecord.id == bindparam("action_id"), ActionRecord.state.not_in(ACTION_FINAL), LEASE_HELD)
    .values(
        state=ACTION_RUNNING,
        attempts=ActionRecord.attempts + 1,
        updated_at=bindparam("now", type_=UTCDateTime()),
        **({"request": bindparam("request", type_=ActionRecord.__table__.c.request.type)} if with_request else {}),
    )
    .returning(ActionRecord.attempts)
    for with_request in (False, True)
}


# An action that waits for its Slack slot: not an attempt, only a time to come back. A
# running one keeps its updated_at: that is when its outcome-unknown attempt started.
_COME_BACK = (
    update(ActionRecord)
    .where(ActionRecord.id == bindparam("action_id"))
    .values(
        next_attempt_at=bindparam("at", type_=UTCDateTime()),
        updated_at=case(
            (ActionRecord.state == ACTION_RUNNING, ActionRecord.updated_at),
            else_=bindparam("now", type_=UTCDateTime()),
        ),
    )
)
# A failed attempt to be retried at ``at``.
_RETRY = (
    update(ActionRecord)
    .where(ActionRecord.id == bindparam("action_id"))
    .values(
        state=ACTION_RETRYING,
        next_attempt_at=bindparam("at", type_=UTCDateTime()),
        last_error=bindparam("last_error"),
        updated_at=bindparam("now", type_=UTCDateTime()),
    )
)


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
    skipped, ``held``/``folded`` when one was held by a snooze or folded into an incident,
    else "waiting"."""
    if not keys:
        return None
    states: dict[str, str] = {key: state for key, state in connection.execute(_DEPENDENCY_STATES, {"keys": keys})}
    if any(states.get(key) in (ACTION_DEAD, ACTION_SKIPPED) for key in keys):
        return "failed"
    for state in (ACTION_HELD, ACTION_FOLDED):
        if any(states.get(key) == state for key in keys):
            return state
    if all(states.get(key) in ACTION_SUCCEEDED for key in keys):
        return None
    return "waiting"


def _due(last: datetime | None, now: datetime, seconds: float) -> bool:
    """Whether a periodic check last made at ``last`` is due again at ``now`` (never made,
    ``seconds`` passed, or the clock went back)."""
    return last is None or not 0 <= (now - last).total_seconds() < seconds


def _with_lookup(error: str, lookup: str | None) -> str:
    return error if lookup is None else f"{error} ({lookup})"


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def reopen_event(sessions: sessionmaker[Session], event_id: int, now: datetime, *, live: bool = False) -> bool:
    """Queue an event to be decided again (replay): actions already done stay done.

    Dead and skipped actions of the event get a fresh set of attempts; with ``live``, so
    do its ``dry_run`` ones (their dry-run request and answer are cleared), to be sent
    for real under the same idempotency keys (``replay.py`` checks first that they would
    not be dry-runs again). Returns False when the event does not exist.
    """
    states = (ACTION_DEAD, ACTION_SKIPPED, ACTION_RETRYING, ACTION_NOT_NEEDED) + ((ACTION_DRY_RUN,) if live else ())
    with write_session(sessions) as session:
        event = session.get(Event, event_id)
        if event is None:
            return False
        for record in session.scalars(select(ActionRecord).where(ActionRecord.event_id == event_id)):
            if record.state in states:
                if record.state == ACTION_DRY_RUN:
                    record.request = None
                    record.response = None
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
