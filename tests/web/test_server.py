"""``hotglue-webhooks web`` under gunicorn, over real sockets: slow and stalled clients.

These run the real server (a subprocess), because what they check happens in gunicorn's
worker before and after the application: reading headers, closing connections.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotglue_webhooks.signature import HEADER, sign
from conftest import SECRET, payload

THREADS = 4


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[int]:
    """One gunicorn worker process with THREADS threads on SQLite; yields its port."""
    port = _free_port()
    env = dict(
        os.environ,
        HGW_DATABASE_URL=f"sqlite:///{tmp_path / 'server.db'}",
        HGW_WEBHOOK_SECRET=SECRET,
        HGW_BIND=f"127.0.0.1:{port}",
        HGW_WEB_WORKERS="1",
        HGW_WEB_THREADS=str(THREADS),
        HGW_BODY_TIMEOUT_SECONDS="1",
    )
    subprocess.run([sys.executable, "-m", "hotglue_webhooks", "db", "upgrade"], env=env, check=True, capture_output=True)
    log = (tmp_path / "web.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "hotglue_webhooks", "web"], env=env, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError((tmp_path / "web.log").read_text()) from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _post_webhook(port: int, timeout: float) -> int:
    body = json.dumps(dict(payload("job_created__scheduled"), s3_root=f"server-test/{time.time_ns()}")).encode()
    head = (
        f"POST /webhooks/hotglue HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"{HEADER}: {sign(body, SECRET)}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode() + body)
        return int(sock.recv(4096).split(b" ", 2)[1])


def test_a_body_that_never_arrives_gets_408(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(b"POST /webhooks/hotglue HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        assert sock.recv(4096).startswith(b"HTTP/1.1 408 ")


def test_clients_that_keep_their_end_open_after_a_refusal_do_not_stop_the_server(server: int) -> None:
    # Each is refused (408) and then neither sends nor closes. gunicorn lingers up to 2 s
    # closing each such connection; on the worker's accepting thread that stopped every
    # other request for 2 s per client (here 3 x 2 s).
    held: list[socket.socket] = []
    for _ in range(THREADS - 1):
        sock = socket.create_connection(("127.0.0.1", server), timeout=10)
        sock.sendall(b"POST /webhooks/hotglue HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        held.append(sock)
    try:
        for sock in held:
            assert sock.recv(4096).startswith(b"HTTP/1.1 408 ")
        assert _post_webhook(server, timeout=3) == 202
    finally:
        for sock in held:
            sock.close()


def test_clients_trickling_their_headers_do_not_keep_webhooks_out(server: int) -> None:
    stop = threading.Event()

    def trickle() -> None:
        with socket.create_connection(("127.0.0.1", server), timeout=30) as sock:
            for byte in b"POST /webhooks/hotglue HTTP/1.1\r\nHost: x\r\nX-Slow: ":
                sock.sendall(bytes([byte]))
                if stop.wait(0.05):
                    return
            while not stop.wait(0.2):
                sock.sendall(b"a")

    slow = [threading.Thread(target=trickle, daemon=True) for _ in range(THREADS - 1)]
    for thread in slow:
        thread.start()
    try:
        time.sleep(1.0)  # every slow client is connected and holds a thread
        assert all(thread.is_alive() for thread in slow)
        assert [_post_webhook(server, timeout=10) for _ in range(3)] == [202, 202, 202]
    finally:
        stop.set()
        for thread in slow:
            thread.join(timeout=10)


def test_start_up_prints_no_keepalive_warning(server: int, tmp_path: Path) -> None:
    log = (tmp_path / "web.log").read_text()
    assert "Listening at: http://127.0.0.1:" in log
    assert "No keepalived connections can be handled" not in log
