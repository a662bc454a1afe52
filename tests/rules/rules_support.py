"""Helpers of the rules tests: the shared payloads as events, and the example rules file.

A plain module, not a conftest: the top-level tests import ``conftest`` by name, and a
second conftest here would take its place.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from hotglue_webhooks.rules import JobEvent, RulesConfig

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
EXAMPLE_RULES = Path(__file__).resolve().parents[2] / "src/hotglue_webhooks/defaults/rules.toml"


def load_payload(name: str) -> dict[str, Any]:
    """Return ``tests/fixtures/payloads/<name>.json``."""
    result: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return result


def make_event(name: str, **overrides: Any) -> JobEvent:
    """Return the event of payload ``name`` with ``overrides``; event_key is ``s3_root|status``."""
    payload = {**load_payload(name), **overrides}
    return JobEvent.from_payload(payload, event_key=f"{payload.get('s3_root')}|{payload.get('status')}")


def example_config() -> RulesConfig:
    """Return the example rules file: the defaults plus the Xk2pQ9aLm → optiply target link."""
    return RulesConfig.model_validate(tomllib.loads(EXAMPLE_RULES.read_text()))
