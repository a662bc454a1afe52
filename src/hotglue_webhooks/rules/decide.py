"""The rule table: which rule applies to which event, and the actions each asks for."""

from __future__ import annotations

from datetime import datetime

from hotglue_webhooks.rules.config import RulesConfig
from hotglue_webhooks.rules.model import SLACK_POST, Action, Decision, FactNeeds, Facts, JobEvent


def needed_facts(event: JobEvent, config: RulesConfig) -> FactNeeds:
    """Return what :func:`decide` will need to know about ``event``'s tenant."""
    return FactNeeds()


def decide(
    event: JobEvent, facts: Facts, config: RulesConfig, now: datetime, default_channel: str
) -> Decision:
    """Return the actions for ``event``, in order, with notes explaining the decision.

    ``now`` is an aware UTC datetime; ``default_channel`` is ``HGW_SLACK_CHANNEL``.
    """
    channel = config.slack.channel or default_channel
    if event.is_failure:
        text = (
            f":red_circle: {event.status} for tenant {event.tenant} "
            f"(flow {event.flow_id}, job {event.job_id})"
        )
        action = Action(
            kind=SLACK_POST,
            key=f"{event.event_key}|failure_alert",
            params={"channel": channel, "text": text, "blocks": []},
            rule="failure_alert",
        )
        return Decision(actions=(action,), notes=(f"failure_alert: {event.status}",))
    return Decision(actions=(), notes=("no rule matched",))
