"""A fake of HotGlue's REST API with in-memory state, over real HTTP.

Paths and bodies follow https://docs.hotglue.com/api-reference as summarised in
REFERENCE.md §4. Where HotGlue's behaviour is unconfirmed (the "no schedule" answer, the
linked-target body) the fake's choice is a constructor argument, so tests can cover each
possibility the client must survive.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import unquote

from hotglue_webhooks.fakes import EMPTY, FakeServer, RecordedRequest

__all__ = ["FakeHotGlue", "NoScheduleShape"]

#: How ``GET .../jobs/schedule`` answers for a tenant without a schedule (unconfirmed).
NoScheduleShape = Literal["404", "empty", "{}", "null", "no_expression"]

_Key = tuple[str, str, str]  # (env_id, flow_id, tenant)
_Answer = tuple[int, Any, Mapping[str, str]]
_SCHEDULE_STATES = ("ENABLED", "DISABLED")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ok(body: Any = None) -> _Answer:
    return 200, ({} if body is None else body), {}


def _error(status: int, message: str) -> _Answer:
    return status, {"message": message}, {}


class FakeHotGlue(FakeServer):
    """Fake HotGlue API: schedules, linked sources/targets, source state, tenant configs, jobs.

    ``api_key`` set: every request must carry it in ``x-api-key`` (401 otherwise).
    ``no_schedule`` picks the answer to reading a missing schedule: 404, an empty body,
    ``{}`` (default), ``null``, or an object without ``schedule_expression``.
    ``no_config_status`` is the status of the "no config" error for a tenant without
    config. Seed state with the ``set_*``/``add_*``/``link_flow`` methods and read it back
    with the accessors; all return copies. ``url`` is the API base URL.
    """

    peer = "hotglue"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        no_schedule: NoScheduleShape = "{}",
        no_config_status: int = 404,
        host: str = "127.0.0.1",
        port: int = 0,
        on_request: Callable[[RecordedRequest], None] | None = None,
    ) -> None:
        super().__init__(host=host, port=port, on_request=on_request)
        self.api_key = api_key
        self.no_schedule: NoScheduleShape = no_schedule
        self.no_config_status = no_config_status
        self._schedules: dict[_Key, dict[str, Any]] = {}
        self._linked_sources: dict[_Key, list[dict[str, Any]]] = {}
        self._linked_targets: dict[_Key, list[dict[str, Any]]] = {}
        self._source_states: dict[_Key, Any] = {}
        self._tenant_configs: dict[tuple[str, str], dict[str, Any]] = {}
        self._linked_flows: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._tenants: dict[str, list[str]] = {}
        self._jobs: list[dict[str, Any]] = []
        self._seeded_jobs: dict[_Key, list[Any]] = {}
        self._job_numbers = itertools.count(1)

    # --- seeding and inspecting state -----------------------------------------------------

    def set_schedule(
        self, env_id: str, flow_id: str, tenant: str, expression: str, state: str = "ENABLED", **extra: Any
    ) -> None:
        """Give a tenant a schedule for a flow."""
        with self._lock:
            self._schedules[(env_id, flow_id, tenant)] = {"schedule_expression": expression, "state": state, **extra}

    def schedule(self, env_id: str, flow_id: str, tenant: str) -> dict[str, Any] | None:
        """Return a tenant's schedule for a flow, or None."""
        with self._lock:
            return copy.deepcopy(self._schedules.get((env_id, flow_id, tenant)))

    @property
    def schedules(self) -> dict[_Key, dict[str, Any]]:
        """Every schedule, by ``(env_id, flow_id, tenant)``."""
        with self._lock:
            return copy.deepcopy(self._schedules)

    def set_tenant_config(self, env_id: str, tenant: str, config: Mapping[str, Any] | None) -> None:
        """Set a tenant's config; None removes it (reads then get the "no config" error)."""
        with self._lock:
            if config is None:
                self._tenant_configs.pop((env_id, tenant), None)
            else:
                self._tenant_configs[(env_id, tenant)] = copy.deepcopy(dict(config))

    def tenant_config(self, env_id: str, tenant: str) -> dict[str, Any] | None:
        """Return a tenant's config, or None."""
        with self._lock:
            return copy.deepcopy(self._tenant_configs.get((env_id, tenant)))

    def add_linked_source(
        self, env_id: str, flow_id: str, tenant: str, tap: str, config: Mapping[str, Any] | None = None
    ) -> None:
        """Link a source (tap) for a tenant's flow; the flow then counts as linked."""
        with self._lock:
            items = self._linked_sources.setdefault((env_id, flow_id, tenant), [])
            items[:] = [s for s in items if s.get("tap") != tap]
            items.append({"tap": tap, "config": copy.deepcopy(dict(config or {}))})

    def set_source_state(self, env_id: str, flow_id: str, tenant: str, state: Any) -> None:
        """Set a tenant's source state (bookmarks) for a flow; None removes it."""
        with self._lock:
            if state is None:
                self._source_states.pop((env_id, flow_id, tenant), None)
            else:
                self._source_states[(env_id, flow_id, tenant)] = copy.deepcopy(state)

    def source_state(self, env_id: str, flow_id: str, tenant: str) -> Any:
        """Return a tenant's source state for a flow, or None."""
        with self._lock:
            return copy.deepcopy(self._source_states.get((env_id, flow_id, tenant)))

    def add_linked_target(
        self, env_id: str, flow_id: str, tenant: str, target: str, config: Mapping[str, Any] | None = None
    ) -> None:
        """Link a target for a tenant's flow, as ``POST .../linkedTargets`` would."""
        with self._lock:
            item = {"target": target, "config": copy.deepcopy(dict(config or {}))}
            self._store_target((env_id, flow_id, tenant), item)

    def linked_targets(self, env_id: str, flow_id: str, tenant: str) -> list[dict[str, Any]]:
        """Return a tenant's linked targets of a flow (``[{"target", "config", ...}]``)."""
        with self._lock:
            return copy.deepcopy(self._linked_targets.get((env_id, flow_id, tenant), []))

    def link_flow(self, env_id: str, tenant: str, flow_id: str, *, name: str | None = None, version: int = 1) -> None:
        """List ``flow_id`` among the flows the tenant is linked to."""
        with self._lock:
            flows = self._linked_flows.setdefault((env_id, tenant), [])
            flows[:] = [f for f in flows if f.get("id") != flow_id]
            flows.append({"id": flow_id, "name": name or flow_id, "version": version})

    def add_tenant(self, env_id: str, tenant: str) -> None:
        """List a tenant in ``GET /tenants/{env_id}`` even without any other state."""
        with self._lock:
            tenants = self._tenants.setdefault(env_id, [])
            if tenant not in tenants:
                tenants.append(tenant)

    def seed_jobs(self, env_id: str, flow_id: str, tenant: str, jobs: list[Any]) -> None:
        """Add ``jobs`` (job-details objects, REFERENCE.md §7) to the job list of a
        tenant's flow, as HotGlue would list them. Items are stored as given, so a test can
        seed a wrong shape (an item without ``s3_root``, a string); to make the whole
        answer something other than an array, use :meth:`fail_next` with a 200 body."""
        with self._lock:
            self._seeded_jobs.setdefault((env_id, flow_id, tenant), []).extend(copy.deepcopy(jobs))

    def _job_list(self, key: _Key) -> list[Any]:
        """``GET .../jobs``: the jobs started through the API and the seeded ones, newest
        first by ``last_updated`` (items without one last)."""
        jobs: list[Any] = [j for j in self._jobs if self._job_key(j) == key] + self._seeded_jobs.get(key, [])

        def updated(job: Any) -> str:
            value = job.get("last_updated") if isinstance(job, Mapping) else None
            return value if isinstance(value, str) else ""

        return copy.deepcopy(sorted(jobs, key=updated, reverse=True))

    @property
    def jobs(self) -> list[dict[str, Any]]:
        """Every job started through the API, oldest first."""
        with self._lock:
            return copy.deepcopy(self._jobs)

    # --- the API --------------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> _Answer:
        if self.api_key is not None and request.header("x-api-key") != self.api_key:
            return _error(401, "Unauthorized")
        # Split the raw path before decoding, so that an encoded "/" stays inside its id.
        parts = [unquote(p) for p in request.raw_path.strip("/").split("/")]
        method = request.method
        if len(parts) == 2 and parts[0] == "tenants":
            return self._only(method, "GET") or _ok(self._tenant_ids(parts[1]))
        if len(parts) == 4 and parts[0] == "tenant" and parts[3] == "config":
            return self._tenant_config(method, parts[1], parts[2], request)
        if len(parts) == 3 and parts[1:] == ["flows", "linked"]:
            return self._only(method, "GET") or self._flows_linked(parts[0], request)
        if len(parts) == 5 and parts[0] == "v2" and parts[4] == "jobs":
            return self._only(method, "POST") or self._start_job((parts[1], parts[2], parts[3]), request, v2=True)
        if len(parts) >= 4:
            key: _Key = (parts[0], parts[1], parts[2])
            rest = parts[3:]
            if rest == ["jobs"]:
                if method == "POST":
                    return self._start_job(key, request, v2=False)
                return self._only(method, "GET") or _ok(self._job_list(key))
            if rest == ["jobs", "schedule"]:
                return self._schedule(method, key, request)
            if rest == ["jobs", "status"]:
                return self._only(method, "GET") or self._job_status(key, request)
            if rest == ["jobs", "latest"]:
                jobs = [j for j in self._jobs if self._job_key(j) == key]
                return self._only(method, "GET") or (_ok(jobs[-1]) if jobs else _error(404, "No jobs found"))
            if rest == ["linkedSources"]:
                return self._only(method, "GET") or self._sources(key, request)
            if rest == ["linkedSources", "state"]:
                return self._state(method, key, request)
            if rest == ["linkedTargets"]:
                return self._targets(method, key, request)
        return _error(404, "Not Found")

    @staticmethod
    def _only(method: str, allowed: str) -> _Answer | None:
        return None if method == allowed else _error(405, f"Method {method} not allowed")

    def _tenant_ids(self, env_id: str) -> list[str]:
        seen = list(self._tenants.get(env_id, []))
        keys = [*self._schedules, *self._linked_sources, *self._linked_targets, *self._source_states]
        candidates = [t for (e, _, t) in keys if e == env_id]
        candidates += [t for (e, t) in [*self._tenant_configs, *self._linked_flows] if e == env_id]
        candidates += [j["tenant"] for j in self._jobs if j["env_id"] == env_id]
        for tenant in candidates:
            if tenant not in seen:
                seen.append(tenant)
        return seen

    def _tenant_config(self, method: str, env_id: str, tenant: str, request: RecordedRequest) -> _Answer:
        key = (env_id, tenant)
        if method == "GET":
            config = self._tenant_configs.get(key)
            if config is None:
                # REFERENCE.md §4: the error text contains "no config"; the status is unknown.
                return _error(self.no_config_status, f"There is no config for tenant {tenant}")
            return _ok(copy.deepcopy(config))
        if method in ("PUT", "PATCH"):
            if not isinstance(request.json, dict):
                return _error(400, "Body must be a JSON object")
            if method == "PATCH":
                self._tenant_configs[key] = {**self._tenant_configs.get(key, {}), **request.json}
            else:
                self._tenant_configs[key] = request.json
            return _ok()
        return _error(405, f"Method {method} not allowed")

    def _flows_linked(self, env_id: str, request: RecordedRequest) -> _Answer:
        tenant = request.query.get("tenant_id")
        if not tenant:
            return _error(400, "tenant_id is required")
        flows = copy.deepcopy(self._linked_flows.get((env_id, tenant), []))
        known = {f["id"] for f in flows}
        # A tenant that linked a source of a flow is linked to that flow.
        for e, flow_id, t in self._linked_sources:
            if (e, t) == (env_id, tenant) and flow_id not in known:
                flows.append({"id": flow_id, "name": flow_id, "version": 1})
                known.add(flow_id)
        return _ok(flows)

    def _schedule(self, method: str, key: _Key, request: RecordedRequest) -> _Answer:
        if method == "GET":
            schedule = self._schedules.get(key)
            if schedule is not None:
                return _ok(copy.deepcopy(schedule))
            shape = self.no_schedule
            if shape == "404":
                return _error(404, "Schedule not found")
            if shape == "empty":
                return 200, EMPTY, {}
            if shape == "null":
                return 200, None, {}
            if shape == "no_expression":
                return _ok({"flow_id": key[1], "tenant": key[2], "state": "DISABLED"})
            return _ok({})
        if method == "PUT":
            body = request.json
            # REFERENCE.md §4: "A schedule PUT needs schedule_expression".
            if not isinstance(body, dict) or not isinstance(body.get("schedule_expression"), str):
                return _error(400, "schedule_expression is required")
            if "state" in body and body["state"] not in _SCHEDULE_STATES:
                return _error(400, "state must be ENABLED or DISABLED")
            stored = dict(body)
            stored.setdefault("state", "ENABLED")
            self._schedules[key] = stored
            return _ok({})
        return _error(405, f"Method {method} not allowed")

    def _start_job(self, key: _Key, request: RecordedRequest, *, v2: bool) -> _Answer:
        body = request.json if isinstance(request.json, dict) else None
        if body is None:
            return _error(400, "Body must be a JSON object")
        if v2 and not (body.get("connector_id") and body.get("job_type")):
            return _error(400, "connector_id and job_type are required")
        env_id, flow_id, tenant = key
        started = _now()
        job_id = f"fk{next(self._job_numbers):05d}"
        job = {
            **body,
            "job_id": job_id,
            "job_name": body.get("job_name") or f"{tenant}-{flow_id}-{job_id}",
            "env_id": env_id,
            "flow_id": flow_id,
            "tenant": tenant,
            "started_by": tenant,
            # REFERENCE.md §2: s3_root is "{tenant}/flows/{flow_id}/jobs/…/{job_id}".
            "s3_root": f"{tenant}/flows/{flow_id}/jobs/{started:%Y/%m/%d/%H/%M}/{job_id}",
            "status": "JOB_CREATED",
            "scheduled_job": False,
            "start_time": _iso(started),
            "last_updated": _iso(started),
        }
        self._jobs.append(job)
        return _ok(copy.deepcopy(job))

    @staticmethod
    def _job_key(job: Mapping[str, Any]) -> _Key:
        return (job["env_id"], job["flow_id"], job["tenant"])

    def _job_status(self, key: _Key, request: RecordedRequest) -> _Answer:
        root = request.query.get("job_root")
        for job in self._jobs:
            if self._job_key(job) == key and job["s3_root"] == root:
                return _ok(copy.deepcopy(job))
        return _error(404, "Job not found")

    def _sources(self, key: _Key, request: RecordedRequest) -> _Answer:
        sources = copy.deepcopy(self._linked_sources.get(key, []))
        if request.query.get("config", "").lower() != "true":
            for source in sources:
                source.pop("config", None)
        return _ok(sources)

    def _state(self, method: str, key: _Key, request: RecordedRequest) -> _Answer:
        if method == "GET":
            return _ok(copy.deepcopy(self._source_states.get(key, {})))
        if method == "PUT":
            self._source_states[key] = request.json
            return _ok()
        if method == "DELETE":
            self._source_states.pop(key, None)
            return _ok()
        return _error(405, f"Method {method} not allowed")

    def _targets(self, method: str, key: _Key, request: RecordedRequest) -> _Answer:
        if method == "GET":
            return _ok(copy.deepcopy(self._linked_targets.get(key, [])))
        if method == "POST":
            body = request.json
            if not isinstance(body, dict):
                return _error(400, "Body must be a JSON object")
            # Body shape unconfirmed (REFERENCE.md §4): {"target": {"target": name, "config"}}
            # by analogy with linked sources; a flat {"target": name, "config"} is taken too.
            item = body["target"] if isinstance(body.get("target"), dict) else body
            if not isinstance(item.get("target"), str) or not item["target"]:
                return _error(400, "target is required")
            return _ok(self._store_target(key, copy.deepcopy(item)))
        if method == "DELETE":
            name = request.query.get("target")
            items = self._linked_targets.get(key, [])
            self._linked_targets[key] = [t for t in items if name is not None and t.get("target") != name]
            return _ok()
        return _error(405, f"Method {method} not allowed")

    def _store_target(self, key: _Key, item: dict[str, Any]) -> dict[str, Any]:
        items = self._linked_targets.setdefault(key, [])
        items[:] = [t for t in items if t.get("target") != item["target"]]
        items.append(item)
        return copy.deepcopy(item)
