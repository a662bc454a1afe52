"""The rules' configuration: what the TOML rules file may say, with documented defaults.

Pure data (pydantic models); loading the file is ``hotglue_webhooks.settings``' job.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlackRules(_Section):
    channel: str | None = None
    """Channel for every message; None means ``HGW_SLACK_CHANNEL``."""


class RulesConfig(_Section):
    """The whole rules file. An empty file gives the documented defaults."""

    slack: SlackRules = SlackRules()
