"""Build the receiver's parts from settings: database, redactor, rules, clients, worker.

The Flask app, the CLI and the worker process all start here, so each part is made one
way only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks.clients.hotglue_api import HotGlueClient
from hotglue_webhooks.clients.slack import SlackClient
from hotglue_webhooks.effects import Effects
from hotglue_webhooks.redaction import Redactor
from hotglue_webhooks.rules import RulesConfig
from hotglue_webhooks.settings import Settings, load_rules, secret_value
from hotglue_webhooks.storage.db import make_engine, make_sessionmaker
from hotglue_webhooks.worker import Worker


@dataclass
class Runtime:
    """The parts one process needs, made lazily from ``settings``.

    ``hotglue_transport`` lets tests and benchmarks route HotGlue calls to a fake
    without patching (httpx's injectable transport).
    """

    settings: Settings
    hotglue_transport: httpx.BaseTransport | None = None
    rules: RulesConfig = field(init=False)

    def __post_init__(self) -> None:
        self.rules = load_rules(self.settings.rules_file)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)

    @cached_property
    def redactor(self) -> Redactor:
        return Redactor()

    def hotglue_client(self) -> HotGlueClient:
        """Return a HotGlue API client (its key may be None: then it only builds requests)."""
        return HotGlueClient(
            self.settings.hotglue_api_url,
            secret_value(self.settings.hotglue_api_key) or None,
            timeout=self.settings.http_timeout_seconds,
            transport=self.hotglue_transport,
        )

    def slack_client(self) -> SlackClient:
        return SlackClient(
            secret_value(self.settings.slack_bot_token) or None,
            base_url=self.settings.slack_api_url,
            timeout=self.settings.http_timeout_seconds,
        )

    def effects(self) -> Effects:
        return Effects(
            self.hotglue_client(),
            self.slack_client(),
            hotglue_dry_run=self.settings.hotglue_dry_run,
            slack_dry_run=self.settings.slack_dry_run,
        )

    def worker(self) -> Worker:
        """Return a worker; HotGlue facts are read only when an API key is set."""
        reader = self.hotglue_client() if secret_value(self.settings.hotglue_api_key) else None
        return Worker(self.settings, self.sessions, self.rules, self.effects(), reader, self.redactor)

    def migrate(self) -> None:
        from hotglue_webhooks.storage.migrate import upgrade

        upgrade(self.engine)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
