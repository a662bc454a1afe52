"""Benchmark databases: made fresh for each measurement, migrated, dropped at the end.

SQLite databases are files in the run's temporary folder. PostgreSQL ones are
``hgw_bench_<random>`` databases on the server named by ``--postgres-url``; each is
dropped (``WITH (FORCE)``) when the run ends, whatever happened.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from hotglue_webhooks.storage.db import make_engine
from hotglue_webhooks.storage.migrate import upgrade


class Databases:
    def __init__(self, workdir: Path, postgres_url: str | None) -> None:
        self.workdir = workdir
        self.postgres_url = postgres_url
        self._made: list[str] = []
        self.made: list[str] = []  # every PostgreSQL database this run made, for the record
        self._admin: Engine | None = None

    def postgres_available(self) -> str | None:
        """None when the server answers, else the reason it cannot be used."""
        if not self.postgres_url:
            return "no --postgres-url"
        try:
            with self.admin().connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as error:  # any reason the server cannot be used
            return f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
        return None

    def admin(self) -> Engine:
        if self._admin is None:
            assert self.postgres_url
            self._admin = create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        return self._admin

    def fresh(self, kind: str, label: str) -> str:
        """Return the URL of a new, migrated database (``kind`` sqlite or postgresql)."""
        if kind == "sqlite":
            path = self.workdir / f"{label}-{uuid.uuid4().hex[:6]}.db"
            url = f"sqlite:///{path}"
        else:
            assert self.postgres_url
            name = f"hgw_bench_{uuid.uuid4().hex[:10]}"
            with self.admin().connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            self._made.append(name)
            self.made.append(name)
            url = make_url(self.postgres_url).set(database=name).render_as_string(hide_password=False)
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        return url

    def drop_all(self) -> None:
        if self._made:
            with self.admin().connect() as connection:
                for name in self._made:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            self._made.clear()
        if self._admin is not None:
            self._admin.dispose()
            self._admin = None

    def versions(self) -> dict[str, str]:
        import sqlite3

        found = {"sqlite": sqlite3.sqlite_version}
        if self.postgres_available() is None:
            with self.admin().connect() as connection:
                found["postgresql"] = str(connection.execute(text("SHOW server_version")).scalar())
                for setting in ("shared_buffers", "synchronous_commit", "max_connections"):
                    found[f"postgresql {setting}"] = str(connection.execute(text(f"SHOW {setting}")).scalar())
        return found


def scalar(url: str, sql: str, **params: Any) -> Any:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).scalar()
    finally:
        engine.dispose()


def rows(url: str, sql: str, **params: Any) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())
    finally:
        engine.dispose()


def processed_times(url: str) -> list[float]:
    """Unix times at which the loaded webhooks were processed to the end, sorted (the
    receiver's own events, e.g. an incident's update, ``s3_root`` ``~…``, are not load)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            values = connection.execute(
                text(
                    "SELECT processed_at FROM events WHERE processed_at IS NOT NULL"
                    " AND (s3_root IS NULL OR s3_root NOT LIKE '~%') ORDER BY processed_at"
                )
            ).scalars()
            times = []
            for value in values:
                if isinstance(value, str):
                    value = datetime.fromisoformat(value)
                if value.tzinfo is None:
                    value = value.replace(tzinfo=UTC)
                times.append(value.timestamp())
            return times
    finally:
        engine.dispose()


def insert_old_events(url: str, count: int, payload_template: bytes, days_old: int = 40, chunk: int = 100_000) -> None:
    """Insert ``count`` processed events received ``days_old`` days ago, one action per
    four events, with bulk SQL that runs inside the database (no Python row loop).

    The payload is the realistic template with its ``@@ID@@`` replaced by the row number.
    """
    base = datetime.now(UTC) - timedelta(days=days_old)
    payload = payload_template.decode()
    template = json.loads(payload)
    fields = {
        "env_id": template["env_id"],
        "flow_id": template["flow_id"],
        "status": template["status"],
        "sync_type": template["sync_type"],
        "tap": template["tap"],
        "target": template["target"],
    }
    engine = make_engine(url)
    postgres = engine.dialect.name == "postgresql"
    if postgres:
        received = "(CAST(:base AS timestamptz) + x * interval '1 millisecond')"
        series = "generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g(x)"
        as_text = "CAST(x AS text)"
        payload_sql = "CAST(replace(:payload, '@@ID@@', CAST(x AS text)) AS json)"
        base_value: Any = base
    else:
        received = "strftime('%Y-%m-%d %H:%M:%f000', :base + x / 1000.0, 'unixepoch')"
        series = "seq"
        as_text = "CAST(x AS TEXT)"
        payload_sql = "replace(:payload, '@@ID@@', x)"
        base_value = base.timestamp()
    columns = (
        "dedupe_key, body_sha256, received_at, size_bytes, headers, payload, env_id, flow_id, tenant, job_id, "
        "s3_root, status, sync_type, tap, target, order_group, order_at, state, next_attempt_at, attempts, "
        "decided_at, decision, processed_at"
    )
    select = (
        f"SELECT 'bench-old-' || {as_text}, 'bench-old-' || {as_text}, {received}, {len(payload_template)}, "
        f"'{{}}', {payload_sql}, :env_id, :flow_id, 't' || CAST(x % 2000 AS {'text' if postgres else 'TEXT'}), "
        f"'old-' || {as_text}, 'old/' || {as_text}, :status, :sync_type, :tap, :target, "
        f"'t' || CAST(x % 2000 AS {'text' if postgres else 'TEXT'}), {received}, 'done', {received}, 1, "
        f"{received}, '[]', {received} FROM {series}"
    )
    if not postgres:
        select = "WITH RECURSIVE seq(x) AS (SELECT :lo UNION ALL SELECT x + 1 FROM seq WHERE x < :hi) " + select
    actions = (
        "INSERT INTO actions (event_id, idempotency_key, position, kind, rule, params, depends_on, state, attempts, "
        "request, response, created_at, updated_at, completed_at) "
        "SELECT id, 'bench-old-action-' || CAST(id AS TEXT), 0, 'slack.post_message', 'failure_alert', "
        "'{\"channel\": \"#hotglue-webhooks\", \"text\": \"old\"}', '[]', 'done', 1, '{}', '{\"ok\": true}', "
        "received_at, received_at, received_at FROM events WHERE id >= :lo AND id <= :hi AND id % 4 = 0"
    )
    try:
        for lo in range(1, count + 1, chunk):
            hi = min(count, lo + chunk - 1)
            with engine.begin() as connection:
                connection.execute(
                    text(f"INSERT INTO events ({columns}) {select}"),
                    {"lo": lo, "hi": hi, "base": base_value, "payload": payload, **fields},
                )
                connection.execute(text(actions), {"lo": lo, "hi": hi})
        if postgres:
            with engine.begin() as connection:  # a real table of this size has statistics
                connection.execute(text("ANALYZE events"))
                connection.execute(text("ANALYZE actions"))
    finally:
        engine.dispose()
