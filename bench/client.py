"""An asyncio load client: signed POSTs at a fixed rate (open loop) or at saturation.

Run as its own process by the harness (``python -m bench.client ...``); prints one line
``BENCH_JSON {...}`` with counts, latency percentiles and its own CPU time, so the
harness can show it is not the bottleneck.

Fixed rate is open loop: request *i* is due at ``start + i / rate`` whatever the server
does, and its latency is measured from that due time (no coordinated omission: a
stalled server shows up as latency, not as fewer requests). Each request opens its own
connection and closes it after the answer: the worst case for the server, and HotGlue's
sender is not known to keep connections alive.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from hotglue_webhooks.signature import sign

MARK = b"@@ID@@"


class Templates:
    """Bodies from a templates file (one per line); ``@@ID@@`` becomes a unique id."""

    def __init__(self, path: Path, secret: str, nonce: str) -> None:
        self.parts = [line.split(MARK) for line in path.read_bytes().splitlines() if line]
        if not self.parts:
            raise SystemExit(f"no templates in {path}")
        self.secret, self.nonce = secret, nonce
        self.counter = 0

    def next(self) -> tuple[str, bytes]:
        self.counter += 1
        job_id = f"{self.nonce}-p-{self.counter}"
        body = job_id.encode().join(self.parts[(self.counter - 1) % len(self.parts)])
        return job_id, body


class Target:
    def __init__(self, url: str, secret: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self.secret = secret

    def request(self, body: bytes) -> bytes:
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"User-Agent: hotglue-webhooks-bench\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature: {sign(body, self.secret)}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def post(self, body: bytes, timeout: float) -> int:
        """Send one request on a new connection; return the status code."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), timeout)
        try:
            writer.write(self.request(body))
            status_line = await asyncio.wait_for(reader.readline(), timeout)
            status = int(status_line.split(b" ", 2)[1])
            length = 0
            while True:
                line = await asyncio.wait_for(reader.readline(), timeout)
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await asyncio.wait_for(reader.readexactly(length), timeout)
            return status
        finally:
            writer.close()


def _percentile(sorted_values: Sequence[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


class Run:
    def __init__(self, target: Target, templates: Templates, timeout: float) -> None:
        self.target, self.templates, self.timeout = target, templates, timeout
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.sent: dict[str, float] = {}
        self.stop = asyncio.Event()

    async def one(self, due: float, trace: bool) -> None:
        job_id, body = self.templates.next()
        if trace:
            self.sent[job_id] = time.time() - (time.perf_counter() - due)
        try:
            status = await self.target.post(body, self.timeout)
            self.statuses[str(status)] += 1
        except (OSError, asyncio.TimeoutError, ValueError, IndexError, asyncio.IncompleteReadError) as error:
            self.statuses[type(error).__name__] += 1
            return
        self.latencies.append(time.perf_counter() - due)

    async def fixed_rate(
        self, rate: float, duration: float, count: int | None, poisson: bool, trace: bool, min_gap: float
    ) -> float:
        start = time.perf_counter()
        total = count if count is not None else int(rate * duration)
        tasks: set[asyncio.Task[None]] = set()
        due = start
        for _ in range(total):
            if self.stop.is_set():
                break
            due += min_gap + (random.expovariate(rate) if poisson else 1.0 / rate)
            delay = due - time.perf_counter()
            if delay > 0:
                try:
                    await asyncio.wait_for(self.stop.wait(), delay)
                    break
                except asyncio.TimeoutError:
                    pass
            task = asyncio.create_task(self.one(due, trace))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=self.timeout * 2)
        return time.perf_counter() - start

    async def saturate(self, connections: int, duration: float, count: int | None) -> float:
        start = time.perf_counter()
        deadline = start + duration
        remaining = [count if count is not None else sys.maxsize]

        async def loop() -> None:
            while not self.stop.is_set() and remaining[0] > 0 and time.perf_counter() < deadline:
                remaining[0] -= 1
                await self.one(time.perf_counter(), False)

        await asyncio.gather(*(loop() for _ in range(connections)))
        return time.perf_counter() - start


async def _main(args: argparse.Namespace) -> dict[str, object]:
    target = Target(args.url, args.secret)
    run = Run(target, Templates(args.templates, args.secret, args.nonce), args.timeout)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, run.stop.set)
    if args.rate:
        elapsed = await run.fixed_rate(args.rate, args.duration, args.count, args.poisson, args.trace, args.min_gap)
    else:
        elapsed = await run.saturate(args.connections, args.duration, args.count)
    latencies = sorted(run.latencies)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    ok = sum(n for status, n in run.statuses.items() if status.isdigit() and 200 <= int(status) < 300)
    result: dict[str, object] = {
        "requests": sum(run.statuses.values()),
        "ok": ok,
        "statuses": dict(run.statuses),
        "seconds": elapsed,
        "rps": ok / elapsed if elapsed else 0.0,
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p90_ms": _percentile(latencies, 90) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
        "max_ms": (latencies[-1] if latencies else 0.0) * 1000,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }
    if args.trace:
        result["sent"] = run.sent
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.client", description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("--templates", type=Path, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--nonce", required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s, open loop; 0 = saturate")
    parser.add_argument("--poisson", action="store_true", help="exponential gaps instead of even ones")
    parser.add_argument("--min-gap", type=float, default=0.0, help="seconds added to every gap (sparse, idle load)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent requests when saturating")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--count", type=int, default=None, help="stop after this many requests")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--trace", action="store_true", help="report each job id's send time")
    args = parser.parse_args(argv)
    result = asyncio.run(_main(args))
    print("BENCH_JSON " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
