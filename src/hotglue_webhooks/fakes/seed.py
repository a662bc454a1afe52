"""Seed the fake HotGlue with tenants, so that the sample payloads make every rule act.

A seed is JSON-shaped::

    {"env_id": "production.hotglue.example.com",
     "tenants": {"4821": {"config": {...} or null,
                          "flows": {"Xk2pQ9aLm": {"name": "…",
                                                   "schedule": {"schedule_expression": "cron(…)", "state": "DISABLED"},
                                                   "linked_sources": [{"tap": "shopify"}],
                                                   "linked_targets": [{"target": "exact"}],
                                                   "source_state": {...}}}}}}

Every flow listed is linked to its tenant (``GET /{env_id}/flows/linked``); every other
key is optional. :data:`DEMO` covers the tenants of ``tests/fixtures/payloads``; the
README's walk-through uses it (``python -m hotglue_webhooks.fakes --seed demo``).
The credentials in it are made up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hotglue_webhooks.fakes.hotglue import FakeHotGlue

__all__ = ["DEMO", "SeedError", "apply_seed", "load_seed"]

_ENV = "production.hotglue.example.com"  # the sample payloads' env_id
_SHOPIFY_FLOW = "Xk2pQ9aLm"  # Shopify / WooCommerce → Optiply, the rules file's target link
_EXACT_READ_FLOW = "Rb7TnE4wz"
_EXACT_EXPORT_FLOW = "Vd3HsW8qc"

DEMO: dict[str, Any] = {
    "env_id": _ENV,
    "tenants": {
        # Full sync: the schedule is off until the first full sync, the config is valid,
        # no target is linked yet and the flow never synced: enable, link, start a job.
        "4821": {
            "config": {
                "apiCredentials": {
                    "username": "demo-4821",
                    "password": "demo-password-4821",
                    "client_id": "demo-client-4821",
                    "client_secret": "demo-client-secret-4821",
                    "account_id": 4821,
                }
            },
            "flows": {
                _SHOPIFY_FLOW: {
                    "name": "Shopify to Optiply",
                    "schedule": {"schedule_expression": "cron(0 */4 * * ? *)", "state": "DISABLED"},
                    "linked_sources": [{"tap": "shopify"}],
                }
            },
        },
        # Auto sync of a tenant whose config lacks a field: Slack names it, no job starts.
        "5077": {
            "config": {"apiCredentials": {"username": "demo-5077", "password": "demo-password-5077"}},
            "flows": {
                _SHOPIFY_FLOW: {
                    "name": "WooCommerce to Optiply",
                    "schedule": {"schedule_expression": "cron(0 */6 * * ? *)", "state": "DISABLED"},
                    "linked_sources": [{"tap": "woocommerce"}],
                }
            },
        },
        # Exact Online: two flows with schedules on; the dead refresh token turns both off.
        "3310": {
            "config": None,
            "flows": {
                _EXACT_READ_FLOW: {
                    "name": "Exact Online to Optiply",
                    "schedule": {"schedule_expression": "cron(30 * * * ? *)", "state": "ENABLED"},
                    "linked_sources": [{"tap": "exact"}],
                    "source_state": {"bookmarks": {"SalesOrders": {"replication_key_value": "2026-11-27T00:00:00Z"}}},
                },
                _EXACT_EXPORT_FLOW: {
                    "name": "Optiply buy orders to Exact Online",
                    "schedule": {"schedule_expression": "cron(0 8 * * ? *)", "state": "ENABLED"},
                    "linked_sources": [{"tap": "optiply"}],
                    "linked_targets": [{"target": "exact"}],
                },
            },
        },
    },
}


class SeedError(ValueError):
    """A seed file cannot be read or has the wrong shape; ``str()`` is one line."""


def load_seed(name: str) -> dict[str, Any]:
    """Return the seed ``name``: ``demo`` (:data:`DEMO`) or the path of a JSON seed file.

    Raises SeedError naming the file and what is wrong.
    """
    if name == "demo":
        return json.loads(json.dumps(DEMO))  # a copy
    try:
        seed = json.loads(Path(name).read_text(encoding="utf-8"))
    except OSError as error:
        raise SeedError(f"{name}: cannot read seed file: {error.strerror}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise SeedError(f"{name}: not a JSON seed file: {error}") from None
    _check(name, seed)
    return dict(seed)


def apply_seed(hotglue: FakeHotGlue, seed: Mapping[str, Any]) -> list[str]:
    """Put ``seed``'s tenants into ``hotglue``; return one line per tenant saying what it got."""
    _check("seed", seed)
    env_id = seed["env_id"]
    lines = []
    for tenant, spec in seed.get("tenants", {}).items():
        hotglue.add_tenant(env_id, tenant)
        config = spec.get("config")
        hotglue.set_tenant_config(env_id, tenant, config)
        parts = ["config" if config is not None else "no config"]
        for flow_id, flow in spec.get("flows", {}).items():
            hotglue.link_flow(env_id, tenant, flow_id, name=flow.get("name"))
            schedule = flow.get("schedule")
            if schedule is not None:
                extra = {k: v for k, v in schedule.items() if k not in ("schedule_expression", "state")}
                hotglue.set_schedule(
                    env_id, flow_id, tenant, schedule["schedule_expression"], schedule.get("state", "ENABLED"), **extra
                )
            for source in flow.get("linked_sources", []):
                hotglue.add_linked_source(env_id, flow_id, tenant, source["tap"], source.get("config"))
            for target in flow.get("linked_targets", []):
                hotglue.add_linked_target(env_id, flow_id, tenant, target["target"], target.get("config"))
            if flow.get("source_state") is not None:
                hotglue.set_source_state(env_id, flow_id, tenant, flow["source_state"])
            what = f"schedule {schedule['state'] if schedule else 'none'}"
            taps = ",".join(s["tap"] for s in flow.get("linked_sources", []))
            targets = ",".join(t["target"] for t in flow.get("linked_targets", []))
            what += f", source {taps or 'none'}, target {targets or 'none'}"
            what += ", synced before" if flow.get("source_state") else ", never synced"
            parts.append(f"flow {flow_id} ({what})")
        lines.append(f"tenant {tenant}: " + "; ".join(parts))
    return lines


