"""Requests in flight bound the worker, not threads (issue 11): an event waiting for a
peer gives its turn and its database connection back, so a slow HotGlue or Slack answer
holds back no other tenant's events."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from conftest import Receiver, payload
from hotglue_webhooks.fakes import FakeSlack
from hotglue_webhooks.storage.models import Event
from hotglue_webhooks.worker import Turns

TOKEN = "xoxb-turns"


def _wait_until(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _states(receiver: Receiver) -> dict[str, str]:
    with receiver.runtime.sessions() as session:
        return {e.tenant: e.state for e in session.scalars(select(Event))}


def test_a_slow_slack_answer_holds_no_turn_and_no_connection(database_url: str) -> None:
    """One turn, two loops: while tenant 4821's alert waits for Slack, tenant 9001's
    event is processed to the end, and the waiting event holds no pooled connection."""
    with FakeSlack(token=TOKEN) as slack:
        receiver = Receiver(
            database_url, slack_bot_token=TOKEN, slack_api_url=slack.url, worker_threads=1, worker_in_flight=2,
            poll_seconds=0.05,
        )
        try:
            worker = receiver.worker()
            sending, answer = threading.Event(), threading.Event()
            original = worker.effects.execute

            def slow_peer(kind: str, params: Any, key: str = "") -> Any:
                sending.set()
                assert answer.wait(30), "the test never let the peer answer"
                return original(kind, params, key)

            worker.effects.execute = slow_peer
            assert receiver.post("sync_failed__shopify_500").status_code == 202
            stop = threading.Event()
            runner = threading.Thread(target=worker.run, args=(stop,), daemon=True)
            runner.start()
            try:
                assert sending.wait(20), "the alert was never sent"
                other = payload("job_created__scheduled")
                other["tenant"] = "9001"
                assert receiver.post(other).status_code == 202
                _wait_until(lambda: _states(receiver).get("9001") == "done", "tenant 9001's event to be done")
                assert _states(receiver)["4821"] == "processing"
                # Nothing is checked out while the one event left waits for Slack.
                _wait_until(lambda: receiver.runtime.engine.pool.checkedout() == 0, "the pool to be idle")
                answer.set()
                _wait_until(lambda: _states(receiver)["4821"] == "done", "tenant 4821's event to be done")
            finally:
                answer.set()
                stop.set()
                runner.join(30)
            [alert] = slack.messages
            assert "4821" in alert.text
        finally:
            receiver.close()


def test_an_event_back_from_a_peer_takes_the_next_turn_before_a_new_claim() -> None:
    turns = Turns(1)
    order: list[str] = []
    turns.take()

    def take(name: str, back: bool) -> None:
        turns.take(back=back)
        order.append(name)

    claimer = threading.Thread(target=take, args=("claim", False))
    claimer.start()
    _wait_until(lambda: turns.waiting() == (0, 1), "the claiming loop to wait")
    returner = threading.Thread(target=take, args=("back", True))
    returner.start()
    _wait_until(lambda: turns.waiting() == (1, 1), "the returning event to wait")
    turns.give()
    _wait_until(lambda: order == ["back"], "the returning event to take the turn")
    assert claimer.is_alive()  # still waiting: one turn, and it is taken
    turns.give()
    claimer.join(10)
    returner.join(10)
    assert order == ["back", "claim"]
    assert turns.waiting() == (0, 0)


@pytest.mark.parametrize("size", [1, 3])
def test_turns_never_admit_more_than_their_size_and_lose_no_wakeup(size: int) -> None:
    """Many loops and returning events in turns: at most ``size`` hold one at any moment,
    and every one of them gets one (a lost wakeup would leave a thread waiting)."""
    turns = Turns(size)
    held, most, lock = 0, 0, threading.Lock()

    def hold(back: bool) -> None:
        nonlocal held, most
        for _ in range(200):
            turns.take(back=back)
            with lock:
                held += 1
                most = max(most, held)
            with lock:
                held -= 1
            turns.give()

    threads = [threading.Thread(target=hold, args=(n % 2 == 0,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert 1 <= most <= size
    assert turns.waiting() == (0, 0)
