"""Which tenants wait for a person, and why: the "needs attention" list (pure).

``storage/attention.py`` reads the signals from our own records; :func:`attention_rows`
judges them. A reason lasts only while its condition does, so a row clears by itself:
schedules turned on again (``exact_reconnect``), a valid tenant config seen after the
invalid one (``invalid_config``), no dead action left (``dead_actions``, after a replay
or once done), a completed job of the flow after its failures (``repeated_failures``), the
incident closed or every flow of the tenant in it recovered (``incident``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hotglue_webhooks.rules.config import AttentionRules

EXACT_RECONNECT = "exact_reconnect"
INVALID_CONFIG = "invalid_config"
DEAD_ACTIONS = "dead_actions"
REPEATED_FAILURES = "repeated_failures"
INCIDENT = "incident"
REASONS = (EXACT_RECONNECT, INVALID_CONFIG, DEAD_ACTIONS, REPEATED_FAILURES, INCIDENT)


@dataclass(frozen=True)
class Failure:
    """A ``*_FAILED`` stage of the tenant's flow: ``at`` its place in processing order
    (HotGlue's ``last_updated``), ``received_at`` when it arrived (the window counts by
    it), and our event id."""

    flow_id: str | None
    at: datetime
    event_id: int
    received_at: datetime | None = None

    @property
    def arrived(self) -> datetime:
        return self.received_at or self.at


@dataclass(frozen=True)
class InIncident:
    """The tenant is a member of an open incident, with flows not recovered yet: ``since``
    when it joined (or the incident opened, for a member seen before), ``flows`` those
    flows, ``event_id`` the first failure of one of them (ours), ``group`` the signature."""

    incident_id: int
    group: str
    since: datetime
    flows: tuple[str | None, ...]
    event_id: int | None
    stage: str | None = None
    connector: str | None = None


@dataclass(frozen=True)
class TenantSignals:
    """What our records say about one tenant (times aware UTC, event ids ours).

    ``turned_off``: (when, flow_id, event_id) per schedule an Exact 401 turned off and
    nothing turned on since. ``invalid_config``: (when, event_id) of the newest invalid
    tenant config seen, ``valid_config_after`` whether a valid one was seen after it.
    ``dead``: (oldest, count, newest event_id) of its dead actions. ``failures``: the
    failures in the window; ``completed``: per flow the newest ``JOB_COMPLETED``.
    ``incidents``: the open incidents it is in.
    """

    tenant: str
    turned_off: Sequence[tuple[datetime, str, int]] = ()
    invalid_config: tuple[datetime, int] | None = None
    valid_config_after: bool = False
    dead: tuple[datetime, int, int] | None = None
    failures: Sequence[Failure] = ()
    completed: dict[str | None, datetime] = field(default_factory=dict)
    incidents: Sequence[InIncident] = ()


@dataclass(frozen=True)
class Reason:
    """One reason a tenant waits: since when, on which flow, the event to look at, what to do."""

    reason: str
    since: datetime
    detail: str
    what_to_do: str
    flow_id: str | None = None
    event_id: int | None = None
    incident_id: int | None = None
    group: str | None = None
    """The incident's signature (``incident`` only): what Snooze incident snoozes."""


@dataclass(frozen=True)
class AttentionRow:
    tenant: str
    since: datetime
    reasons: tuple[Reason, ...]

    def age_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.since).total_seconds())


def reasons_of(signals: TenantSignals, config: AttentionRules, now: datetime) -> list[Reason]:
    """Return the tenant's reasons now, oldest first (empty: it needs nobody)."""
    found: list[Reason] = []
    if signals.turned_off:
        flows = sorted({flow for _at, flow, _event in signals.turned_off})
        first = min(signals.turned_off)
        found.append(Reason(
            EXACT_RECONNECT, first[0],
            f"Exact Online refused the refresh token; schedules off: {', '.join(flows)}",
            "Ask the customer to reconnect Exact Online, then Re-enable schedules (here or on the Slack message).",
            flow_id=first[1], event_id=first[2],
        ))
    if signals.invalid_config is not None and not signals.valid_config_after:
        at, event_id = signals.invalid_config
        found.append(Reason(
            INVALID_CONFIG, at, "the tenant config failed its schema (the event says which fields)",
            "Fix the tenant config in HotGlue; the next full sync checks it again and clears this.",
            event_id=event_id,
        ))
    if signals.dead is not None:
        oldest, count, event_id = signals.dead
        found.append(Reason(
            DEAD_ACTIONS, oldest, f"{count} action{'s' if count != 1 else ''} dead after every retry",
            "Read the last error on the event page, fix the cause, then Replay.", event_id=event_id,
        ))
    window_start = now - timedelta(hours=config.window_hours)
    by_flow: dict[str | None, list[Failure]] = {}
    for failure in signals.failures:
        completed = signals.completed.get(failure.flow_id)
        if failure.arrived >= window_start and (completed is None or failure.at > completed):
            by_flow.setdefault(failure.flow_id, []).append(failure)
    for flow_id, failures in sorted(by_flow.items(), key=lambda item: str(item[0])):
        if len(failures) >= config.repeated_failures:
            failures.sort(key=lambda f: (f.arrived, f.event_id))
            found.append(Reason(
                REPEATED_FAILURES, failures[0].arrived,
                f"{len(failures)} failures of flow {flow_id} within {config.window_hours:g} h, none completed since",
                "Look at the last error; once the cause is fixed, Retry job.",
                flow_id=flow_id, event_id=failures[-1].event_id,
            ))
    for incident in sorted(signals.incidents, key=lambda i: (i.since, i.incident_id)):
        named = ", ".join(sorted(str(flow) for flow in incident.flows))
        found.append(Reason(
            INCIDENT, incident.since,
            f"in incident {incident.incident_id} ({incident.stage or '?'} on {incident.connector or '?'}, signature "
            f"{incident.group}) with other tenants; flow{'s' if len(incident.flows) != 1 else ''} {named} not recovered",
            f"One cause for many tenants: follow incident {incident.incident_id} (its Slack message, or Incidents "
            "here) and fix it at the source; Snooze incident holds its alerts meanwhile. Clears when the tenant's "
            "flows finish a job again or the incident closes.",
            flow_id=incident.flows[0] if incident.flows else None, event_id=incident.event_id,
            incident_id=incident.incident_id, group=incident.group,
        ))
    return sorted(found, key=lambda r: r.since)


def attention_rows(signals: Iterable[TenantSignals], config: AttentionRules, now: datetime) -> list[AttentionRow]:
    """Return the tenants waiting for a person, oldest first (by their oldest reason)."""
    rows = []
    for tenant in signals:
        reasons = reasons_of(tenant, config, now)
        if reasons:
            rows.append(AttentionRow(tenant.tenant, reasons[0].since, tuple(reasons)))
    return sorted(rows, key=lambda row: (row.since, row.tenant))
