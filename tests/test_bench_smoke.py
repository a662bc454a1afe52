"""The benchmark harness (bench/, issue 6) runs end to end at smoke size.

It asserts nothing about speed: only that every measurement runs, cleans up after
itself and prints its table. PostgreSQL is measured when the test server answers (and
must be when ``HGW_TEST_REQUIRE_POSTGRES=1``, as in CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from conftest import DEFAULT_POSTGRES_URL

ROOT = Path(__file__).resolve().parent.parent


def _postgres_databases(url: str) -> set[str] | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(connection.execute(text("SELECT datname FROM pg_database")).scalars())
    except Exception:  # any reason the server cannot be used: the harness skips it too
        return None
    finally:
        engine.dispose()


def test_the_harness_runs_every_measurement_and_prints_its_table(tmp_path: Path) -> None:
    postgres_url = os.environ.get("HGW_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    before = _postgres_databases(postgres_url)
    if before is None and os.environ.get("HGW_TEST_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL not reachable at {postgres_url} (HGW_TEST_REQUIRE_POSTGRES=1)")
    figures = tmp_path / "figures.json"
    doc = tmp_path / "benchmarks.md"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--postgres-url", postgres_url, "--json", str(figures),
         "--output", str(doc)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]

    assert "measurement" in run.stdout and "ours ÷ ceiling" in run.stdout
    results = json.loads(figures.read_text())
    kinds = ["sqlite"] if before is None else ["sqlite", "postgresql"]
    expected = ["ceiling", *(f"ingest_{k}" for k in kinds), "process_sqlite_1", *(f"latency_{k}" for k in kinds),
                *(f"purge_{k}" for k in kinds)]
    expected += [f"burst_{k}_{label}" for k in kinds for label in ("zero", "latency")]
    if before is not None:
        expected += ["process_postgresql_1", "process_postgresql_3"]
    assert set(expected) <= set(results)
    for kind in kinds:
        assert results[f"ingest_{kind}"]["saturate"]["ok"] > 0
        assert results[f"purge_{kind}"]["old_left"] == 0
    assert results["process_sqlite_1"]["processed"] == results["process_sqlite_1"]["events"] > 0
    for name in ("process_sqlite_1", "process_postgresql_3") if before is not None else ("process_sqlite_1",):
        # The ceiling sent again exactly the requests the workers sent.
        sent = sum(results[name]["peer_requests"].values())
        assert results[name]["ceiling"]["requests"] == sent > 0
        assert results[name]["ceiling"]["events_per_second"] > 0
    assert "| measurement |" in doc.read_text()
    # Every benchmark database it made was dropped again.
    if before is not None:
        made = set(results["postgresql_databases_made_and_dropped"])
        assert made and not made & (_postgres_databases(postgres_url) or set())
    for kind in kinds:
        for label in ("zero", "latency"):
            burst = results[f"burst_{kind}_{label}"]
            # Every stage of the burst stored and processed, every failure alerted in Slack.
            assert burst["answers"] == {"202": burst["webhooks"]}
            assert burst["event_states"] == {"done": burst["webhooks"]}
            assert burst["failures"] == burst["alerted"] > 0
            assert not burst["timed_out"]
    assert results["burst_sqlite_latency"]["longest_chain_seconds"] > 0  # the latency was applied
    assert "burst of 20 jobs" in run.stdout
