"""Replays that send for real what an event recorded as a dry-run (``replay --live``, the
API's ``"live": true``, the dashboard's "Send for real").

An event processed without HotGlue key or Slack token stays ``dry_run``: those records are
final, so a plain replay sends nothing. A live replay makes the event's ``dry_run``
actions pending again, under the same idempotency keys, and queues the event: the worker
decides it again with today's facts and sends them. Actions done for real (by this event
or any other holding the key) stay done and are never sent again. It is refused while
this process would still be in dry-run for them (no key, no token, or ``HGW_DRY_RUN``):
the worker, configured alike, would only record dry-runs once more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from hotglue_webhooks.storage.models import ACTION_DRY_RUN, ActionRecord, Event
from hotglue_webhooks.storage.queries import get_event
from hotglue_webhooks.worker import reopen_event

if TYPE_CHECKING:
    from hotglue_webhooks.runtime import Runtime


class LiveReplayRefused(ValueError):
    """A live replay that cannot be done; ``status`` is the HTTP status to answer (404: no
    such event, 409: nothing to send or still in dry-run). The message is one line."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class LivePlan:
    """What a live replay of ``event`` would send: its ``dry_run`` actions."""

    event: Event
    dry_run: list[ActionRecord]

    def age(self, now: datetime) -> str:
        """How long ago the event was received, in words ("3 d 4 h", "12 min", "40 s")."""
        return age_text((now - self.event.received_at).total_seconds())

    def summary(self, now: datetime) -> str:
        """One line for a confirmation: the event, its age and what would be sent."""
        event = self.event
        kinds = ", ".join(sorted({a.kind for a in self.dry_run}))
        what = f"{event.status or 'no status'} of tenant {event.tenant or '?'}, flow {event.flow_id or '?'}"
        return (
            f"event {event.id} ({what}) was received {self.age(now)} ago (HotGlue's last_updated "
            f"{event.last_updated or 'unknown'}); {len(self.dry_run)} dry-run action(s) would be sent for real: {kinds}"
        )


def plan_live_replay(runtime: Runtime, event_id: int) -> LivePlan:
    """Return what a live replay of ``event_id`` would send.

    Raises LiveReplayRefused: no such event (404); no dry-run action (409); its
    environment flagged (409: not in the rules file's [environments]); HotGlue or Slack
    still in dry-run here for one of them (409, naming the missing setting).
    """
    found = get_event(runtime.sessions, event_id)
    if found is None:
        raise LiveReplayRefused(f"no event {event_id}", 404)
    event, actions = found
    dry_run = [action for action in actions if action.state == ACTION_DRY_RUN]
    if not dry_run:
        raise LiveReplayRefused(f"event {event_id} has no dry-run action: nothing to send for real", 409)
    flagged = runtime.environment(event.env_id).flagged
    if flagged:
        raise LiveReplayRefused(f"event {event_id} cannot act: {flagged}", 409)
    missing: list[str] = []
    if runtime.settings.dry_run:
        missing.append("HGW_DRY_RUN is set")
    else:
        if any(a.kind.startswith("slack.") for a in dry_run) and runtime.settings.slack_dry_run:
            missing.append("HGW_SLACK_BOT_TOKEN is unset")
        if any(a.kind.startswith("hotglue.") for a in dry_run) and runtime.environment(event.env_id).hotglue_dry_run:
            missing.append(f"no HotGlue API key for env_id {event.env_id!r}")
    if missing:
        raise LiveReplayRefused(
            f"event {event_id} would be a dry-run again: {' and '.join(missing)}; set it as for the worker, then replay live",
            409,
        )
    return LivePlan(event, dry_run)


def replay_live(runtime: Runtime, plan: LivePlan, now: datetime) -> int:
    """Queue ``plan``'s event with its dry-run actions pending again; return how many
    were made pending (0 when the event was purged meanwhile)."""
    if not reopen_event(runtime.sessions, plan.event.id, now, live=True):
        return 0
    return len(plan.dry_run)


def age_text(seconds: float) -> str:
    """Seconds as "3 d 4 h", "5 h 10 min", "12 min" or "40 s" (negative: "0 s")."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"
