"""Reconciliation: ask HotGlue what happened, and store the job stages whose webhooks never came.

HotGlue documents no webhook retry (REFERENCE.md §7): a POST lost in a deploy or a
network blip is gone at the source. A pass reads each (env_id, flow_id, tenant)'s job list
(``GET /{env_id}/{flow_id}/{tenant}/jobs``) and stores every terminal stage
(``JOB_COMPLETED``, ``*_FAILED``) updated within the window that the log lacks, through
the webhook's own ingest path (same dedupe key ``s3_root`` + ``status``, same redaction),
marked ``source = reconciled``; the worker then processes it like any event, exactly
once. Running jobs and other stages are never stored: the job list is a fact source,
not a second webhook stream.

A pass records its pairs and progress in ``reconcile_passes``: one that stopped half-way
is taken up where it stopped by the next run of the same scope. Calls are paced
(``HGW_RECONCILE_MAX_RPS``) and honour 429 ``Retry-After``; a pair that cannot be read is
reported in the summary, and a list of an unexpected shape is skipped with one log line.

The same pass judges silence (``rules/rhythm.py``): a pair whose schedule (or regular
job gaps) says a job should have finished, and none did, is *silent*.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import and_, select
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks import metrics
from hotglue_webhooks.clients.errors import HotGlueRateLimited, PeerError, UnexpectedShape
from hotglue_webhooks.ingest import dedupe_key, parse_time, store_found_stage
from hotglue_webhooks.redaction import Redactor
from hotglue_webhooks.rules import RulesConfig, Schedule
from hotglue_webhooks.rules.rhythm import Silence, judge_silence, rhythm_of
from hotglue_webhooks.storage.db import write_session
from hotglue_webhooks.rules.model import PAIRS_SILENT, SILENCE_FINGERPRINT
from hotglue_webhooks.storage.models import EVENT_OPEN_STATES, ActionRecord, Event, ReconcilePass, SlackThread

if TYPE_CHECKING:
    from hotglue_webhooks.clients.hotglue_api import HotGlueClient
    from hotglue_webhooks.environment import Environment

log = structlog.get_logger("hotglue_webhooks.reconcile")

COMPLETED = "JOB_COMPLETED"
FAILED_SUFFIX = "_FAILED"
# A 429 whose Retry-After is longer than this ends the pair's read (reported) rather than
# holding the pass: the next pass reads it again.
MAX_RETRY_AFTER_SECONDS = 300.0
RATE_LIMIT_RETRIES = 3
TRIGGER_WORKER = "worker"
TRIGGER_CLI = "cli"


def is_terminal(status: object) -> bool:
    """True for a job's last stage: ``JOB_COMPLETED`` or any ``*_FAILED`` (REFERENCE.md §1)."""
    return isinstance(status, str) and (status == COMPLETED or status.upper().endswith(FAILED_SUFFIX))


@dataclass(frozen=True, order=True)
class Pair:
    """One (env_id, flow_id, tenant): whose job list one call reads."""

    env_id: str
    flow_id: str
    tenant: str

    def __str__(self) -> str:
        return f"{self.env_id}/{self.flow_id}/{self.tenant}"


def shape_problem(jobs: Any) -> str | None:
    """Return why a job list cannot be trusted, or None: not an array, or an item that is
    not an object with a non-empty string ``s3_root`` and ``status`` (REFERENCE.md §7)."""
    if not isinstance(jobs, list):
        return f"the job list is a {type(jobs).__name__}, not an array"
    for index, job in enumerate(jobs):
        if not isinstance(job, dict):
            return f"item {index} is a {type(job).__name__}, not an object"
        for name in ("s3_root", "status"):
            if not isinstance(job.get(name), str) or not job[name]:
                return f"item {index} has no {name}"
    return None


def terminal_stages(jobs: Sequence[dict[str, Any]], since: datetime) -> list[dict[str, Any]]:
    """The jobs whose status is terminal and whose ``last_updated`` is ``since`` or later
    (no upper bound: HotGlue's clock may run a little ahead of ours)."""
    found = []
    for job in jobs:
        updated = parse_time(job.get("last_updated") if isinstance(job.get("last_updated"), str) else None)
        if is_terminal(job.get("status")) and updated is not None and since <= updated:
            found.append(job)
    return found


