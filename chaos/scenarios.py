"""Scenarios 1–4 and 6 of issue 5 (5, bad input, lives in ``badinput.py``).

Each scenario builds a :class:`~chaos.cluster.Cluster`, drives it, and
returns a :class:`Result` whose line is what the harness prints.
"""

from __future__ import annotations

import random
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from chaos import verify
from chaos.cluster import Cluster, Topology
from chaos.load import LoadResult, Sender
from chaos.procs import RssSampler, cli_argv
from chaos.verify import Figures
from chaos.workload import DISTINCT_ERRORS, Workload, build, load_templates, outage_and_distinct
from hotglue_webhooks.storage.models import ACTION_FINAL, ActionRecord, Event

MIB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    crash_webhooks: int
    crash_tenants: int
    outage_webhooks: int
    outage_tenants: int
    outage_seconds: float
    slack_429_seconds: float
    long_outage_seconds: float
    duplicate_events: int
    duplicate_tenants: int
    bad_requests: int
    slow_clients: int
    slow_seconds: float
    noise_tenants: int
    noise_repeats: int
    noise_resolved: int
    lease_seconds: float
    http_timeout: float
    kills: int


FULL = Sizes(
    crash_webhooks=5000, crash_tenants=200,
    outage_webhooks=1200, outage_tenants=60, outage_seconds=60, slack_429_seconds=10, long_outage_seconds=30,
    duplicate_events=5000, duplicate_tenants=200,
    bad_requests=10_000, slow_clients=40, slow_seconds=45,
    noise_tenants=300, noise_repeats=100, noise_resolved=100,
    lease_seconds=30, http_timeout=2.5, kills=4,
)
SMALL = Sizes(
    crash_webhooks=400, crash_tenants=40,
    outage_webhooks=240, outage_tenants=24, outage_seconds=12, slack_429_seconds=4, long_outage_seconds=8,
    duplicate_events=300, duplicate_tenants=30,
    bad_requests=1000, slow_clients=8, slow_seconds=20,
    # The outage at full size even here (300 webhooks are few), fewer repeats.
    noise_tenants=300, noise_repeats=30, noise_resolved=30,
    lease_seconds=12, http_timeout=1.0, kills=3,
)


@dataclass
class Options:
    sizes: Sizes
    database: str
    postgres_url: str
    workdir: Path
    payloads: Path
    seed: int
    concurrency: int = 32
    log: Callable[[str], None] = print


@dataclass
class Result:
    number: int
    title: str
    database: str
    passed: bool
    figures: Figures
    seconds: float
    expected_failure: str | None = None
    details: list[str] = field(default_factory=list)

    def line(self) -> str:
        f = self.figures
        verdict = "passed" if self.passed else "failed"
        if not self.passed and self.expected_failure:
            verdict += f" (expected until {self.expected_failure})"
        elif self.passed and self.expected_failure:
            verdict += f" (was expected to fail until {self.expected_failure}: it has landed)"
        figures = (
            f"acknowledged {f.acknowledged}, stored {f.stored}, executed once {f.executed_once}, "
            f"lost {f.lost}, duplicated {f.duplicated}, 5xx {f.answers_5xx}, "
            f"peak RSS web {f.peak_rss_web_mib:.0f} MiB / worker {f.peak_rss_worker_mib:.0f} MiB"
        )
        if f.raw_duplicates:
            figures += f", raw duplicates {f.raw_duplicates} (kill -9 between send and record, not found before resending)"
        return f"{self.number} {self.title} [{self.database}]: {verdict} — {figures}; {self.seconds:.0f} s"


def settings_for(sizes: Sizes, **extra: str) -> dict[str, str]:
    return {
        "HGW_LEASE_SECONDS": str(sizes.lease_seconds),
        "HGW_HTTP_TIMEOUT_SECONDS": str(sizes.http_timeout),
        **extra,
    }


# -- helpers ------------------------------------------------------------------------------


