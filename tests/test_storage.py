"""storage/db.py against a real PostgreSQL: pooled connections the server dropped."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from hotglue_webhooks.storage import db


def _drop_server_side(url: str, pid: int) -> None:
    admin = create_engine(url, poolclass=NullPool)
    with admin.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    admin.dispose()


def test_a_connection_idle_past_the_window_is_pinged_and_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # every returned connection counts as idle
    engine = db.make_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as connection:
            first = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        _drop_server_side(postgres_url, first)  # e.g. the server restarted meanwhile
        with engine.connect() as connection:  # the ping fails: a fresh connection instead
            second = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        assert second != first
    finally:
        engine.dispose()


def test_a_connection_returned_moments_ago_is_used_without_a_ping(postgres_url: str) -> None:
    # The other side of the trade: no round trip per checkout, so a connection dropped
    # within the window fails once (and SQLAlchemy then replaces the pool's connections).
    engine = db.make_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as connection:
            first = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        _drop_server_side(postgres_url, first)
        with pytest.raises(OperationalError), engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar() != first
    finally:
        engine.dispose()
