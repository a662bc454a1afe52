"""The rules' configuration: what the TOML rules file may say, with documented defaults.

Pure data (pydantic models); loading the file is ``hotglue_webhooks.settings``' job.
Every section forbids unknown keys, so a typo fails start-up instead of silently
leaving a default in force. ``hotglue_webhooks/defaults/rules.toml`` (the default configuration) shows
every option with its default.
"""

from __future__ import annotations

import copy
import string
from fnmatch import fnmatchcase
from typing import Any

from croniter import croniter
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hotglue_webhooks.rules import markers

# Rule names: they appear in action keys, notes and ``[slack] channels_by_rule``.
FAILURE_ALERT = "failure_alert"
EXACT_TOKEN_401 = "exact_token_401"
BUY_ORDER_REPORT = "buy_order_report"
FULL_SYNC = "full_sync"
FULL_SYNC_MARKER = "full_sync_marker"
ALERT_RESOLVED = "alert_resolved"
SILENCE_NOTICE = "silence_notice"
SILENCE_BACK = "silence_back"
INCIDENT = "incident"
SNOOZE_SUMMARY = "snooze_summary"
DAILY_DIGEST = "daily_digest"
RULE_NAMES = (
    FAILURE_ALERT, EXACT_TOKEN_401, BUY_ORDER_REPORT, FULL_SYNC, FULL_SYNC_MARKER, ALERT_RESOLVED,
    SILENCE_NOTICE, SILENCE_BACK, INCIDENT, SNOOZE_SUMMARY, DAILY_DIGEST,
)

_NON_EMPTY = {"type": "string", "minLength": 1}

DEFAULT_TENANT_CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiCredentials"],
    "properties": {
        "apiCredentials": {
            "type": "object",
            "required": ["username", "password", "client_id", "client_secret", "account_id"],
            "properties": {
                "username": _NON_EMPTY,
                "password": _NON_EMPTY,
                "client_id": _NON_EMPTY,
                "client_secret": _NON_EMPTY,
                # REFERENCE §4's sample holds a number here ("account_id": 98).
                "account_id": {"type": ["integer", "string"], "minLength": 1},
            },
        }
    },
}
"""A tenant config is valid when ``apiCredentials`` holds the five non-empty fields."""

DEFAULT_LINK_BODY: dict[str, Any] = {"target": {"target": "{target}", "config": "{config}"}}
"""POST .../linkedTargets body; unconfirmed (REFERENCE §4), by analogy with linked sources."""

JOB_NAME_FIELDS = ("flow_id", "tap", "date", "tenant")


class _Section(BaseModel):
    # TOML has inf and nan: neither is a meaningful window or count.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _check_schema(schema: dict[str, Any]) -> dict[str, Any]:
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
    return schema


class SlackRules(_Section):
    """``[slack]``: where messages go."""

    channel: str | None = None
    """Channel for every message; unset means the environment's channel (``HGW_SLACK_CHANNEL``)."""
    channels_by_rule: dict[str, str] = Field(default_factory=dict)
    """Rule name → channel, overriding ``channel`` for that rule's messages."""
    repeat_window_hours: float = Field(default=24.0, ge=0)
    """The same tenant, flow and error failing again within this many hours of the first
    alert is a reply in that alert's thread (and the alert shows a count), not a new
    message. 0 turns threading off."""

    @field_validator("channels_by_rule")
    @classmethod
    def _known_rules(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(RULE_NAMES))
        if unknown:
            raise ValueError(f"unknown rule names {unknown}; known: {list(RULE_NAMES)}")
        return value


def check_schedule_expression(value: str) -> str:
    """Return ``value`` when it is a schedule expression HotGlue takes, else raise ValueError.

    HotGlue's schedules are AWS EventBridge ``cron(...)`` expressions: six fields, minute
    hour day-of-month month day-of-week year, ``?`` for "any" (``cron(0 */6 * * ? *)``,
    https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html#cron-based);
    REFERENCE §4 also shows the five-field form ``cron(0 */6 * * *)``. The fields are
    checked by croniter (a six-field expression as croniter's seven-field form with a
    leading second, so the sixth is the year).
    """
    inner = value.strip()
    if not (inner.startswith("cron(") and inner.endswith(")")):
        raise ValueError(f"{value!r} is not a cron(...) expression, e.g. cron(0 */6 * * ? *)")
    fields = inner[len("cron(") : -1].split()
    if len(fields) == 5:
        valid = croniter.is_valid(" ".join(fields))
    elif len(fields) == 6:
        valid = croniter.is_valid(" ".join(["0", *fields]), second_at_beginning=True)
    else:
        raise ValueError(f"{value!r} has {len(fields)} fields; HotGlue's cron(...) has 6 (or 5), e.g. cron(0 */6 * * ? *)")
    if not valid:
        raise ValueError(f"{value!r} is not a valid cron expression (minute hour day month weekday [year])")
    return value