def counts(cluster: Cluster) -> tuple[int, int, int]:
    """(events, events not done, actions not final)."""
    with cluster.sessions()() as session:
        total = session.scalar(select(func.count()).select_from(Event)) or 0
        open_events = session.scalar(select(func.count()).select_from(Event).where(Event.state != "done")) or 0
        open_actions = (
            session.scalar(
                select(func.count()).select_from(ActionRecord).where(ActionRecord.state.notin_(ACTION_FINAL))
            )
            or 0
        )
    return total, open_events, open_actions


class Watchdog:
    """Restart a service that died by itself (and record it: a crash nobody caused)."""

    def __init__(self, cluster: Cluster, figures: Figures) -> None:
        self.cluster = cluster
        self.figures = figures
        self.crashes = 0
        self.paused: set[str] = set()

    def check(self) -> None:
        for service in self.cluster.services:
            if service.name in self.paused or service.process is None:
                continue
            code = service.process.poll()
            if code is not None:
                self.crashes += 1
                self.figures.problem(f"crashed: {service.name} exited by itself with code {code}")
                service.start()


def wait_drained(
    cluster: Cluster, expected_events: int, timeout: float, watchdog: Watchdog, stall_seconds: float = 150.0
) -> bool:
    """Wait until ``expected_events`` are stored, all done, no action open.

    Returns False after ``timeout`` seconds, or once nothing changed for ``stall_seconds``
    (an event that can never finish would otherwise hold the run until the timeout).
    """
    deadline = time.monotonic() + timeout
    last: tuple[int, int, int] | None = None
    changed = time.monotonic()
    while time.monotonic() < deadline:
        watchdog.check()
        now = counts(cluster)
        total, open_events, open_actions = now
        if total >= expected_events and open_events == 0 and open_actions == 0:
            return True
        if now != last:
            last, changed = now, time.monotonic()
        elif time.monotonic() - changed > stall_seconds:
            return False
        time.sleep(0.5)
    return False


class Chaos(threading.Thread):
    """``kill -9`` web and worker processes at random moments of the load, and restart them.

    Web kills happen when a random share of the deliveries has been sent; worker kills
    when a random share of the events has been processed, so both land mid-work.
    """

    def __init__(self, cluster: Cluster, sender: Sender, total: int, kills: int, rng: random.Random, watchdog: Watchdog) -> None:
        super().__init__(name="chaos", daemon=True)
        self.cluster = cluster
        self.sender = sender
        self.total = max(1, total)
        self.rng = rng
        self.watchdog = watchdog
        self.web_at = sorted(rng.uniform(0.05, 0.8) for _ in range(kills))
        self.worker_at = sorted(rng.uniform(0.05, 0.85) for _ in range(kills))
        self.stop = threading.Event()
        self.error: BaseException | None = None
        # Victims in turn (from a random start), so that every process gets killed.
        self._turn = {"web": rng.randrange(len(cluster.webs)), "worker": rng.randrange(len(cluster.workers))}

    def _next(self, role: str, services: list[Any]) -> Any:
        self._turn[role] += 1
        return services[self._turn[role] % len(services)]

    @property
    def finished(self) -> bool:
        return not self.web_at and not self.worker_at

    def run(self) -> None:
        try:
            self._run()
        except BaseException as error:  # reported by the scenario
            self.error = error

    def _run(self) -> None:
        last_poll = 0.0
        processed = 0.0
        while not self.stop.is_set() and not self.finished:
            if self.web_at and self.sender.sent / self.total >= self.web_at[0]:
                self.web_at.pop(0)
                self._kill_and_restart(self._next("web", self.cluster.webs))
            if self.worker_at and time.monotonic() - last_poll > 0.3:
                last_poll = time.monotonic()
                total, open_events, _ = counts(self.cluster)
                processed = (total - open_events) / self.total
                if processed >= self.worker_at[0]:
                    self.worker_at.pop(0)
                    self._kill_and_restart(self._next("worker", self.cluster.workers))
            self.stop.wait(0.05)

    def _kill_and_restart(self, service: Any) -> None:
        self.watchdog.paused.add(service.name)
        try:
            self.cluster.kill9(service)
            time.sleep(self.rng.uniform(0.2, 1.5))
            service.start()
        finally:
            self.watchdog.paused.discard(service.name)


