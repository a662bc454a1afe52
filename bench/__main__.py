"""Benchmark the receiver against this machine's own ceiling (issue 6), in one run.

    .venv/bin/python -m bench              # the full run (~15 min on 2 cores), writes docs/benchmarks.md
    .venv/bin/python -m bench --smoke      # a few hundred requests, to check the harness works
    .venv/bin/python -m bench --scale 0.1  # purge/RSS/processing/burst sizes × 0.1
    .venv/bin/python -m bench --only burst --no-postgres   # one step (here: the burst, SQLite only)

Run it from the repository root. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.burst import Latency
from bench.harness import Bench, Sizes, cleanup

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:begin (written by python -m bench) -->", "<!-- bench:end -->"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
STEPS = ("ingest", "process", "latency", "burst", "purge", "rss")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, python client, no docs written")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the purge, RSS and processing sizes")
    parser.add_argument("--rounds", type=int, default=None, help="turns of ceiling/SQLite/PostgreSQL saturation (default 3)")
    parser.add_argument("--only", default=",".join(STEPS), help=f"comma-separated steps of {', '.join(STEPS)}")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("HGW_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help="an existing database on the server; benchmark databases are made beside it and dropped",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="saturating client: wrk when installed (auto), or the asyncio client")
    parser.add_argument("--web-workers", type=int, default=4, help="HGW_WEB_WORKERS for the ceiling and ours")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--output", type=Path, default=None, help=f"Markdown file to write (default {DOC.relative_to(ROOT)}; none with --smoke)")
    parser.add_argument("--hotglue-latency", type=Latency.parse, default=Latency.parse("0.3,0.05@3"),
                        help="burst: the fake HotGlue's answer time, P50[,SHARE@SECONDS] (default 0.3,0.05@3)")
    parser.add_argument("--slack-latency", type=Latency.parse, default=Latency.parse("0.15,0.02@2"),
                        help="burst: the fake Slack's answer time (default 0.15,0.02@2)")
    parser.add_argument("--worker-threads", type=int, default=None,
                        help="HGW_WORKER_THREADS of the workers started (default: the receiver's default)")
    parser.add_argument("--receiver-env", action="append", default=[], metavar="HGW_NAME=VALUE",
                        help="a setting for every receiver process started, e.g. HGW_SERVE_WORKERS=1 (repeatable)")
    parser.add_argument("--burst-jobs", type=int, default=None, help="burst: jobs in the burst (default 1000)")
    parser.add_argument("--json", type=Path, default=None, help="also write every raw figure as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, SQLite files)")
    parser.add_argument("--merge", type=Path, default=None,
                        help="a --json file of an earlier run: its figures fill the steps not run now")
    args = parser.parse_args(argv)
    args.receiver_env = _receiver_env(parser, args.receiver_env)
    return args


def _receiver_env(parser: argparse.ArgumentParser, pairs: list[str]) -> dict[str, str]:
    """``HGW_NAME=VALUE`` pairs → a dict; a parser error for anything else."""
    settings: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.startswith("HGW_"):
            parser.error(f"--receiver-env {pair!r}: expected HGW_NAME=VALUE")
        settings[name] = value
    return settings


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # unwinds through the clean-up


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    # Stopping the run (Ctrl-C, kill) still stops every process it started and drops its
    # databases; a shell may have started it with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    steps = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise SystemExit(f"unknown step(s): {', '.join(sorted(unknown))}")
    sizes = Sizes.smoke() if args.smoke else Sizes().scaled(args.scale)
    if args.rounds:
        sizes.rounds = args.rounds
    if args.burst_jobs:
        sizes.burst_jobs = args.burst_jobs
    wrk = shutil.which("wrk") if args.client in ("auto", "wrk") and not args.smoke else None
    if args.client == "wrk" and not wrk:
        raise SystemExit("wrk is not installed (apt-get install wrk), or use --client python")
    workdir = Path(tempfile.mkdtemp(prefix="hgw-bench-"))

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    bench = Bench(
        workdir, None if args.no_postgres else args.postgres_url, sizes, web_workers=args.web_workers, wrk=wrk,
        connections=args.connections, log=log, worker_threads=args.worker_threads,
        receiver_env=args.receiver_env,
    )
    kinds = ["sqlite"]
    if not args.no_postgres:
        reason = bench.dbs.postgres_available()
        if reason:
            log(f"PostgreSQL skipped: {reason}")
        else:
            kinds.append("postgresql")
    started = time.monotonic()
    bench.results["load_average_at_start"] = os.getloadavg()
    try:
        if "ingest" in steps:
            bench.ingest(kinds)
        if "process" in steps:
            bench.processing("sqlite", 1, sizes.process_events_1)
            if "postgresql" in kinds:
                bench.processing("postgresql", 1, sizes.process_events_1)
                bench.processing("postgresql", 3, sizes.process_events_3)
        if "latency" in steps:
            for kind in kinds:
                bench.receipt_to_slack(kind)
        if "burst" in steps:
            # Zero latency and real-peer latency, one after the other, on each database.
            for kind in kinds:
                bench.burst(kind, Latency(), Latency())
                bench.burst(kind, args.hotglue_latency, args.slack_latency)
        if "purge" in steps:
            for kind in kinds:
                bench.retention(kind)
        if "rss" in steps:
            bench.memory("postgresql" if "postgresql" in kinds else "sqlite", 3 if "postgresql" in kinds else 1)
        versions = bench.dbs.versions()
        bench.results["load_average_at_end"] = os.getloadavg()
    except BaseException:
        log(f"failed; logs kept in {workdir}")
        args.keep = True
        raise
    finally:
        bench.close()
        bench.results["postgresql_databases_made_and_dropped"] = bench.dbs.made
        cleanup(workdir, args.keep)
    elapsed = time.monotonic() - started
    if args.merge:
        earlier = json.loads(args.merge.read_text())
        bench.results = {**earlier, **bench.results, "merged_from": str(args.merge)}
    table = report.rows(bench.results, sizes.rate)
    print(report.text_table(table))
    print(f"\n{len(table)} rows in {elapsed / 60:.1f} min; client for saturation: {'wrk' if wrk else 'python (asyncio)'}")
    if args.json:
        args.json.write_text(json.dumps(bench.results, indent=2, default=str))
    output = args.output or (None if args.smoke else DOC)
    if output is not None:
        write_doc(output, table, report.machine(versions), argv, bench.results, elapsed, bool(wrk), sizes)
        print(f"wrote {output}")
    return 0


def write_doc(
    path: Path, table: list[report.Row], machine: dict[str, str], argv: Sequence[str] | None,
    results: dict[str, Any], elapsed: float, wrk: bool, sizes: Sizes,
) -> None:
    """Write the generated part of ``path`` between its markers; keep the rest as it is."""
    command = " ".join([".venv/bin/python -m bench", *(argv if argv is not None else sys.argv[1:])])
    if "merged_from" in results:
        command += " (steps not run here: from the earlier full run)"
    ceiling = results.get("ceiling", {}).get("saturate", {})
    client_note = ""
    if ceiling:
        client_note = (
            f"Saturating client: {'wrk (2 threads, LuaJIT FFI signing)' if wrk else 'the asyncio client'}; "
            f"during the ceiling run it used {ceiling.get('client_cpu_share', 0):.0%} of one core while the "
            f"server used {ceiling.get('server_cpu_share', 0):.0%} (of {os.cpu_count()} cores). "
        )
    generated = "\n".join(
        [
            BEGIN,
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min: `{command}`",
            "",
            "| machine | |",
            "|---|---|",
            *[f"| {name} | {value} |" for name, value in machine.items()],
            "",
            report.markdown_table(table),
            "",
            client_note
            + report.processing_note(results)
            + f"Fixed-rate latency: the asyncio client, open loop at {sizes.rate:.0f} req/s, measured from each "
            "request's due time. Sizes: "
            f"processing {sizes.process_events_1:,} / {sizes.process_events_3:,} events, purge "
            f"{sizes.purge_events:,} events, RSS after {sizes.rss_events:,} events. Load average (1 min) "
            f"at start {results.get('load_average_at_start', [0])[0]:.2f}, at end "
            f"{results.get('load_average_at_end', [0])[0]:.2f}: other work on the machine shows here.",
            END,
        ]
    )
    if path.exists():
        text = path.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            path.write_text(head + generated + tail)
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Benchmarks\n\n" + generated + "\n")


if __name__ == "__main__":
    sys.exit(main())
