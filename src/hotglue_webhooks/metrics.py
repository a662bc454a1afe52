"""Prometheus metrics: what the receiver counts, and the text behind ``GET /metrics``.

Counters and the ingest histogram live in the process that counts them. Under gunicorn
(several web processes) and ``serve`` (web + worker processes) they are kept in files
under ``PROMETHEUS_MULTIPROC_DIR``, which every process of one deployment must share and
which must be empty when the first of them starts: ``prometheus_dir.use_multiprocess_dir``
sets that up for the CLI. prometheus-client reads the variable when it is first imported,
so it must be set before anything imports this module.

Queue depth, the age of the oldest open work and the number of dead actions are read
from the database at scrape time, so they are the same whichever process answers.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks.prometheus_dir import MULTIPROC_ENV
from hotglue_webhooks.rules.model import LIFECYCLE_STATUSES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# HotGlue's lifecycle statuses (REFERENCE.md §1). Anything else is counted as "other",
# so a sender cannot grow the number of label values without bound.
KNOWN_STATUSES = frozenset(LIFECYCLE_STATUSES)

WEBHOOKS = Counter(
    "hgw_webhooks_received",
    "Webhook deliveries by outcome (accepted, duplicate, rejected, unavailable), "
    "rejection reason and HotGlue status.",
    ["outcome", "reason", "status"],
)
INGEST_SECONDS = Histogram(
    "hgw_ingest_duration_seconds",
    "Time from reading a webhook request to answering it.",
    ["outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ACTION_OUTCOMES = Counter(
    "hgw_action_outcomes",
    "Actions that ended, by kind and outcome (done, dry_run, dead, skipped, not_needed).",
    ["kind", "outcome"],
)
ACTION_RETRIES = Counter("hgw_action_retries", "Failed action attempts that will be retried.", ["kind"])
COMMANDS = Counter(
    "hgw_commands",
    "Commands of people (Slack clicks, dashboard forms) stored or refused, by command, origin and outcome "
    "(stored, repeat, not_allowed, refused).",
    ["command", "origin", "outcome"],
)
REPLAYS = Counter("hgw_replays", "Events reopened by a replay, by where it was asked for.", ["via"])
RECONCILED = Counter(
    "hgw_reconciled_stages",
    "Job stages recovered from HotGlue's job list by reconciliation (their webhooks never arrived), by status.",
    ["status"],
)
RECONCILE_PASSES = Counter(
    "hgw_reconcile_passes", "Reconciliation passes finished, by trigger (worker, cli).", ["trigger"]
)
RECONCILE_ERRORS = Counter("hgw_reconcile_errors", "Job lists a reconciliation pass could not read or trust.")
PURGE_RUNS = Counter("hgw_purge_runs", "Retention purges run (by the worker or the purge command).")
PURGED = Counter("hgw_purged", "Rows deleted by retention purges.", ["table"])


def status_label(status: object) -> str:
    """Return a HotGlue status as a bounded label value ("other" for unknown ones)."""
    if status is None:
        return "none"
    return status if isinstance(status, str) and status in KNOWN_STATUSES else "other"


def count_webhook(outcome: str, reason: str, status: object, seconds: float) -> None:
    """Count one webhook delivery and how long it took to answer."""
    counter, histogram = _webhook_children(outcome, reason, status_label(status))
    counter.inc()
    histogram.observe(seconds)


@functools.cache
def _webhook_children(outcome: str, reason: str, status: str) -> tuple[Counter, Histogram]:
    # labels() validates and looks the child up under a lock on every call; the label
    # values are bounded (outcomes, reasons, KNOWN_STATUSES + "other"/"none"), so keep them.
    return WEBHOOKS.labels(outcome=outcome, reason=reason, status=status), INGEST_SECONDS.labels(outcome=outcome)


def count_action(kind: str, outcome: str) -> None:
    """Count an action that ended (``done``, ``dry_run``, ``dead``, ``skipped``, ``not_needed``)."""
    ACTION_OUTCOMES.labels(kind=kind, outcome=outcome).inc()


def count_retry(kind: str) -> None:
    """Count a failed attempt that will be retried."""
    ACTION_RETRIES.labels(kind=kind).inc()


def count_command(command: str, origin: str, outcome: str) -> None:
    """Count one click or dashboard command: ``outcome`` stored, repeat, not_allowed or
    refused (a 4xx; ``command`` is then ``unknown`` when none was read)."""
    COMMANDS.labels(command=command, origin=origin, outcome=outcome).inc()


def count_replays(via: str, events: int) -> None:
    """Count ``events`` reopened by a replay asked for ``via`` dashboard, api or cli."""
    REPLAYS.labels(via=via).inc(events)


def count_reconciled(status: object) -> None:
    """Count one stage stored by reconciliation."""
    RECONCILED.labels(status=status_label(status)).inc()


def count_reconcile_pass(trigger: str, errors: int) -> None:
    """Count one finished reconciliation pass and the pairs it could not read."""
    RECONCILE_PASSES.labels(trigger=trigger).inc()
    if errors:
        RECONCILE_ERRORS.inc(errors)


def count_purge(events: int, actions: int, rejections: int) -> None:
    """Count one purge run and what it deleted."""
    PURGE_RUNS.inc()
    PURGED.labels(table="events").inc(events)
    PURGED.labels(table="actions").inc(actions)
    PURGED.labels(table="rejections").inc(rejections)


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time: queue depth and age, dead actions."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        from hotglue_webhooks.storage.queries import dead_action_count, queue_state

        up = GaugeMetricFamily("hgw_database_up", "1 when the database answered this scrape.")
        try:
            queue = queue_state(self.sessions, datetime.now(UTC))
            dead = dead_action_count(self.sessions)
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("hgw_queue_depth", "Open events (the work queue) by state.", labels=["state"])
        for state, count in sorted(queue.depth.items()):
            depth.add_metric([state], count)
        yield depth
        yield GaugeMetricFamily(
            "hgw_queue_oldest_open_age_seconds",
            "Age of the oldest event not yet processed to the end (0 when none).",
            value=queue.oldest_open_age_seconds,
        )
        yield GaugeMetricFamily(
            "hgw_queue_lag_seconds",
            "How long the oldest due event has waited for a worker (0 when none is due).",
            value=queue.oldest_due_age_seconds,
        )
        yield GaugeMetricFamily("hgw_dead_actions", "Actions parked as dead, waiting for a replay.", value=dead)
        yield from self._gap()

    def _gap(self) -> Iterator[Metric]:
        from hotglue_webhooks.storage.reconciled import stages_by_source

        try:
            by_source = stages_by_source(self.sessions)
        except SQLAlchemyError:
            return
        stages = GaugeMetricFamily(
            "hgw_terminal_stages_stored",
            "Stored JOB_COMPLETED and *_FAILED stages by source (webhook, or reconciled: the webhook never arrived).",
            labels=["source"],
        )
        for source in ("webhook", "reconciled"):
            stages.add_metric([source], by_source.get(source, 0))
        yield stages
        total = sum(by_source.values())
        yield GaugeMetricFamily(
            "hgw_webhook_gap_ratio",
            "Share of the stored terminal stages whose webhook never arrived (found by reconciliation).",
            value=by_source.get("reconciled", 0) / total if total else 0.0,
        )


class _Forward(Collector):
    """Expose another registry's metrics (this process's, when not multi-process)."""

    def __init__(self, source: Iterable[Metric] | CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        yield from self.source.collect() if isinstance(self.source, CollectorRegistry) else self.source


def render(sessions: sessionmaker[Session]) -> bytes:
    """Return every metric in the Prometheus text format (all processes' counters when
    ``PROMETHEUS_MULTIPROC_DIR`` is set, this process's otherwise)."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(DatabaseCollector(sessions))
    return generate_latest(registry)
