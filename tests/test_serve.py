"""``hotglue-webhooks serve`` as real processes: no orphans after ``kill -9``, a crashed
worker started again with the reason said, a port in use refused in one line at once.

Linux only (the parent-death signal is Linux's prctl). Each test runs serve on its own
SQLite file and a free port; every process started is killed at the end.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")

# Generous bounds for a busy 2-core machine: how long to wait, never asserted as a speed.
DEADLINE_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], object], what: str, seconds: float = DEADLINE_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(0.1)


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Serve:
    """One ``serve`` process; its stderr collected line by line."""

    def __init__(self, tmp_path: Path, port: int, workers: int | None = 1) -> None:
        self.port = port
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HGW_")},
            "HGW_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "HGW_BIND": f"127.0.0.1:{port}",
            "HGW_WEB_WORKERS": "1",
            "HGW_WEB_THREADS": "4",
            "HGW_LOG_FORMAT": "console",
        }
        if workers is not None:  # None: serve's default
            env["HGW_SERVE_WORKERS"] = str(workers)
        self.database = tmp_path / "serve.db"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hotglue_webhooks", "serve"], env=env, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.every_pid: set[int] = set()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def said(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]

    def child(self, name: str) -> int | None:
        """The pid of serve's child running ``hotglue_webhooks <name>``."""
        found = self.children_running(name)
        return found[0] if found else None

    def children_running(self, name: str) -> list[int]:
        """The pids of serve's children running ``hotglue_webhooks <name>``."""
        return sorted(pid for pid in children(self.process.pid) if f"hotglue_webhooks {name}" in command_of(pid))

    def tree(self) -> set[int]:
        """serve's descendants now (and remembered, to be cleaned up)."""
        found: set[int] = set()
        todo = [self.process.pid]
        while todo:
            for pid in children(todo.pop()):
                found.add(pid)
                todo.append(pid)
        self.every_pid |= found
        return found

    def ready(self) -> None:
        wait_until(lambda: self.child("web") and self.child("worker") and len(self.tree()) >= 3, "web and worker up")

    def close(self) -> None:
        for pid in {self.process.pid, *self.tree(), *self.every_pid}:
            if alive(pid) and "hotglue_webhooks" in command_of(pid):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=DEADLINE_SECONDS)
        self._reader.join(timeout=DEADLINE_SECONDS)
        assert self.process.stderr is not None
        self.process.stderr.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    made = Serve(tmp_path, free_port())
    yield made
    made.close()


def test_listening_is_said_once_the_port_is_bound(serve: Serve) -> None:
    wait_until(lambda: serve.said("listening on"), "the listening line")
    # Said only once bound: a connection is taken (queued by the kernel) at that moment.
    with socket.create_connection(("127.0.0.1", serve.port), timeout=5):
        pass
    assert serve.said("listening on") == [f"hotglue-webhooks: listening on http://127.0.0.1:{serve.port}/webhooks/hotglue"]
    serve.ready()
    import httpx

    assert httpx.get(f"http://127.0.0.1:{serve.port}/healthz", timeout=10).status_code == 200


def test_kill_9_of_serve_leaves_no_child_and_frees_the_port(serve: Serve) -> None:
    serve.ready()
    descendants = serve.tree()
    assert len(descendants) >= 3  # gunicorn's master and its worker, the worker

    serve.process.kill()
    serve.process.wait(timeout=DEADLINE_SECONDS)

    wait_until(lambda: not any(alive(pid) for pid in descendants), f"every child of serve gone: {descendants}")
    wait_until(lambda: port_free(serve.port), f"port {serve.port} free")


