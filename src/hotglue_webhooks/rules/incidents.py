"""Incidents: which failures of different tenants are one problem, and when to group them.

A failure's *signature* is its telling error line normalised (numbers, ids, UUIDs,
cursors, request ids, timestamps, query strings, a host's variable first label and the
tenant's own id taken out), plus its connector (tap → target, or V2 connector id and job
type) and its failed stage. The repeat grouping's fingerprint (``alerts.py``) is where it
starts; unlike it, HTTP status codes stay: a 401 and a 500 are different problems.

:func:`judge` is the grouping decision (Alertmanager's ``group_wait`` and a threshold of
tenants within a window), made by the worker when a failure alert is about to be posted:
post it alone, hold it for the group wait, or fold it into an incident (opening one when
this failure makes K tenants). Pure: no I/O, the worker gives the state it read.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from hotglue_webhooks.rules.config import IncidentRules
from hotglue_webhooks.rules.model import JobEvent

# HTTP status codes that name the problem: "401 Client Error", "500 Server Error",
# "status code 503", "HTTP 429". They survive the number stripping below.
_HTTP_STATUS = re.compile(
    r"""(?ix)
    \b([1-5]\d\d)\b(?=\s+(?:client\s+error|server\s+error|unauthori[sz]ed|forbidden|not\s+found|too\s+many
        |internal|bad\s+request|bad\s+gateway|service\s+unavailable|gateway\s+time-?out|unprocessable|conflict
        |method\s+not|payment\s+required|request\s+time-?out|precondition))
    | (?<=status\ code\ )([1-5]\d\d)\b | (?<=status\ code:\ )([1-5]\d\d)\b | (?<=status[=:\ ])([1-5]\d\d)\b
    | (?<=http\ )([1-5]\d\d)\b | (?<=http/1\.1\ )([1-5]\d\d)\b | (?<=error\ code\ )([1-5]\d\d)\b
    """
)
_URL_QUERY = re.compile(r"(https?://[^\s?#'\"]+)[?#][^\s'\"]*", re.IGNORECASE)
_PATH_QUERY = re.compile(r"((?:for path|path)[: ]\s*/[^\s?'\"]*)\?[^\s'\"]*", re.IGNORECASE)
# The variable first label of a host of three or more labels: a Shopify shop
# (acme-4821.myshopify.com), a tenant's own subdomain. start.exactonline.nl keeps its shape.
_HOST = re.compile(r"(?<=://)[a-z0-9-]+(?=\.[a-z0-9-]+\.[a-z][a-z0-9.-]*)", re.IGNORECASE)
# name=value and name: value pairs whose value is noise: cursors, request ids, trace ids.
_NOISY_PAIRS = re.compile(
    r"""(?ix)
    \b(page_info|cursor|next_cursor|since_id|request[_\s-]?id|x-request-id|requestid|correlation[_-]?id
      |trace[_-]?id|x-amzn-requestid|x-amz-request-id|job_id|job_root|s3_root|run_id|task_id)
    (\s*[=:]\s*)
    ['"]?[^\s,;&'")\]}]+
    """
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}:?\d{2})?", re.IGNORECASE
)
# Long opaque tokens: base64/urlsafe cursors, hex ids, hashes (at least 16 characters
# with a digit in them, so words stay words).
_TOKEN = re.compile(r"\b(?=[A-Za-z0-9_=-]*\d)[A-Za-z0-9_=-]{16,}")
_HEX = re.compile(r"\b0x[0-9a-f]+\b|\b[0-9a-f]{12,}\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")
# A kept status code, spelled in letters while numbers are stripped (5 0 0 → "\x00fjj\x00").
_TO_LETTERS = str.maketrans("0123456789", "jabcdefghi")
_TO_DIGITS = str.maketrans("jabcdefghi", "0123456789")
_KEPT_BACK = re.compile(r"\x00([a-j]{3})\x00")


def normalise_error(line: str | None, tenant: str | None = None) -> str:
    """Return ``line`` without what changes from one tenant or run of a problem to the next.

    Lower-cased; ``hotglue_singer_sdk.`` read as ``singer_sdk.`` (Optiply's fork,
    REFERENCE §5); the tenant's own id, query strings, cursors (``page_info``), request
    and trace ids, UUIDs, timestamps, long tokens and other numbers become ``#``; HTTP
    status codes stay. "" for no line.
    """
    text = (line or "").strip()
    if not text:
        return ""
    text = _URL_QUERY.sub(r"\1", text)
    text = _PATH_QUERY.sub(r"\1", text)
    text = _HOST.sub("#", text)
    if tenant and len(tenant) >= 2:
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(tenant)}(?![A-Za-z0-9])", "#", text)
    text = text.lower().replace("hotglue_singer_sdk.", "singer_sdk.")
    text = _NOISY_PAIRS.sub(lambda m: f"{m.group(1)}{m.group(2)}#", text)
    text = _UUID.sub("#", text)
    text = _TIMESTAMP.sub("#", text)
    text = _HTTP_STATUS.sub(lambda m: "\x00" + next(g for g in m.groups() if g).translate(_TO_LETTERS) + "\x00", text)
    text = _TOKEN.sub("#", text)
    text = _HEX.sub("#", text)
    text = _NUMBER.sub("#", text)
    text = _KEPT_BACK.sub(lambda m: m.group(1).translate(_TO_DIGITS), text)
    text = re.sub(r"#(?:[#.:,/_-]*#)+", "#", text)
    return _SPACES.sub(" ", text)


def connector_of(event: JobEvent) -> str:
    """Return the job's connectors as ``tap → target`` (V1) or ``connector_id (job_type)`` (V2)."""
    if event.tap or event.target or not event.connector_id:
        return f"{(event.tap or '?').lower()} → {(event.target or '?').lower()}"
    return f"{event.connector_id.lower()} ({(event.job_type or '?').lower()})"


@dataclass(frozen=True)
class Signature:
    """A failure's signature: ``id`` (16 hex characters, what a snooze names) and its parts."""

    id: str
    error_line: str
    """The telling line as sent (redacted), for the incident's message."""
    normalised: str
    connector: str
    stage: str


def signature(event: JobEvent, error_line: str | None) -> Signature | None:
    """Return the signature of a failure ``event`` whose telling line is ``error_line``;
    None when the event is not a failure or has no tenant (nothing to group)."""
    if not event.is_failure or not event.tenant:
        return None
    normalised = normalise_error(error_line, event.tenant)
    connector = connector_of(event)
    stage = (event.status or "").upper()
    material = f"{normalised}\x1f{connector}\x1f{stage}"
    ident = hashlib.sha256(material.encode("utf-8", "replace")).hexdigest()[:16]
    return Signature(ident, (error_line or "").strip(), normalised, connector, stage)


# What judge() tells the worker to do with a failure alert about to be posted.
POST = "post"  # alone, as before incidents
HOLD = "hold"  # come back at ``until``: the group wait of its signature
OPEN = "open"  # this failure makes K tenants: open the incident, fold this alert into it
FOLD = "fold"  # an incident of its signature is open: fold into it


@dataclass(frozen=True)
class SignatureState:
    """What the worker read about a signature at ``now`` (its own sighting included).

    ``tenants``: distinct tenants seen with it within the window; ``first_seen_at``: the
    first of those sightings; ``incident_id``/``incident_last_change``: its open incident.
    """

    tenants: int
    first_seen_at: datetime | None
    incident_id: int | None = None
    incident_last_change: datetime | None = None


@dataclass(frozen=True)
class Verdict:
    """``kind`` (POST, HOLD, OPEN, FOLD); ``until`` for HOLD; ``why``: one line for the record."""

    kind: str
    why: str
    until: datetime | None = None


def incident_expired(last_change: datetime | None, now: datetime, rules: IncidentRules) -> bool:
    """Whether an open incident last changed (member, recovery) at ``last_change`` has
    been idle for ``expire_minutes`` at ``now``."""
    return last_change is not None and now - last_change >= timedelta(minutes=rules.expire_minutes)


def judge(state: SignatureState, now: datetime, rules: IncidentRules) -> Verdict:
    """Decide what happens to a failure alert of a signature in ``state`` at ``now``.

    Off: POST. An open incident that is not idle past ``expire_minutes``: FOLD. K
    tenants (``min_tenants``) within the window: OPEN. Within ``group_wait_seconds`` of
    the signature's first sighting: HOLD until then. Otherwise POST: a signature seen
    once waits at most the group wait.
    """
    if not rules.enabled:
        return Verdict(POST, "incidents are off")
    if state.incident_id is not None and not incident_expired(state.incident_last_change, now, rules):
        return Verdict(FOLD, f"folded into incident {state.incident_id}")
    if state.tenants >= rules.min_tenants:
        return Verdict(
            OPEN, f"{state.tenants} tenants failed like this within {rules.window_minutes:g} min: opens an incident"
        )
    if state.first_seen_at is not None and rules.group_wait_seconds > 0:
        until = state.first_seen_at + timedelta(seconds=rules.group_wait_seconds)
        if until > now:
            return Verdict(HOLD, f"group wait: {state.tenants} tenant(s) so far", until)
    return Verdict(POST, f"{state.tenants} tenant(s) within {rules.window_minutes:g} min: below {rules.min_tenants}")


def recovers(event: JobEvent) -> bool:
    """Whether ``event`` marks its tenant's flow recovered in the incidents it is in: a
    finished job (``JOB_COMPLETED``) of the tenant and flow (stale ones excepted by the caller)."""
    return (event.status or "").upper() == "JOB_COMPLETED" and bool(event.tenant and event.flow_id)
