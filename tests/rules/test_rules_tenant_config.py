"""Tenant-config validation names the wrong fields and never shows their values."""

from __future__ import annotations

from typing import Any

import pytest

from hotglue_webhooks.rules.config import DEFAULT_TENANT_CONFIG_SCHEMA
from hotglue_webhooks.rules.tenant_config import NO_CONFIG, config_problems

VALID = {"username": "u", "password": "p", "client_id": "c", "client_secret": "s", "account_id": 98}


@pytest.mark.parametrize(
    ("config", "problems"),
    [
        ({"apiCredentials": VALID}, []),
        ({"apiCredentials": {**VALID, "account_id": "98"}}, []),
        (None, [NO_CONFIG]),
        ({}, ["apiCredentials: missing"]),
        ([], ["(whole config): array, expected object"]),
        ({"apiCredentials": "x"}, ["apiCredentials: string, expected object"]),
        (
            {"apiCredentials": {**VALID, "password": "", "client_secret": None, "account_id": ""}},
            [
                "apiCredentials.account_id: empty",
                "apiCredentials.client_secret: null, expected string",
                "apiCredentials.password: empty",
            ],
        ),
        (
            {"apiCredentials": {"username": "u", "account_id": True}},
            [
                "apiCredentials.account_id: boolean, expected integer or string",
                "apiCredentials.client_id: missing",
                "apiCredentials.client_secret: missing",
                "apiCredentials.password: missing",
            ],
        ),
    ],
)
def test_default_schema(config: Any, problems: list[str]) -> None:
    assert config_problems(config, DEFAULT_TENANT_CONFIG_SCHEMA) == problems


def test_problems_never_quote_values() -> None:
    schema = {
        "type": "object",
        "properties": {
            "token": {"type": "string", "pattern": "^tok_", "maxLength": 3},
            "items": {"type": "array", "items": {"enum": ["a"]}},
        },
    }
    secret = "super-secret-value"

    problems = config_problems({"token": secret, "items": ["a", secret]}, schema)

    assert problems == [
        "items[1]: not an allowed value (enum)",
        "token: fails maxLength",
        "token: not an allowed value (pattern)",
    ]
    assert all(secret not in p for p in problems)