@dataclass
class PassSummary:
    """What one pass did: pairs in it, pairs read, jobs seen in their lists, stages
    recovered by status (for ``dry_run``: would recover, listed in ``would_recover``),
    one line per error, the silent pairs, and the ``reconcile_passes`` id (None in dry-run)."""

    pass_id: int | None
    pairs: int
    resumed_at: int = 0
    pairs_read: int = 0
    jobs_seen: int = 0
    recovered: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    would_recover: list[dict[str, Any]] = field(default_factory=list)
    silent: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False
    rhythms: dict[str, dict[str, Any]] = field(default_factory=dict)
    notices: list[int] = field(default_factory=list)
    """Event ids of the silence notices stored (one per env_id with newly silent pairs)."""

    def lines(self) -> list[str]:
        """The summary in words, for the CLI and the log."""
        verb = "would recover" if self.dry_run else "recovered"
        by_status = ", ".join(f"{status} {count}" for status, count in sorted(self.recovered.items())) or "none"
        lines = [
            f"pairs read: {self.pairs_read} of {self.pairs}"
            + (f" (resumed at {self.resumed_at})" if self.resumed_at else ""),
            f"jobs seen: {self.jobs_seen}",
            f"stages {verb}: {sum(self.recovered.values())} ({by_status})",
            f"errors: {len(self.errors)}",
        ]
        lines += [f"  {error}" for error in self.errors]
        lines.append(f"silent pairs: {len(self.silent)}")
        lines += [f"  {s['env_id']}/{s['flow_id']}/{s['tenant']}: {s['why']}" for s in self.silent]
        return lines


@dataclass(frozen=True)
class PairProgress:
    """Reported after each pair: its position (1-based) of ``total``, and what it gave."""

    position: int
    total: int
    pair: Pair
    recovered: int
    error: str | None


class Pacer:
    """At most ``rate`` calls per second (0: unpaced), waiting with ``sleep``."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0

    def wait(self) -> None:
        """Return when the next call may go."""
        now = self.clock()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a 429's ``Retry-After``)."""
        self._next = max(self._next, self.clock() + seconds)


