"""Signed-load material: realistic job lifecycles of many tenants, built from the shared payloads.

Every job gets its own ``job_id`` and ``s3_root`` and sends one webhook per lifecycle stage
(REFERENCE.md §1), with ``last_updated`` increasing along the stages and along a tenant's
jobs. The mix is chosen so that every effect has distinct content (each alert names its
job; each tenant has at most one full sync, one Exact token failure and one buy-order
report), which lets the harness recognise a repeated request at the fakes.
"""

from __future__ import annotations

import copy
import json
import random
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hotglue_webhooks.fakes import FakeHotGlue

ENV = "production.hotglue.example.com"
SHOP_FLOW = "Xk2pQ9aLm"  # source flow whose full sync links the optiply target (rules.toml)
EXACT_READ_FLOW = "Rb7TnE4wz"
EXACT_EXPORT_FLOW = "Vd3HsW8qc"
SHOP_SCHEDULE = "cron(0 */4 * * ? *)"
CREDENTIALS = {
    "username": "api@shop.example",
    "password": "pw-chaos-secret",
    "client_id": "cid-chaos",
    "client_secret": "cs-chaos-secret",
    "account_id": 98,
}

SUCCESS_STAGES = (
    "JOB_CREATED",
    "SYNC_STARTED",
    "SYNC_SUCCESS",
    "ETL_STARTED",
    "ETL_SUCCESS",
    "EXPORT_STARTED",
    "JOB_COMPLETED",
)
_FAILED_AT = {
    "DISCOVER_FAILED": 1,
    "SYNC_FAILED": 2,
    "ETL_FAILED": 4,
    "EXPORT_FAILED": 6,
}


def default_payload_dir() -> Path:
    """Return the shared payloads of the repository this package runs from."""
    here = Path(__file__).resolve()
    for candidate in (
        here.parents[1] / "tests" / "fixtures" / "payloads",
        here.parents[2] / "shared" / "hotglue" / "payloads",
    ):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("tests/fixtures/payloads not found: pass --payloads DIR")


def load_templates(directory: Path) -> dict[str, dict[str, Any]]:
    """Read every ``<status>__<variant>.json`` payload in ``directory`` by file stem."""
    templates = {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}
    if "job_completed__incremental" not in templates:
        raise FileNotFoundError(f"{directory} does not hold the shared HotGlue payloads")
    return templates


@dataclass(frozen=True)
class Delivery:
    """One webhook to send: its exact bytes and what identifies it."""

    seq: int
    tenant: str
    job_id: str
    s3_root: str
    status: str
    last_updated: datetime
    kind: str
    body: bytes

    @property
    def key(self) -> tuple[str, str]:
        """The receiver's dedupe identity of this delivery: (s3_root, status)."""
        return (self.s3_root, self.status)


@dataclass
class Tenant:
    """A tenant of the load and the effects its jobs should have."""

    tenant: str
    kind: str  # "shop" or "exact"
    tap: str = "shopify"
    config_valid: bool = True
    full_sync: bool = False
    token_401: bool = False
    buy_orders: bool = False


@dataclass
class Workload:
    deliveries: list[Delivery]
    tenants: dict[str, Tenant]
    jobs: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def seed(self, hotglue: FakeHotGlue) -> None:
        """Give fake HotGlue the state these tenants have in production."""
        for tenant in self.tenants.values():
            if tenant.kind == "shop":
                hotglue.set_schedule(ENV, SHOP_FLOW, tenant.tenant, SHOP_SCHEDULE, "DISABLED")
                password = CREDENTIALS["password"] if tenant.config_valid else ""
                hotglue.set_tenant_config(ENV, tenant.tenant, {"apiCredentials": {**CREDENTIALS, "password": password}})
            else:
                hotglue.link_flow(ENV, tenant.tenant, EXACT_READ_FLOW)
                hotglue.link_flow(ENV, tenant.tenant, EXACT_EXPORT_FLOW)
                hotglue.set_schedule(ENV, EXACT_READ_FLOW, tenant.tenant, "cron(30 * * * ? *)", "ENABLED")
                hotglue.set_schedule(ENV, EXACT_EXPORT_FLOW, tenant.tenant, "cron(0 8 * * ? *)", "ENABLED")
                hotglue.set_tenant_config(ENV, tenant.tenant, {"apiCredentials": dict(CREDENTIALS)})


