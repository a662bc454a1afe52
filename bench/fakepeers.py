"""Zero-latency fake HotGlue and Slack for the processing benchmark, on asyncio.

The package's fakes (``hotglue_webhooks.fakes``) answer on werkzeug's threaded server
with one connection per request, which costs more CPU per request than the worker we
want to measure. This process keeps their answers (their ``handle`` methods: state,
auth, Slack's ts, HotGlue's schedules and jobs) and serves them from one asyncio loop
with HTTP/1.1 keep-alive, so the peers answer at once and cheaply; or, with ``--hotglue-latency`` and
``--slack-latency`` (``P50[,SHARE@SECONDS]``, bench/burst.py's Latency), as slowly as the
real ones (REFERENCE.md §9), each answer delayed without holding up the others.

    python -m bench.fakepeers --hotglue-port P1 --slack-port P2 --seed seed.json

``GET /_bench/stats`` (either port) answers request counts, this process's CPU seconds,
the arrival time (Unix seconds: when its request arrived) of each Slack message naming a
job whose id starts with ``trace-``, and ``chains``: per burst tenant (bench/burst.py's
TENANT_PATTERN in the target or body), the seconds of delay its requests were given. ``POST /_bench/record`` starts keeping every request (method,
target, content type, body) from then on; ``GET /_bench/record`` answers them and stops
(``bench/replay.py`` sends them again for the processing ceiling).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import re
import random
import resource
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from bench.burst import TENANT_PATTERN, Latency
from hotglue_webhooks.fakes import FakeHotGlue, FakeServer, FakeSlack, RecordedRequest

TRACED_JOB = re.compile(r"job (trace-[A-Za-z0-9_-]+)")
TENANT = re.compile(TENANT_PATTERN.encode())
# Keep the fake HotGlue's memory flat over 100,000 events: it remembers every job started.
KEEP_JOBS = 1000


class IndexedSlack(FakeSlack):
    """The fake Slack, finding the message chat.update names by (channel, ts) in a dict:
    the stock fake scans every message, which grows slow over thousands of alerts."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._by_ts: dict[tuple[str, str], Any] = {}

    def _post(self, args: Any) -> Any:
        answer = super()._post(args)
        if answer[1].get("ok"):
            message = self._messages[-1]
            self._by_ts[(message.channel_id, message.ts)] = message
        return answer

    def _update(self, args: Any) -> Any:
        found = self._by_ts.get((self.channel_id(str(args.get("channel"))), str(args.get("ts"))))
        everything: list[Any] = self._messages  # type: ignore[has-type]
        self._messages = [found] if found is not None else []
        try:
            return super()._update(args)
        finally:
            self._messages = everything


class Peers:
    def __init__(
        self, hotglue: FakeHotGlue, slack: FakeSlack, latency: dict[str, Latency] | None = None, seed: int = 9
    ) -> None:
        self.hotglue, self.slack = hotglue, slack
        self.counts: Counter[str] = Counter()
        self.traced: dict[str, float] = {}
        self.recorded: list[dict[str, str]] | None = None
        self.latency = latency or {}
        self.rng = random.Random(seed)
        self.chains: dict[str, float] = {}
        self.delayed_seconds = 0.0

    def delay(self, fake: FakeServer, target: str, body: bytes) -> float:
        """How long this request waits for its answer; counted in its tenant's chain."""
        latency = self.latency.get(fake.peer)
        if latency is None or latency.zero or target.startswith("/_bench/"):
            return 0.0
        seconds = latency.draw(self.rng)
        self.delayed_seconds += seconds
        found = TENANT.search(target.encode("latin-1", "replace")) or TENANT.search(body)
        if found:
            tenant = found.group().decode()
            self.chains[tenant] = self.chains.get(tenant, 0.0) + seconds
        return seconds

    def stats(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "counts": dict(self.counts),
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "traced": self.traced,
            "chains": dict(self.chains),
            "delayed_seconds": self.delayed_seconds,
        }

    def answer(self, fake: FakeServer, recorded: RecordedRequest) -> tuple[int, bytes, str]:
        if recorded.raw_path == "/_bench/stats":
            return 200, json.dumps(self.stats()).encode(), "application/json"
        if recorded.raw_path == "/_bench/record":
            if recorded.method == "POST":
                self.recorded = []
                return 200, b"{}", "application/json"
            kept, self.recorded = self.recorded or [], None
            return 200, json.dumps(kept).encode(), "application/json"
        if self.recorded is not None:
            target = recorded.raw_path + (f"?{recorded.query_string}" if recorded.query_string else "")
            self.recorded.append(
                {
                    "peer": fake.peer, "method": recorded.method, "target": target,
                    "content_type": recorded.headers.get("content-type", ""),
                    "body": recorded.body.decode("utf-8", "replace"),
                }
            )
        if fake is self.slack and recorded.method == "POST":
            found = TRACED_JOB.search(recorded.body.decode("utf-8", "replace"))
            if found:
                self.traced.setdefault(found.group(1), recorded.received_at)
        status, body, _headers = fake.handle(recorded)  # normal answers carry no headers
        self.counts[f"{fake.peer} {recorded.method} {recorded.path.rsplit('/', 1)[-1]} {status}"] += 1
        if len(self.hotglue._jobs) > 2 * KEEP_JOBS:
            del self.hotglue._jobs[:-KEEP_JOBS]
        if isinstance(body, bytes):
            return status, body, "application/octet-stream" if body else ""
        if isinstance(body, str):
            return status, body.encode(), "text/plain"
        return status, json.dumps(body).encode(), "application/json"