class ScheduleRules(_Section):
    """``[schedules]``."""

    default_expression: str = Field(default="cron(0 */6 * * ? *)", min_length=1)
    """Written when a tenant has no schedule yet, or when its schedule could not be read."""

    @field_validator("default_expression")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_schedule_expression(value)


class TargetLink(_Section):
    """One ``[[target_links]]`` entry: after a full sync, link ``target`` for the tenant."""

    source_flow: str = Field(min_length=1)
    """Flow id of the finished job; shell-style wildcards, ``"*"`` matches any flow."""
    tap: str = "*"
    """Tap of the finished job; wildcards as for ``source_flow``."""
    target_flow: str | None = None
    """Flow that holds the target; unset means the finished job's flow."""
    target: str = Field(min_length=1)
    """Target connector name, e.g. ``optiply``."""
    config_from: str = "apiCredentials"
    """Tenant-config key whose object becomes the linked target's ``config``."""
    schedule_expression: str | None = None
    """Expression for the target flow's new schedule; unset means ``[schedules] default_expression``."""

    @field_validator("schedule_expression")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else check_schedule_expression(value)

    body: dict[str, Any] = Field(default_factory=lambda: copy.deepcopy(DEFAULT_LINK_BODY))
    """Link body template; a string value equal to one of ``{target}``, ``{config}``,
    ``{tap}``, ``{flow_id}`` is replaced by that value (``{config}`` by the whole object)."""

    def matches(self, flow_id: str | None, tap: str | None) -> bool:
        """Return True when this link applies to a job of ``flow_id`` and ``tap``."""
        return _wildcard(self.source_flow, flow_id) and _wildcard(self.tap, tap)


def _wildcard(pattern: str, value: str | None) -> bool:
    if pattern == "*":
        return True
    return value is not None and fnmatchcase(value, pattern)


class MarkerRules(_Section):
    """``[markers]``: job-name markers of the incremental "full sync" rule (see markers.py)."""

    full_sync: list[str] = Field(default_factory=lambda: ["full sync"])
    """Plain markers, matched case-insensitively."""
    full_sync_encoded: list[str] = Field(default_factory=lambda: ["fullsync"])
    """Words matched in their a=1..z=26 digit form ("fullsync" → 62112121925143)."""
    ignore: list[str] = Field(default_factory=list)
    """Plain markers that make the rule skip the job."""
    ignore_encoded: list[str] = Field(default_factory=lambda: ["ignore"])
    """Encoded words that make the rule skip the job ("ignore" → 971415185)."""

    @field_validator("full_sync_encoded", "ignore_encoded")
    @classmethod
    def _letters_only(cls, value: list[str]) -> list[str]:
        for word in value:
            markers.encode(word)  # raises ValueError for what has no code
        return value

    @field_validator("full_sync", "ignore")
    @classmethod
    def _not_blank(cls, value: list[str]) -> list[str]:
        if any(not word.strip() for word in value):
            raise ValueError("a blank marker would match every job name")
        return value


