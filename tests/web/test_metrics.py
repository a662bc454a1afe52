"""GET /metrics: webhooks by outcome, ingest latency, actions, retries, purges, the queue."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from conftest import Receiver
from hotglue_webhooks.prometheus_dir import use_multiprocess_dir
from hotglue_webhooks.retention import purge
from web.helpers import kill_actions, send


def scrape(receiver: Receiver) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = receiver.client.get("/metrics")
    assert answer.status_code == 200 and answer.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_what_happened(receiver: Receiver) -> None:
    before = scrape(receiver)
    [failed] = send(receiver, "sync_failed__shopify_500")
    receiver.post("sync_failed__shopify_500")  # duplicate
    receiver.post(b"[]")  # not an object
    receiver.post("job_created__scheduled", headers={"X-Hub-Signature": "sha1=" + "0" * 40}, sign_it=False)

    queued = scrape(receiver)
    assert value(queued, "hgw_queue_depth", state="pending") == 1
    assert value(queued, "hgw_database_up") == 1
    worker = receiver.worker()
    worker.drain()
    kill_actions(receiver, failed)
    receiver.client.post(f"/api/events/{failed}/replay", json={})
    purge(receiver.runtime.sessions, 30)
    after = scrape(receiver)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("hgw_webhooks_received_total", outcome="accepted", reason="", status="SYNC_FAILED") == 1
    assert delta("hgw_webhooks_received_total", outcome="duplicate", reason="", status="SYNC_FAILED") == 1
    assert delta("hgw_webhooks_received_total", outcome="rejected", reason="not_a_json_object", status="none") == 1
    assert delta("hgw_webhooks_received_total", outcome="rejected", reason="bad_signature", status="none") == 1
    assert delta("hgw_ingest_duration_seconds_count", outcome="accepted") == 1
    assert delta("hgw_action_outcomes_total", kind="slack.post_message", outcome="dry_run") >= 1
    assert delta("hgw_replays_total", via="api") == 1
    assert delta("hgw_purge_runs_total") == 1
    assert value(after, "hgw_dead_actions") == 0  # the replay took it out of the dead letters
    assert value(after, "hgw_queue_depth", state="retrying") == 1
    assert value(after, "hgw_queue_lag_seconds") >= 0


def test_retries_and_dead_actions_are_counted(database_url: str) -> None:
    receiver = Receiver(
        database_url, slack_bot_token="xoxb-test", slack_api_url="http://127.0.0.1:9/api/", max_attempts=2,
        retry_base_seconds=0.001, retry_max_seconds=0.001, log_level="ERROR",
    )
    try:
        before = scrape(receiver)
        send(receiver, "etl_failed__transform")
        worker = receiver.worker()
        worker.drain()
        import time

        time.sleep(0.01)
        worker.drain()
        after = scrape(receiver)
        kind = {"kind": "slack.post_message"}
        assert value(after, "hgw_action_retries_total", **kind) - value(before, "hgw_action_retries_total", **kind) == 1
        dead = {"kind": "slack.post_message", "outcome": "dead"}
        assert value(after, "hgw_action_outcomes_total", **dead) - value(before, "hgw_action_outcomes_total", **dead) == 1
        assert value(after, "hgw_dead_actions") == 1
    finally:
        receiver.close()


COUNT_ONE = """
from hotglue_webhooks import metrics
metrics.count_webhook("accepted", "", "SYNC_FAILED", 0.01)
"""
RENDER = """
import sys
from hotglue_webhooks import metrics
from hotglue_webhooks.storage.db import make_engine, make_sessionmaker
sys.stdout.write(metrics.render(make_sessionmaker(make_engine(sys.argv[1]))).decode())
"""


def test_counters_of_every_process_add_up_in_multiprocess_mode(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    for _ in range(2):  # two gunicorn workers, say
        subprocess.run([sys.executable, "-c", COUNT_ONE], env=env, check=True, timeout=60)
    out = subprocess.run(
        [sys.executable, "-c", RENDER, f"sqlite:///{tmp_path / 'no-tables.db'}"], env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    assert 'hgw_webhooks_received_total{outcome="accepted",reason="",status="SYNC_FAILED"} 2.0' in out
    assert "hgw_database_up 0.0" in out  # no tables there: the counters still come out


def test_use_multiprocess_dir_makes_an_empty_directory_once(monkeypatch, tmp_path: Path) -> None:
    # Set, then delete: monkeypatch then removes what use_multiprocess_dir sets.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    made = use_multiprocess_dir()
    try:
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == made and os.listdir(made) == []
        assert use_multiprocess_dir() == made  # children reuse the parent's directory
    finally:
        os.rmdir(made)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "given"))
    assert use_multiprocess_dir() == str(tmp_path / "given") and (tmp_path / "given").is_dir()


COUNT_THEN_FORK = """
import os
from hotglue_webhooks import metrics
metrics.count_webhook("accepted", "", "SYNC_FAILED", 0.01)
metrics.count_webhook("accepted", "", "not a status", 0.01)
child = os.fork()
metrics.count_webhook("accepted", "", "SYNC_FAILED", 0.01)  # in both processes
if child == 0:
    os._exit(0)
os.waitpid(child, 0)
"""


def test_repeated_counts_add_up_also_in_a_forked_process(tmp_path: Path) -> None:
    # count_webhook keeps the labelled children; a gunicorn worker forked after the
    # parent counted must still count into its own file, and repeats must add up.
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    subprocess.run([sys.executable, "-c", COUNT_THEN_FORK], env=env, check=True, timeout=60)
    out = subprocess.run(
        [sys.executable, "-c", RENDER, f"sqlite:///{tmp_path / 'no-tables.db'}"], env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    assert 'hgw_webhooks_received_total{outcome="accepted",reason="",status="SYNC_FAILED"} 3.0' in out
    assert 'hgw_webhooks_received_total{outcome="accepted",reason="",status="other"} 1.0' in out
    assert 'hgw_ingest_duration_seconds_count{outcome="accepted"} 4.0' in out
