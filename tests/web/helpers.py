"""Small helpers shared by the web tests: send payloads, park actions as dead, read CSRF tokens."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from conftest import Receiver
from hotglue_webhooks.storage.models import ActionRecord, Event


def send(receiver: Receiver, *names: str) -> list[int]:
    """POST each named payload and return the new event ids."""
    ids = []
    for name in names:
        answer = receiver.post(name)
        assert answer.status_code == 202, answer.json
        ids.append(int(answer.json["id"]))
    return ids


def kill_actions(receiver: Receiver, event_id: int, error: str = "Slack chat.postMessage: 503 Service Unavailable") -> list[int]:
    """Park every action of the event as dead after 8 attempts (what the worker does when
    a peer keeps failing), and return their ids."""
    now = datetime.now(UTC)
    with receiver.runtime.sessions.begin() as session:
        ids = list(session.scalars(select(ActionRecord.id).where(ActionRecord.event_id == event_id)))
        session.execute(
            update(ActionRecord)
            .where(ActionRecord.event_id == event_id)
            .values(state="dead", attempts=8, last_error=error, completed_at=now, updated_at=now)
        )
    return ids


def action_states(receiver: Receiver, event_id: int) -> list[tuple[str, int]]:
    with receiver.runtime.sessions() as session:
        rows = session.execute(
            select(ActionRecord.state, ActionRecord.attempts)
            .where(ActionRecord.event_id == event_id)
            .order_by(ActionRecord.position)
        )
        return [(state, attempts) for state, attempts in rows]


def event_state(receiver: Receiver, event_id: int) -> str:
    with receiver.runtime.sessions() as session:
        event = session.get(Event, event_id)
        assert event is not None
        return event.state


def csrf_token(html: str) -> str:
    """Return the CSRF token of the first form on a page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def text_of(response: Any) -> str:
    return str(response.get_data(as_text=True))
