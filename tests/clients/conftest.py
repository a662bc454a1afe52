"""Fixtures for the client tests: the fake peers over real HTTP, and clients pointed at them.

Clients get ``sleep=waits.append``: a test reads the waits a retry would have slept
(seconds) instead of sleeping them.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from hotglue_webhooks.clients import HotGlueClient, SlackClient
from hotglue_webhooks.fakes import FakeHotGlue, FakeSlack

API_KEY = "hg-test-key-5f1c9a"
SLACK_TOKEN = "xoxb-test-token-77"


@pytest.fixture
def fake_hotglue() -> Iterator[FakeHotGlue]:
    with FakeHotGlue(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=SLACK_TOKEN, first_ts=1_700_000_000) as fake:
        yield fake


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def hotglue(fake_hotglue: FakeHotGlue, waits: list[float]) -> Iterator[HotGlueClient]:
    with HotGlueClient(fake_hotglue.url, API_KEY, timeout=2.0, sleep=waits.append) as client:
        yield client


@pytest.fixture
def slack(fake_slack: FakeSlack, waits: list[float]) -> SlackClient:
    return SlackClient(SLACK_TOKEN, base_url=fake_slack.url, timeout=2.0, sleep=waits.append)


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