class _Ids:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seen: set[str] = set()

    def job_id(self) -> str:
        alphabet = string.ascii_letters + string.digits
        while True:
            value = "".join(self.rng.choice(alphabet) for _ in range(6))
            if value not in self.seen:
                self.seen.add(value)
                return value

    def tenants(self, count: int) -> list[str]:
        values: set[str] = set()
        while len(values) < count:
            values.add(str(self.rng.randint(1000, 99999)))
        return sorted(values, key=int)


# (job kind, template, weight) for the jobs after a tenant's first; "action-heavy" loads
# (the outage scenario) weigh failures more.
_SHOP_JOBS = (
    ("incremental", "job_completed__incremental", 72),
    ("sync_failed", "sync_failed__shopify_500", 10),
    ("etl_failed", "etl_failed__transform", 6),
    ("encoded_ignore", "job_completed__incremental_encoded_ignore", 4),
)
_EXACT_JOBS = (
    ("exact_incremental", "job_completed__incremental", 45),
    ("export_incremental", "job_completed__incremental", 30),
    ("export_crash", "export_failed__exact_crash", 8),
    ("exact_sync_failed", "sync_failed__shopify_500", 5),
)
_FULL_SYNC_VARIANTS = (
    "job_completed__full_sync",
    "job_completed__incremental_named_full_sync",
    "job_completed__incremental_encoded_full_sync",
)


def build(
    templates: dict[str, dict[str, Any]],
    *,
    webhooks: int,
    tenants: int,
    seed: int,
    action_heavy: bool = False,
    start: datetime | None = None,
) -> Workload:
    """Return about ``webhooks`` deliveries of ``tenants`` tenants' jobs, oldest stage first."""
    rng = random.Random(seed)
    ids = _Ids(rng)
    start = start or datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    plans: dict[str, Tenant] = {}
    for number, tenant in enumerate(ids.tenants(tenants)):
        if number % 5 < 3:
            plan = Tenant(tenant, "shop", tap="woocommerce" if rng.random() < 0.2 else "shopify")
            plan.config_valid = rng.random() < 0.8
            plan.full_sync = rng.random() < 0.35
        else:
            plan = Tenant(tenant, "exact", tap="exact")
            plan.token_401 = rng.random() < 0.2
            plan.buy_orders = rng.random() < 0.5
        plans[tenant] = plan

    # Each tenant's jobs in order: the special ones once, the rest drawn from the mix.
    queues: dict[str, list[str]] = {}
    for plan in plans.values():
        special: list[str] = []
        if plan.full_sync:
            special.append("full_sync")
        if plan.buy_orders:
            special.append("buy_orders")
        queues[plan.tenant] = special
    clocks = {t: start + timedelta(seconds=rng.randint(0, 3600)) for t in plans}
    deliveries: list[tuple[datetime, int, dict[str, Any], str, str]] = []
    kinds: dict[str, int] = {}
    jobs = 0
    order = 0
    tenant_ids = list(plans)
    total = 0
    # Room for each Exact token failure (3 stages), added at the end.
    budget = webhooks - 3 * sum(1 for plan in plans.values() if plan.token_401)
    while total < budget:
        tenant = rng.choice(tenant_ids)
        plan = plans[tenant]
        kind = queues[tenant].pop(0) if queues[tenant] else _draw(rng, plan, action_heavy)
        job = _job(templates, plan, kind, ids.job_id(), clocks[tenant], rng)
        if job is None:
            continue
        jobs += 1
        kinds[kind] = kinds.get(kind, 0) + 1
        for payload in job:
            order += 1
            deliveries.append((_parse(payload["last_updated"]), order, payload, tenant, kind))
            total += 1
            if total >= budget:
                break
        clocks[tenant] = _parse(job[-1]["last_updated"]) + timedelta(minutes=rng.randint(5, 240))
    # The Exact token failure is a tenant's last job: its schedules are off afterwards.
    for plan in plans.values():
        if plan.token_401 and total + 3 <= webhooks:
            job = _job(templates, plan, "token_401", ids.job_id(), clocks[plan.tenant], rng)
            assert job is not None
            jobs += 1
            kinds["token_401"] = kinds.get("token_401", 0) + 1
            for payload in job:
                order += 1
                deliveries.append((_parse(payload["last_updated"]), order, payload, plan.tenant, "token_401"))
                total += 1
        elif plan.token_401:
            plan.token_401 = False
    deliveries.sort(key=lambda item: (item[0], item[1]))
    made = [
        Delivery(
            seq=n,
            tenant=tenant,
            job_id=payload["job_id"],
            s3_root=payload["s3_root"],
            status=payload["status"],
            last_updated=moment,
            kind=kind,
            body=json.dumps(payload, indent=2).encode(),
        )
        for n, (moment, _, payload, tenant, kind) in enumerate(deliveries)
    ]
    # A tenant whose planned job did not fit in the load does not have that effect.
    sent_kinds = {(d.tenant, d.kind, d.status) for d in made}
    for plan in plans.values():
        plan.full_sync = plan.full_sync and (plan.tenant, "full_sync", "JOB_COMPLETED") in sent_kinds
        plan.buy_orders = plan.buy_orders and (plan.tenant, "buy_orders", "JOB_COMPLETED") in sent_kinds
    return Workload(made, plans, jobs=jobs, kinds=kinds)


