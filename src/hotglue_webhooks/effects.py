"""Execute one decided action against Slack or HotGlue; decide nothing.

Each action kind maps to exactly one HTTP write (see ``rules/model.py`` for the params).
In dry-run (``HGW_DRY_RUN``, or no API key / bot token) the request is built exactly as it
would be sent, recorded, and not sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hotglue_webhooks.clients.hotglue_api import describe_request, target_name
from hotglue_webhooks.clients.slack import SlackClient, masked_response_url
from hotglue_webhooks.rules import (
    CONFIG_PLACEHOLDER,
    HOTGLUE_LINK_TARGET,
    HOTGLUE_PUT_SCHEDULE,
    HOTGLUE_START_JOB,
    SLACK_ACTION_FAILED,
    SLACK_POST,
    SLACK_UPDATE,
)
from hotglue_webhooks.rules.commands import SLACK_RESPOND
from hotglue_webhooks.rules.messages import action_failed

if TYPE_CHECKING:
    from hotglue_webhooks.environment import Environment


IDEMPOTENCY_HEADER = "Idempotency-Key"
METADATA_EVENT_TYPE = "hotglue_webhooks_action"
# How far before a started attempt a Slack lookup reaches back, in seconds: the attempt's
# time is our clock, a message's ts is Slack's.
LOOKUP_MARGIN_SECONDS = 60.0


def idempotency_token(key: str) -> str:
    """Return the short, header-safe form of an action's idempotency key (32 hex chars).

    Sent with every write (HotGlue: ``Idempotency-Key`` header; Slack: message metadata),
    so a peer or its log can tell a resend after a crash from a new action.
    """
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class ActionImpossible(ValueError):
    """The action cannot be executed as recorded (a permanent failure, never retried)."""


@dataclass(frozen=True)
class Outcome:
    """What executing an action did: ``dry_run`` or not, the request, a response summary."""

    dry_run: bool
    request: dict[str, Any]
    response: dict[str, Any] | None


# Action kind → HotGlueClient method (and its ``<name>_request`` builder).
_HOTGLUE_CALLS = {
    HOTGLUE_PUT_SCHEDULE: "put_schedule",
    HOTGLUE_LINK_TARGET: "link_target",
    HOTGLUE_START_JOB: "start_job",
}


class Effects:
    """Run actions: HotGlue through the event environment's client, Slack through ``slack``."""

    def __init__(
        self, environment: Callable[[str | None], Environment], slack: SlackClient, *, slack_dry_run: bool
    ) -> None:
        self.environment = environment
        self.slack = slack
        self.slack_dry_run = slack_dry_run

    def execute(self, kind: str, params: Mapping[str, Any], key: str = "") -> Outcome:
        """Execute (or dry-run) one action; ``key`` is its idempotency key.

        Raises ``hotglue_webhooks.clients.errors.PeerError`` subclasses when the peer
        fails (``.transient`` says whether to retry) and ActionImpossible for an action
        that cannot run as recorded (unknown kind, missing tenant config section).
        """
        if kind == SLACK_POST:
            return self._slack_post(params, key)
        if kind == SLACK_UPDATE:
            return self._slack_update(params)
        if kind == SLACK_RESPOND:
            return self._slack_respond(params)
        if kind in _HOTGLUE_CALLS:
            return self._hotglue(kind, params, key)
        raise ActionImpossible(f"unknown action kind {kind!r}")

    def find_earlier(
        self, kind: str, params: Mapping[str, Any], key: str, since: datetime
    ) -> Outcome | None:
        """Look at the peer for the effect of an earlier attempt of this action whose
        outcome is unknown (recorded as started at ``since``, never as finished): its
        Outcome when it is there, None when it is not (or ``kind`` cannot be looked for).

        - Slack posts: a message with our metadata (``event_type``
          :data:`METADATA_EVENT_TYPE`, ``event_payload.idempotency_key`` = the key's token)
          in ``conversations.history`` of the channel, or ``conversations.replies`` of the
          thread, since ``since`` less :data:`LOOKUP_MARGIN_SECONDS` (our clock and Slack's).
        - Job starts: a job of the same ``job_name`` in the tenant's job list
          (``GET .../jobs``, REFERENCE.md §7).
        - Target links: the target already among the tenant's linked targets.
        - Schedule PUTs and ``chat.update`` write a state, not a new thing: sending them
          again changes nothing, so they are not looked for.

        Nothing is looked for in dry-run. Raises ``PeerError`` when the lookup itself fails
        (the caller then sends anyway: a duplicate rather than a loss).
        """
        if kind == SLACK_POST and key and not self.slack_dry_run:
            token = idempotency_token(key)
            oldest = since.timestamp() - LOOKUP_MARGIN_SECONDS
            found = self.slack.find_message(
                params["channel"], METADATA_EVENT_TYPE, {"idempotency_key": token}, oldest,
                thread_ts=params.get("thread_ts"),
            )
            if found is None:
                return None
            found_by = "conversations.replies" if params.get("thread_ts") else "conversations.history"
            return Outcome(False, self._slack_post_request(params, key), {**found, "found_by": found_by})
        if kind not in (HOTGLUE_START_JOB, HOTGLUE_LINK_TARGET):
            return None
        environment = self.environment(params.get("env_id"))
        if environment.hotglue_dry_run:
            return None
        client = environment.hotglue
        env_id, flow_id, tenant, body = params["env_id"], params["flow_id"], params["tenant"], params["body"]
        if kind == HOTGLUE_START_JOB:
            name = body.get("job_name")
            jobs = client.list_jobs(env_id, flow_id, tenant) if name else []
            job = next((j for j in jobs if isinstance(j, Mapping) and j.get("job_name") == name), None)
            if job is None:
                return None
            sent = client.start_job_request(env_id, flow_id, tenant, body)
            found_by = "job list"
            answer: Mapping[str, Any] = job
        else:
            name = target_name(body)
            linked = [t for t in client.list_linked_targets(env_id, flow_id, tenant) if t["name"] == name]
            if not name or not linked:
                return None
            # The credentials went with the first attempt; the record names the section.
            placeholder = f"<{params.get('config_from')} from the tenant config>"
            sent = client.link_target_request(env_id, flow_id, tenant, _fill(body, placeholder))
            found_by = "linked targets"
            answer = {}
        if key:
            sent.headers[IDEMPOTENCY_HEADER] = idempotency_token(key)
        return Outcome(False, describe_request(sent), {**_summary(answer), "found_by": found_by})

    def preview(self, kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return the request ``execute`` would send, built and redacted, never sent.

        Reads nothing either: a link body shows which tenant-config section would go in.
        Raises ActionImpossible for an unknown kind. A ``slack.action_failed`` report
        shows the post it would make if every step it watches failed.
        """
        if kind == SLACK_ACTION_FAILED:
            dead = {step["action_key"]: ("dead", "<its last error>") for step in params.get("steps") or []}
            kind, params = SLACK_POST, action_failed(params, dead, None, None)
        if kind == SLACK_POST:
            return self.slack.post_message_request(
                params["channel"], params["text"], params.get("blocks") or [], thread_ts=params.get("thread_ts")
            )
        if kind == SLACK_UPDATE:
            return self.slack.update_message_request(
                params["channel"], params["ts"], params["text"], params.get("blocks") or []
            )
        if kind == SLACK_RESPOND:
            url = params.get("response_url") or "https://hooks.slack.com/actions/"
            return self._masked(self.slack.respond_request(url, params["body"]))
        if kind not in _HOTGLUE_CALLS:
            raise ActionImpossible(f"unknown action kind {kind!r}")
        body = params["body"]
        if "config_from" in params:
            body = _fill(body, f"<{params['config_from']} from the tenant config>")
        client = self.environment(params.get("env_id")).hotglue
        build = getattr(client, f"{_HOTGLUE_CALLS[kind]}_request")
        return describe_request(build(params["env_id"], params["flow_id"], params["tenant"], body))

    def _slack_post_request(self, params: Mapping[str, Any], key: str) -> dict[str, Any]:
        channel, text, blocks = params["channel"], params["text"], params.get("blocks") or []
        metadata = (
            {"event_type": METADATA_EVENT_TYPE, "event_payload": {"idempotency_key": idempotency_token(key)}}
            if key
            else None
        )
        return self.slack.post_message_request(channel, text, blocks, thread_ts=params.get("thread_ts"), metadata=metadata)

    def _slack_post(self, params: Mapping[str, Any], key: str) -> Outcome:
        request = self._slack_post_request(params, key)
        if self.slack_dry_run:
            return Outcome(True, request, None)
        return Outcome(False, request, dict(self.slack.send(request)))

    def _slack_update(self, params: Mapping[str, Any]) -> Outcome:
        channel, ts, text, blocks = params["channel"], params["ts"], params["text"], params.get("blocks") or []
        request = self.slack.update_message_request(channel, ts, text, blocks)
        if self.slack_dry_run:
            return Outcome(True, request, None)
        return Outcome(False, request, dict(self.slack.send(request)))

    def _slack_respond(self, params: Mapping[str, Any]) -> Outcome:
        """POST to the click's ``response_url`` (``params["response_url"]``, put there by
        the worker just before sending; absent once answered: ActionImpossible)."""
        url = params.get("response_url")
        if not isinstance(url, str) or not url:
            raise ActionImpossible("the click's response_url is gone (already answered, or purged)")
        request = self.slack.respond_request(url, params["body"])
        if self.slack_dry_run:
            return Outcome(True, self._masked(request), None)
        return Outcome(False, self._masked(request), dict(self.slack.respond(request)))

    @staticmethod
    def _masked(request: dict[str, Any]) -> dict[str, Any]:
        return {**request, "url": masked_response_url(str(request["url"]))}

    def _hotglue(self, kind: str, params: Mapping[str, Any], key: str) -> Outcome:
        environment = self.environment(params.get("env_id"))
        client = environment.hotglue
        body = params["body"]
        if kind == HOTGLUE_LINK_TARGET and "config_from" in params:
            body = self._with_tenant_config(environment, params, body)
        method_name = _HOTGLUE_CALLS[kind]
        args = (params["env_id"], params["flow_id"], params["tenant"], body)
        request = getattr(client, f"{method_name}_request")(*args)
        if key:
            request.headers[IDEMPOTENCY_HEADER] = idempotency_token(key)
        described = describe_request(request)
        if environment.hotglue_dry_run:
            return Outcome(True, described, None)
        answer = client.send(request)
        return Outcome(False, described, _summary(answer))

    @staticmethod
    def _with_tenant_config(environment: Environment, params: Mapping[str, Any], body: Any) -> Any:
        """Fill the link body's placeholder with the tenant config section, read just now.

        The credentials are never stored with the action. Without an API key the
        placeholder stays, naming the section, so the dry-run record shows what would go.
        """
        section_name = params["config_from"]
        if environment.reader is None:
            section: Any = f"<{section_name} from the tenant config>"
        else:
            config = environment.reader.get_tenant_config(params["env_id"], params["tenant"])
            section = (config or {}).get(section_name)
            if not isinstance(section, Mapping) or not section:
                raise ActionImpossible(f"the tenant config has no {section_name} object to link with")
        return _fill(body, section)


def _fill(template: Any, value: Any) -> Any:
    if template == CONFIG_PLACEHOLDER:
        return value
    if isinstance(template, Mapping):
        return {key: _fill(item, value) for key, item in template.items()}
    if isinstance(template, list):
        return [_fill(item, value) for item in template]
    return template


def _summary(answer: Any) -> dict[str, Any]:
    """Keep a small, JSON-safe summary of a HotGlue answer for the action record."""
    if isinstance(answer, Mapping):
        kept = {key: answer[key] for key in ("job_id", "s3_root", "status", "job_name") if key in answer}
        return kept or {"ok": True}
    return {"ok": True}
