"""Run the reliability scenarios of issue 5 and print one line per scenario.

    python -m chaos                 # full size: 1, 2, 3, 5, 6 on SQLite; 4 on PostgreSQL
    python -m chaos --small         # the reduced run CI uses (a few minutes)
    python -m chaos -s 1,3 --database postgresql --keep

Everything runs on 127.0.0.1: the receiver as real processes (``hotglue-webhooks web`` and
``worker``), fake HotGlue and Slack inside this process. Temporary files, processes and
PostgreSQL databases are removed at the end, also on failure or Ctrl-C (``--keep`` keeps
the files: logs of every process). Exit status 0 when every scenario passed, except those
named by ``--expect-fail`` (default: none).
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chaos.cluster import DEFAULT_POSTGRES_URL, Topology
from chaos.procs import stop_all
from chaos.scenarios import FULL, SMALL, Options, Result, crash, duplicates, noise, outage, scale_out
from chaos.workload import default_payload_dir

TITLES = {
    1: "crash",
    2: "outage",
    3: "duplicates and reordering",
    4: "scale-out on PostgreSQL",
    5: "bad input",
    6: "Slack noise and pacing",
    7: "lost webhooks, one reconciliation pass",
}


def _run(number: int, options: Options) -> Result:
    if number == 1:
        return crash(options, Topology(database=options.database))
    if number == 2:
        return outage(options)
    if number == 3:
        return duplicates(options, Topology(database=options.database))
    if number == 4:
        return scale_out(options)
    if number == 5:
        from chaos.badinput import bad_input

        return bad_input(options)
    if number == 6:
        return noise(options)
    if number == 7:
        from chaos.reconciliation import reconciliation

        return reconciliation(options)
    raise ValueError(number)


def _numbers(text: str) -> list[int]:
    numbers = sorted({int(part) for part in text.split(",") if part.strip()})
    unknown = [n for n in numbers if n not in TITLES]
    if unknown:
        raise argparse.ArgumentTypeError(f"no scenario {unknown[0]}: choose from 1-{max(TITLES)}")
    return numbers


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--small", action="store_true", help="reduced sizes (CI)")
    parser.add_argument("-s", "--scenarios", type=_numbers, default=_numbers("1,2,3,4,5,6,7"), help="e.g. 1,3 (default all)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite", help="for scenarios 1, 2, 3, 5, 6")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("HGW_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="server to make throw-away databases on (default HGW_TEST_POSTGRES_URL or the local one)",
    )
    parser.add_argument("--expect-fail", type=_numbers, default=[], help="scenarios known to fail (default none)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--payloads", type=Path, default=None, help="the shared payloads (default tests/fixtures/payloads)")
    parser.add_argument("--workdir", type=Path, default=None, help="where logs and SQLite files go (default a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) afterwards")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every figure, not only the lines")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hgw-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    options = Options(
        sizes=SMALL if args.small else FULL,
        database=args.database,
        postgres_url=args.postgres_url,
        workdir=workdir,
        payloads=args.payloads or default_payload_dir(),
        seed=args.seed,
        log=log,
    )
    results: list[Result] = []
    started = time.monotonic()
    try:
        for number in args.scenarios:
            log(f"scenario {number}: {TITLES[number]} ({'small' if args.small else 'full'} size) ...")
            try:
                result = _run(number, options)
            except Exception as error:  # a harness failure is a failed scenario, not a crash
                from chaos.verify import Figures

                figures = Figures()
                figures.problem(f"harness error: {type(error).__name__}: {error}")
                result = Result(number, TITLES[number], options.database if number != 4 else "postgresql", False, figures, 0)
            if number in args.expect_fail and result.expected_failure is None:
                result.expected_failure = "its fix lands"
            elif number not in args.expect_fail:
                result.expected_failure = None
            results.append(result)
            print(result.line(), flush=True)
            _explain(result, args.verbose, print)
    finally:
        stop_all()
        if args.keep:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"--- {len(results)} scenario(s) in {time.monotonic() - started:.0f} s")
    for result in results:
        print(result.line())
    if args.json:
        args.json.write_text(json.dumps([_as_json(r) for r in results], indent=2, default=str))
    failed = [r for r in results if not r.passed and r.number not in args.expect_fail]
    return 1 if failed else 0


def _explain(result: Result, verbose: bool, out: Callable[[str], None]) -> None:
    for detail in result.details:
        out(f"    {detail}")
    for problem in result.figures.problems[:30]:
        out(f"    ! {problem}")
    if verbose or not result.passed:
        out(f"    figures: {json.dumps(result.figures.extra, default=str)[:4000]}")


def _as_json(result: Result) -> dict[str, Any]:
    f = result.figures
    return {
        "scenario": result.number,
        "title": result.title,
        "database": result.database,
        "passed": result.passed,
        "expected_failure": result.expected_failure,
        "seconds": round(result.seconds, 1),
        "acknowledged": f.acknowledged,
        "stored": f.stored,
        "processed": f.processed,
        "actions": f.actions,
        "executed_once": f.executed_once,
        "lost": f.lost,
        "duplicated": f.duplicated,
        "raw_duplicates": f.raw_duplicates,
        "answers_5xx": f.answers_5xx,
        "peak_rss_web_mib": round(f.peak_rss_web_mib, 1),
        "peak_rss_worker_mib": round(f.peak_rss_worker_mib, 1),
        "problems": f.problems,
        "extra": f.extra,
    }


if __name__ == "__main__":
    sys.exit(main())