def _draw(rng: random.Random, plan: Tenant, action_heavy: bool) -> str:
    table = _SHOP_JOBS if plan.kind == "shop" else _EXACT_JOBS
    weights = [w * 6 if action_heavy and ("fail" in k or "crash" in k) else w for k, _, w in table]
    return rng.choices([k for k, _, _ in table], weights=weights)[0]


def _template_for(kind: str, plan: Tenant, rng: random.Random) -> tuple[str, str, str | None, str]:
    """Return (template, flow_id, tap, final status) of a job kind."""
    if kind == "full_sync":
        name = "job_completed__auto_sync" if plan.tap == "woocommerce" else rng.choice(_FULL_SYNC_VARIANTS)
        return name, SHOP_FLOW, plan.tap, "JOB_COMPLETED"
    if plan.kind == "shop":
        template = dict((k, t) for k, t, _ in _SHOP_JOBS)[kind]
        final = {"sync_failed": "SYNC_FAILED", "etl_failed": "ETL_FAILED"}.get(kind, "JOB_COMPLETED")
        return template, SHOP_FLOW, plan.tap, final
    if kind == "token_401":
        return "sync_failed__exact_token_401", EXACT_READ_FLOW, "exact", "SYNC_FAILED"
    if kind == "buy_orders":
        return "job_completed__exact_buy_orders_failed", EXACT_EXPORT_FLOW, "optiply", "JOB_COMPLETED"
    if kind == "export_crash":
        return "export_failed__exact_crash", EXACT_EXPORT_FLOW, "optiply", "EXPORT_FAILED"
    if kind == "export_incremental":
        return "job_completed__incremental", EXACT_EXPORT_FLOW, "optiply", "JOB_COMPLETED"
    if kind == "exact_sync_failed":
        return "sync_failed__shopify_500", EXACT_READ_FLOW, "exact", "SYNC_FAILED"
    return "job_completed__incremental", EXACT_READ_FLOW, "exact", "JOB_COMPLETED"


