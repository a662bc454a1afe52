"""Decide what a HotGlue job event means: pure functions, no I/O (see README.md here)."""

from hotglue_webhooks.rules.config import RULE_NAMES, RulesConfig
from hotglue_webhooks.rules.decide import NO_RULE_MATCHED, decide, needed_facts
from hotglue_webhooks.rules.model import (
    ACTION_KINDS,
    ALERT_OPEN,
    ALERT_REPEAT,
    ALERT_RESOLVE,
    CONFIG_PLACEHOLDER,
    HOTGLUE_LINK_TARGET,
    HOTGLUE_PUT_SCHEDULE,
    HOTGLUE_START_JOB,
    SLACK_POST,
    SLACK_UPDATE,
    Action,
    Decision,
    FactNeeds,
    Facts,
    JobEvent,
    OpenAlert,
    Schedule,
)

__all__ = [
    "ACTION_KINDS",
    "ALERT_OPEN",
    "ALERT_REPEAT",
    "ALERT_RESOLVE",
    "CONFIG_PLACEHOLDER",
    "HOTGLUE_LINK_TARGET",
    "HOTGLUE_PUT_SCHEDULE",
    "HOTGLUE_START_JOB",
    "NO_RULE_MATCHED",
    "RULE_NAMES",
    "SLACK_POST",
    "SLACK_UPDATE",
    "Action",
    "Decision",
    "FactNeeds",
    "Facts",
    "JobEvent",
    "OpenAlert",
    "RulesConfig",
    "Schedule",
    "decide",
    "needed_facts",
]
