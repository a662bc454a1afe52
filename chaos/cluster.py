"""One receiver deployment for a scenario: a database, N web and M worker processes, and
the fake HotGlue and Slack servers they talk to (threads of the harness, recording every
request with its arrival time).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from chaos.procs import PostgresDatabase, Service, free_port, run_cli, wait_http_ok
from hotglue_webhooks.fakes import FakeHotGlue, FakeSlack, RecordedRequest

SECRET = "chaos-webhook-secret"
API_KEY = "hg-chaos-key"
TOKEN = "xoxb-chaos-token"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# Receiver settings for the harness: proportions of the defaults (lease ≈ 12 × HTTP
# timeout), shortened so that a run takes minutes. Each scenario may override them.
# HGW_WORKER_THREADS is the receiver's default: the crash scenario checks the
# concurrency that ships.
BASE_SETTINGS = {
    "HGW_LOG_FORMAT": "json",
    "HGW_LOG_LEVEL": "INFO",
    "HGW_WEB_WORKERS": "2",
    "HGW_LEASE_SECONDS": "30",
    "HGW_HTTP_TIMEOUT_SECONDS": "2.5",
    "HGW_POLL_SECONDS": "0.2",
    "HGW_RETRY_BASE_SECONDS": "1",
    "HGW_RETRY_MAX_SECONDS": "10",
    "HGW_MAX_ATTEMPTS": "20",
}


class RecordingSlack(FakeSlack):
    """FakeSlack that remembers which posts Slack accepted (``ok: true``) and can enforce
    Slack's per-channel rate limit (about one message per second) with 429s.
    """

    def __init__(self, *, rate_limit_seconds: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate_limit_seconds = rate_limit_seconds
        self.accepted: set[int] = set()
        self.rate_limited: list[RecordedRequest] = []
        self._last_post: dict[str, float] = {}

    def handle(self, request: RecordedRequest) -> tuple[int, Any, Mapping[str, str]]:
        method = request.path.rstrip("/").rsplit("/", 1)[-1]
        if self.rate_limit_seconds and method == "chat.postMessage" and isinstance(request.json, dict):
            channel = self.channel_id(str(request.json.get("channel") or ""))
            last = self._last_post.get(channel)
            if last is not None and request.received_at - last < self.rate_limit_seconds:
                self.rate_limited.append(request)
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
        status, body, headers = super().handle(request)
        if status == 200 and isinstance(body, dict) and body.get("ok"):
            self.accepted.add(id(request))
            if method == "chat.postMessage" and isinstance(request.json, dict):
                self._last_post[self.channel_id(str(request.json.get("channel") or ""))] = request.received_at
        return status, body, headers

    def succeeded(self, request: RecordedRequest) -> bool:
        return id(request) in self.accepted


@dataclass
class Topology:
    database: str = "sqlite"  # or "postgresql"
    webs: int = 1
    workers: int = 1
    settings: dict[str, str] = field(default_factory=dict)
    worker_settings: dict[str, str] = field(default_factory=dict)


class Cluster:
    """Fakes + database + receiver processes of one scenario, under ``workdir``.

    Use as a context manager: everything it started is stopped, and a PostgreSQL
    database it made is dropped, on the way out, whatever happened.
    """

    def __init__(
        self,
        name: str,
        workdir: Path,
        topology: Topology,
        *,
        postgres_url: str = DEFAULT_POSTGRES_URL,
        slack_rate_limit: float | None = None,
    ) -> None:
        self.name = name
        self.workdir = workdir / name
        self.topology = topology
        self.postgres_url = postgres_url
        self.hotglue = FakeHotGlue(api_key=API_KEY)
        self.slack = RecordingSlack(token=TOKEN, rate_limit_seconds=slack_rate_limit)
        self.webs: list[Service] = []
        self.workers: list[Service] = []
        self.database_url = ""
        self._postgres: PostgresDatabase | None = None
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self.kill_log: list[tuple[float, str]] = []
        self._kill_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        try:
            self.setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def setup(self) -> None:
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True)
        self.hotglue.start()
        self.slack.start()
        if self.topology.database == "postgresql":
            self._postgres = PostgresDatabase(self.postgres_url)
            self.database_url = self._postgres.url
        else:
            self.database_url = f"sqlite:///{self.workdir / 'receiver.db'}"
        run_cli(self.env(), "db", "upgrade")
        for n in range(self.topology.webs):
            port = free_port()
            env = self.env(HGW_BIND=f"127.0.0.1:{port}")
            # gunicorn 27 opens a control socket under $XDG_RUNTIME_DIR (else ~/.gunicorn):
            # one directory per web process, or they would share one socket path.
            runtime_dir = self.workdir / f"run-web{n + 1}"
            runtime_dir.mkdir(mode=0o700)
            env["XDG_RUNTIME_DIR"] = str(runtime_dir)
            self.webs.append(Service(f"web{n + 1}", ["web"], env, self.workdir / f"web{n + 1}.log"))
        for n in range(self.topology.workers):
            env = self.env(**self.topology.worker_settings)
            self.workers.append(Service(f"worker{n + 1}", ["worker"], env, self.workdir / f"worker{n + 1}.log"))

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a receiver process: no inherited HGW_*, ours instead."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HGW_")}
        env.update(BASE_SETTINGS)
        env.update(
            HGW_DATABASE_URL=self.database_url,
            HGW_WEBHOOK_SECRET=SECRET,
            HGW_HOTGLUE_API_URL=self.hotglue.url,
            HGW_HOTGLUE_API_KEY=API_KEY,
            HGW_SLACK_BOT_TOKEN=TOKEN,
            HGW_SLACK_API_URL=self.slack.url,
            HGW_PURGE_INTERVAL_SECONDS="86400",
        )
        env.update(self.topology.settings)
        env.update(extra)
        return env

    def start(self, webs: bool = True, workers: bool = True) -> None:
        if webs:
            for web in self.webs:
                web.start()
            for web in self.webs:
                wait_http_ok(f"http://{web.env['HGW_BIND']}/healthz", timeout=60)
        if workers:
            for worker in self.workers:
                worker.start()

    @property
    def targets(self) -> list[str]:
        return [web.env["HGW_BIND"] for web in self.webs]

    @property
    def services(self) -> list[Service]:
        return [*self.webs, *self.workers]

    def kill9(self, service: Service) -> None:
        with self._kill_lock:
            self.kill_log.append((time.time(), service.name))
        service.kill9()

    def worker_kill_times(self) -> list[float]:
        return [t for t, name in self.kill_log if name.startswith("worker")]

    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            from hotglue_webhooks.storage.db import make_engine, make_sessionmaker

            self._engine = make_engine(self.database_url)
            self._sessions = make_sessionmaker(self._engine)
        return self._sessions

    def close(self) -> None:
        for service in self.services:
            try:
                service.stop(timeout=10)
            except Exception:  # keep cleaning up
                pass
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._sessions = None
        if self._postgres is not None:
            try:
                self._postgres.drop()
            finally:
                self._postgres = None
        self.hotglue.stop()
        self.slack.stop()

    def logs(self, prefix: str) -> str:
        return "\n".join(s.log_text() for s in self.services if s.name.startswith(prefix))
