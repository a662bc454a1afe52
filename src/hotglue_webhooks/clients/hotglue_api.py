"""HotGlue REST API client: typed calls, inline retries, errors from :mod:`.errors`.

Paths, verbs and bodies follow https://docs.hotglue.com/api-reference as summarised in
REFERENCE.md §4. The client executes; it decides nothing. Every write ``foo`` has a
``foo_request`` twin that builds the exact :class:`httpx.Request` without sending it
(dry-run stores :func:`describe_request` of it); ``foo`` sends exactly that request.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, TypedDict
from urllib.parse import quote

import httpx

from hotglue_webhooks import redaction
from hotglue_webhooks.clients.errors import (
    HotGlueAuthError,
    HotGlueBadRequest,
    HotGlueError,
    HotGlueNotFound,
    HotGlueRateLimited,
    HotGlueServerError,
    HotGlueTransportError,
    UnexpectedShape,
    parse_retry_after,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "REDACTED",
    "HotGlueClient",
    "LinkedTarget",
    "describe_request",
    "redact_secrets",
]

log = logging.getLogger(__name__)

#: REFERENCE.md §4; the older host https://client-api.hotglue.xyz serves the same paths.
DEFAULT_BASE_URL = "https://api.hotglue.com"
REDACTED = redaction.REDACTED
USER_AGENT = "hotglue-webhooks"

# Methods whose repetition cannot create a second effect; see HotGlueClient._may_retry.
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_EXCERPT_CHARS = 200


def redact_secrets(value: Any) -> Any:
    """Return a copy of a JSON-like value with every secret-looking key's value replaced.

    The one rule set of :mod:`hotglue_webhooks.redaction`, by key only: tenant configs and
    linked target bodies carry credentials under keys such as password, client_secret,
    access_token, refresh_token, api_key (REFERENCE.md §4).
    """
    return redaction.redact(value, free_text=False)


def describe_request(request: httpx.Request, *, redact_body: bool = True) -> dict[str, Any]:
    """Describe a request for storing: ``{"method", "url", "headers", "json"}``.

    ``headers`` lists every header the request carries, with ``x-api-key``,
    ``authorization`` and ``cookie`` values replaced by ``"[redacted]"``. ``json`` is the
    parsed body (None when empty), with secret-looking keys redacted unless
    ``redact_body`` is False. A body that is not JSON appears under ``"content"`` instead.
    """
    headers = {k: (REDACTED if redaction.DEFAULT_REDACTOR.is_secret(k) else v) for k, v in request.headers.items()}
    described: dict[str, Any] = {
        "method": request.method,
        "url": str(request.url),
        "headers": headers,
        "json": None,
    }
    raw = request.read()
    if raw:
        try:
            body = json.loads(raw)
        except ValueError:
            described["content"] = raw.decode("utf-8", "replace")
        else:
            described["json"] = redact_secrets(body) if redact_body else body
    return described


class LinkedTarget(TypedDict):
    """One entry of ``GET .../linkedTargets``: ``{"name": connector name or None, "raw": item}``.

    A plain dict at run time, so code that reads ``item["name"]`` or ``item.get("name")``
    works on it. The item's shape is unconfirmed (REFERENCE.md §4), so ``name`` is read
    from ``{"target": "<name>"}``, ``{"target": {"target": "<name>"}}``, ``{"name"}``,
    ``{"id"}`` or a bare string; ``raw`` is the item as HotGlue sent it.
    """

    name: str | None
    raw: Any


def target_name(item: Any) -> str | None:
    """Return the target's name in a linked-target item or a link body (its shape is
    unconfirmed, REFERENCE.md §4: ``{"target": {"target": name}}``, ``{"target": name}``,
    ``{"name"|"id"|"target_id": ...}``), or None."""
    if isinstance(item, str):
        return item
    if not isinstance(item, Mapping):
        return None
    target = item.get("target")
    if isinstance(target, str) and target:
        return target
    if isinstance(target, Mapping):
        inner = target.get("target") or target.get("name") or target.get("id")
        if isinstance(inner, str) and inner:
            return inner
    for key in ("name", "id", "target_id"):
        value = item.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _as_list(body: Any) -> list[Any]:
    # HotGlue documents lists for these calls; a single object or null is read leniently
    # so that an unconfirmed shape degrades to "one item" or "none" instead of a crash.
    if body is None:
        return []
    if isinstance(body, list):
        return body
    return [body]


def _schedule_or_none(body: Any) -> dict[str, Any] | None:
    # What GET .../jobs/schedule answers for a tenant without a schedule is unconfirmed
    # (REFERENCE.md §4): empty body, null, {}, or an object without an expression all mean
    # "no schedule". A list is read as its first object, in case it wraps the schedule.
    if isinstance(body, list):
        body = next((item for item in body if isinstance(item, Mapping)), None)
    if not isinstance(body, Mapping):
        return None
    expression = body.get("schedule_expression")
    if not isinstance(expression, str) or not expression.strip():
        return None
    return dict(body)


def _json_kind(body: Any) -> str:
    if body is None:
        return "empty"
    return {dict: "an object", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(body), type(body).__name__
    )


def _says_no_config(text: str) -> bool:
    # REFERENCE.md §4: "a tenant without one gets an error whose text contains 'no config'";
    # the status code is not documented, so only the text counts.
    return "no config" in text.lower()


class HotGlueClient:
    """Call HotGlue's REST API for one environment key.

    ``base_url`` is e.g. ``https://api.hotglue.com``; ``api_key`` goes in the ``x-api-key``
    header (None sends none: enough for building dry-run requests). ``timeout`` bounds
    each read/write in seconds; connecting is bounded by ``connect_timeout`` (default
    ``min(timeout, 5)``).

    Retries happen inline, up to ``max_retries`` times, on 429, 423, 5xx and transport
    errors (HotGlue's own SDK retries 429, 423 and 5xx: REFERENCE.md §4). The wait is the
    server's ``Retry-After`` when given, else ``backoff_base * 2**attempt`` seconds with
    jitter. A wait longer than ``max_inline_wait`` seconds is not slept: the transient
    error is raised at once with ``retry_after`` so the worker retries durably. POSTs (start
    a job, link a target) are retried inline only when HotGlue surely did not act on them
    (429, 423, connection never made): a 5xx or a read timeout may hide a job that did
    start, and whether to send again is the worker's call.

    ``transport`` replaces the network (e.g. :class:`httpx.MockTransport`); ``sleep`` is
    called with the seconds to wait (tests pass a recorder). Use as a context manager or
    call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        max_retries: int = 2,
        backoff_base: float = 0.5,
        max_inline_wait: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_inline_wait = max_inline_wait
        self._api_key = api_key or None
        self._sleep = sleep
        headers = {"accept": "application/json", "user-agent": USER_AGENT}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0) if connect_timeout is None else connect_timeout),
            transport=transport,
            follow_redirects=False,  # a redirect would carry x-api-key to wherever it points
        )

    def __repr__(self) -> str:
        return f"HotGlueClient({self.base_url!r}, api_key={'[redacted]' if self._api_key else None})"

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> HotGlueClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- schedules ------------------------------------------------------------------------

    def get_schedule(self, env_id: str, flow_id: str, tenant: str) -> dict[str, Any] | None:
        """Read a tenant's schedule for a flow: ``{"schedule_expression", "state", ...}`` or None.

        ``GET /{env_id}/{flow_id}/{tenant}/jobs/schedule`` (REFERENCE.md §4). None when the
        tenant has none: 404, an empty body, null, ``{}`` or an object without a
        ``schedule_expression`` (HotGlue's answer for this case is unconfirmed).
        Raises :class:`~.errors.HotGlueError` for other failures.
        """
        request = self._build("GET", self._flow_path(env_id, flow_id, tenant, "jobs", "schedule"))
        response = self._send(request, tolerate=lambda r: r.status_code == 404)
        if response.status_code == 404:
            return None
        return _schedule_or_none(self._read_json(request, response))

    def put_schedule_request(self, env_id: str, flow_id: str, tenant: str, body: Mapping[str, Any]) -> httpx.Request:
        """Build ``PUT /{env_id}/{flow_id}/{tenant}/jobs/schedule`` without sending it.

        ``body`` is ``{"schedule_expression": "cron(...)", "state": "ENABLED"|"DISABLED"}``,
        plus ``job_type`` and ``connector_id`` for V2 flows (REFERENCE.md §4).
        """
        return self._build("PUT", self._flow_path(env_id, flow_id, tenant, "jobs", "schedule"), body)

    def put_schedule(self, env_id: str, flow_id: str, tenant: str, body: Mapping[str, Any]) -> Any:
        """Set a tenant's schedule for a flow; return HotGlue's answer (documented as ``{}``).

        Sends :meth:`put_schedule_request`. Raises :class:`~.errors.HotGlueError`.
        """
        return self.send(self.put_schedule_request(env_id, flow_id, tenant, body))

    # --- jobs ----------------------------------------------------------------------------

    def start_job_request(self, env_id: str, flow_id: str, tenant: str, body: Mapping[str, Any]) -> httpx.Request:
        """Build the V1 ``POST /{env_id}/{flow_id}/{tenant}/jobs`` without sending it.

        ``body`` is e.g. ``{"tap": "shopify", "job_name": "wh-..."}`` (REFERENCE.md §4).
        """
        return self._build("POST", self._flow_path(env_id, flow_id, tenant, "jobs"), body)

    def start_job(self, env_id: str, flow_id: str, tenant: str, body: Mapping[str, Any]) -> Any:
        """Start a job on a V1 flow; return the job object (``job_id``, ``s3_root``, ``status``).

        Sends :meth:`start_job_request`. Raises :class:`~.errors.HotGlueError`.
        """
        return self.send(self.start_job_request(env_id, flow_id, tenant, body))

    def start_job_v2_request(
        self, env_id: str, flow_id: str, tenant: str, body: Mapping[str, Any]
    ) -> httpx.Request:
        """Build the V2 ``POST /v2/{env_id}/{flow_id}/{tenant}/jobs`` without sending it.

        ``body`` carries ``connector_id`` and ``job_type`` (``read``/``write``): REFERENCE.md §4.
        """
        return self._build("POST", "/v2" + self._flow_path(env_id, flow_id, tenant, "jobs"), body)

    def start_job_v2(self, env_id: str, flow_id: str, tenant: str, body: Mapping[str, Any]) -> Any:
        """Start a job on a V2 flow; return the job object. Raises :class:`~.errors.HotGlueError`."""
        return self.send(self.start_job_v2_request(env_id, flow_id, tenant, body))

    def get_job_status(self, env_id: str, flow_id: str, tenant: str, s3_root: str) -> dict[str, Any] | None:
        """Read one job's status object, or None when HotGlue answers an empty body.

        ``GET /{env_id}/{flow_id}/{tenant}/jobs/status?job_root={s3_root}``: the API calls
        the webhook's ``s3_root`` ``job_root`` (REFERENCE.md §2, §4).
        Raises :class:`~.errors.HotGlueError` (404 for an unknown job).
        """
        body = self._get(self._flow_path(env_id, flow_id, tenant, "jobs", "status"), params={"job_root": s3_root})
        return dict(body) if isinstance(body, Mapping) else None

    def list_jobs(self, env_id: str, flow_id: str, tenant: str) -> list[dict[str, Any]]:
        """List a tenant's jobs of a flow, as HotGlue answers them (newest first).

        ``GET /{env_id}/{flow_id}/{tenant}/jobs`` (REFERENCE.md §7: used by public clients,
        not on a docs page; query parameters and pagination unconfirmed, so none are sent).
        Each item is a job-details object with the webhook's fields (``job_id``,
        ``s3_root``, ``status``, ``last_updated``, ...); items are returned as-is, checking
        them is the caller's business. Raises :class:`~.errors.UnexpectedShape` when the
        answer is not a JSON array, else :class:`~.errors.HotGlueError` as every call.
        """
        request = self._build("GET", self._flow_path(env_id, flow_id, tenant, "jobs"))
        response = self._send(request)
        body = self._read_json(request, response)
        if not isinstance(body, list):
            raise UnexpectedShape(
                f"HotGlue GET {request.url.path}: the job list is {_json_kind(body)}, not an array",
                status_code=response.status_code,
            )
        return body

    # --- linked sources and their state ----------------------------------------------------

    def list_linked_sources(
        self, env_id: str, flow_id: str, tenant: str, *, config: bool = True
    ) -> list[dict[str, Any]]:
        """List a tenant's linked sources of a flow: ``[{"tap", "config", ...}]``.

        ``GET /{env_id}/{flow_id}/{tenant}/linkedSources?config=true`` (REFERENCE.md §4);
        ``config`` False omits the query and HotGlue leaves the configs out. The configs
        hold credentials: redact before storing. Raises :class:`~.errors.HotGlueError`.
        """
        params = {"config": "true"} if config else None
        body = self._get(self._flow_path(env_id, flow_id, tenant, "linkedSources"), params=params)
        return [dict(item) for item in _as_list(body) if isinstance(item, Mapping)]

    def get_source_state(self, env_id: str, flow_id: str, tenant: str) -> Any:
        """Read a tenant's source state (bookmarks) for a flow, as HotGlue sends it.

        ``GET /{env_id}/{flow_id}/{tenant}/linkedSources/state`` (REFERENCE.md §4). An empty
        body gives None; None or an empty value means the flow never synced.
        Raises :class:`~.errors.HotGlueError`.
        """
        return self._get(self._flow_path(env_id, flow_id, tenant, "linkedSources", "state"))

    def put_source_state_request(self, env_id: str, flow_id: str, tenant: str, state: Any) -> httpx.Request:
        """Build ``PUT /{env_id}/{flow_id}/{tenant}/linkedSources/state`` with ``state`` as body."""
        return self._build("PUT", self._flow_path(env_id, flow_id, tenant, "linkedSources", "state"), state)

    def put_source_state(self, env_id: str, flow_id: str, tenant: str, state: Any) -> Any:
        """Replace a tenant's source state for a flow; return HotGlue's answer.

        Sends :meth:`put_source_state_request`. Raises :class:`~.errors.HotGlueError`.
        """
        return self.send(self.put_source_state_request(env_id, flow_id, tenant, state))

    def delete_source_state_request(self, env_id: str, flow_id: str, tenant: str) -> httpx.Request:
        """Build ``DELETE /{env_id}/{flow_id}/{tenant}/linkedSources/state`` without sending it."""
        return self._build("DELETE", self._flow_path(env_id, flow_id, tenant, "linkedSources", "state"))

    def delete_source_state(self, env_id: str, flow_id: str, tenant: str) -> Any:
        """Forget a tenant's source state for a flow (the next job is a full sync).

        Sends :meth:`delete_source_state_request`. Raises :class:`~.errors.HotGlueError`.
        """
        return self.send(self.delete_source_state_request(env_id, flow_id, tenant))

    # --- linked targets --------------------------------------------------------------------

    def list_linked_targets(self, env_id: str, flow_id: str, tenant: str) -> list[LinkedTarget]:
        """List a tenant's linked targets of a flow: ``[{"name": str | None, "raw": item}]``.

        ``GET /{env_id}/{flow_id}/{tenant}/linkedTargets`` (REFERENCE.md §4; item shape
        unconfirmed). Raises :class:`~.errors.HotGlueError`.
        """
        body = self._get(self._flow_path(env_id, flow_id, tenant, "linkedTargets"))
        return [LinkedTarget(name=target_name(item), raw=item) for item in _as_list(body)]

    def link_target_request(self, env_id: str, flow_id: str, tenant: str, body: Mapping[str, Any]) -> httpx.Request:
        """Build ``POST /{env_id}/{flow_id}/{tenant}/linkedTargets`` without sending it.

        The body is configuration (REFERENCE.md §4 marks it unconfirmed; by analogy with
        linked sources: ``{"target": {"target": "<name>", "config": {...}}}``).
        """
        return self._build("POST", self._flow_path(env_id, flow_id, tenant, "linkedTargets"), body)

    def link_target(self, env_id: str, flow_id: str, tenant: str, body: Mapping[str, Any]) -> Any:
        """Link a target to a tenant's flow; return HotGlue's answer.

        Sends :meth:`link_target_request`. Raises :class:`~.errors.HotGlueError`.
        """
        return self.send(self.link_target_request(env_id, flow_id, tenant, body))

    # --- tenants and flows -----------------------------------------------------------------

    def get_tenant_config(self, env_id: str, tenant: str) -> dict[str, Any] | None:
        """Read a tenant's config (``apiCredentials`` etc.), or None when it has none.

        ``GET /tenant/{env_id}/{tenant}/config`` (REFERENCE.md §4). HotGlue answers a tenant
        without config with an error whose text contains "no config", whatever the status;
        that, an empty body and null give None. The config holds secrets: redact before
        storing or showing. Raises :class:`~.errors.HotGlueError` for other failures.
        """
        request = self._build("GET", "/tenant/" + self._segments(env_id, tenant) + "/config")
        response = self._send(request, tolerate=lambda r: _says_no_config(r.text))
        if not response.is_success:
            return None
        body = self._read_json(request, response)
        if body is None:
            return None
        if not isinstance(body, Mapping):
            raise HotGlueServerError(
                f"HotGlue GET {request.url.path}: tenant config is a {type(body).__name__}, not an object",
                status_code=response.status_code,
                transient=False,
            )
        # Defensive: the same "no config" error answered with a 2xx status.
        if set(body) <= {"message", "error", "errorMessage", "status"} and _says_no_config(json.dumps(body)):
            return None
        return dict(body)

    def list_tenants(self, env_id: str) -> list[str]:
        """List the tenant ids of an environment: ``GET /tenants/{env_id}`` (REFERENCE.md §4).

        Items that are objects are read by their ``id``/``tenant``/``tenant_id``.
        Raises :class:`~.errors.HotGlueError`.
        """
        tenants: list[str] = []
        for item in _as_list(self._get("/tenants/" + self._segments(env_id))):
            if isinstance(item, Mapping):
                item = item.get("id") or item.get("tenant") or item.get("tenant_id")
            if isinstance(item, (str, int)) and not isinstance(item, bool) and str(item):
                tenants.append(str(item))
        return tenants

    def list_linked_flows(self, env_id: str, tenant: str) -> list[dict[str, Any]]:
        """List the flows a tenant is linked to: ``[{"id", "name", "version", ...}]``.

        ``GET /{env_id}/flows/linked?tenant_id={tenant}``, seen in HotGlue's public client
        code, not on a docs page (REFERENCE.md §4). A bare flow id item becomes ``{"id": id}``.
        Raises :class:`~.errors.HotGlueError`.
        """
        body = self._get("/" + self._segments(env_id) + "/flows/linked", params={"tenant_id": tenant})
        flows: list[dict[str, Any]] = []
        for item in _as_list(body):
            if isinstance(item, str) and item:
                flows.append({"id": item})
            elif isinstance(item, Mapping):
                flows.append(dict(item))
        return flows

    def linked_flow_ids(self, env_id: str, tenant: str) -> list[str]:
        """Return the ids of :meth:`list_linked_flows` (``id``, else ``flow_id``), in order."""
        ids: list[str] = []
        for flow in self.list_linked_flows(env_id, tenant):
            flow_id = flow.get("id") or flow.get("flow_id")
            if isinstance(flow_id, str) and flow_id and flow_id not in ids:
                ids.append(flow_id)
        return ids

    # --- sending -------------------------------------------------------------------------

    def send(self, request: httpx.Request) -> Any:
        """Send a request built by a ``*_request`` method; return the parsed answer.

        The answer is the JSON body, None for an empty body, or the text when a 2xx body is
        not JSON (the write happened: raising would invite sending it twice).
        Raises :class:`~.errors.HotGlueError`.
        """
        response = self._send(request)
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def _get(self, path: str, *, params: Mapping[str, str] | None = None) -> Any:
        request = self._build("GET", path, params=params)
        return self._read_json(request, self._send(request))

    def _build(
        self, method: str, path: str, body: Any = None, *, params: Mapping[str, str] | None = None
    ) -> httpx.Request:
        if method in ("GET", "DELETE"):
            return self._http.build_request(method, path, params=params)
        return self._http.build_request(method, path, params=params, json=body)

    @staticmethod
    def _segments(*values: str) -> str:
        # Each id is one path segment: a tenant "a/b c" must not become two segments, and
        # sub-tenants such as "acme_2" pass unchanged (quote keeps "_", ".", "-", "~").
        parts = []
        for value in values:
            text = str(value)
            if not text:
                raise ValueError("HotGlue path ids (env_id, flow_id, tenant) must not be empty")
            parts.append(quote(text, safe=""))
        return "/".join(parts)

    def _flow_path(self, env_id: str, flow_id: str, tenant: str, *rest: str) -> str:
        return "/" + "/".join([self._segments(env_id, flow_id, tenant), *rest])

    def _read_json(self, request: httpx.Request, response: httpx.Response) -> Any:
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise HotGlueServerError(
                f"HotGlue {request.method} {request.url.path} answered {response.status_code} "
                f"with a body that is not JSON: {self._excerpt(response.text)}",
                status_code=response.status_code,
            ) from None

    def _send(
        self, request: httpx.Request, *, tolerate: Callable[[httpx.Response], bool] | None = None
    ) -> httpx.Response:
        """Send with inline retries; return a 2xx response or one ``tolerate`` accepts."""
        attempt = 0
        while True:
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                error: HotGlueError = HotGlueTransportError(
                    f"HotGlue {request.method} {request.url.path}: {type(exc).__name__}: {self._excerpt(str(exc))}"
                )
                cause: BaseException | None = exc
                sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
            else:
                if response.is_success or (tolerate is not None and tolerate(response)):
                    return response
                error = self._error_for(request, response)
                cause = None
                sent = response.status_code not in (423, 429)
            if not self._may_retry(request, error, sent=sent) or attempt >= self.max_retries:
                raise error from cause
            wait = error.retry_after if error.retry_after is not None else self._backoff(attempt)
            if wait > self.max_inline_wait:
                # Too long to hold a worker: hand the wait to the worker's durable retry.
                raise error from cause
            attempt += 1
            log.warning(
                "hotglue call failed, retrying: %s %s -> %s; retry %d/%d in %.2fs",
                request.method,
                request.url.path,
                error.status_code or type(error).__name__,
                attempt,
                self.max_retries,
                wait,
            )
            self._sleep(wait)

    @staticmethod
    def _may_retry(request: httpx.Request, error: HotGlueError, *, sent: bool) -> bool:
        if not error.transient:
            return False
        # A POST that HotGlue may have acted on (5xx, read timeout) is not repeated here:
        # a second start_job would start a second job.
        return request.method in _IDEMPOTENT_METHODS or not sent

    def _backoff(self, attempt: int) -> float:
        # Exponential with "equal jitter": half fixed, half random, so that workers that
        # failed together do not retry together.
        delay = self.backoff_base * (2.0**attempt)
        return min(self.max_inline_wait, delay / 2 + random.uniform(0, delay / 2))

    def _error_for(self, request: httpx.Request, response: httpx.Response) -> HotGlueError:
        status = response.status_code
        cls: type[HotGlueError]
        if status in (401, 403):
            cls = HotGlueAuthError
        elif status == 404:
            cls = HotGlueNotFound
        elif status in (423, 429):
            cls = HotGlueRateLimited
        elif status >= 500:
            cls = HotGlueServerError
        else:
            cls = HotGlueBadRequest
        summary = f"HotGlue {status} on {request.method} {request.url.path}"
        excerpt = self._excerpt(response.text)
        if excerpt:
            summary += f": {excerpt}"
        return cls(summary, status_code=status, retry_after=parse_retry_after(response.headers.get("retry-after")))

    def _excerpt(self, text: str) -> str:
        """Shorten a peer's text for an error summary, without secrets."""
        text = text.strip()
        try:
            parsed = json.loads(text)
        except ValueError:
            text = redaction.redact_text(text)
        else:
            text = json.dumps(redaction.redact(parsed), ensure_ascii=False)
        if self._api_key:
            text = text.replace(self._api_key, REDACTED)
        text = " ".join(text.split())
        if len(text) > _EXCERPT_CHARS:
            text = text[: _EXCERPT_CHARS - 1] + "…"
        return text
