"""Scenario 7 (issue 13): webhooks lost at the source, recovered by one reconciliation pass.

1,000 jobs (100 with ``--small``) of 100 tenants (10), each a ``JOB_CREATED`` and a
terminal stage (``JOB_COMPLETED`` or ``SYNC_FAILED``). HotGlue's job list (the fake's,
seeded per (flow, tenant)) holds every job; 10 % of the terminal webhooks are dropped on
purpose, the rest are sent for real to ``hotglue-webhooks web`` and processed by
``worker``. Then ``hotglue-webhooks reconcile`` runs once. Passed when every dropped stage
is stored once as ``reconciled`` and processed to the end, its effects reached the fakes
once, nothing stored before changed (events, actions, requests), and a second pass finds
nothing.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from chaos.cluster import Cluster, Topology
from chaos.load import Sender
from chaos.procs import RssSampler, run_cli
from chaos.scenarios import SMALL, Options, Result, Watchdog, _secret, finish_figures, passed, settings_for, wait_drained
from chaos.verify import Figures
from chaos.workload import SHOP_FLOW, Delivery, _delivery, _Ids, _iso, load_templates
from hotglue_webhooks.storage.models import ActionRecord, Event

ENV = "production.hotglue.example.com"
DROPPED_SHARE = 0.10


def _jobs(templates: dict[str, dict[str, Any]], jobs: int, tenants: int, seed: int) -> tuple[list[Delivery], list[Delivery]]:
    """(JOB_CREATED deliveries, terminal deliveries), one of each per job."""
    rng = random.Random(seed)
    ids = _Ids(rng)
    names = ids.tenants(tenants)
    # Ending a few minutes ago: no tenant is past its rhythm (silence is not this scenario's).
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5 * jobs, minutes=8)
    created: list[Delivery] = []
    terminal: list[Delivery] = []
    moment = start
    for number in range(jobs):
        tenant = names[number % tenants]
        moment += timedelta(seconds=rng.randint(2, 8))
        job_id = ids.job_id()
        failed = rng.random() < 0.4
        template = templates["sync_failed__shopify_500" if failed else "job_completed__incremental"]
        payload = copy.deepcopy(template)
        payload.update(
            job_id=job_id, tenant=tenant, started_by=tenant, flow_id=SHOP_FLOW,
            s3_root=f"{tenant}/flows/{SHOP_FLOW}/jobs/{moment:%Y/%m/%d/%H/%M}/{job_id}",
            start_time=_iso(moment), job_name=f"{SHOP_FLOW}-shopify-{job_id}",
        )
        if failed:  # its own error line, so each alert is its own thread
            payload["message"] = f"singer_sdk.exceptions.RetriableAPIError: 500 Server Error for job {job_id}"
        first = {**payload, "status": "JOB_CREATED", "last_updated": _iso(moment)}
        last = {**payload, "status": payload["status"], "last_updated": _iso(moment + timedelta(minutes=3))}
        created.append(_delivery(len(created) + len(terminal), first, "job_created"))
        terminal.append(_delivery(len(created) + len(terminal), last, "sync_failed" if failed else "completed"))
    return created, terminal


def _snapshot(cluster: Cluster) -> tuple[dict[int, tuple[Any, ...]], dict[int, tuple[Any, ...]]]:
    with cluster.sessions()() as session:
        events = {
            row.id: (row.dedupe_key, row.state, row.decided_at, row.processed_at, row.source)
            for row in session.execute(select(Event.id, Event.dedupe_key, Event.state, Event.decided_at,
                                              Event.processed_at, Event.source))
        }
        actions = {
            row.id: (row.idempotency_key, row.state, row.attempts, row.completed_at)
            for row in session.execute(select(ActionRecord.id, ActionRecord.idempotency_key, ActionRecord.state,
                                              ActionRecord.attempts, ActionRecord.completed_at))
        }
    return events, actions


def _requests(cluster: Cluster) -> int:
    return len(cluster.slack.requests) + len([r for r in cluster.hotglue.requests if r.method != "GET"])


def reconciliation(options: Options) -> Result:
    """Scenario 7: see the module docstring."""
    small = options.sizes is SMALL
    jobs, tenants = (100, 10) if small else (1000, 100)
    started = time.monotonic()
    figures = Figures()
    topology = Topology(
        database=options.database,
        settings=settings_for(
            options.sizes,
            # The pass under test is the CLI's; Slack pacing is scenario 6's business.
            HGW_RECONCILE_INTERVAL_SECONDS="0",
            HGW_RECONCILE_MAX_RPS="200",
            HGW_SLACK_MIN_INTERVAL_SECONDS="0",
        ),
    )
    created, terminal = _jobs(load_templates(options.payloads), jobs, tenants, options.seed + 7)
    rng = random.Random(options.seed)
    dropped = set(rng.sample(range(len(terminal)), round(len(terminal) * DROPPED_SHARE)))
    sent = created + [d for i, d in enumerate(terminal) if i not in dropped]
    lost = {terminal[i].key for i in dropped}
    with Cluster(f"s7-reconcile-{options.database}", options.workdir, topology, postgres_url=options.postgres_url) as cluster:
        lists: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for delivery in reversed(terminal):
            lists[delivery.tenant].append(json.loads(delivery.body))
        for tenant, listed in lists.items():
            cluster.hotglue.seed_jobs(ENV, SHOP_FLOW, tenant, listed)
        cluster.start()
        watchdog = Watchdog(cluster, figures)
        with RssSampler(cluster.services) as sampler:
            load = Sender(cluster.targets, _secret(), concurrency=options.concurrency, seed=options.seed).send_all(sent)
            options.log(f"  sent {len(sent)} webhooks ({len(dropped)} terminal ones dropped) in {load.seconds:.0f} s")
            if not wait_drained(cluster, len(sent), 600, watchdog):
                figures.problem("not drained: the webhooks' events or actions still open after 600 s")
            events_before, actions_before = _snapshot(cluster)
            requests_before = _requests(cluster)

            summary = run_cli(cluster.env(), "reconcile", "--since", "24h", timeout=600)
            options.log("  " + " · ".join(summary.strip().splitlines()))
            if not wait_drained(cluster, len(sent) + len(dropped), 600, watchdog):
                figures.problem("not drained: recovered events or their actions still open after 600 s")
            second = run_cli(cluster.env(), "reconcile", "--since", "24h", timeout=600)
            sampler.sample()
        events_after, actions_after = _snapshot(cluster)
        figures.acknowledged = load.acknowledged
        figures.stored = len(events_after)
        _verify(figures, cluster, lost, events_before, actions_before, events_after, actions_after)
        new_requests = _requests(cluster) - requests_before
        new_actions = [key for aid, (key, *_rest) in actions_after.items() if aid not in actions_before]
        figures.actions = len(new_actions)
        figures.extra.update(
            jobs=jobs, dropped=len(dropped), recovered_requests=new_requests, recovered_actions=len(new_actions),
        )
        if new_requests != len(new_actions):
            figures.problem(f"effects: {new_requests} requests reached the fakes for {len(new_actions)} new actions")
        if f"stages recovered: {len(dropped)} " not in summary:
            figures.problem(f"summary: the pass did not report {len(dropped)} stages recovered")
        if "stages recovered: 0 (none)" not in second:
            figures.problem("second pass: it recovered something again")
        finish_figures(figures, cluster, sampler)
        figures.extra["gap"] = f"{len(dropped)} of {len(terminal)} terminal webhooks never arrived"
        ok = passed(figures) and figures.acknowledged == len(sent)
        return Result(7, "lost webhooks, one reconciliation pass", options.database, ok, figures, time.monotonic() - started)


def _verify(
    figures: Figures,
    cluster: Cluster,
    lost: set[tuple[str, str]],
    events_before: dict[int, tuple[Any, ...]],
    actions_before: dict[int, tuple[Any, ...]],
    events_after: dict[int, tuple[Any, ...]],
    actions_after: dict[int, tuple[Any, ...]],
) -> None:
    for event_id, row in events_before.items():
        if events_after.get(event_id) != row:
            figures.problem(f"touched: event {event_id} changed during reconciliation")
    for action_id, row in actions_before.items():
        if actions_after.get(action_id) != row:
            figures.problem(f"touched: action {action_id} changed during reconciliation")
    with cluster.sessions()() as session:
        found = list(session.execute(
            select(Event.id, Event.s3_root, Event.status, Event.state).where(Event.source == "reconciled")
        ))
        open_actions = session.scalars(
            select(ActionRecord.idempotency_key)
            .join(Event, Event.id == ActionRecord.event_id)
            .where(Event.source == "reconciled", ActionRecord.state != "done")
        ).all()
    keys = [(row.s3_root, row.status) for row in found]
    figures.executed_once = sum(1 for row in found if row.state == "done")
    figures.lost = len(lost - set(keys))
    figures.duplicated = len(keys) - len(set(keys)) + len(set(keys) - lost)
    if figures.lost:
        figures.problem(f"lost: {figures.lost} dropped stages were not recovered")
    if set(keys) - lost:
        figures.problem(f"extra: {len(set(keys) - lost)} stages stored that had arrived or never ended")
    if figures.executed_once != len(found):
        figures.problem(f"processed: {len(found) - figures.executed_once} recovered events not done")
    if open_actions:
        figures.problem(f"actions: {len(open_actions)} actions of recovered events not done, e.g. {open_actions[0]}")
