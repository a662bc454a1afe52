"""The README's walk-through: the fakes seeded with ``--seed demo`` make every rule act on
the sample payloads (fake peers over real HTTP, the real receiver and worker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import PAYLOAD_FILES, Receiver
from hotglue_webhooks.fakes import FakeHotGlue, FakeSlack
from hotglue_webhooks.fakes.__main__ import main as fakes_main
from hotglue_webhooks.fakes.seed import DEMO, SeedError, apply_seed, load_seed

ENV = "production.hotglue.example.com"


@pytest.fixture
def demo(database_url: str) -> Iterator[tuple[Receiver, FakeHotGlue, FakeSlack]]:
    with FakeHotGlue(api_key="hg-key") as hotglue, FakeSlack(token="xoxb-test") as slack:
        apply_seed(hotglue, load_seed("demo"))
        receiver = Receiver(
            database_url, hotglue_api_key="hg-key", hotglue_api_url=hotglue.url,
            slack_bot_token="xoxb-test", slack_api_url=slack.url,
        )
        yield receiver, hotglue, slack
        receiver.close()


def test_the_demo_seed_makes_every_rule_act(demo: tuple[Receiver, FakeHotGlue, FakeSlack]) -> None:
    receiver, hotglue, slack = demo
    for path in sorted(PAYLOAD_FILES):  # as `send tests/fixtures/payloads/*.json` does
        assert receiver.post(path.stem).status_code == 202
    worker = receiver.worker()
    now = datetime.now(UTC) + timedelta(minutes=1)
    worker.clock = lambda: now
    worker.drain()

    writes = sorted((r.method, r.raw_path, json.dumps(r.json, sort_keys=True)) for r in hotglue.requests if r.method != "GET")
    today = now.date().isoformat()
    assert writes == sorted([
        # Exact 401: both of 3310's schedules off, expressions kept.
        ("PUT", f"/{ENV}/Rb7TnE4wz/3310/jobs/schedule", '{"schedule_expression": "cron(30 * * * ? *)", "state": "DISABLED"}'),
        ("PUT", f"/{ENV}/Vd3HsW8qc/3310/jobs/schedule", '{"schedule_expression": "cron(0 8 * * ? *)", "state": "DISABLED"}'),
        # Full sync of 4821: enable, link optiply, start the job; the two marker jobs enable again.
        *[("PUT", f"/{ENV}/Xk2pQ9aLm/4821/jobs/schedule", '{"schedule_expression": "cron(0 */4 * * ? *)", "state": "ENABLED"}')] * 3,
        ("POST", f"/{ENV}/Xk2pQ9aLm/4821/linkedTargets", json.dumps({"target": {"target": "optiply", "config": DEMO["tenants"]["4821"]["config"]["apiCredentials"]}}, sort_keys=True)),
        ("POST", f"/{ENV}/Xk2pQ9aLm/4821/jobs", json.dumps({"tap": "shopify", "job_name": f"wh-Xk2pQ9aLm-shopify-{today}"}, sort_keys=True)),
        # Auto sync of 5077: enable and link, but its config is invalid, so no job.
        ("PUT", f"/{ENV}/Xk2pQ9aLm/5077/jobs/schedule", '{"schedule_expression": "cron(0 */6 * * ? *)", "state": "ENABLED"}'),
        ("POST", f"/{ENV}/Xk2pQ9aLm/5077/linkedTargets", json.dumps({"target": {"target": "optiply", "config": DEMO["tenants"]["5077"]["config"]["apiCredentials"]}}, sort_keys=True)),
    ])
    texts = [message.text for message in slack.messages]
    assert len(texts) == 13
    assert sum(text.startswith(":red_circle: ") for text in texts) == 4  # ETL, export, Exact 401, Shopify 500
    assert sum(text.startswith(":white_check_mark: Resolved: ") for text in texts) == 2
    assert sum(text.startswith(":large_green_circle: Schedule enabled for tenant ") for text in texts) == 4
    assert any(text.startswith(":warning: Invalid tenant config for tenant 5077: ") for text in texts)
    assert any(text.startswith(":package: Export to Exact Online for tenant 3310: 3 of 4 buy orders failed") for text in texts)
    assert ":lock: Schedules turned off for tenant 3310: Exact Online refused its refresh token. The customer must " \
        "reconnect Exact Online. Turned off: Rb7TnE4wz, Vd3HsW8qc." in texts


def test_a_seed_file_is_checked_and_named_in_one_line(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"env_id": "e", "tenants": {"t1": {"flows": {"f1": {"schedule": {"state": "ENABLED"}}}}}}))
    with pytest.raises(SeedError, match=r"seed.json: tenants.t1.flows.f1.schedule needs a schedule_expression string$"):
        load_seed(str(seed))
    with pytest.raises(SeedError, match="cannot read seed file"):
        load_seed(str(tmp_path / "missing.json"))
    seed.write_text(json.dumps({"env_id": "e", "tenants": {"t1": {"config": {"a": 1}, "flows": {"f1": {
        "schedule": {"schedule_expression": "cron(0 1 * * ? *)", "state": "DISABLED"},
        "linked_targets": [{"target": "optiply"}]}}}}}))
    with FakeHotGlue() as hotglue:
        assert apply_seed(hotglue, load_seed(str(seed))) == [
            "tenant t1: config; flow f1 (schedule DISABLED, source none, target optiply, never synced)"
        ]
        assert hotglue.schedule("e", "f1", "t1") == {"schedule_expression": "cron(0 1 * * ? *)", "state": "DISABLED"}
        assert hotglue.tenant_config("e", "t1") == {"a": 1}
        assert [t["target"] for t in hotglue.linked_targets("e", "f1", "t1")] == ["optiply"]


def test_the_fakes_command_refuses_a_bad_seed_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.json").write_text("[1]")
    assert fakes_main(["--seed", str(tmp_path / "bad.json")]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'bad.json'}: a seed is a JSON object with an env_id string and tenants\n"
    )
