"""A worker killed between sending an action and recording it: the next attempt looks at
the peer first (Slack's conversations.history/replies by message metadata, HotGlue's job
list, the linked targets) and sends only what is not there (issue 15, item 5).

Real database (SQLite and PostgreSQL), fake HotGlue and Slack over real HTTP. The kill is
an exception no handler of the worker catches, raised right after (or right before) the
request: the action stays recorded as running, the lease held, as after ``kill -9``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from hotglue_webhooks.fakes import FakeHotGlue, FakeSlack
from hotglue_webhooks.storage.models import ActionRecord
from test_flows import API_KEY, ENV, TOKEN, World


class Killed(BaseException):
    """The process died here (not an Exception: nothing in the worker catches it)."""


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with FakeHotGlue(api_key=API_KEY) as hotglue, FakeSlack(token=TOKEN) as slack:
        made = World(database_url, hotglue, slack)
        made.worker.clock = lambda: datetime.now(UTC)
        yield made
        made.receiver.close()


def kill_at(world: World, kind: str, *, after_sending: bool) -> None:
    """Make the world's worker die at its first action of ``kind``, before or after the request."""
    original = world.worker.effects.execute

    def execute(action_kind: str, params: Any, key: str = "") -> Any:
        if action_kind != kind:
            return original(action_kind, params, key)
        if not after_sending:
            raise Killed
        original(action_kind, params, key)
        raise Killed

    world.worker.effects.execute = execute  # type: ignore[method-assign]


def restart(world: World) -> Any:
    """A new worker after the dead one's lease ran out."""
    worker = world.receiver.worker()
    later = datetime.now(UTC) + timedelta(seconds=world.receiver.settings.lease_seconds + 5)
    worker.clock = lambda: later
    return worker


def action(world: World, kind: str) -> ActionRecord:
    with world.receiver.runtime.sessions() as session:
        [record] = session.scalars(select(ActionRecord).where(ActionRecord.kind == kind))
        session.expunge(record)
    return record


def run_until_killed(world: World) -> None:
    with pytest.raises(Killed):
        world.worker.drain()


def test_a_slack_alert_sent_before_the_kill_is_found_and_not_sent_again(world: World) -> None:
    assert world.receiver.post("sync_failed__shopify_500").status_code == 202
    kill_at(world, "slack.post_message", after_sending=True)
    run_until_killed(world)
    assert len(world.slack.messages) == 1
    assert action(world, "slack.post_message").state == "running"

    worker = restart(world)
    worker.drain()

    [message] = world.slack.messages
    [lookup] = world.slack.requests_to("POST /api/conversations.history")
    assert lookup.form["include_all_metadata"] == "true"
    assert lookup.form["channel"] == FakeSlack.channel_id("#hotglue-webhooks")
    alert = action(world, "slack.post_message")
    assert alert.state == "done"
    assert alert.response == {
        "channel": FakeSlack.channel_id("#hotglue-webhooks"), "ts": message.ts, "found_by": "conversations.history",
    }
    # The thread it opened is known: the next failure of the flow replies in it.
    world.receiver.post(_second_failure())
    worker.drain()
    assert [m.thread_ts for m in world.slack.messages] == [None, message.ts]


def test_a_slack_alert_killed_before_sending_is_sent_once(world: World) -> None:
    assert world.receiver.post("sync_failed__shopify_500").status_code == 202
    kill_at(world, "slack.post_message", after_sending=False)
    run_until_killed(world)
    assert world.slack.messages == []

    restart(world).drain()

    [message] = world.slack.messages
    assert len(world.slack.requests_to("POST /api/conversations.history")) == 1
    assert message.metadata is not None and message.metadata["event_type"] == "hotglue_webhooks_action"
    alert = action(world, "slack.post_message")
    assert (alert.state, alert.response) == ("done", {"channel": FakeSlack.channel_id("#hotglue-webhooks"), "ts": message.ts})


