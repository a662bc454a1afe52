"""Run the fake HotGlue and Slack servers by hand and print every request as it arrives.

    python -m hotglue_webhooks.fakes --hotglue-port 8101 --slack-port 8102 [--seed demo | --seed FILE]

Point the receiver at the printed URLs (``HGW_HOTGLUE_API_URL``, ``HGW_SLACK_API_URL``);
stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from hotglue_webhooks.fakes import FakeHotGlue, FakeSlack, RecordedRequest
from hotglue_webhooks.fakes.seed import SeedError, apply_seed, load_seed

_BODY_CHARS = 2000


def _printer(peer: str, out: TextIO) -> Callable[[RecordedRequest], None]:
    lock = threading.Lock()

    def show(request: RecordedRequest) -> None:
        when = time.strftime("%H:%M:%S", time.localtime(request.received_at))
        target = request.raw_path + (f"?{request.query_string}" if request.query_string else "")
        fault = f" [{request.fault}]" if request.fault else ""
        lines = [f"{when} {peer:<7} {request.method} {target} -> {request.status}{fault}"]
        body: Any = request.json if request.json is not None else (request.form or None)
        if body is not None:
            text = json.dumps(body, ensure_ascii=False)
            lines.append("    " + (text if len(text) <= _BODY_CHARS else text[:_BODY_CHARS] + " …"))
        elif request.body:
            lines.append(f"    ({len(request.body)} bytes, not JSON)")
        with lock:
            print("\n".join(lines), file=out, flush=True)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Start both fakes, print their URLs and each request; return 0 on Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m hotglue_webhooks.fakes", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--hotglue-port", type=int, default=0, help="fake HotGlue port (default: any free port)")
    parser.add_argument("--slack-port", type=int, default=0, help="fake Slack port (default: any free port)")
    parser.add_argument("--api-key", help="require this x-api-key on HotGlue calls")
    parser.add_argument("--slack-token", help="require this bot token on Slack calls")
    parser.add_argument(
        "--no-schedule",
        default="{}",
        choices=["404", "empty", "{}", "null", "no_expression"],
        help="how HotGlue answers a missing schedule (unconfirmed upstream; default {})",
    )
    parser.add_argument(
        "--seed",
        metavar="demo|FILE",
        help="start HotGlue with tenants: 'demo' (the sample payloads' tenants, schedules, configs, "
        "linked flows and targets) or a JSON seed file (see hotglue_webhooks/fakes/seed.py)",
    )
    args = parser.parse_args(argv)
    try:
        seed = load_seed(args.seed) if args.seed else None
    except SeedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    hotglue = FakeHotGlue(
        api_key=args.api_key,
        no_schedule=args.no_schedule,
        host=args.host,
        port=args.hotglue_port,
        on_request=_printer("hotglue", sys.stdout),
    )
    slack = FakeSlack(
        token=args.slack_token, host=args.host, port=args.slack_port, on_request=_printer("slack", sys.stdout)
    )
    seeded = apply_seed(hotglue, seed) if seed is not None else []
    with hotglue, slack:
        for line in seeded:
            print(f"seeded {line}", flush=True)
        print(f"fake HotGlue API: {hotglue.url}", flush=True)
        print(f"fake Slack API:   {slack.url}", flush=True)
        print("printing every request; Ctrl-C to stop", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