def _job(
    templates: dict[str, dict[str, Any]],
    plan: Tenant,
    kind: str,
    job_id: str,
    started: datetime,
    rng: random.Random,
) -> list[dict[str, Any]] | None:
    """Return the payloads of one job, one per stage, oldest first."""
    name, flow_id, tap, final = _template_for(kind, plan, rng)
    if name not in templates:
        return None
    template = templates[name]
    stages = list(SUCCESS_STAGES) if final == "JOB_COMPLETED" else [*SUCCESS_STAGES[: _FAILED_AT[final]], final]
    target = "exact" if flow_id == EXACT_EXPORT_FLOW else "optiply"
    s3_root = f"{plan.tenant}/flows/{flow_id}/jobs/{started:%Y/%m/%d/%H/%M}/{job_id}"
    job_name = str(template.get("job_name") or "")
    # Keep a name that is not "{flow}-{tap}-{time}": it carries a marker ("Full Sync", digits).
    if job_name.startswith(str(template.get("flow_id"))):
        job_name = f"{flow_id}-{tap}-{started:%Y%m%d-%H%M%S}"
    moment = started
    payloads = []
    for stage in stages:
        moment += timedelta(seconds=rng.randint(5, 600), milliseconds=rng.randint(0, 999))
        payload = copy.deepcopy(template)
        payload.update(
            job_id=job_id,
            tenant=plan.tenant,
            started_by=plan.tenant,
            flow_id=flow_id,
            tap=tap,
            target=target,
            s3_root=s3_root,
            status=stage,
            job_name=job_name,
            start_time=_iso(started),
            last_updated=_iso(moment),
        )
        if stage != final:
            payload["message"] = None
            for report_key in ("target_state", "metrics"):
                payload.pop(report_key, None)
        payloads.append(payload)
    return payloads


def failures_in_a_minute(
    templates: dict[str, dict[str, Any]], *, failures: int, tenants: int, resolved: int, seed: int
) -> Workload:
    """Return ``failures`` SYNC_FAILED webhooks of ``tenants`` tenants (same error per tenant),
    then a JOB_COMPLETED of ``resolved`` of those tenants (scenario 6)."""
    rng = random.Random(seed)
    ids = _Ids(rng)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    names = ids.tenants(tenants)
    owners = names + [rng.choice(names) for _ in range(max(0, failures - tenants))]
    rng.shuffle(owners)
    plans = {t: Tenant(t, "shop") for t in names}
    deliveries: list[Delivery] = []
    moment = start
    template = templates["sync_failed__shopify_500"]
    for tenant in owners:
        moment += timedelta(milliseconds=rng.randint(50, 150))
        job_id = ids.job_id()
        payload = copy.deepcopy(template)
        payload.update(
            job_id=job_id,
            tenant=tenant,
            started_by=tenant,
            flow_id=SHOP_FLOW,
            s3_root=f"{tenant}/flows/{SHOP_FLOW}/jobs/{moment:%Y/%m/%d/%H/%M}/{job_id}",
            status="SYNC_FAILED",
            start_time=_iso(moment - timedelta(minutes=3)),
            last_updated=_iso(moment),
        )
        deliveries.append(_delivery(len(deliveries), payload, "sync_failed"))
    done = templates["job_completed__incremental"]
    for tenant in names[:resolved]:
        moment += timedelta(milliseconds=rng.randint(50, 150))
        job_id = ids.job_id()
        payload = copy.deepcopy(done)
        payload.update(
            job_id=job_id,
            tenant=tenant,
            started_by=tenant,
            flow_id=SHOP_FLOW,
            s3_root=f"{tenant}/flows/{SHOP_FLOW}/jobs/{moment:%Y/%m/%d/%H/%M}/{job_id}",
            status="JOB_COMPLETED",
            start_time=_iso(moment - timedelta(minutes=3)),
            last_updated=_iso(moment),
        )
        deliveries.append(_delivery(len(deliveries), payload, "resolved"))
    return Workload(deliveries, plans, jobs=len(deliveries), kinds={"sync_failed": failures, "resolved": resolved})


