"""``hotglue-webhooks actions replay``: bulk replay of dead actions from the command line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from conftest import SECRET, Receiver
from hotglue_webhooks.cli import main
from web.helpers import action_states, kill_actions, send


def test_actions_replay_reopens_the_selected_dead_actions(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HGW_DATABASE_URL", database_url)
    monkeypatch.setenv("HGW_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("HGW_LOG_FORMAT", "console")
    receiver = Receiver(database_url)
    try:
        shopify, exact = send(receiver, "sync_failed__shopify_500", "sync_failed__exact_token_401")
        receiver.worker().drain()
        kill_actions(receiver, shopify)
        killed = kill_actions(receiver, exact)
        runner = CliRunner()

        asked = runner.invoke(main, ["actions", "replay", "--tenant", "3310"], input="n\n")
        assert asked.exit_code == 1 and f"replay {len(killed)} dead action(s) of 1 event(s)?" in asked.output
        assert {state for state, _ in action_states(receiver, exact)} == {"dead"}

        done = runner.invoke(main, ["actions", "replay", "--tenant", "3310", "--since", "1h", "--yes"])
        assert done.exit_code == 0, done.output
        assert done.stdout == f"replayed {len(killed)} dead action(s) of 1 event(s); the worker takes them up now\n"
        assert {state for state, _ in action_states(receiver, exact)} == {"pending"}
        assert {state for state, _ in action_states(receiver, shopify)} == {"dead"}

        none = runner.invoke(main, ["actions", "replay", "--kind", "hotglue.start_job", "--yes"])
        assert (none.exit_code, none.stdout) == (0, "no dead actions match\n")
        assert runner.invoke(main, ["actions", "replay", "--since", "whenever"]).exit_code == 2
    finally:
        receiver.close()
