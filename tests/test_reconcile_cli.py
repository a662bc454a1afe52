"""``hotglue-webhooks reconcile``: one pass on demand, its summary, and ``--dry-run``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from conftest import Receiver, payload
from hotglue_webhooks.fakes import FakeHotGlue
from test_cli import cli_env, run  # noqa: F401  (cli_env is a fixture)

ENV = "production.hotglue.example.com"
FLOW = "Xk2pQ9aLm"


@pytest.fixture
def hotglue(cli_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHotGlue]:  # noqa: F811
    with FakeHotGlue(api_key="hg-key") as fake:
        monkeypatch.setenv("HGW_HOTGLUE_API_URL", fake.url)
        monkeypatch.setenv("HGW_HOTGLUE_API_KEY", "hg-key")
        monkeypatch.setenv("HGW_RECONCILE_MAX_RPS", "1000")
        yield fake


def test_reconcile_dry_run_prints_and_stores_nothing_then_a_pass_recovers(
    cli_env: str, hotglue: FakeHotGlue  # noqa: F811
) -> None:
    recent = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    created = {**payload("job_created__scheduled"), "last_updated": recent}
    failed = {**payload("sync_failed__shopify_500"), "last_updated": recent}
    receiver = Receiver(cli_env)
    assert receiver.post(created).status_code == 202
    receiver.close()
    hotglue.seed_jobs(ENV, FLOW, "4821", [failed, {**payload("job_completed__full_sync"), "last_updated": recent,
                                                   "status": "SYNC_STARTED"}])

    code, out = run("reconcile", "--dry-run")
    assert code == 0
    assert out.splitlines() == [
        f"would recover SYNC_FAILED {failed['s3_root']} ({ENV}/{FLOW}/4821, {recent})",
        "pairs read: 1 of 1",
        "jobs seen: 2",
        "stages would recover: 1 (SYNC_FAILED 1)",
        "errors: 0",
        "silent pairs: 0",
    ]
    code, listed = run("events", "list", "--json")
    assert code == 0 and listed.count('"id"') == 1

    code, out = run("reconcile", "--since", "12h", "--tenant", "4821", "--flow", FLOW)
    assert code == 0
    assert out.splitlines() == [
        "pairs read: 1 of 1",
        "jobs seen: 2",
        "stages recovered: 1 (SYNC_FAILED 1)",
        "errors: 0",
        "silent pairs: 0",
        "the running worker processes the recovered stages",
    ]
    assert run("worker", "--once") == (0, "processed 2 event(s)\n")


def test_reconcile_filters_pairs_and_reports_an_unreadable_list(cli_env: str, hotglue: FakeHotGlue) -> None:  # noqa: F811
    receiver = Receiver(cli_env)
    assert receiver.post("job_created__scheduled").status_code == 202
    receiver.close()
    hotglue.outage(60, status=404, match="GET */jobs")

    assert run("reconcile", "--tenant", "nobody") == (0, "\n".join([
        "pairs read: 0 of 0", "jobs seen: 0", "stages recovered: 0 (none)", "errors: 0", "silent pairs: 0", "",
    ]))
    code, out = run("reconcile")
    assert code == 0
    assert f"  {ENV}/{FLOW}/4821: HotGlue 404 on GET /{ENV}/{FLOW}/4821/jobs" in out
    assert "errors: 1" in out.splitlines()


def test_reconcile_refuses_a_bad_since_in_one_line(cli_env: str) -> None:  # noqa: F811
    code, out = run("reconcile", "--since", "yesterday")
    assert code == 2 and "--since" in out