def finish_figures(figures: Figures, cluster: Cluster, sampler: RssSampler) -> None:
    figures.peak_rss_web_mib = sampler.peak_mib("web")
    figures.peak_rss_worker_mib = sampler.peak_mib("worker")
    figures.extra["kills"] = {s.name: s.kills for s in cluster.services if s.kills}
    tracebacks = sum(s.log_text().count("Traceback (most recent call last)") for s in cluster.services)
    figures.extra["tracebacks_in_logs"] = tracebacks
    loop_errors = cluster.logs("worker").count('"worker_loop_error"')
    if loop_errors:
        figures.problem(f"worker loop error: {loop_errors} in the worker logs (see {cluster.workdir})")


def verify_all(
    figures: Figures,
    cluster: Cluster,
    load: LoadResult,
    workload: Workload | None,
    *,
    check_undo: bool = True,
    order_events: list[verify.EventRow] | None = None,
) -> None:
    """All checks; ``order_events`` is the snapshot to check order on (before a replay,
    which processes events again)."""
    events, actions = verify.load_rows(cluster.sessions())
    verify.check_deliveries(figures, load, events)
    verify.check_processing(figures, events, actions)
    verify.check_folded(figures, cluster.sessions(), events, actions)
    peers = verify.peer_writes(cluster.hotglue, cluster.slack)
    verify.check_effects(figures, actions, peers, cluster.worker_kill_times())
    verify.check_order(figures, load, events if order_events is None else order_events)
    if workload is not None and check_undo:
        verify.check_late_created(
            figures, events, actions, cluster.hotglue,
            [t.tenant for t in workload.tenants.values() if t.full_sync],
            [t.tenant for t in workload.tenants.values() if t.token_401],
        )


def passed(figures: Figures, load: LoadResult | None = None, *, allow_5xx: bool = True) -> bool:
    ok = not figures.problems and figures.lost == 0 and figures.duplicated == 0 and figures.raw_duplicates == 0
    if load is not None:
        ok = ok and figures.acknowledged == len({o.delivery.key for o in load.outcomes})
    if not allow_5xx:
        ok = ok and figures.answers_5xx == 0
    return ok


# -- 1 and 4: crash -----------------------------------------------------------------------


def crash(options: Options, topology: Topology, number: int = 1, title: str = "crash") -> Result:
    """Signed load with ``kill -9`` of web and worker processes; every ack acted on once."""
    sizes = options.sizes
    started = time.monotonic()
    figures = Figures()
    rng = random.Random(options.seed * 7 + number)
    topology.settings = {**settings_for(sizes), **topology.settings}
    workload = build(
        load_templates(options.payloads),
        webhooks=sizes.crash_webhooks,
        tenants=sizes.crash_tenants,
        seed=options.seed + number,
    )
    with Cluster(f"s{number}-{title}-{topology.database}", options.workdir, topology, postgres_url=options.postgres_url) as cluster:
        workload.seed(cluster.hotglue)
        cluster.start()
        watchdog = Watchdog(cluster, figures)
        with RssSampler(cluster.services) as sampler:
            sender = Sender(cluster.targets, _secret(), concurrency=options.concurrency, seed=options.seed)
            chaos = Chaos(cluster, sender, len(workload.deliveries), sizes.kills, rng, watchdog)
            chaos.start()
            load = sender.send_all(workload.deliveries)
            options.log(f"  sent {len(workload.deliveries)} in {load.seconds:.0f} s; waiting for the kills and the queue")
            deadline = time.monotonic() + 600
            while not chaos.finished and time.monotonic() < deadline and chaos.is_alive():
                watchdog.check()
                time.sleep(0.5)
            chaos.stop.set()
            chaos.join(timeout=30)
            if chaos.error:
                figures.problem(f"chaos thread failed: {chaos.error!r}")
            if not chaos.finished:
                figures.problem(f"kills: not all planned kills happened ({len(chaos.web_at)} web, {len(chaos.worker_at)} worker left)")
            if not wait_drained(cluster, len(workload.deliveries), 600, watchdog):
                figures.problem("not drained: events or actions still open after 600 s")
            sampler.sample()
        verify_all(figures, cluster, load, workload)
        finish_figures(figures, cluster, sampler)
        figures.extra["jobs"] = workload.jobs
        _check_kills(figures, cluster, sizes.kills)
        return Result(number, title, topology.database, passed(figures, load), figures, time.monotonic() - started)


