"""Threads or asyncio for the worker's peer requests (issue 11, item 1): measured.

The same requests (a HotGlue ``GET …/jobs/schedule`` and a Slack ``chat.postMessage``
in turns) are sent to the benchmark's fake peers (``bench/fakepeers.py``, with the
burst's latency) with ``--in-flight`` requests at a time, two ways:

- ``threads``: that many threads sharing one ``httpx.Client`` (HotGlue) and one
  ``slack_sdk.WebClient`` (Slack), as a worker process does;
- ``asyncio``: one event loop, that many tasks, ``httpx.AsyncClient`` for both peers
  (slack_sdk's ``AsyncWebClient`` needs aiohttp, which this project does not install;
  httpx is the cheaper of the two here anyway).

It prints, per way and latency: wall seconds, requests per second and this process's
CPU ms per request. The peers run in their own process, so their CPU is not counted.

    python -m bench.clients [--requests 2000] [--in-flight 32] \\
        [--hotglue-latency 0.3,0.05@3] [--slack-latency 0.15,0.02@2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import queue
import resource
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from slack_sdk import WebClient

from bench.payloads import ENV
from bench.procs import Procs, free_port, wait_port

API_KEY = "bench-clients-key"
SLACK_TOKEN = "xoxb-bench-clients"
TENANT = "bt00001"
FLOW = "Xk2pQ9aLm"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _message(n: int) -> dict[str, Any]:
    return {"channel": "#bench", "text": f"bench message {n} for tenant {TENANT}"}


def with_threads(hotglue_url: str, slack_url: str, count: int, in_flight: int) -> dict[str, float]:
    """``count`` requests from ``in_flight`` threads; wall seconds and CPU seconds."""
    hotglue = httpx.Client(base_url=hotglue_url, headers={"x-api-key": API_KEY}, timeout=30)
    slack = WebClient(token=SLACK_TOKEN, base_url=slack_url + "/api/", timeout=30)
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for n in range(count):
        todo.put(n)

    def loop() -> None:
        while True:
            try:
                n = todo.get_nowait()
            except queue.Empty:
                return
            if n % 2:
                slack.chat_postMessage(**_message(n))
            else:
                hotglue.get(f"/{ENV}/{FLOW}/{TENANT}/jobs/schedule").raise_for_status()

    return _timed(lambda: _run_threads(loop, in_flight), hotglue.close)


def _run_threads(loop: Callable[[], None], count: int) -> None:
    threads = [threading.Thread(target=loop) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def with_asyncio(hotglue_url: str, slack_url: str, count: int, in_flight: int) -> dict[str, float]:
    """``count`` requests from ``in_flight`` tasks of one event loop."""

    async def main() -> None:
        limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
        async with (
            httpx.AsyncClient(base_url=hotglue_url, headers={"x-api-key": API_KEY}, timeout=30, limits=limits) as hg,
            httpx.AsyncClient(
                base_url=slack_url, headers={"authorization": f"Bearer {SLACK_TOKEN}"}, timeout=30, limits=limits
            ) as sl,
        ):
            todo: asyncio.Queue[int] = asyncio.Queue()
            for n in range(count):
                todo.put_nowait(n)

            async def loop() -> None:
                while not todo.empty():
                    n = todo.get_nowait()
                    if n % 2:
                        answer = await sl.post("/api/chat.postMessage", json=_message(n))
                        if not answer.json().get("ok"):
                            raise RuntimeError(answer.text)
                    else:
                        (await hg.get(f"/{ENV}/{FLOW}/{TENANT}/jobs/schedule")).raise_for_status()

            await asyncio.gather(*(loop() for _ in range(in_flight)))

    return _timed(lambda: asyncio.run(main()), lambda: None)


def _timed(run: Callable[[], None], close: Callable[[], None]) -> dict[str, float]:
    cpu, started = _cpu(), time.monotonic()
    try:
        run()
    finally:
        close()
    return {"seconds": time.monotonic() - started, "cpu_seconds": _cpu() - cpu}


def _peers(procs: Procs, hotglue_latency: str, slack_latency: str) -> tuple[str, str]:
    hotglue_port, slack_port = free_port(), free_port()
    seed = [{"op": "schedule", "args": [ENV, FLOW, TENANT, "cron(0 * * * ? *)", "ENABLED"]}]
    path = procs.workdir / f"clients-seed-{hotglue_port}.json"
    path.write_text(json.dumps(seed))
    proc = procs.start(
        f"peers-{hotglue_port}",
        [
            sys.executable, "-m", "bench.fakepeers", "--hotglue-port", str(hotglue_port), "--slack-port", str(slack_port),
            "--api-key", API_KEY, "--slack-token", SLACK_TOKEN, "--seed", str(path),
            "--hotglue-latency", hotglue_latency, "--slack-latency", slack_latency,
        ],
        dict(os.environ),
    )
    wait_port(slack_port, 30, proc.popen)
    wait_port(hotglue_port, 30, proc.popen)
    return f"http://127.0.0.1:{hotglue_port}", f"http://127.0.0.1:{slack_port}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clients")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--hotglue-latency", default="0.3,0.05@3")
    parser.add_argument("--slack-latency", default="0.15,0.02@2")
    parser.add_argument("--rounds", type=int, default=2, help="turns of threads and asyncio per latency")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-clients-") as workdir:
        procs = Procs(Path(workdir))
        try:
            rows = _compare(procs, args)
        finally:
            procs.close()
    print("BENCH_JSON " + json.dumps(rows), flush=True)
    return 0


def _compare(procs: Procs, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for label, latencies in (("zero", ("0", "0")), ("latency", (args.hotglue_latency, args.slack_latency))):
        hotglue_url, slack_url = _peers(procs, *latencies)
        for _ in range(args.rounds):
            for way, run in (("threads", with_threads), ("asyncio", with_asyncio)):
                result = run(hotglue_url, slack_url, args.requests, args.in_flight)
                rows.append({"latency": label, "way": way, **result})
                print(
                    f"{label:8} {way:8} {args.requests} requests, {args.in_flight} in flight: "
                    f"{result['seconds']:.1f} s, {args.requests / result['seconds']:.0f} req/s, "
                    f"{result['cpu_seconds'] * 1000 / args.requests:.2f} ms CPU/request",
                    flush=True,
                )
    return rows


if __name__ == "__main__":
    sys.exit(main())
