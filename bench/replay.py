"""The processing ceiling: the peer requests the workers sent, sent again with nothing else.

The processing step records every request its workers sent to the fake HotGlue and
Slack (``bench/fakepeers.py``, ``/_bench/record``). This process sends the same requests
(same method, target, body), in the same order, through the same libraries our clients
are built on, configured alike: one ``httpx.Client`` with keep-alive for HotGlue, one
``slack_sdk.WebClient`` for Slack, shared by ``--threads`` threads as a worker process
shares its clients. No database, no rules, no logging: the least any worker built on
these libraries pays per event. The harness runs one such process per worker process,
each with its slice, and reports events ÷ the slowest slice's wall time.

    python -m bench.replay REQUESTS.json --hotglue-url URL --slack-url URL \\
        --api-key KEY --slack-token TOKEN [--threads 2] [--slice 0/1]

Prints ``BENCH_JSON {"requests", "errors", "seconds", "cpu_seconds"}``.
"""

from __future__ import annotations

import argparse
import json
import queue
import resource
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError


def _send(hotglue: httpx.Client, slack: WebClient, request: dict[str, str]) -> bool:
    """Send one recorded request; True when the peer answered 2xx (Slack: ``ok``)."""
    if request["peer"] == "slack":
        api_method = request["target"].split("/api/", 1)[-1]
        try:
            slack.api_call(api_method, json=json.loads(request["body"]) if request["body"] else None)
        except SlackApiError:  # e.g. chat.update of a message the replay never posted
            return False
        return True
    headers = {"content-type": request["content_type"]} if request["content_type"] else None
    body = request["body"].encode() if request["body"] else None
    return hotglue.request(request["method"], request["target"], content=body, headers=headers).is_success


def replay(requests: list[dict[str, str]], hotglue: httpx.Client, slack: WebClient, threads: int) -> dict[str, Any]:
    """Send ``requests`` from ``threads`` threads taking them in order; return the counts,
    the wall seconds and this process's CPU seconds."""
    todo: queue.SimpleQueue[dict[str, str]] = queue.SimpleQueue()
    for request in requests:
        todo.put(request)
    errors = [0]
    lock = threading.Lock()

    def loop() -> None:
        while True:
            try:
                request = todo.get_nowait()
            except queue.Empty:
                return
            if not _send(hotglue, slack, request):
                with lock:
                    errors[0] += 1

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.monotonic()
    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "requests": len(requests), "errors": errors[0], "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu_before,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay")
    parser.add_argument("requests", type=Path, help="JSON list recorded by the fake peers")
    parser.add_argument("--hotglue-url", required=True)
    parser.add_argument("--slack-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--slack-token", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--slice", default="0/1", help="i/n: send every n-th request, starting at the i-th")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds, per request")
    args = parser.parse_args(argv)
    index, count = (int(part) for part in args.slice.split("/"))
    requests = json.loads(args.requests.read_text())[index::count]
    hotglue = httpx.Client(
        base_url=args.hotglue_url,
        headers={"accept": "application/json", "x-api-key": args.api_key},
        timeout=httpx.Timeout(args.timeout, connect=5.0),
        follow_redirects=False,
    )
    slack = WebClient(token=args.slack_token, base_url=args.slack_url, timeout=int(args.timeout))
    with hotglue:
        result = replay(requests, hotglue, slack, args.threads)
    print("BENCH_JSON " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
