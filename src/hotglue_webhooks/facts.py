"""Read from HotGlue what the rules asked to know (``FactNeeds`` → ``Facts``).

Reads are safe to repeat and are made even in dry-run when an API key is set; with no
key every needed fact is marked unavailable and the rules fall back to their defaults.
Transient failures (``PeerError.transient``) propagate so the worker retries the event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hotglue_webhooks.clients.errors import HotGlueError
from hotglue_webhooks.clients.hotglue_api import HotGlueClient
from hotglue_webhooks.redaction import Redactor
from hotglue_webhooks.rules import FactNeeds, Facts, JobEvent, OpenAlert, Schedule, TerminalStage


def gather_facts(
    needs: FactNeeds,
    event: JobEvent,
    hotglue: HotGlueClient | None,
    no_client_reason: str = "no HotGlue API key",
    open_alerts: Callable[[str, str], tuple[OpenAlert, ...]] | None = None,
    newest_terminal: Callable[[], TerminalStage | None] | None = None,
) -> Facts:
    """Return the facts ``needs`` asks for about ``event``'s tenant.

    ``hotglue`` None means no reads are possible: every HotGlue need is listed in
    ``Facts.unavailable`` with ``no_client_reason``. ``open_alerts(tenant, flow_id)``
    reads our own alert threads, ``newest_terminal()`` our own newest end of another job of
    the event's tenant and flow. Raises HotGlueError when a read fails transiently; a
    permanent failure of one read marks that fact unavailable.
    """
    if needs.empty:
        return Facts()
    env_id, tenant = event.env_id or "", event.tenant or ""
    alerts: tuple[OpenAlert, ...] = ()
    if needs.open_alerts and open_alerts is not None and tenant and event.flow_id:
        alerts = open_alerts(tenant, event.flow_id)
    newest = newest_terminal() if needs.newest_terminal and newest_terminal is not None else None
    unavailable: dict[str, str] = {}
    if hotglue is None or not env_id or not tenant:
        reason = no_client_reason if hotglue is None else "event has no env_id or tenant"
        for name in _need_names(needs):
            unavailable[name] = reason
        return Facts(unavailable=unavailable, open_alerts=alerts, newest_terminal=newest)

    def read(name: str, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except HotGlueError as error:
            if error.transient:
                raise
            unavailable[name] = error.summary or type(error).__name__
            return _MISSING

    tenant_config: Any = None
    tenant_config_read = False
    if needs.tenant_config:
        value = read("tenant_config", hotglue.get_tenant_config, env_id, tenant)
        if value is not _MISSING:
            tenant_config, tenant_config_read = value, True

    linked_flows: tuple[str, ...] | None = None
    schedule_flows = set(needs.schedules)
    if needs.linked_flows or needs.schedules_of_linked_flows:
        flows = read("linked_flows", hotglue.linked_flow_ids, env_id, tenant)
        if flows is not _MISSING:
            linked_flows = tuple(flows)
            if needs.schedules_of_linked_flows:
                schedule_flows.update(linked_flows)
        elif needs.schedules_of_linked_flows and event.flow_id:
            schedule_flows.add(event.flow_id)  # fall back to the event's own flow

    schedules: dict[str, Schedule | None] = {}
    for flow_id in sorted(schedule_flows):
        value = read(f"schedules:{flow_id}", hotglue.get_schedule, env_id, flow_id, tenant)
        if value is not _MISSING:
            schedules[flow_id] = (
                None
                if value is None
                else Schedule(value.get("schedule_expression"), value.get("state"))
            )

    linked_targets: dict[str, tuple[str, ...]] = {}
    for flow_id in sorted(needs.linked_targets):
        value = read(f"linked_targets:{flow_id}", hotglue.list_linked_targets, env_id, flow_id, tenant)
        if value is not _MISSING:
            linked_targets[flow_id] = tuple(item["name"] for item in value if item["name"])

    source_state: dict[str, Any] = {}
    for flow_id in sorted(needs.source_state):
        value = read(f"source_state:{flow_id}", hotglue.get_source_state, env_id, flow_id, tenant)
        if value is not _MISSING:
            source_state[flow_id] = value

    return Facts(
        tenant_config=tenant_config,
        tenant_config_read=tenant_config_read,
        linked_flows=linked_flows,
        schedules=schedules,
        linked_targets=linked_targets,
        source_state=source_state,
        unavailable=unavailable,
        open_alerts=alerts,
        newest_terminal=newest,
    )


_MISSING = object()


def _need_names(needs: FactNeeds) -> list[str]:
    names = []
    if needs.tenant_config:
        names.append("tenant_config")
    if needs.linked_flows or needs.schedules_of_linked_flows:
        names.append("linked_flows")
    names += [f"schedules:{flow}" for flow in sorted(needs.schedules)]
    names += [f"linked_targets:{flow}" for flow in sorted(needs.linked_targets)]
    names += [f"source_state:{flow}" for flow in sorted(needs.source_state)]
    return names


def facts_for_record(facts: Facts, redactor: Redactor) -> dict[str, Any]:
    """Return the facts as a JSON-safe dict for the event record, secrets redacted."""
    return {
        "tenant_config": redactor.redact(facts.tenant_config) if facts.tenant_config_read else None,
        "tenant_config_read": facts.tenant_config_read,
        "linked_flows": list(facts.linked_flows) if facts.linked_flows is not None else None,
        "schedules": {
            flow: (None if s is None else {"schedule_expression": s.schedule_expression, "state": s.state})
            for flow, s in facts.schedules.items()
        },
        "linked_targets": {flow: list(names) for flow, names in facts.linked_targets.items()},
        "source_state_empty": {flow: not state for flow, state in facts.source_state.items()},
        "unavailable": dict(facts.unavailable),
        "open_alerts": [
            {"thread_key": a.thread_key, "ts": a.ts, "count": a.count, "first_at": a.first_at.isoformat()}
            for a in facts.open_alerts
        ],
        "newest_terminal": (
            None
            if facts.newest_terminal is None
            else {
                "event_id": facts.newest_terminal.event_id,
                "s3_root": facts.newest_terminal.s3_root,
                "job_id": facts.newest_terminal.job_id,
                "status": facts.newest_terminal.status,
                "last_updated": facts.newest_terminal.last_updated,
                "start_time": facts.newest_terminal.start_time,
            }
        ),
        **(
            {}
            if facts.incident is None
            else {
                "incident": {
                    "id": facts.incident.id, "group": facts.incident.signature, "state": facts.incident.state,
                    "tenants": facts.incident.tenants, "recovered": facts.incident.recovered,
                    "ts": facts.incident.ts, "new_members": [m.tenant for m in facts.incident.new_members],
                }
            }
        ),
    }
