"""Our own Slack bookkeeping: open alert threads, and per-channel pacing.

Pacing: Slack allows about one message per second per channel
(https://api.slack.com/methods/chat.postMessage#rate_limiting); the sender paces itself
instead of retrying into 429s. The next free moment of each channel lives in the
database, so every worker process shares it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hotglue_webhooks.ingest import parse_time
from hotglue_webhooks.rules import ALERT_OPEN, ALERT_REPEAT, ALERT_RESOLVE, OpenAlert
from hotglue_webhooks.storage.db import read_connection, write_session
from hotglue_webhooks.storage.models import SlackPacing, SlackThread, UTCDateTime


_THREAD_COLUMNS = (
    SlackThread.thread_key, SlackThread.fingerprint, SlackThread.channel, SlackThread.channel_name,
    SlackThread.ts, SlackThread.count, SlackThread.first_at, SlackThread.last_at, SlackThread.text,
    SlackThread.blocks,
)
_OPEN_THREADS = select(*_THREAD_COLUMNS).where(
    SlackThread.tenant == bindparam("tenant"), SlackThread.flow_id == bindparam("flow_id"),
    SlackThread.resolved_at.is_(None),
)
# [with_before]: only threads opened by events earlier in processing order. Built once:
# this runs for every failure event.
_OPEN_THREADS_QUERIES = {
    False: _OPEN_THREADS.order_by(SlackThread.first_at, SlackThread.id),
    True: _OPEN_THREADS.where(
        or_(
            SlackThread.opened_order_at < bindparam("order_at", type_=UTCDateTime()),
            and_(
                SlackThread.opened_order_at == bindparam("order_at", type_=UTCDateTime()),
                SlackThread.opened_event_id < bindparam("event_id"),
            ),
        )
    ).order_by(SlackThread.first_at, SlackThread.id),
}


def open_alerts(
    sessions: sessionmaker[Session], tenant: str, flow_id: str, before: tuple[datetime, int] | None = None
) -> tuple[OpenAlert, ...]:
    """Return the unresolved alert threads of a tenant's flow, oldest first.

    ``before`` = (``order_at``, id) of the event being decided: only threads opened by
    events earlier in processing order are returned. None returns all.
    """
    values: dict[str, Any] = {"tenant": tenant, "flow_id": flow_id}
    if before is not None:
        values["order_at"], values["event_id"] = before
    with read_connection(sessions) as connection:
        rows = connection.execute(_OPEN_THREADS_QUERIES[before is not None], values).all()
    return tuple(
        OpenAlert(
            thread_key=row.thread_key,
            fingerprint=row.fingerprint,
            channel=row.channel,
            channel_name=row.channel_name or row.channel,
            ts=row.ts,
            count=row._mapping["count"],  # not row.count: that name is also a tuple method
            first_at=row.first_at,
            last_at=row.last_at,
            text=row.text,
            blocks=tuple(row.blocks),
        )
        for row in rows
    )


def record_alert(
    session: Session,
    alert: Mapping[str, Any],
    posted: Mapping[str, Any],
    params: Mapping[str, Any],
    opener: tuple[datetime, int],
    now: datetime,
) -> None:
    """Apply one successful alert message to the threads (within the caller's transaction).

    ``alert`` is the action's ``params["alert"]``; ``posted`` is Slack's answer
    (``channel`` id and ``ts``); ``opener`` is the event's (``order_at``, id). "open" starts a thread, "repeat" counts one more failure,
    "resolve" closes every open thread with that key.
    """
    op, key = alert.get("op"), str(alert.get("thread_key"))
    at = parse_time(alert.get("at") if isinstance(alert.get("at"), str) else None) or now
    if op == ALERT_OPEN:
        session.add(
            SlackThread(
                thread_key=key,
                tenant=alert.get("tenant"),
                flow_id=alert.get("flow_id"),
                fingerprint=str(alert.get("fingerprint")),
                opened_order_at=opener[0],
                opened_event_id=opener[1],
                channel=str(posted.get("channel") or params["channel"]),
                channel_name=str(params["channel"]),
                ts=str(posted["ts"]),
                text=params["text"],
                blocks=list(params.get("blocks") or []),
                count=1,
                first_at=at,
                last_at=at,
            )
        )
        return
    for row in session.scalars(
        select(SlackThread).where(SlackThread.thread_key == key, SlackThread.resolved_at.is_(None))
    ):
        if op == ALERT_REPEAT:
            row.count += 1
            row.last_at = max(row.last_at, at)
        elif op == ALERT_RESOLVE:
            row.resolved_at = now


def push_back(sessions: sessionmaker[Session], channel: str, until: datetime) -> None:
    """Book ``channel`` until ``until`` (Slack answered 429 with Retry-After): every worker waits."""
    for _ in range(3):
        try:
            with write_session(sessions) as session:
                row = session.get(SlackPacing, channel)
                if row is None:
                    session.add(SlackPacing(channel=channel, next_at=until))
                elif row.next_at < until:
                    row.next_at = until
            return
        except IntegrityError:
            continue


_BOOKED = select(SlackPacing.next_at).where(SlackPacing.channel == bindparam("channel"))


def reserve_slot(
    sessions: sessionmaker[Session], channel: str, now: datetime, interval_seconds: float, horizon_seconds: float
) -> tuple[bool, datetime]:
    """Reserve the next free moment to post to ``channel``.

    Returns ``(True, at)`` when a slot within ``horizon_seconds`` of ``now`` was reserved
    (send at ``at``), or ``(False, at)`` without reserving when the channel is booked until
    ``at`` (try again then). Slots are ``interval_seconds`` apart.
    """
    if interval_seconds <= 0:
        # Unpaced: nothing to reserve, so no row lock that every worker would queue on;
        # only a 429's booking (push_back) makes the channel wait.
        with read_connection(sessions) as connection:
            booked = connection.execute(_BOOKED, {"channel": channel}).scalar()
        slot = max(booked or now, now)
        return (slot - now).total_seconds() <= horizon_seconds, slot
    for _ in range(3):
        try:
            with write_session(sessions) as session:
                query = select(SlackPacing).where(SlackPacing.channel == channel)
                if session.get_bind().dialect.name == "postgresql":
                    query = query.with_for_update()
                row = session.scalar(query)
                if row is None:
                    session.add(SlackPacing(channel=channel, next_at=now + timedelta(seconds=interval_seconds)))
                    return True, now
                slot = max(row.next_at, now)
                if (slot - now).total_seconds() > horizon_seconds:
                    return False, slot
                row.next_at = slot + timedelta(seconds=interval_seconds)
                return True, slot
        except IntegrityError:
            continue  # another worker created the row first; read it again
    return False, now + timedelta(seconds=interval_seconds)