class Reconciler:
    """Run reconciliation passes (see the module docstring).

    ``environment`` gives each ``env_id``'s HotGlue client (``reader`` None: no API key,
    its pairs are reported as errors). ``max_rps`` paces every HotGlue call;
    ``lease_seconds``: a pass not advanced for this long is abandoned, and the next run of
    its scope takes it up. ``all_tenants`` also reads ``GET /tenants/{env_id}`` and each
    tenant's linked flows for every environment in the log.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        environment: Callable[[str | None], Environment],
        redactor: Redactor,
        rules: RulesConfig,
        *,
        max_rps: float = 5.0,
        lease_seconds: float = 120.0,
        all_tenants: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sessions = sessions
        self.environment = environment
        self.redactor = redactor
        self.rules = rules
        self.lease_seconds = lease_seconds
        self.all_tenants = all_tenants
        self.clock = clock
        self.sleep = sleep
        self.pacer = Pacer(max_rps, sleep=sleep)
        self._schedules: dict[Pair, Schedule | None] = {}

    # -- the pass -------------------------------------------------------------------------

    def run(
        self,
        since: datetime,
        *,
        tenant: str | None = None,
        flow_id: str | None = None,
        dry_run: bool = False,
        trigger: str = TRIGGER_CLI,
        progress: Callable[[PairProgress], None] | None = None,
        started: Callable[[int], None] | None = None,
    ) -> PassSummary:
        """Run one pass over the pairs of the log (filtered by ``tenant``/``flow_id``),
        recovering terminal stages updated since ``since``; return its summary.

        ``dry_run`` stores nothing (no events, no pass record) and lists what it would
        recover. ``started`` is called with the number of pairs, ``progress`` after each.
        A pass of the same scope left unfinished by a process that died is resumed
        (its window and pairs, from the first pair not done). Raises nothing for a pair
        that cannot be read; database errors propagate (the pass then resumes later).
        """
        now = self.clock()
        scope = json.dumps({"tenant": tenant, "flow_id": flow_id}, sort_keys=True)
        record = None if dry_run else self._resumable(scope, now)
        summary: PassSummary
        if record is not None:
            pairs = [Pair(*item) for item in record.pairs]
            since = record.since
            summary = PassSummary(record.id, len(pairs), resumed_at=record.next_index, jobs_seen=record.jobs_seen)
            summary.recovered.update(record.recovered)
            summary.errors.extend(record.errors)
            summary.silent.extend(record.silent)
            summary.rhythms.update(record.rhythms)
            start = record.next_index
            log.info("reconcile_resumed", pass_id=record.id, at=start, pairs=len(pairs))
        else:
            errors: list[str] = []
            pairs = self.pairs(tenant=tenant, flow_id=flow_id, errors=errors)
            start = 0
            pass_id = None if dry_run else self._open_pass(scope, since, now, pairs, trigger, errors)
            summary = PassSummary(pass_id, len(pairs), dry_run=dry_run)
            summary.errors.extend(errors)
        if started:
            started(len(pairs))
        summary.pairs_read = start  # counted as read by the run that did them
        for position in range(start, len(pairs)):
            pair = pairs[position]
            recovered, error, silence = self._reconcile_pair(pair, since, summary, dry_run)
            if error:
                summary.errors.append(f"{pair}: {error}")
            else:
                summary.pairs_read += 1
            if silence is not None:
                summary.rhythms[str(pair)] = _rhythm_entry(pair, silence)
                if silence.silent:
                    summary.silent.append(_silent_entry(pair, silence))
            if summary.pass_id is not None:
                self._advance(summary, position + 1)
            if progress:
                progress(PairProgress(position + 1, len(pairs), pair, recovered, error))
        if summary.pass_id is not None:
            summary.notices = self._notify_silent(summary)
            self._finish(summary)
            metrics.count_reconcile_pass(trigger, len(summary.errors))
        log.info(
            "reconcile_pass", pass_id=summary.pass_id, dry_run=dry_run, pairs=summary.pairs,
            pairs_read=summary.pairs_read, jobs_seen=summary.jobs_seen, recovered=dict(summary.recovered),
            errors=len(summary.errors), silent=len(summary.silent),
        )
        return summary

    def _reconcile_pair(
        self, pair: Pair, since: datetime, summary: PassSummary, dry_run: bool
    ) -> tuple[int, str | None, Silence | None]:
        """Read one pair's job list and store what is missing: (recovered, error, silence)."""
        reader = self.environment(pair.env_id).reader
        if reader is None:
            return 0, "no HotGlue API key for this env_id: its job list cannot be read", None
        try:
            jobs: Any = self._call(lambda: reader.list_jobs(pair.env_id, pair.flow_id, pair.tenant))
        except UnexpectedShape as error:
            log.warning("reconcile_unexpected_shape", pair=str(pair), reason=error.summary)
            return 0, f"skipped, unexpected shape: {error.summary}", None
        except PeerError as error:
            return 0, error.summary, None
        problem = shape_problem(jobs)
        if problem:
            log.warning("reconcile_unexpected_shape", pair=str(pair), reason=problem)
            return 0, f"skipped, unexpected shape: {problem}", None
        summary.jobs_seen += len(jobs)
        now = self.clock()
        found = terminal_stages(jobs, since)
        missing = self._missing(found)
        recovered = 0
        for job in missing:
            stage = _as_stage(job, pair)
            if dry_run:
                summary.would_recover.append(
                    {"pair": str(pair), "s3_root": stage["s3_root"], "status": stage["status"],
                     "last_updated": stage.get("last_updated")}
                )
                summary.recovered[stage["status"]] += 1
                recovered += 1
                continue
            stored = store_found_stage(self.sessions, stage, self.redactor, summary.pass_id, now)
            if not stored.duplicate:  # its webhook may have arrived in between
                metrics.count_reconciled(stage["status"])
                summary.recovered[stage["status"]] += 1
                recovered += 1
                log.info("reconcile_recovered", pair=str(pair), event_id=stored.event_id, status=stage["status"])
        silence = self._judge(pair, reader, jobs, now)
        return recovered, None, silence

    def _call(self, call: Callable[[], Any]) -> Any:
        """Make one paced HotGlue call; wait out a 429's ``Retry-After`` a few times."""
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            self.pacer.wait()
            try:
                return call()
            except HotGlueRateLimited as error:
                wait = error.retry_after if error.retry_after is not None else 2.0 ** attempt
                if attempt == RATE_LIMIT_RETRIES or wait > MAX_RETRY_AFTER_SECONDS:
                    raise
                self.pacer.hold(wait)
        raise AssertionError("unreachable")

    def _missing(self, stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The stages whose dedupe key is not in the log."""
        if not stages:
            return []
        keys = {dedupe_key(stage, ""): stage for stage in stages}
        with self.sessions() as session:
            present = set(session.scalars(select(Event.dedupe_key).where(Event.dedupe_key.in_(list(keys)))))
        return [stage for key, stage in keys.items() if key not in present]

    # -- silence --------------------------------------------------------------------------

    def _notify_silent(self, summary: PassSummary) -> list[int]:
        """Store one ``PAIRS_SILENT`` notice per env_id for the pairs newly silent (not
        already in an open silence thread or an unprocessed notice): the worker's rules
        post one Slack message for them, and a stage of the pair later clears it."""
        if not summary.silent:
            return []
        known = self._silence_known()
        by_env: dict[str, list[dict[str, Any]]] = {}
        for entry in summary.silent:
            if (entry["env_id"], entry["tenant"], entry["flow_id"]) not in known:
                by_env.setdefault(entry["env_id"], []).append(entry)
        now = self.clock()
        notices = []
        for env_id, pairs in sorted(by_env.items()):
            notice = {
                "status": PAIRS_SILENT,
                "env_id": env_id,
                # The notice's own key: one per pass and environment.
                "s3_root": f"~silence/{env_id}/pass-{summary.pass_id}",
                "pass_id": summary.pass_id,
                # Silent since the newest stage of the quietest pair: any stage after it
                # (also a late or recovered one) clears the silence.
                "last_updated": min((p["last_at"] for p in pairs if p["last_at"]), default=now.isoformat()),
                "pairs": [{k: pair[k] for k in ("tenant", "flow_id", "last_at", "expected", "why")} for pair in pairs],
            }
            stored = store_found_stage(self.sessions, notice, self.redactor, summary.pass_id, now)
            notices.append(stored.event_id)
            log.warning("reconcile_silent", env_id=env_id, pairs=len(pairs), event_id=stored.event_id)
        return notices

    def _silence_known(self) -> set[tuple[str | None, str | None, str | None]]:
        """(env_id, tenant, flow_id) of every open silence thread and unprocessed notice."""
        with self.sessions() as session:
            keys = session.scalars(
                select(SlackThread.thread_key).where(
                    SlackThread.fingerprint == SILENCE_FINGERPRINT, SlackThread.resolved_at.is_(None)
                )
            )
            known: set[tuple[str | None, str | None, str | None]] = set()
            for key in keys:
                parts = key.split("|")
                if len(parts) == 4:
                    known.add((parts[1], parts[2], parts[3]))
            pending = session.scalars(
                select(Event.payload).where(Event.status == PAIRS_SILENT, Event.state.in_(EVENT_OPEN_STATES))
            )
            for payload in pending:
                for pair in payload.get("pairs") or []:
                    known.add((payload.get("env_id"), pair.get("tenant"), pair.get("flow_id")))
        return known

    def _judge(self, pair: Pair, reader: HotGlueClient, jobs: list[dict[str, Any]], now: datetime) -> Silence | None:
        """Judge the pair's silence from its job list (by the jobs' own ``last_updated``)."""
        rules = self.rules.silence
        if not rules.enabled:
            return None
        terminal_times = [
            when for job in jobs if is_terminal(job.get("status"))
            and (when := parse_time(job.get("last_updated") if isinstance(job.get("last_updated"), str) else None))
        ]
        times = [
            (when, job.get("scheduled_job") if isinstance(job.get("scheduled_job"), bool) else None)
            for job in jobs
            if (when := parse_time(job.get("last_updated") if isinstance(job.get("last_updated"), str) else None))
        ]
        last_at = max(terminal_times, default=None)
        log_last = self._last_terminal_in_log(pair)
        if log_last is not None and (last_at is None or log_last > last_at):
            last_at = log_last
        schedule = self._schedule(pair, reader)
        rhythm = rhythm_of(schedule, times, rules, turned_off_by_us=self._turned_off_by_us(pair), now=now)
        return judge_silence(rhythm, last_at, now, rules, pair.flow_id)

    def _schedule(self, pair: Pair, reader: HotGlueClient) -> Schedule | None:
        """The pair's schedule from HotGlue, else the one read last time (None: none known)."""
        try:
            body = self._call(lambda: reader.get_schedule(pair.env_id, pair.flow_id, pair.tenant))
        except PeerError as error:
            log.info("reconcile_schedule_unread", pair=str(pair), error=error.summary)
            return self._schedules.get(pair)
        schedule = None
        if body:
            schedule = Schedule(schedule_expression=body.get("schedule_expression"), state=body.get("state"))
        self._schedules[pair] = schedule
        return schedule

    def _last_terminal_in_log(self, pair: Pair) -> datetime | None:
        with self.sessions() as session:
            rows = session.scalars(
                select(Event.last_updated).where(
                    Event.env_id == pair.env_id, Event.flow_id == pair.flow_id, Event.tenant == pair.tenant,
                    Event.status.is_not(None),
                ).where((Event.status == COMPLETED) | Event.status.like("%" + FAILED_SUFFIX))
            )
            times = [when for value in rows if (when := parse_time(value))]
        return max(times, default=None)

    def _turned_off_by_us(self, pair: Pair) -> bool:
        """Whether this receiver's last schedule write for the pair turned it off."""
        with self.sessions() as session:
            rows = session.execute(
                select(ActionRecord.params, ActionRecord.state)
                .join(Event, Event.id == ActionRecord.event_id)
                .where(Event.tenant == pair.tenant, ActionRecord.kind == "hotglue.put_schedule")
                .order_by(ActionRecord.id.desc())
            )
            for params, state in rows:
                if params.get("flow_id") != pair.flow_id or state not in ("done", "dry_run"):
                    continue
                body = params.get("body") or {}
                return str(body.get("state", "")).upper() == "DISABLED"
        return False

    # -- which pairs ----------------------------------------------------------------------

    def pairs(self, *, tenant: str | None = None, flow_id: str | None = None, errors: list[str] | None = None) -> list[Pair]:
        """The (env_id, flow_id, tenant) of the log (all of it: a pair silent for longer
        than the window is still a pair), and with ``all_tenants`` every tenant of those
        environments with its linked flows; filtered, sorted."""
        conditions: list[Any] = [Event.env_id.is_not(None), Event.flow_id.is_not(None), Event.tenant.is_not(None)]
        if tenant:
            conditions.append(Event.tenant == tenant)
        if flow_id:
            conditions.append(Event.flow_id == flow_id)
        with self.sessions() as session:
            rows = session.execute(select(Event.env_id, Event.flow_id, Event.tenant).where(and_(*conditions)).distinct())
            found = {Pair(str(env_id), str(flow), str(one)) for env_id, flow, one in rows}
        if self.all_tenants:
            found |= self._pairs_from_hotglue({pair.env_id for pair in found}, tenant, flow_id, errors)
        return sorted(found)

    def _pairs_from_hotglue(
        self, env_ids: Iterable[str], tenant: str | None, flow_id: str | None, errors: list[str] | None
    ) -> set[Pair]:
        found: set[Pair] = set()
        for env_id in sorted(env_ids):
            reader = self.environment(env_id).reader
            if reader is None:
                continue
            try:
                tenants = [tenant] if tenant else self._call(lambda: reader.list_tenants(env_id))
                for one in tenants:
                    flows = self._call(lambda: reader.linked_flow_ids(env_id, one))
                    found |= {Pair(env_id, flow, one) for flow in flows if not flow_id or flow == flow_id}
            except PeerError as error:
                if errors is not None:
                    errors.append(f"{env_id}: tenants and flows not read: {error.summary}")
        return found

    # -- the pass record ------------------------------------------------------------------

    def _resumable(self, scope: str, now: datetime) -> ReconcilePass | None:
        abandoned = now - timedelta(seconds=self.lease_seconds)
        with self.sessions() as session:
            record = session.scalars(
                select(ReconcilePass)
                .where(ReconcilePass.scope == scope, ReconcilePass.finished_at.is_(None),
                       ReconcilePass.updated_at < abandoned)
                .order_by(ReconcilePass.id.desc())
                .limit(1)
            ).first()
            if record is not None:
                session.expunge(record)
        return record

    def _open_pass(
        self, scope: str, since: datetime, now: datetime, pairs: list[Pair], trigger: str, errors: list[str]
    ) -> int:
        with write_session(self.sessions) as session:
            record = ReconcilePass(
                trigger=trigger, scope=scope, since=since, started_at=now, updated_at=now,
                pairs=[[p.env_id, p.flow_id, p.tenant] for p in pairs], next_index=0, jobs_seen=0,
                recovered={}, errors=list(errors), silent=[], rhythms={},
            )
            session.add(record)
            session.flush()
            return record.id

    def _advance(self, summary: PassSummary, next_index: int) -> None:
        with write_session(self.sessions) as session:
            record = session.get(ReconcilePass, summary.pass_id)
            if record is None:
                return
            record.next_index = next_index
            record.jobs_seen = summary.jobs_seen
            record.recovered = dict(summary.recovered)
            record.errors = list(summary.errors)
            record.silent = list(summary.silent)
            record.rhythms = {**record.rhythms, **summary.rhythms}
            record.updated_at = self.clock()

    def _finish(self, summary: PassSummary) -> None:
        with write_session(self.sessions) as session:
            record = session.get(ReconcilePass, summary.pass_id)
            if record is not None:
                record.finished_at = self.clock()
                record.updated_at = record.finished_at
                record.silent = list(summary.silent)