def _check_kills(figures: Figures, cluster: Cluster, wanted: int) -> None:
    web = sum(s.kills for s in cluster.webs)
    worker = sum(s.kills for s in cluster.workers)
    if web < wanted or worker < wanted:
        figures.problem(f"kills: {web} web and {worker} worker kills, wanted {wanted} of each")


def _secret() -> str:
    from chaos.cluster import SECRET

    return SECRET


# -- 3 and 4: duplicates and reordering ---------------------------------------------------


def duplicates(options: Options, topology: Topology, number: int = 3, title: str = "duplicates") -> Result:
    """Every event delivered 3 times, shuffled, over many connections: one set of effects."""
    sizes = options.sizes
    started = time.monotonic()
    figures = Figures()
    topology.settings = {**settings_for(sizes), **topology.settings}
    workload = build(
        load_templates(options.payloads),
        webhooks=sizes.duplicate_events,
        tenants=sizes.duplicate_tenants,
        seed=options.seed + 100 + number,
    )
    copies = [d for d in workload.deliveries for _ in range(3)]
    random.Random(options.seed).shuffle(copies)
    with Cluster(f"s{number}-{title}-{topology.database}", options.workdir, topology, postgres_url=options.postgres_url) as cluster:
        workload.seed(cluster.hotglue)
        cluster.start()
        watchdog = Watchdog(cluster, figures)
        with RssSampler(cluster.services) as sampler:
            sender = Sender(cluster.targets, _secret(), concurrency=options.concurrency, seed=options.seed)
            load = sender.send_all(copies)
            options.log(f"  sent {len(copies)} ({len(workload.deliveries)} × 3, shuffled) in {load.seconds:.0f} s")
            if not wait_drained(cluster, len(workload.deliveries), 600, watchdog):
                figures.problem("not drained: events or actions still open after 600 s")
            sampler.sample()
        verify_all(figures, cluster, load, workload)
        finish_figures(figures, cluster, sampler)
        duplicates_answered = sum(1 for o in load.outcomes for a in o.attempts if a.status == 200)
        figures.extra["answered_duplicate"] = duplicates_answered
        if duplicates_answered < len(copies) - len(workload.deliveries) - load.resent:
            figures.problem(f"duplicates: only {duplicates_answered} copies answered 200 duplicate")
        if figures.extra.get("late_job_created", 0) == 0:
            figures.extra["note"] = "no JOB_CREATED arrived after its JOB_COMPLETED was processed"
        return Result(number, title, topology.database, passed(figures, load), figures, time.monotonic() - started)


# -- 4: scale-out -------------------------------------------------------------------------


def scale_out(options: Options) -> Result:
    """Scenarios 1 and 3 on PostgreSQL with 2 web and 3 worker processes."""
    started = time.monotonic()
    results = []
    for run in (crash, duplicates):
        topology = Topology(database="postgresql", webs=2, workers=3)
        options.log(f"  4/{run.__name__}: 2 web + 3 workers on PostgreSQL")
        result = run(options, topology, number=4, title=f"scale-out-{run.__name__}")
        options.log("    " + result.line())
        results.append(result)
    total = Figures()
    for result in results:
        f = result.figures
        total.acknowledged += f.acknowledged
        total.stored += f.stored
        total.executed_once += f.executed_once
        total.lost += f.lost
        total.duplicated += f.duplicated
        total.raw_duplicates += f.raw_duplicates
        total.answers_5xx += f.answers_5xx
        total.peak_rss_web_mib = max(total.peak_rss_web_mib, f.peak_rss_web_mib)
        total.peak_rss_worker_mib = max(total.peak_rss_worker_mib, f.peak_rss_worker_mib)
        total.problems += [f"{result.title}: {p}" for p in f.problems]
        total.extra[result.title] = f.extra
    return Result(
        4, "scale-out (2 web + 3 workers: crash, duplicates)", "postgresql",
        all(r.passed for r in results), total, time.monotonic() - started,
        details=[r.line() for r in results],
    )


