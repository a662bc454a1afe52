"""A top-of-the-hour burst (issue 11): realistic job lifecycles and slow peers.

A few hundred tenants on hourly schedules start their jobs at once. Every job posts its
stages (JOB_CREATED, SYNC_STARTED, SYNC_SUCCESS, ETL_STARTED, ETL_SUCCESS,
EXPORT_STARTED, JOB_COMPLETED: REFERENCE.md §1); a few percent fail at one stage and post
nothing after it; a few are full syncs (their JOB_COMPLETED re-enables a schedule, links
the target and starts the next job). :func:`lifecycles` builds the deliveries in the
order HotGlue sends them (stage by stage across the burst); :class:`Latency` is how
slowly a fake peer answers (``bench/fakepeers.py --hotglue-latency/--slack-latency``).

Failed jobs get a job id starting ``trace-``: the fake Slack notes when the first message
naming one arrives, which gives receipt → Slack for every failure alert.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from dataclasses import dataclass
from typing import Any

import httpx

from bench.payloads import CREDENTIALS, ENV, fixture, signed

STAGES = ("JOB_CREATED", "SYNC_STARTED", "SYNC_SUCCESS", "ETL_STARTED", "ETL_SUCCESS", "EXPORT_STARTED", "JOB_COMPLETED")
# Where a failing job stops, and the fixture whose error text it carries.
FAILURES = (("SYNC_FAILED", "sync_failed__shopify_500"), ("ETL_FAILED", "etl_failed__transform"),
            ("EXPORT_FAILED", "export_failed__exact_crash"))
FLOWS = ("Xk2pQ9aLm", "Rb7TnE4wz", "Vd3HsW8qc")
TENANT_PATTERN = r"bt\d{5}"
"""Burst tenants are ``bt00000`` …: the fake peers find a request's tenant by this."""


@dataclass(frozen=True)
class Latency:
    """A peer's answer time: ``p50`` seconds (each answer uniform in 0.5–1.5 × p50), and
    a share ``tail_share`` of answers taking ``tail_seconds`` (± 25 %) instead.

    Written ``P50[,SHARE@SECONDS]``, e.g. ``0.3,0.05@3`` (HotGlue, REFERENCE.md §9) or
    ``0`` (answers at once).
    """

    p50: float = 0.0
    tail_share: float = 0.0
    tail_seconds: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Latency:
        """``P50[,SHARE@SECONDS]`` → Latency; ValueError with the text for anything else."""
        found = re.fullmatch(r"\s*([0-9.]+)\s*(?:,\s*([0-9.]+)\s*@\s*([0-9.]+)\s*)?", text)
        if not found:
            raise ValueError(f"latency {text!r}: expected P50[,SHARE@SECONDS], e.g. 0.3,0.05@3")
        p50, share, tail = (float(g) if g else 0.0 for g in found.groups())
        if not 0 <= share <= 1:
            raise ValueError(f"latency {text!r}: the tail share must be within 0..1")
        return cls(p50, share, tail)

    def __str__(self) -> str:
        if not self.p50 and not self.tail_share:
            return "0"
        tail = f", {self.tail_share:.0%} at {self.tail_seconds:g} s" if self.tail_share else ""
        return f"p50 {self.p50 * 1000:.0f} ms{tail}"

    @property
    def zero(self) -> bool:
        return self.p50 == 0 and (self.tail_share == 0 or self.tail_seconds == 0)

    def draw(self, rng: random.Random) -> float:
        """One answer time, seconds."""
        if self.tail_share and rng.random() < self.tail_share:
            return self.tail_seconds * rng.uniform(0.75, 1.25)
        return self.p50 * rng.uniform(0.5, 1.5)


@dataclass(frozen=True)
class Delivery:
    """One webhook of the burst: its body, and the traced job id when it is a failure."""

    body: bytes
    tenant: str
    status: str
    traced_job: str | None = None


def tenant_name(index: int) -> str:
    return f"bt{index:05d}"