def test_a_crashed_worker_is_started_again_and_serve_says_why(serve: Serve) -> None:
    serve.ready()
    first = serve.child("worker")
    assert first is not None
    web = serve.child("web")

    os.kill(first, signal.SIGKILL)

    wait_until(lambda: serve.child("worker") not in (None, first), "a new worker")
    [line] = serve.said(f"worker (pid {first})")
    assert line.startswith(f"hotglue-webhooks serve: worker (pid {first}) was killed by SIGKILL after ")
    assert line.endswith("; starting it again in 1 s")
    assert serve.child("web") == web and serve.process.poll() is None  # nothing else stopped

    # Again at once: the back-off grows.
    second = serve.child("worker")
    assert second is not None
    os.kill(second, signal.SIGKILL)
    wait_until(lambda: serve.child("worker") not in (None, second), "a third worker")
    [again] = serve.said(f"worker (pid {second})")
    assert again.endswith("; starting it again in 2 s")


def test_a_worker_that_exits_with_an_error_is_named_with_its_last_line(serve: Serve) -> None:
    serve.ready()
    first = serve.child("worker")
    assert first is not None
    # The database file goes away: the next worker refuses to start on a missing one
    # (exit 1, one line), and serve quotes that line.
    serve.database.unlink()
    os.kill(first, signal.SIGKILL)

    wait_until(lambda: serve.said("worker (pid") and serve.said("exited with code 1"), "the exit line")
    [line] = serve.said("exited with code 1")
    assert line.startswith("hotglue-webhooks serve: worker (pid ")
    assert f"; its last line: Error: no database at {serve.database}" in line
    assert line.endswith("; starting it again in 2 s")
    assert serve.process.poll() is None


def test_a_crashed_web_server_is_started_again_on_the_same_socket(serve: Serve) -> None:
    import httpx

    serve.ready()
    first = serve.child("web")
    assert first is not None
    os.kill(first, signal.SIGKILL)

    wait_until(lambda: serve.child("web") not in (None, first), "a new web server")
    [line] = serve.said(f"web server (pid {first}) was killed by SIGKILL")
    assert line.endswith("; starting it again in 1 s")

    def answers() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{serve.port}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, "the new web server answering on the port serve holds")


def test_sigterm_stops_serve_and_every_child(serve: Serve) -> None:
    serve.ready()
    descendants = serve.tree()
    serve.process.send_signal(signal.SIGTERM)
    assert serve.process.wait(timeout=DEADLINE_SECONDS) == 0
    assert serve.said("hotglue-webhooks serve: stopping (SIGTERM)")
    wait_until(lambda: not any(alive(pid) for pid in descendants), "every child gone")
    wait_until(lambda: port_free(serve.port), "port free")


def test_a_port_in_use_is_one_line_and_exit_1_before_anything_else(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HGW_")},
            "HGW_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "HGW_BIND": f"127.0.0.1:{port}",
        }
        result = subprocess.run(
            [sys.executable, "-m", "hotglue_webhooks", "serve"], env=env, capture_output=True, text=True,
            timeout=DEADLINE_SECONDS,
        )
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: cannot listen on 127.0.0.1:{port}: address already in use (HGW_BIND; is another serve running?)\n"
    )
    assert not (tmp_path / "serve.db").exists()  # refused before migrating or starting anything


def test_serve_runs_two_workers_by_default_and_names_the_one_restarted(tmp_path: Path) -> None:
    """HGW_SERVE_WORKERS (default 2): two worker processes beside the web server; a
    crashed one is named by its number and started again, the other keeps running."""
    serve = Serve(tmp_path, free_port(), workers=None)
    try:
        wait_until(lambda: len(serve.children_running("worker")) == 2 and serve.child("web"), "web and two workers")
        first, other = serve.children_running("worker")
        os.kill(first, signal.SIGKILL)
        wait_until(
            lambda: len(serve.children_running("worker")) == 2 and first not in serve.children_running("worker"),
            "the killed worker started again",
        )
        [line] = serve.said(f"(pid {first}) was killed by SIGKILL")
        assert re.match(rf"hotglue-webhooks serve: worker [12] \(pid {first}\) was killed by SIGKILL after ", line)
        assert other in serve.children_running("worker")
    finally:
        serve.close()