# -- 2: outage ----------------------------------------------------------------------------


def outage(options: Options) -> Result:
    """Slack and HotGlue down for a while: all completes after; a longer outage parks
    actions dead and bulk replay completes them."""
    sizes = options.sizes
    started = time.monotonic()
    figures = Figures()
    templates = load_templates(options.payloads)
    topology = Topology(database=options.database, settings=settings_for(sizes))
    first = build(
        templates, webhooks=sizes.outage_webhooks, tenants=sizes.outage_tenants, seed=options.seed + 2, action_heavy=True
    )
    second = build(
        templates, webhooks=sizes.outage_webhooks // 2, tenants=sizes.outage_tenants // 2, seed=options.seed + 3,
        action_heavy=True,
    )
    # Distinct tenants in the second batch (so every effect has distinct content).
    second.tenants = {k: v for k, v in second.tenants.items() if k not in first.tenants}
    second.deliveries = [d for d in second.deliveries if d.tenant in second.tenants]
    timeout = sizes.http_timeout
    topology.settings["HGW_RULES_FILE"] = str(rules_without_incidents(options.workdir))
    with Cluster(f"s2-outage-{options.database}", options.workdir, topology, postgres_url=options.postgres_url) as cluster:
        first.seed(cluster.hotglue)
        second.seed(cluster.hotglue)
        cluster.start()
        watchdog = Watchdog(cluster, figures)
        with RssSampler(cluster.services) as sampler:
            # Phase 1: an outage shorter than the retry budget.
            t0 = time.time()
            outage_end = t0 + sizes.outage_seconds
            cluster.slack.outage(until=t0 + sizes.slack_429_seconds, status=429, headers={"Retry-After": "5"})
            cluster.slack.outage(until=outage_end, status=503)
            cluster.hotglue.outage(until=outage_end, status=503, delay=timeout + 0.5, match="POST *")
            cluster.hotglue.outage(until=outage_end, status=500)
            sender = Sender(
                cluster.targets, _secret(), concurrency=options.concurrency, seed=options.seed,
                spread_seconds=sizes.outage_seconds * 0.9,
            )
            load = sender.send_all(first.deliveries)
            during = [
                a for o in load.outcomes for a in o.attempts if a.started < outage_end
            ]
            figures.extra["ingest_during_outage"] = _status_summary(during)
            options.log(f"  phase 1: sent {len(first.deliveries)} during the outage; {_status_summary(during)}")
            if not wait_drained(cluster, len(first.deliveries), 600, watchdog):
                figures.problem("not drained: phase 1 still open 600 s after the outage")
            events, actions = verify.load_rows(cluster.sessions())
            dead = [a for a in actions if a.state == "dead"]
            for action in dead:
                figures.problem(f"dead after recovery: {action.kind} {action.key}: {(action.last_error or '')[:160]}")
            phase1_retries = sum(max(0, a.attempts - 1) for a in actions)
            figures.extra["phase1_action_retries"] = phase1_retries

            # Phase 2: a longer outage than the retry budget, then bulk replay.
            budget = {"HGW_MAX_ATTEMPTS": "2", "HGW_RETRY_BASE_SECONDS": "0.5", "HGW_RETRY_MAX_SECONDS": "1"}
            for worker in cluster.workers:
                worker.stop()
                worker.env.update(budget)
                worker.start()
            t1 = time.time()
            long_end = t1 + sizes.long_outage_seconds
            cluster.slack.outage(until=long_end, status=503)
            cluster.hotglue.outage(until=long_end, status=503, match="PUT *")
            cluster.hotglue.outage(until=long_end, status=503, match="POST *")
            load2 = sender.send_all(second.deliveries)
            expected = len(first.deliveries) + len(second.deliveries)
            # Wait for the outage to pass and the queue to settle (dead actions are final).
            while time.time() < long_end:
                watchdog.check()
                time.sleep(0.5)
            if not wait_drained(cluster, expected, 300, watchdog):
                figures.problem("not drained: phase 2 still open after the long outage")
            before_replay, actions = verify.load_rows(cluster.sessions())
            parked = [a for a in actions if a.state == "dead"]
            figures.extra["parked_dead"] = len(parked)
            if not parked:
                figures.problem("no action parked: the long outage left no dead action")
            for worker in cluster.workers:
                worker.stop()
                worker.env.update({k: cluster.env()[k] for k in budget})
                worker.start()
            how = bulk_replay(cluster)
            figures.extra["bulk_replay"] = how
            options.log(f"  phase 2: {len(parked)} action(s) parked dead; bulk replay via {how}")
            if not wait_drained(cluster, expected, 300, watchdog):
                figures.problem("not drained: bulk replay did not complete")
            sampler.sample()
        combined = LoadResult(load.outcomes + load2.outcomes, load.seconds + load2.seconds)
        verify_all(figures, cluster, combined, None, order_events=before_replay)
        peers = verify.peer_writes(cluster.hotglue, cluster.slack)
        same, anywhere, smallest = verify.retry_after_violations(peers, {("slack", 429): 5.0})
        figures.extra["retry_after_violations"] = same
        figures.extra["requests_to_slack_inside_another_retry_after"] = anywhere
        figures.extra["smallest_wait_after_429_s"] = None if smallest == float("inf") else round(smallest, 3)
        if same:
            figures.problem(f"Retry-After: {same} request(s) repeated before their Retry-After passed")
        if smallest == float("inf"):
            figures.problem("Retry-After: no request was ever answered 429 and then repeated")
        non_2xx = [a for o in combined.outcomes for a in o.attempts if a.status is None or a.status >= 300]
        if non_2xx:
            figures.problem(f"ingest: {len(non_2xx)} answers were not 2xx: {_status_summary(non_2xx)}")
        finish_figures(figures, cluster, sampler)
        return Result(2, "outage", options.database, passed(figures, combined, allow_5xx=False), figures, time.monotonic() - started)


