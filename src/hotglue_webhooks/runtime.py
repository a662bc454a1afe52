"""Build the receiver's parts from settings: database, redactor, rules, clients, worker.

The Flask app, the CLI and the worker process all start here, so each part is made one
way only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks.clients.hotglue_api import HotGlueClient
from hotglue_webhooks.clients.slack import SlackClient
from hotglue_webhooks.effects import Effects
from hotglue_webhooks.environment import Environment
from hotglue_webhooks.redaction import Redactor
from hotglue_webhooks.rules import RulesConfig
from hotglue_webhooks.settings import Settings, environment_api_keys, load_rules, secret_value
from hotglue_webhooks.storage.db import make_engine, make_sessionmaker
from hotglue_webhooks.worker import Worker

if TYPE_CHECKING:
    from hotglue_webhooks.reconcile import Reconciler

__all__ = ["Environment", "Runtime"]


@dataclass
class Runtime:
    """The parts one process needs, made lazily from ``settings``.

    ``hotglue_transport`` lets tests and benchmarks route HotGlue calls to a fake
    without patching (httpx's injectable transport).
    """

    settings: Settings
    hotglue_transport: httpx.BaseTransport | None = None
    rules: RulesConfig = field(init=False)
    _environments: dict[str | None, Environment] = field(init=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rules = load_rules(self.settings.rules_file)
        self.api_keys = environment_api_keys(self.rules, self.settings)

    @cached_property
    def engine(self) -> Engine:
        # A worker thread holds a connection from claim to release and takes SQLite's
        # write lock while holding it; the purge takes the lock, then a connection. The
        # pool keeps one for every worker thread and spares (SQLAlchemy's default 5 + 10
        # at least), so the lock's holder never waits for a connection held by a waiter.
        return make_engine(self.settings.database_url, pool_size=max(5, self.settings.worker_threads + 2))

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)

    @cached_property
    def redactor(self) -> Redactor:
        return Redactor(self.settings.redact_keys)

    def _hotglue_client(self, api_key: str | None) -> HotGlueClient:
        return HotGlueClient(
            self.settings.hotglue_api_url,
            api_key,
            timeout=self.settings.http_timeout_seconds,
            transport=self.hotglue_transport,
        )

    def environment(self, env_id: str | None) -> Environment:
        """Return how to act for ``env_id`` (cached; clients are thread-safe httpx clients)."""
        with self._lock:
            if env_id not in self._environments:
                self._environments[env_id] = self._make_environment(env_id)
            return self._environments[env_id]

    def _make_environment(self, env_id: str | None) -> Environment:
        channel = self.rules.environment_channel(env_id, self.settings.slack_channel)
        flagged = None
        if self.api_keys:
            key = self.api_keys.get(env_id or "")
            if env_id not in self.api_keys:
                flagged = f"env_id {env_id!r} is not listed under [environments] in the rules file"
            elif key is None:
                flagged = f"env_id {env_id!r} has no HotGlue API key (its api_key_env variable is unset)"
        else:
            key = secret_value(self.settings.hotglue_api_key) or None
        client = self._hotglue_client(key)
        return Environment(
            env_id=env_id,
            hotglue=client,
            hotglue_dry_run=self.settings.dry_run or key is None,
            reader=client if key else None,
            slack_channel=channel,
            flagged=flagged,
        )

    def slack_client(self) -> SlackClient:
        return SlackClient(
            secret_value(self.settings.slack_bot_token) or None,
            base_url=self.settings.slack_api_url,
            timeout=self.settings.http_timeout_seconds,
            # A 429 goes back to the worker, which books the channel for every worker
            # (slack_pacing) instead of one thread sleeping and resending out of turn.
            max_retry_count=0,
        )

    def effects(self) -> Effects:
        return Effects(self.environment, self.slack_client(), slack_dry_run=self.settings.slack_dry_run)

    def worker(self) -> Worker:
        return Worker(
            self.settings, self.sessions, self.rules, self.effects(), self.environment, self.redactor,
            reconciler=self.reconciler() if self.settings.reconcile_interval_seconds > 0 else None,
        )

    def reconciler(self, **overrides: Any) -> Reconciler:
        """The reconciliation passes of this process (``reconcile.py``), paced by
        ``HGW_RECONCILE_MAX_RPS``."""
        from hotglue_webhooks.reconcile import Reconciler

        options: dict[str, Any] = {
            "max_rps": self.settings.reconcile_max_rps,
            "lease_seconds": self.settings.lease_seconds,
            "all_tenants": self.settings.reconcile_all_tenants,
            **overrides,
        }
        return Reconciler(self.sessions, self.environment, self.redactor, self.rules, **options)

    def migrate(self) -> None:
        from hotglue_webhooks.storage.migrate import upgrade

        upgrade(self.engine)

    def close(self) -> None:
        for environment in self._environments.values():
            environment.hotglue.close()
        self._environments.clear()
        if "engine" in self.__dict__:
            self.engine.dispose()
