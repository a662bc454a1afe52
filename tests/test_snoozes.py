"""storage/snoozes.py on a real database: the one way to make a snooze, and its refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hotglue_webhooks.storage.db import connect, make_engine, make_sessionmaker, transaction, write_session
from hotglue_webhooks.storage.models import SnoozeRow
from hotglue_webhooks.storage.snoozes import Snooze, count_held, lift, snooze, snooze_in_force

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def sessions(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_a_snooze_is_stored_with_who_and_until(sessions) -> None:  # type: ignore[no-untyped-def]
    with write_session(sessions) as session:
        made = snooze(session, scope="tenant", target="4821", until=NOW + timedelta(hours=2), by="cli:alice",
                      reason="Shopify maintenance", now=NOW)
    assert isinstance(made, Snooze) and made.id > 0
    with sessions() as session:
        row = session.get(SnoozeRow, made.id)
        assert row is not None
        assert (row.scope, row.target, row.until, row.by, row.reason, row.created_at, row.held) == (
            "tenant", "4821", NOW + timedelta(hours=2), "cli:alice", "Shopify maintenance", NOW, 0,
        )


def test_a_naive_until_is_utc(sessions) -> None:  # type: ignore[no-untyped-def]
    with write_session(sessions) as session:
        made = snooze(session, scope="signature", target="3f9a0c1d2e4b5a69", until=datetime(2026, 12, 7, 10, 0),
                      by="slack:U123", now=NOW)
    assert made.until == datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("scope", "target", "until", "by", "message"),
    [
        ("flow", "4821", NOW + timedelta(hours=1), "a", "unknown snooze scope 'flow'"),
        ("tenant", "  ", NOW + timedelta(hours=1), "a", "snooze target is empty"),
        ("tenant", "48\n21", NOW + timedelta(hours=1), "a", "snooze target is not a tenant id"),
        ("tenant", "x" * 256, NOW + timedelta(hours=1), "a", "snooze target is not a tenant id"),
        ("signature", "4821", NOW + timedelta(hours=1), "a", "is not an incident signature"),
        ("tenant", "4821", NOW, "a", "is not in the future"),
        ("tenant", "4821", NOW - timedelta(days=1), "a", "is not in the future"),
        ("tenant", "4821", NOW + timedelta(hours=1), " ", "snooze by is empty"),
    ],
)
def test_bad_snoozes_are_refused_in_one_line(sessions, scope, target, until, by, message) -> None:  # type: ignore[no-untyped-def]
    with write_session(sessions) as session, pytest.raises(ValueError) as raised:
        snooze(session, scope=scope, target=target, until=until, by=by, now=NOW)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    with sessions() as session:
        assert session.query(SnoozeRow).count() == 0


def test_in_force_by_tenant_or_signature_until_it_ends_or_is_lifted(sessions) -> None:  # type: ignore[no-untyped-def]
    with write_session(sessions) as session:
        by_tenant = snooze(session, scope="tenant", target="4821", until=NOW + timedelta(hours=1), by="a", now=NOW)
        snooze(session, scope="signature", target="00000000000000aa", until=NOW + timedelta(hours=3), by="b", now=NOW)
    with connect(sessions) as connection, transaction(connection) as tx:
        assert snooze_in_force(tx, "4821", ["ffffffffffffffff"], NOW) == (by_tenant.id, NOW + timedelta(hours=1))
        assert snooze_in_force(tx, "4821", ["ffffffffffffffff"], NOW + timedelta(hours=1)) is None
        held = snooze_in_force(tx, "5077", ["00000000000000aa"], NOW + timedelta(hours=2))
        assert held is not None and held[1] == NOW + timedelta(hours=3)
        assert snooze_in_force(tx, "5077", [], NOW) is None
        count_held(tx, by_tenant.id)
    with write_session(sessions) as session:
        lifted = lift(session, by_tenant.id, now=NOW + timedelta(minutes=5))
    assert lifted is not None and lifted.until == NOW + timedelta(minutes=5) and lifted.held == 1
    with connect(sessions) as connection, transaction(connection) as tx:
        assert snooze_in_force(tx, "4821", [], NOW + timedelta(minutes=6)) is None
