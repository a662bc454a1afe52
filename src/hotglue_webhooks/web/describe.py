"""Say in one line what a recorded action does, from its kind and params.

Pure: the params' shapes are the action kinds' (``rules/model.py``); a param that is
missing or of another shape reads as "?" rather than failing a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hotglue_webhooks.rules.model import (
    HOTGLUE_LINK_TARGET,
    HOTGLUE_PUT_SCHEDULE,
    HOTGLUE_START_JOB,
    SLACK_POST,
    SLACK_UPDATE,
)

TEXT_CHARS = 160


def _text(value: Any) -> str:
    return value if isinstance(value, str) and value else "?"


def _said(text: Any) -> str:
    lines = [line.strip() for line in _text(text).splitlines() if line.strip()]
    first = lines[0] if lines else "?"
    more = len(first) > TEXT_CHARS or len(lines) > 1
    return f"“{first[: TEXT_CHARS - 1]}{'…' if more else ''}”"


def describe_action(kind: str, params: Mapping[str, Any] | None, idempotency_key: str = "") -> str:
    """Return what the action does, e.g. ``Disable the schedule of flow Rb7TnE4wz for tenant
    3310 (cron(0 */6 * * ? *))`` or ``Post to #alerts: “…”`` (the text's first line, ≤ 160
    characters)."""
    params = params if isinstance(params, Mapping) else {}
    given = params.get("body")
    body: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    whose = f"flow {_text(params.get('flow_id'))} for tenant {_text(params.get('tenant'))}"
    if kind == HOTGLUE_PUT_SCHEDULE:
        state = body.get("state")
        verb = {"ENABLED": "Enable", "DISABLED": "Disable"}.get(_text(state), f"Set to {_text(state)}")
        return f"{verb} the schedule of {whose} ({_text(body.get('schedule_expression'))})"
    if kind == HOTGLUE_LINK_TARGET:
        # The target is only in the key (…|link:{flow_id}:{target}): the body is the rules
        # file's template, and may name it anywhere.
        target = idempotency_key.rpartition("|link:")[2].partition(":")[2] if "|link:" in idempotency_key else "?"
        return f"Link target {target} in {whose} (config from {_text(params.get('config_from'))})"
    if kind == HOTGLUE_START_JOB:
        return f"Start job {_text(body.get('job_name'))} (tap {_text(body.get('tap'))}) in {whose}"
    if kind == SLACK_POST:
        return f"Post to {_text(params.get('channel'))}: {_said(params.get('text'))}"
    if kind == SLACK_UPDATE:
        return f"Update Slack message {_text(params.get('ts'))} in {_text(params.get('channel'))}: {_said(params.get('text'))}"
    return kind
