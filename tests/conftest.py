"""Shared fixtures: a real database per test (SQLite and PostgreSQL), apps, signed posts.

PostgreSQL comes from ``HGW_TEST_POSTGRES_URL`` (default: the local server at
127.0.0.1:5432, database ``test``). Each test session creates its own database there
and drops it at the end. When the server is unreachable the PostgreSQL variants skip
with the reason, unless ``HGW_TEST_REQUIRE_POSTGRES=1`` (set by ``.ci/run``): then they
fail.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hotglue_webhooks.signature import HEADER, sign
from hotglue_webhooks.storage.db import make_engine
from hotglue_webhooks.storage.migrate import upgrade

FIXTURES = Path(__file__).parent / "fixtures" / "payloads"
PAYLOAD_FILES = sorted(FIXTURES.glob("*.json"))
SECRET = "test-webhook-secret"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TABLES = (
    "actions", "events", "rejections", "meta", "slack_threads", "slack_pacing", "reconcile_passes",
    "incidents", "incident_members", "snoozes", "commands",
)


def payload(name: str) -> dict[str, Any]:
    """Return the shared payload ``name`` (file stem, e.g. ``sync_failed__shopify_500``)."""
    result: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return result


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's own HGW_* variables out of the tests."""
    for name in list(os.environ):
        if name.startswith("HGW_") and not name.startswith("HGW_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Create a throw-away PostgreSQL database for this test session, migrated."""
    base = os.environ.get("HGW_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    required = os.environ.get("HGW_TEST_REQUIRE_POSTGRES") == "1"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # any reason the server cannot be used
        admin.dispose()
        message = f"PostgreSQL not reachable at {make_url(base).render_as_string(hide_password=True)}: {type(error).__name__}"
        if required:
            pytest.fail(message + " (HGW_TEST_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    name = f"hgw_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'receiver.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


def signed_headers(body: bytes, secret: str = SECRET, prefix: str = "") -> dict[str, str]:
    """Return the headers HotGlue sends with a signed body."""
    return {"Content-Type": "application/json", HEADER: prefix + sign(body, secret)}


class Receiver:
    """One receiver on a real database: the Flask test client, its runtime and a worker."""

    def __init__(self, database_url: str, **overrides: Any) -> None:
        from hotglue_webhooks.app import create_app
        from hotglue_webhooks.runtime import Runtime
        from hotglue_webhooks.settings import load_settings

        overrides.setdefault("webhook_secret", SECRET)
        overrides.setdefault("log_format", "console")
        # Pacing Slack (1 message/s/channel) would make tests sleep; its own tests turn it on.
        overrides.setdefault("slack_min_interval_seconds", 0)
        transport = overrides.pop("hotglue_transport", None)
        # The group wait (30 s) would make every failure's alert wait: off here, unless a
        # test sets its [incidents] (its own tests turn it on).
        incidents = overrides.pop("incidents", {"group_wait_seconds": 0})
        self.settings = load_settings(database_url=database_url, **overrides)
        self.runtime = Runtime(self.settings, hotglue_transport=transport)
        rules = self.runtime.rules
        self.runtime.rules = rules.model_copy(update={"incidents": rules.incidents.model_copy(update=incidents)})
        self.app = create_app(runtime=self.runtime)
        self.client = self.app.test_client()

    def post(self, body: bytes | dict[str, Any] | str, headers: dict[str, str] | None = None, sign_it: bool = True) -> Any:
        """POST a body (a payload name, a dict or raw bytes), signed unless told otherwise."""
        if isinstance(body, str):
            body = (FIXTURES / f"{body}.json").read_bytes()
        elif isinstance(body, dict):
            body = json.dumps(body).encode()
        all_headers = signed_headers(body) if sign_it else {"Content-Type": "application/json"}
        all_headers.update(headers or {})
        return self.client.post("/webhooks/hotglue", data=body, headers=all_headers)

    def worker(self) -> Any:
        return self.runtime.worker()

    def close(self) -> None:
        self.runtime.close()


@pytest.fixture
def receiver(database_url: str) -> Iterator[Receiver]:
    """A receiver with a webhook secret, in dry-run (no HotGlue key, no Slack token)."""
    made = Receiver(database_url)
    yield made
    made.close()
