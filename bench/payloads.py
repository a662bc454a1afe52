"""Realistic, signed webhook bodies for the benchmarks, each one a new job stage.

Bodies are the shared HotGlue payloads (``tests/fixtures/payloads``) with a fresh
``job_id`` and ``s3_root`` (so every delivery is a first delivery, never a duplicate),
and, for the processing mix, a tenant drawn from a pool the fake HotGlue is seeded with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hotglue_webhooks.signature import sign

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "payloads"
SECRET = "bench-webhook-secret"
ENV = "production.hotglue.example.com"
API_KEY = "bench-hotglue-key"
SLACK_TOKEN = "xoxb-bench-token"
# The probe payload: an ordinary scheduled incremental job that finished.
INGEST_FIXTURE = "job_completed__incremental"
# Failure alerts: one Slack message each, no HotGlue read (receipt → Slack latency).
ALERT_FIXTURE = "sync_failed__shopify_500"
# A placeholder the wrk script replaces with a per-request unique id.
MARK = "@@ID@@"
CREDENTIALS = {
    "username": "api@shop.example",
    "password": "pw-bench-secret",
    "client_id": "cid-bench",
    "client_secret": "cs-bench-secret",
    "account_id": 98,
}


def fixture(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return result


def all_fixtures() -> list[str]:
    return sorted(path.stem for path in FIXTURES.glob("*.json"))


def _retarget(payload: dict[str, Any], job_id: str, tenant: str | None) -> dict[str, Any]:
    """Give a fixture a new job id (and tenant), keeping HotGlue's s3_root shape."""
    body = dict(payload)
    old_tenant, flow_id = str(payload["tenant"]), str(payload["flow_id"])
    tenant = tenant or old_tenant
    body["job_id"] = job_id
    body["tenant"] = tenant
    body["started_by"] = tenant
    body["s3_root"] = f"{tenant}/flows/{flow_id}/jobs/bench/{job_id}"
    if isinstance(body.get("message"), str):
        body["message"] = body["message"].replace(str(payload["job_id"]), job_id)
    return body


def template(name: str = INGEST_FIXTURE) -> bytes:
    """Return a fixture as compact JSON whose job id (and s3_root) is :data:`MARK`."""
    return json.dumps(_retarget(fixture(name), MARK, None), separators=(",", ":")).encode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    """Headers HotGlue sends with ``body``."""
    return {"Content-Type": "application/json", "X-Hub-Signature": sign(body, secret)}


@dataclass(frozen=True)
class Tenants:
    """The tenant pool of the processing mix: ``per_family`` copies of each fixture tenant."""

    per_family: int

    def name(self, original: str, index: int) -> str:
        return f"{original}-{index % self.per_family}"

    def seed(self) -> list[dict[str, Any]]:
        """State for the fake HotGlue, as in tests/test_flows.py, for every tenant copy."""
        state: list[dict[str, Any]] = []
        for n in range(self.per_family):
            shop, woo, exact = f"4821-{n}", f"5077-{n}", f"3310-{n}"
            state += [
                {"op": "schedule", "args": [ENV, "Xk2pQ9aLm", shop, "cron(0 */4 * * ? *)", "DISABLED"]},
                {"op": "tenant_config", "args": [ENV, shop, {"apiCredentials": CREDENTIALS}]},
                {"op": "tenant_config", "args": [ENV, woo, {"apiCredentials": {**CREDENTIALS, "password": ""}}]},
                {"op": "link_flow", "args": [ENV, exact, "Rb7TnE4wz"]},
                {"op": "link_flow", "args": [ENV, exact, "Vd3HsW8qc"]},
                {"op": "schedule", "args": [ENV, "Rb7TnE4wz", exact, "cron(30 * * * ? *)", "ENABLED"]},
                {"op": "schedule", "args": [ENV, "Vd3HsW8qc", exact, "cron(0 8 * * ? *)", "ENABLED"]},
            ]
        return state


def write_templates(path: Path, names: list[str], tenants: Tenants | None = None) -> int:
    """Write one compact JSON template per line (see :func:`template`); return how many.

    With ``tenants``, each fixture appears once per tenant copy (``4821-0``, ``4821-1``,
    …), so cycling through the lines spreads the jobs over the whole tenant pool.
    """
    lines = []
    copies = tenants.per_family if tenants else 1
    for n in range(copies):
        for name in names:
            payload = fixture(name)
            tenant = tenants.name(str(payload["tenant"]), n) if tenants else None
            lines.append(json.dumps(_retarget(payload, MARK, tenant), separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def alert_body(job_id: str) -> bytes:
    """A SYNC_FAILED delivery for job ``job_id`` (its Slack alert names the job)."""
    body = _retarget(fixture(ALERT_FIXTURE), job_id, None)
    body["last_updated"] = datetime.now(UTC).isoformat()
    return json.dumps(body, separators=(",", ":")).encode()