def lifecycles(
    jobs: int, nonce: str, *, tenants: int | None = None, failing: float = 0.06, full_syncs: float = 0.03,
    seed: int = 11,
) -> list[Delivery]:
    """The deliveries of ``jobs`` jobs of ``tenants`` tenants (default one per 3 jobs,
    each job on one of the tenant's flows), in sending order.

    Shares ``failing`` and ``full_syncs`` are of all jobs; a failing job stops at a
    random one of SYNC/ETL/EXPORT. Job ids are ``{nonce}-{n}`` (``trace-{nonce}-{n}``
    when failing), so every run's stages are first deliveries.
    """
    rng = random.Random(seed)
    tenants = tenants or max(1, (jobs + 2) // 3)
    templates = {name: fixture(name) for name in ("job_completed__incremental", "job_completed__full_sync",
                                                   *(name for _, name in FAILURES))}
    failing_jobs = set(rng.sample(range(jobs), round(jobs * failing)))
    rest = [n for n in range(jobs) if n not in failing_jobs]
    full_jobs = set(rng.sample(rest, min(len(rest), round(jobs * full_syncs))))
    per_job: list[list[Delivery]] = []
    for n in range(jobs):
        tenant = tenant_name(n % tenants)
        flow_id = FLOWS[(n // tenants) % len(FLOWS)]
        failed = n in failing_jobs
        job_id = f"trace-{nonce}-{n}" if failed else f"{nonce}-{n}"
        stages: list[tuple[str, str]] = [(status, "job_completed__incremental") for status in STAGES]
        if failed:
            status, name = rng.choice(FAILURES)
            stop = {"SYNC_FAILED": 2, "ETL_FAILED": 4, "EXPORT_FAILED": 6}[status]
            stages = stages[:stop] + [(status, name)]
        elif n in full_jobs:
            stages = [(status, "job_completed__full_sync") for status in STAGES]
        deliveries = []
        for step, (status, name) in enumerate(stages):
            body = dict(templates[name])
            body.update(
                job_id=job_id, tenant=tenant, started_by=tenant, flow_id=flow_id, env_id=ENV, status=status,
                s3_root=f"{tenant}/flows/{flow_id}/jobs/burst/{job_id}",
                last_updated=f"2026-12-07T10:{step:02d}:{n % 60:02d}.{n:06d}+00:00",
            )
            if isinstance(body.get("message"), str):
                body["message"] = body["message"].replace(str(templates[name]["job_id"]), job_id)
            if not status.endswith("_FAILED"):
                body["message"] = None
            deliveries.append(Delivery(json.dumps(body, separators=(",", ":")).encode(), tenant, status,
                                       job_id if failed and status.endswith("_FAILED") else None))
        per_job.append(deliveries)
    # HotGlue sends stage by stage: every job's first stage, then every job's second, …
    ordered: list[Delivery] = []
    for step in range(len(STAGES)):
        ordered += [deliveries[step] for deliveries in per_job if step < len(deliveries)]
    return ordered


def seed_ops(deliveries: list[Delivery]) -> list[dict[str, Any]]:
    """State for the fake HotGlue (``bench/fakepeers.py --seed``): every burst tenant's
    flows have an hourly schedule (DISABLED for those that finish a full sync, so the
    full sync has one to enable) and a config with credentials."""
    tenants = sorted({d.tenant for d in deliveries})
    full = {d.tenant for d in deliveries if d.status == "JOB_COMPLETED" and b'"full_sync"' in d.body}
    ops: list[dict[str, Any]] = []
    for tenant in tenants:
        ops.append({"op": "tenant_config", "args": [ENV, tenant, {"apiCredentials": CREDENTIALS}]})
        for flow_id in FLOWS:
            state = "DISABLED" if tenant in full else "ENABLED"
            ops.append({"op": "schedule", "args": [ENV, flow_id, tenant, "cron(0 * * * ? *)", state]})
    return ops


async def _send_all(url: str, deliveries: list[Delivery], secret: str, connections: int) -> dict[str, int]:
    answers: dict[str, int] = {}
    queue: asyncio.Queue[Delivery] = asyncio.Queue()
    for delivery in deliveries:
        queue.put_nowait(delivery)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def sender() -> None:
            while not queue.empty():
                delivery = queue.get_nowait()
                try:
                    answer = await client.post(url, content=delivery.body, headers=signed(delivery.body, secret))
                    key = str(answer.status_code)
                except httpx.HTTPError as error:
                    key = type(error).__name__
                answers[key] = answers.get(key, 0) + 1

        await asyncio.gather(*(sender() for _ in range(connections)))
    return answers


def send_all(url: str, deliveries: list[Delivery], secret: str, connections: int = 32) -> dict[str, int]:
    """POST every delivery, signed, in order, ``connections`` at a time; answers counted by
    status code (or by the httpx error's name)."""
    return asyncio.run(_send_all(url, deliveries, secret, connections))
