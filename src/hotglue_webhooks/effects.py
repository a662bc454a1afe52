"""Execute one decided action against Slack or HotGlue; decide nothing.

Each action kind maps to exactly one HTTP call (see ``rules/model.py`` for the params).
In dry-run (``HGW_DRY_RUN``, or no API key / bot token) the request is built exactly as it
would be sent, recorded, and not sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hotglue_webhooks.clients.hotglue_api import HotGlueClient, describe_request
from hotglue_webhooks.clients.slack import SlackClient
from hotglue_webhooks.rules import HOTGLUE_LINK_TARGET, HOTGLUE_PUT_SCHEDULE, HOTGLUE_START_JOB, SLACK_POST


class UnknownAction(ValueError):
    """The action kind is not one this receiver can execute (a permanent failure)."""


@dataclass(frozen=True)
class Outcome:
    """What executing an action did: ``dry_run`` or not, the request, a response summary."""

    dry_run: bool
    request: dict[str, Any]
    response: dict[str, Any] | None


class Effects:
    """Run actions with the given clients; ``*_dry_run`` flags say which peers are off."""

    def __init__(
        self, hotglue: HotGlueClient, slack: SlackClient, *, hotglue_dry_run: bool, slack_dry_run: bool
    ) -> None:
        self.hotglue = hotglue
        self.slack = slack
        self.hotglue_dry_run = hotglue_dry_run
        self.slack_dry_run = slack_dry_run

    def execute(self, kind: str, params: Mapping[str, Any]) -> Outcome:
        """Execute (or dry-run) one action.

        Raises ``hotglue_webhooks.clients.errors.PeerError`` subclasses when the peer
        fails (``.transient`` says whether to retry) and UnknownAction for a kind this
        version does not know.
        """
        if kind == SLACK_POST:
            return self._slack_post(params)
        if kind in _HOTGLUE_CALLS:
            return self._hotglue(kind, params)
        raise UnknownAction(f"unknown action kind {kind!r}")

    def _slack_post(self, params: Mapping[str, Any]) -> Outcome:
        channel, text, blocks = params["channel"], params["text"], params.get("blocks") or []
        thread_ts = params.get("thread_ts")
        request = self.slack.post_message_request(channel, text, blocks, thread_ts=thread_ts)
        if self.slack_dry_run:
            return Outcome(True, request, None)
        posted = self.slack.post_message(channel, text, blocks, thread_ts=thread_ts)
        return Outcome(False, request, dict(posted))

    def _hotglue(self, kind: str, params: Mapping[str, Any]) -> Outcome:
        method_name = _HOTGLUE_CALLS[kind]
        args = (params["env_id"], params["flow_id"], params["tenant"], params["body"])
        build = getattr(self.hotglue, f"{method_name}_request")
        request = build(*args)
        described = describe_request(request)
        if self.hotglue_dry_run:
            return Outcome(True, described, None)
        answer = getattr(self.hotglue, method_name)(*args)
        return Outcome(False, described, _summary(answer))


# Action kind → HotGlueClient method (and its ``<name>_request`` builder).
_HOTGLUE_CALLS = {
    HOTGLUE_PUT_SCHEDULE: "put_schedule",
    HOTGLUE_LINK_TARGET: "link_target",
    HOTGLUE_START_JOB: "start_job",
}


def _summary(answer: Any) -> dict[str, Any]:
    """Keep a small, JSON-safe summary of a HotGlue answer for the action record."""
    if isinstance(answer, Mapping):
        return {key: answer[key] for key in ("job_id", "s3_root", "status", "job_name") if key in answer} or {
            "ok": True
        }
    return {"ok": True}
