"""The rules file: documented defaults, the issue's TOML shape, and typos caught."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from pydantic import ValidationError
from rules_support import EXAMPLE_RULES

from hotglue_webhooks.rules import RulesConfig
from hotglue_webhooks.rules.config import TargetLink

ISSUE_SHAPE = """
[slack]
channel = "#hotglue-webhooks"

[schedules]
default_expression = "cron(0 */6 * * ? *)"   # used when a tenant has no schedule yet

[[target_links]]
source_flow = "Xk2pQ9aLm"       # "*" matches any flow
tap = "*"
target_flow = "Xk2pQ9aLm"       # omitted: the source flow
target = "optiply"
config_from = "apiCredentials"  # tenant-config key that becomes the linked target's config
"""


def test_example_file_shows_the_defaults() -> None:
    example = RulesConfig.model_validate(tomllib.loads(EXAMPLE_RULES.read_text()))

    assert example.model_dump(exclude={"target_links"}) == RulesConfig().model_dump(exclude={"target_links"})
    assert example.target_links == [
        TargetLink(source_flow="Xk2pQ9aLm", target_flow="Xk2pQ9aLm", target="optiply")
    ]


def test_empty_file_gives_the_documented_defaults() -> None:
    config = RulesConfig.model_validate({})

    assert config.slack.channel is None
    assert config.channel_for("failure_alert", "#env") == "#env"
    assert config.schedules.default_expression == "cron(0 */6 * * ? *)"
    assert config.target_links == []
    assert config.markers.full_sync == ["full sync"]
    assert config.exact.token_hosts[-1] == "start.exactonline.es"
    assert config.buy_orders.streams == ["BuyOrders"]
    assert config.jobs.loop_guard_prefix == "wh-"
    assert config.jobs.job_name(flow_id="F", tap="t", date="2026-11-28", tenant="1") == "wh-F-t-2026-11-28"


def test_issue_shape_is_accepted() -> None:
    config = RulesConfig.model_validate(tomllib.loads(ISSUE_SHAPE))

    assert config.slack.channel == "#hotglue-webhooks"
    (link,) = config.target_links
    assert link.matches("Xk2pQ9aLm", "shopify") and not link.matches("Other", "shopify")
    assert link.body == {"target": {"target": "{target}", "config": "{config}"}}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"slak": {}}, "slak"),
        ({"slack": {"chanel": "#x"}}, "chanel"),
        ({"target_links": [{"source_flow": "F", "target": "t", "config": "x"}]}, "config"),
        ({"target_links": [{"source_flow": "F"}]}, "target"),
        (
            {"target_links": [{"source_flow": "F", "target": "t"}, {"source_flow": "F", "target": "t"}]},
            "listed twice",
        ),
        ({"slack": {"channels_by_rule": {"failure": "#x"}}}, "unknown rule names"),
        ({"markers": {"full_sync_encoded": ["full sync"]}}, "only ASCII letters"),
        ({"markers": {"full_sync": [" "]}}, "blank marker"),
        ({"exact": {"token_path": "api/oauth2/token"}}, "start with '/'"),
        ({"exact": {"token_hosts": []}}, "token_hosts"),
        ({"tenant_config": {"default_schema": {"type": "objekt"}}}, "not a valid JSON Schema"),
        ({"tenant_config": {"schemas": {"F": {"required": "x"}}}}, "not a valid JSON Schema"),
        ({"jobs": {"name_format": "{flow_id}-{tap}"}}, "loop guard"),
        ({"jobs": {"name_format": "wh-{flow}-{tap}"}}, "unknown fields"),
        ({"jobs": {"name_format": "wh-{tap"}}, "not a usable format"),
        ({"schedules": {"default_expression": ""}}, "default_expression"),
    ],
)
def test_mistakes_are_errors(data: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        RulesConfig.model_validate(data)


def test_per_flow_schema_replaces_the_default() -> None:
    config = RulesConfig.model_validate({"tenant_config": {"schemas": {"F": {}}}})

    assert config.tenant_config.schema_for("F") == {}
    assert config.tenant_config.schema_for("G") == config.tenant_config.default_schema
    assert config.tenant_config.schema_for(None) == config.tenant_config.default_schema