def rules_without_incidents(workdir: Path) -> Path:
    """The default rules file with ``[incidents] enabled = false``, written to ``workdir``.

    Scenario 2 checks Slack's 429 phase, the outage's first seconds: incidents would hold
    the alerts for the group wait and fold most of them, leaving too few posts in that
    window. Scenario 6 is the one that proves incidents.
    """
    from hotglue_webhooks.settings import DEFAULT_RULES_FILE

    text = Path(DEFAULT_RULES_FILE).read_text()
    changed, count = re.subn(r"(?m)^\[incidents\]\nenabled = true$", "[incidents]\nenabled = false", text)
    if count != 1:
        raise RuntimeError(f"{DEFAULT_RULES_FILE}: no '[incidents] enabled = true' to change")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "rules-without-incidents.toml"
    path.write_text(changed)
    return path


def _status_summary(attempts: list[Any]) -> str:
    counts: dict[str, int] = {}
    for attempt in attempts:
        key = str(attempt.status) if attempt.status is not None else "no answer"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{v}× {k}" for k, v in sorted(counts.items()))


def bulk_replay(cluster: Cluster) -> str:
    """Replay every dead action with ``hotglue-webhooks actions replay --yes``; without
    that command, :func:`hotglue_webhooks.worker.reopen_events`. Returns which was used."""
    env = cluster.env()
    done = subprocess.run(
        cli_argv("actions", "replay", "--yes"), env=env, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode == 0:
        last = (done.stdout.strip().splitlines() or [""])[-1]
        return f"hotglue-webhooks actions replay --yes ({last})"
    from datetime import UTC, datetime

    from hotglue_webhooks.worker import reopen_events

    sessions = cluster.sessions()
    with sessions() as session:
        event_ids = sorted(
            set(session.scalars(select(ActionRecord.event_id).where(ActionRecord.state.in_(("dead", "skipped")))))
        )
    reopen_events(sessions, event_ids, datetime.now(UTC))
    return (
        f"hotglue_webhooks.worker.reopen_events ({len(event_ids)} events): `actions replay` failed: "
        f"{(done.stderr or done.stdout).strip()[-300:]}"
    )


# -- 6: Slack noise and pacing ------------------------------------------------------------

# The message budget of issue 12, within the first five minutes of an outage.
BUDGET_SECONDS = 300.0
BUDGET_TOP_LEVEL = 15


def noise(options: Options) -> Result:
    """An outage of 300 tenants with one error, beside 10 distinct errors, with the default
    pacing and incidents, and a ``kill -9`` of the worker half-way: within the first 5
    minutes at most 15 top-level messages, every failing tenant named, each distinct error
    top-level on its own, ≥ 1 s between messages per channel; nothing lost."""
    sizes = options.sizes
    started = time.monotonic()
    figures = Figures()
    topology = Topology(database=options.database, settings=settings_for(sizes))
    workload, down, distinct = outage_and_distinct(
        load_templates(options.payloads), outage=sizes.noise_tenants, repeats=sizes.noise_repeats,
        resolved=sizes.noise_resolved, seed=options.seed + 6,
    )
    failures = [d for d in workload.deliveries if d.kind != "resolved"]
    successes = [d for d in workload.deliveries if d.kind == "resolved"]
    with Cluster(
        # Slack's limit, a little lenient (it tolerates short bursts): a post less than 0.9 s
        # after the previous accepted one in its channel gets 429 Retry-After: 1.
        f"s6-noise-{options.database}", options.workdir, topology, postgres_url=options.postgres_url, slack_rate_limit=0.9
    ) as cluster:
        workload.seed(cluster.hotglue)
        cluster.start()
        watchdog = Watchdog(cluster, figures)
        with RssSampler(cluster.services) as sampler:
            sender = Sender(
                cluster.targets, _secret(), concurrency=options.concurrency, seed=options.seed, spread_seconds=40.0,
            )
            first_sent = time.time()
            killer = threading.Thread(target=_kill_worker_half_way, args=(cluster, watchdog, len(failures)), daemon=True)
            killer.start()
            load = sender.send_all(failures)
            killer.join(timeout=BUDGET_SECONDS)
            if not cluster.worker_kill_times():
                figures.problem("kills: the worker was not killed half-way")
            if not wait_drained(cluster, len(failures), BUDGET_SECONDS + 120, watchdog):
                figures.problem("not drained: the outage's events still open")
            # A later job of some tenants: they recover in the incident's count.
            sender.spread_seconds = 0
            load2 = sender.send_all(successes)
            if not wait_drained(cluster, len(workload.deliveries), 300, watchdog):
                figures.problem("not drained: recoveries still open after 300 s")
            sampler.sample()
        combined = LoadResult(load.outcomes + load2.outcomes, load.seconds + load2.seconds)
        verify_all(figures, cluster, combined, None)
        measure_slack(figures, cluster, since=first_sent, outage=down, distinct=distinct)
        finish_figures(figures, cluster, sampler)
        return Result(
            6, "Slack noise and pacing", options.database, passed(figures, combined), figures,
            time.monotonic() - started,
        )


def _kill_worker_half_way(cluster: Cluster, watchdog: Watchdog, total: int) -> None:
    """``kill -9`` the worker once half of the failures are processed, then restart it."""
    deadline = time.monotonic() + BUDGET_SECONDS
    while time.monotonic() < deadline:
        events, open_events, _ = counts(cluster)
        if events - open_events >= total // 2:
            worker = cluster.workers[0]
            watchdog.paused.add(worker.name)
            try:
                cluster.kill9(worker)
                time.sleep(0.5)
                worker.start()
            finally:
                watchdog.paused.discard(worker.name)
            return
        time.sleep(0.2)


_LISTED = re.compile(r"•\s+(?:<[^|>]*\|)?([^\s<>|]+?)>?\s+on flow")
_ALERTED = re.compile(r"for tenant \*?([^\s*]+?)\*? on flow|for tenant \*([^*]+)\*")


def named_tenants(body: dict[str, Any]) -> set[str]:
    """Tenant ids a Slack message names: an incident thread's list, the incident's first
    tenants, or a tenant's own alert."""
    texts = [str(body.get("text") or "")]
    for block in body.get("blocks") or []:
        if isinstance(block, dict) and isinstance(block.get("text"), dict):
            texts.append(str(block["text"].get("text") or ""))
    names: set[str] = set()
    for text in texts:
        names.update(_LISTED.findall(text))
        for match in _ALERTED.findall(text):
            names.update(name for name in match if name)
        if text.startswith("*Tenants*: "):
            listed = text[len("*Tenants*: "):].split(" and ", 1)[0].split(" (", 1)[0]
            names.update(part.strip() for part in listed.split(","))
    return names


def measure_slack(figures: Figures, cluster: Cluster, *, since: float, outage: list[str], distinct: list[str]) -> None:
    """The message budget within :data:`BUDGET_SECONDS` of the first webhook: top-level
    posts, every failing tenant named, each distinct error top-level, the spacing of all
    messages (posts and updates, every attempt) per channel, 429s."""
    slack = cluster.slack
    calls = [r for r in slack.requests if r.path.endswith(("chat.postMessage", "chat.update"))]
    by_channel: dict[str, list[Any]] = {}
    for request in calls:
        body = request.json if isinstance(request.json, dict) else {}
        by_channel.setdefault(slack.channel_id(str(body.get("channel") or "")), []).append(request)
    too_close = 0
    smallest = float("inf")
    per_channel: dict[str, dict[str, Any]] = {}
    for channel, requests in by_channel.items():
        requests.sort(key=lambda r: r.received_at)
        gaps = [b.received_at - a.received_at for a, b in zip(requests, requests[1:], strict=False)]
        too_close += sum(1 for gap in gaps if gap < 1.0 - 0.02)
        smallest = min([smallest, *gaps])
        ok = [r for r in requests if slack.succeeded(r)]
        posts = [r for r in ok if r.path.endswith("chat.postMessage")]
        top = sum(1 for r in posts if not (r.json or {}).get("thread_ts"))
        per_channel[channel] = {
            "top_level": top, "replies": len(posts) - top, "updates": len(ok) - len(posts), "attempts": len(requests),
        }
    accepted = [r for r in calls if r.received_at - since <= BUDGET_SECONDS and slack.succeeded(r)]
    top_level = [r for r in accepted if r.path.endswith("chat.postMessage") and not (r.json or {}).get("thread_ts")]
    named: set[str] = set()
    for request in accepted:
        named |= named_tenants(request.json if isinstance(request.json, dict) else {})
    failing = set(outage) | set(distinct)
    unnamed = sorted(failing - named, key=int)
    top_texts = [str((r.json or {}).get("text") or "") for r in top_level]
    missing_errors = [
        error for _status, _tap, error in DISTINCT_ERRORS
        if sum(1 for text in top_texts if _slack_escaped(error) in text) != 1
    ]
    figures.extra["slack"] = {
        "per_channel": per_channel,
        "top_level_in_5_min": len(top_level),
        "messages_in_5_min": len(accepted),
        "tenants_named_in_5_min": len(named & failing),
        "failing_tenants": len(failing),
        "answered_429": len(slack.rate_limited),
        "smallest_gap_s": None if smallest == float("inf") else round(smallest, 3),
    }
    if len(top_level) > BUDGET_TOP_LEVEL:
        figures.problem(f"budget: {len(top_level)} top-level messages in the first 5 min (at most {BUDGET_TOP_LEVEL})")
    if unnamed:
        figures.problem(f"budget: {len(unnamed)} failing tenants not named in Slack within 5 min, e.g. {unnamed[:5]}")
    for error in missing_errors:
        figures.problem(f"budget: the distinct error {error[:80]!r} is not in exactly one top-level message")
    if too_close:
        figures.problem(f"pacing: {too_close} messages came less than 1 s after the previous one in their channel")
    if slack.rate_limited:
        figures.problem(f"pacing: Slack had to answer 429 {len(slack.rate_limited)} times (paced by retrying into 429s)")


def _slack_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