class ExactRules(_Section):
    """``[exact]``: what counts as "Exact refused the refresh token" (REFERENCE §5)."""

    token_hosts: list[str] = Field(
        default_factory=lambda: [
            f"start.exactonline.{tld}" for tld in ("nl", "be", "de", "co.uk", "com", "fr", "es")
        ],
        min_length=1,
    )
    """Hosts of Exact's token endpoint, one per country."""
    token_path: str = "/api/oauth2/token"
    """Path of the token endpoint; the path must end right after it (a query may follow)."""

    @field_validator("token_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("token_path must start with '/'")
        return value


class BuyOrderRules(_Section):
    """``[buy_orders]``: which jobs are buy-order exports to Exact, and which report streams count."""

    targets: list[str] = Field(default_factory=lambda: ["exact"])
    """V1 ``target`` names of the export."""
    connector_ids: list[str] = Field(default_factory=lambda: ["exact"])
    """V2 ``connector_id`` values (with ``job_type`` "write"); unconfirmed, adjust per environment."""
    streams: list[str] = Field(default_factory=lambda: ["BuyOrders"], min_length=1)
    """Report streams whose bookmarks are buy orders."""


class TenantConfigRules(_Section):
    """``[tenant_config]``: JSON Schemas a tenant config must satisfy after a full sync."""

    default_schema: dict[str, Any] = Field(
        default_factory=lambda: copy.deepcopy(DEFAULT_TENANT_CONFIG_SCHEMA)
    )
    """Used for every flow without an entry in ``schemas``."""
    schemas: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Flow id → schema; ``{}`` accepts any config (turns the check off for that flow)."""

    @field_validator("default_schema")
    @classmethod
    def _valid_default(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_schema(value)

    @field_validator("schemas")
    @classmethod
    def _valid_schemas(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for schema in value.values():
            _check_schema(schema)
        return value

    def schema_for(self, flow_id: str | None) -> dict[str, Any]:
        """Return the schema for ``flow_id``'s tenant configs."""
        if flow_id is not None and flow_id in self.schemas:
            return self.schemas[flow_id]
        return self.default_schema


class JobRules(_Section):
    """``[jobs]``: the jobs the receiver starts itself."""

    name_format: str = "wh-{flow_id}-{tap}-{date}"
    """``str.format`` template with fields flow_id, tap, date (UTC ``YYYY-MM-DD``), tenant.
    Its literal prefix ("wh-") is the loop guard: a job whose name starts with it never
    triggers another job."""

    @field_validator("name_format")
    @classmethod
    def _usable(cls, value: str) -> str:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
            unknown = sorted(set(fields) - set(JOB_NAME_FIELDS))
            if not unknown:
                value.format(flow_id="f", tap="t", date="2000-01-01", tenant="1")
        except (ValueError, IndexError, KeyError) as exc:
            raise ValueError(f"not a usable format: {exc}") from None
        if unknown:
            raise ValueError(f"unknown fields {unknown}; allowed: {list(JOB_NAME_FIELDS)}")
        if not _literal_prefix(value):
            raise ValueError("must start with literal text (e.g. 'wh-'): it is the loop guard")
        return value

    @property
    def loop_guard_prefix(self) -> str:
        """The literal text before the first field, e.g. ``wh-``."""
        return _literal_prefix(self.name_format)

    def job_name(self, *, flow_id: str, tap: str, date: str, tenant: str) -> str:
        """Return the name of a job the receiver starts."""
        return self.name_format.format(flow_id=flow_id, tap=tap, date=date, tenant=tenant)


def _literal_prefix(fmt: str) -> str:
    for literal, _field, _spec, _conv in string.Formatter().parse(fmt):
        return literal
    return ""


class SilenceGrace(_Section):
    """How long past its rhythm a (tenant, flow) may stay without a finished job."""

    grace_intervals: float = Field(default=2.0, gt=0)
    """Intervals of the rhythm (schedule, or median gap of recent jobs)."""
    grace_minutes: float = Field(default=30.0, ge=0)
    """Added to the intervals."""


class SilenceRules(SilenceGrace):
    """``[silence]``: when a (tenant, flow) counts as silent (the dead man's switch).

    Silent: no terminal stage (``JOB_COMPLETED``, ``*_FAILED``) by ``last_updated`` within
    ``grace_intervals`` × its rhythm + ``grace_minutes``. ``[silence.flows.<flow_id>]``
    overrides both for one flow.
    """

    enabled: bool = True
    flows: dict[str, SilenceGrace] = Field(default_factory=dict)
    min_jobs: int = Field(default=4, ge=3)
    """Recent scheduled jobs needed to read a rhythm from their gaps (no schedule read)."""
    regularity: float = Field(default=0.25, gt=0, le=1)
    """Gaps further than this share from their median make the jobs irregular: no rhythm."""

    def grace_for(self, flow_id: str | None) -> SilenceGrace:
        """The grace of ``flow_id``: its ``[silence.flows]`` entry, else the defaults."""
        return self.flows.get(flow_id or "", self)


class IncidentRules(_Section):
    """``[incidents]``: failures of many tenants with one signature become one incident.

    The signature (``rules/incidents.py``) is the normalised telling error line, the
    connector (tap → target) and the failed stage. Alertmanager's ``group_by`` /
    ``group_wait`` / ``group_interval``
    (https://prometheus.io/docs/alerting/latest/configuration/#route), with a thread and
    an update in place instead of new messages.
    """

    enabled: bool = True
    min_tenants: int = Field(default=3, ge=2)
    """K: an incident opens when this many tenants fail with one signature within ``window_minutes``."""
    window_minutes: float = Field(default=10.0, gt=0)
    group_wait_seconds: float = Field(default=30.0, ge=0, le=600)
    """The first alerts of a signature wait this long (counted from its first sighting in
    the window) for others to join, so a burst is one message from the start; a signature
    seen once is posted on its own after it, never later. 0: no wait."""
    update_interval_seconds: float = Field(default=10.0, ge=0, le=3600)
    """At most one update of an incident's message (``chat.update`` and its thread list) per
    this many seconds; what changed meanwhile goes in one update."""
    expire_minutes: float = Field(default=120.0, gt=0)
    """An open incident without a new member or a recovery for this long closes as expired."""
    listed: int = Field(default=10, ge=1, le=50)
    """Tenants named (lowest ids first) in the top-level message; the thread names them all."""
    thread_batch: int = Field(default=50, ge=1, le=100)
    """Tenants named per thread reply (each with its dashboard link)."""


class SnoozeRules(_Section):
    """``[snooze]``: holding alerts of a tenant or signature (``hotglue-webhooks snooze``)."""

    max_days: float = Field(default=30.0, gt=0)
    """A snooze may last at most this many days (the retention of what it would hide)."""


class DigestRules(_Section):
    """``[digest]``: one message per channel each day (off by default)."""

    enabled: bool = False
    hour_utc: int = Field(default=8, ge=0, le=23)
    """Posted at the first worker look after this UTC hour; covers the previous UTC day."""
    channels: list[str] = Field(default_factory=list)
    """Channels that get it; empty: the channel of each environment (``HGW_SLACK_CHANNEL``,
    ``[slack] channel``, ``[environments.*] slack_channel``), each with its environments' events."""
    listed: int = Field(default=15, ge=1, le=50)
    """Names listed per section; the rest are counted and linked to the dashboard."""
class AttentionRules(_Section):
    """``[attention]``: when a tenant waits for a person (the dashboard's ``/attention``)."""

    repeated_failures: int = Field(default=3, ge=1)
    """A flow that failed this many times within ``window_hours`` (and has not completed a
    job since) needs a person."""
    window_hours: float = Field(default=24.0, gt=0)


class EnvironmentRules(_Section):
    """Settings for one HotGlue environment (``env_id``) posting to this receiver."""

    api_key_env: str | None = None
    """Name of the environment variable that holds this environment's HotGlue API key.
    Keys never live in this file. Unset: ``HGW_HOTGLUE_API_KEY``."""
    slack_channel: str | None = None
    """Channel for this environment's messages; unset: ``[slack] channel``."""


class RulesConfig(_Section):
    """The whole rules file. An empty file gives the documented defaults."""

    slack: SlackRules = SlackRules()
    schedules: ScheduleRules = ScheduleRules()
    target_links: list[TargetLink] = Field(default_factory=list)
    """No default: flow ids belong to one HotGlue environment, so nothing is linked unless listed."""
    markers: MarkerRules = MarkerRules()
    exact: ExactRules = ExactRules()
    buy_orders: BuyOrderRules = BuyOrderRules()
    tenant_config: TenantConfigRules = TenantConfigRules()
    jobs: JobRules = JobRules()
    environments: dict[str, EnvironmentRules] = Field(default_factory=dict)
    """``env_id`` → its API key variable and channel. When any is listed, an event from an
    ``env_id`` that is not listed (or whose key is unset) is stored, flagged and not acted on."""
    silence: SilenceRules = SilenceRules()
    incidents: IncidentRules = IncidentRules()
    snooze: SnoozeRules = SnoozeRules()
    digest: DigestRules = DigestRules()
    attention: AttentionRules = AttentionRules()

    @model_validator(mode="after")
    def _distinct_links(self) -> RulesConfig:
        seen = set()
        for link in self.target_links:
            ident = (link.source_flow, link.tap, link.target_flow, link.target)
            if ident in seen:
                raise ValueError(f"target link listed twice: {ident}")
            seen.add(ident)
        return self

    def channel_for(self, rule: str, default_channel: str) -> str:
        """Return the channel for ``rule``'s messages: per rule, else ``default_channel``.

        ``default_channel`` is the event environment's channel, which the worker resolves
        as ``[environments.<env_id>] slack_channel``, else ``[slack] channel``, else
        ``HGW_SLACK_CHANNEL`` (see :meth:`environment_channel`).
        """
        return self.slack.channels_by_rule.get(rule) or default_channel

    def environment_channel(self, env_id: str | None, fallback: str) -> str:
        """Return the channel for events of ``env_id``; ``fallback`` is ``HGW_SLACK_CHANNEL``."""
        environment = self.environments.get(env_id or "")
        return (environment.slack_channel if environment else None) or self.slack.channel or fallback