def _delivery(seq: int, payload: dict[str, Any], kind: str) -> Delivery:
    return Delivery(
        seq=seq,
        tenant=payload["tenant"],
        job_id=payload["job_id"],
        s3_root=payload["s3_root"],
        status=payload["status"],
        last_updated=_parse(payload["last_updated"]),
        kind=kind,
        body=json.dumps(payload, indent=2).encode(),
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


# Ten errors of their own (scenario 6): distinct words, not numbers, since a signature
# strips numbers (rules/incidents.py); each on one tenant.
DISTINCT_ERRORS = (
    ("ETL_FAILED", "shopify", "ETL script failed: KeyError: 'sku'"),
    ("ETL_FAILED", "shopify", "ETL script failed: KeyError: 'vendor'"),
    ("ETL_FAILED", "woocommerce", "ETL script failed: ValueError: could not convert string to float: 'n/a'"),
    ("SYNC_FAILED", "woocommerce", "requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: https://shop.example/wp-json/wc/v3/orders"),
    ("SYNC_FAILED", "magento", "singer_sdk.exceptions.FatalAPIError: 403 Client Error: Forbidden for path: /rest/V1/products"),
    ("SYNC_FAILED", "shopify", "singer_sdk.exceptions.RetriableAPIError: 429 Client Error: Too Many Requests for path: /admin/api/2024-01/products.json"),
    ("EXPORT_FAILED", "shopify", "target_optiply.exceptions.TargetError: supplier is missing"),
    ("EXPORT_FAILED", "shopify", "target_optiply.exceptions.TargetError: product archived"),
    ("DISCOVER_FAILED", "magento", "RuntimeError: catalog discovery timed out"),
    ("ETL_FAILED", "magento", "ETL script failed: TypeError: 'NoneType' object is not subscriptable"),
)


def outage_and_distinct(
    templates: dict[str, dict[str, Any]], *, outage: int, repeats: int, resolved: int, seed: int,
    spread_seconds: float = 60.0,
) -> tuple[Workload, list[str], list[str]]:
    """Return (workload, outage tenants, distinct-error tenants): ``outage`` tenants failing
    with Shopify's 500 within ``spread_seconds`` (each with its own ``page_info`` cursor and
    request id: noise a signature must ignore), ``repeats`` of them failing a second time,
    one tenant per :data:`DISTINCT_ERRORS` entry, and then a finished job of ``resolved``
    outage tenants (scenario 6)."""
    rng = random.Random(seed)
    ids = _Ids(rng)
    names = ids.tenants(outage + len(DISTINCT_ERRORS))
    rng.shuffle(names)
    down, distinct = sorted(names[:outage], key=int), sorted(names[outage:], key=int)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    template = templates["sync_failed__shopify_500"]
    owners = [(t, "outage") for t in down] + [(t, "outage") for t in rng.sample(down, repeats)]
    owners += [(t, f"distinct:{n}") for n, t in enumerate(distinct)]
    rng.shuffle(owners)
    step = timedelta(seconds=spread_seconds / max(1, len(owners)))
    deliveries: list[Delivery] = []
    moment = start
    for tenant, kind in owners:
        moment += step
        job_id = ids.job_id()
        payload = copy.deepcopy(template)
        cursor = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(40))
        message = str(payload["message"]) + f"?limit=250&page_info={cursor} (request id: {uuid.UUID(int=rng.getrandbits(128))})"
        status = "SYNC_FAILED"
        tap = "shopify"
        if kind.startswith("distinct:"):
            status, tap, message = DISTINCT_ERRORS[int(kind.split(":")[1])]
        payload.update(
            job_id=job_id, tenant=tenant, started_by=tenant, flow_id=SHOP_FLOW, tap=tap, status=status, message=message,
            s3_root=f"{tenant}/flows/{SHOP_FLOW}/jobs/{moment:%Y/%m/%d/%H/%M}/{job_id}",
            start_time=_iso(moment - timedelta(minutes=3)), last_updated=_iso(moment),
        )
        deliveries.append(_delivery(len(deliveries), payload, "outage" if kind == "outage" else "distinct"))
    done = templates["job_completed__incremental"]
    for tenant in down[:resolved]:
        moment += timedelta(milliseconds=rng.randint(50, 150))
        job_id = ids.job_id()
        payload = copy.deepcopy(done)
        payload.update(
            job_id=job_id, tenant=tenant, started_by=tenant, flow_id=SHOP_FLOW, status="JOB_COMPLETED",
            s3_root=f"{tenant}/flows/{SHOP_FLOW}/jobs/{moment:%Y/%m/%d/%H/%M}/{job_id}",
            start_time=_iso(moment - timedelta(minutes=3)), last_updated=_iso(moment),
        )
        deliveries.append(_delivery(len(deliveries), payload, "resolved"))
    plans = {t: Tenant(t, "shop") for t in names}
    kinds = {"outage": outage + repeats, "distinct": len(distinct), "resolved": resolved}
    return Workload(deliveries, plans, jobs=len(deliveries), kinds=kinds), down, distinct