def test_a_thread_reply_sent_before_the_kill_is_found_in_conversations_replies(world: World) -> None:
    world.deliver("sync_failed__shopify_500")
    [alert] = world.slack.messages
    world.receiver.post(_second_failure())
    kill_at(world, "slack.post_message", after_sending=True)
    run_until_killed(world)
    assert len(world.slack.replies(alert.ts)) == 1

    restart(world).drain()

    assert len(world.slack.replies(alert.ts)) == 1
    [lookup] = world.slack.requests_to("POST /api/conversations.replies")
    assert (lookup.form["ts"], lookup.form["include_all_metadata"]) == (alert.ts, "true")
    with world.receiver.runtime.sessions() as session:
        reply = session.scalars(
            select(ActionRecord).where(ActionRecord.kind == "slack.post_message").order_by(ActionRecord.id.desc())
        ).first()
        assert reply is not None
        assert (reply.state, reply.response["found_by"]) == ("done", "conversations.replies")


def test_when_the_lookup_fails_the_alert_is_sent_anyway_and_the_record_says_so(world: World) -> None:
    assert world.receiver.post("sync_failed__shopify_500").status_code == 202
    kill_at(world, "slack.post_message", after_sending=True)
    run_until_killed(world)
    world.slack.fail_next(1, status=500, match="POST /api/conversations.history")

    restart(world).drain()

    assert len(world.slack.messages) == 2  # a duplicate rather than a loss
    alert = action(world, "slack.post_message")
    assert alert.state == "done"
    assert alert.response["ts"] == world.slack.messages[1].ts
    assert alert.response["lookup"].startswith("lookup failed, sent anyway: SlackServerError: Slack conversations.history")


def test_a_job_start_sent_before_the_kill_is_found_in_the_job_list(world: World) -> None:
    assert world.receiver.post("job_completed__full_sync").status_code == 202
    kill_at(world, "hotglue.start_job", after_sending=True)
    run_until_killed(world)
    assert len(world.hotglue.jobs) == 1

    restart(world).drain()

    [job] = world.hotglue.jobs
    starts = [r for r in world.hotglue.requests if r.method == "POST" and r.raw_path.endswith("/4821/jobs")]
    assert len(starts) == 1
    assert world.hotglue.requests_to(f"GET /{ENV}/Xk2pQ9aLm/4821/jobs*")
    record = action(world, "hotglue.start_job")
    assert record.state == "done"
    assert record.response == {
        "job_id": job["job_id"], "s3_root": job["s3_root"], "status": "JOB_CREATED", "job_name": job["job_name"],
        "found_by": "job list",
    }
    assert record.request["headers"]["idempotency-key"]


def test_a_target_link_sent_before_the_kill_is_found_among_the_linked_targets(world: World) -> None:
    assert world.receiver.post("job_completed__full_sync").status_code == 202
    kill_at(world, "hotglue.link_target", after_sending=True)
    run_until_killed(world)

    restart(world).drain()

    links = [r for r in world.hotglue.requests if r.method == "POST" and r.raw_path.endswith("/linkedTargets")]
    assert len(links) == 1
    record = action(world, "hotglue.link_target")
    assert (record.state, record.response) == ("done", {"ok": True, "found_by": "linked targets"})
    assert "pw-4821-secret" not in str(record.request)
    assert len(world.hotglue.jobs) == 1  # the steps after it ran


def test_a_job_start_killed_before_sending_is_started_once(world: World) -> None:
    assert world.receiver.post("job_completed__full_sync").status_code == 202
    kill_at(world, "hotglue.start_job", after_sending=False)
    run_until_killed(world)
    assert world.hotglue.jobs == []

    restart(world).drain()

    assert len(world.hotglue.jobs) == 1
    assert "found_by" not in action(world, "hotglue.start_job").response


def _second_failure() -> dict[str, Any]:
    """Another job of the same tenant and flow failing the same way, a minute later."""
    from conftest import payload

    body = payload("sync_failed__shopify_500")
    body["job_id"] = body["job_id"] + "b"
    body["s3_root"] = body["s3_root"] + "b"
    for field in ("start_time", "last_updated"):
        moment = datetime.fromisoformat(body[field].replace("Z", "+00:00")) + timedelta(minutes=1)
        body[field] = moment.isoformat().replace("+00:00", "Z")
    return body