def _recorded(method: str, target: str, headers: dict[str, str], body: bytes) -> RecordedRequest:
    parts = urlsplit(target)
    parsed_json: Any = None
    if body:
        try:
            parsed_json = json.loads(body)
        except ValueError:
            parsed_json = None
    form: dict[str, str] = {}
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return RecordedRequest(
        method=method,
        path=unquote(parts.path),
        raw_path=parts.path or quote("/"),
        query=dict(parse_qsl(parts.query, keep_blank_values=True)),
        query_string=parts.query,
        headers=headers,
        json=parsed_json,
        form=form,
        body=body,
        received_at=time.time(),
    )


async def serve_connection(
    peers: Peers, fake: FakeServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            request_line = await reader.readline()
            if not request_line:
                return
            method, target, version = request_line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            body = await reader.readexactly(length) if length else b""
            # The request takes effect (and a traced alert counts as arrived) now; its
            # answer comes after the peer's latency.
            delay = peers.delay(fake, target, body)
            status, data, content_type = peers.answer(fake, _recorded(method, target, headers, body))
            if delay:
                await asyncio.sleep(delay)
            close = headers.get("connection", "").lower() == "close" or version.strip() == "HTTP/1.0"
            head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(data)}\r\n"
            if content_type:
                head += f"Content-Type: {content_type}\r\n"
            head += "Connection: close\r\n\r\n" if close else "\r\n"
            writer.write(head.encode("latin-1") + data)
            await writer.drain()
            if close:
                return
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        return
    finally:
        writer.close()


def seed(hotglue: FakeHotGlue, path: Path | None) -> None:
    if path is None:
        return
    for op in json.loads(path.read_text()):
        if op["op"] == "schedule":
            hotglue.set_schedule(*op["args"])
        elif op["op"] == "tenant_config":
            hotglue.set_tenant_config(*op["args"])
        elif op["op"] == "link_flow":
            hotglue.link_flow(*op["args"])
        else:
            raise SystemExit(f"unknown seed op {op['op']!r}")


async def _main(args: argparse.Namespace) -> None:
    hotglue = FakeHotGlue(api_key=args.api_key)
    slack = IndexedSlack(token=args.slack_token)
    seed(hotglue, args.seed)
    peers = Peers(hotglue, slack, {"hotglue": args.hotglue_latency, "slack": args.slack_latency})
    servers = [
        await asyncio.start_server(functools.partial(serve_connection, peers, fake), "127.0.0.1", port, backlog=1024)
        for fake, port in ((hotglue, args.hotglue_port), (slack, args.slack_port))
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print("ready", flush=True)
    await asyncio.wait_for(stop.wait(), args.max_seconds) if args.max_seconds else await stop.wait()
    for server in servers:
        server.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fakepeers")
    parser.add_argument("--hotglue-port", type=int, required=True)
    parser.add_argument("--slack-port", type=int, required=True)
    parser.add_argument("--api-key")
    parser.add_argument("--slack-token")
    parser.add_argument("--seed", type=Path)
    parser.add_argument("--hotglue-latency", type=Latency.parse, default=Latency(), help="P50[,SHARE@SECONDS]")
    parser.add_argument("--slack-latency", type=Latency.parse, default=Latency(), help="P50[,SHARE@SECONDS]")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="exit by itself after this long")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_main(args))
    except asyncio.TimeoutError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