def _check(name: str, seed: Any) -> None:
    if not isinstance(seed, Mapping) or not isinstance(seed.get("env_id"), str):
        raise SeedError(f"{name}: a seed is a JSON object with an env_id string and tenants")
    tenants = seed.get("tenants", {})
    if not isinstance(tenants, Mapping):
        raise SeedError(f"{name}: tenants must be an object of tenant id -> tenant")
    for tenant, spec in tenants.items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("flows", {}), Mapping):
            raise SeedError(f"{name}: tenants.{tenant} must be an object with flows (flow id -> flow)")
        if spec.get("config") is not None and not isinstance(spec["config"], Mapping):
            raise SeedError(f"{name}: tenants.{tenant}.config must be an object or null")
        for flow_id, flow in spec.get("flows", {}).items():
            where = f"tenants.{tenant}.flows.{flow_id}"
            if not isinstance(flow, Mapping):
                raise SeedError(f"{name}: {where} must be an object")
            schedule = flow.get("schedule")
            if schedule is not None and not (
                isinstance(schedule, Mapping) and isinstance(schedule.get("schedule_expression"), str)
            ):
                raise SeedError(f"{name}: {where}.schedule needs a schedule_expression string")
            for key, field in (("linked_sources", "tap"), ("linked_targets", "target")):
                items = flow.get(key, [])
                if not isinstance(items, list) or not all(
                    isinstance(item, Mapping) and isinstance(item.get(field), str) for item in items
                ):
                    raise SeedError(f"{name}: {where}.{key} must be a list of objects with a {field} string")