def _as_stage(job: dict[str, Any], pair: Pair) -> dict[str, Any]:
    """The job as a stage to store: as HotGlue listed it, with the pair's ids where it lacks
    them (older examples name the flow ``flow``, REFERENCE.md §7)."""
    stage = dict(job)
    stage.setdefault("env_id", pair.env_id)
    stage.setdefault("flow_id", stage.get("flow") or pair.flow_id)
    stage.setdefault("tenant", pair.tenant)
    return stage


def _rhythm_entry(pair: Pair, silence: Silence) -> dict[str, Any]:
    return {
        "env_id": pair.env_id,
        "flow_id": pair.flow_id,
        "tenant": pair.tenant,
        "kind": silence.rhythm.kind,
        "why": silence.rhythm.why,
        "last_at": silence.last_at.isoformat() if silence.last_at else None,
        "expected": silence.expected.isoformat() if silence.expected else None,
        "silent": silence.silent,
    }


def _silent_entry(pair: Pair, silence: Silence) -> dict[str, Any]:
    return {
        "env_id": pair.env_id,
        "flow_id": pair.flow_id,
        "tenant": pair.tenant,
        "last_at": silence.last_at.isoformat() if silence.last_at else None,
        "expected": silence.expected.isoformat() if silence.expected else None,
        "deadline": silence.deadline.isoformat() if silence.deadline else None,
        "why": f"no finished job since {silence.last_at:%Y-%m-%d %H:%M} UTC ({silence.rhythm.why})"
        if silence.last_at else silence.rhythm.why,
    }
