"""Receiver processes for the harness: start, ``kill -9``, restart, measure, clean up.

Each process runs in its own process group (``start_new_session``), so ``kill -9`` takes
gunicorn's master and its workers down together, as a crashed machine or container would.
Every process started here is registered and ended by :func:`stop_all`, which the
harness calls in ``finally`` and at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

_REGISTRY: list[Service] = []
_REGISTRY_LOCK = threading.Lock()
PAGE_KIB = 4


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_argv(*args: str) -> list[str]:
    """Return the argv that runs ``hotglue-webhooks ARGS`` from this interpreter's venv."""
    script = Path(sys.executable).parent / "hotglue-webhooks"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "hotglue_webhooks", *args]


def run_cli(env: Mapping[str, str], *args: str, timeout: float = 120) -> str:
    """Run ``hotglue-webhooks ARGS`` to completion; return stdout, raise on failure."""
    done = subprocess.run(
        cli_argv(*args), env=dict(env), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise RuntimeError(f"hotglue-webhooks {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


class Service:
    """One receiver process (``web`` or ``worker``) that can be killed and started again.

    Output (gunicorn's log, the JSON logs) goes to ``log_path``, appended across restarts.
    """

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.kill_times: list[float] = []
        self._log: IO[bytes] | None = None
        with _REGISTRY_LOCK:
            _REGISTRY.append(self)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        self._close_log()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open while the process runs
        self._log.write(f"=== chaos: start {self.name} #{self.starts + 1} at {time.time():.3f}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            cli_argv(*self.args),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.starts += 1

    def kill9(self) -> None:
        """``kill -9`` the whole process group and reap it."""
        if self.process is None:
            return
        self.kill_times.append(time.time())
        self.kills += 1
        _signal_group(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self._wait_group_gone(self.process.pid, 5)

    def stop(self, timeout: float = 15) -> None:
        """Ask the group to stop (SIGTERM), then ``kill -9`` what is left after ``timeout``."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(process.pid, signal.SIGKILL)  # stragglers of the group, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        self._wait_group_gone(process.pid, 5)
        self.process = None
        self._close_log()

    def pids(self) -> list[int]:
        """Every live process of this service's group (gunicorn master and workers)."""
        if self.process is None:
            return []
        return list(_group_pids(self.process.pid))

    def rss(self) -> tuple[int, int]:
        """Resident memory in bytes: (whole group, largest single process); 0 when stopped."""
        sizes = [_rss_bytes(pid) for pid in self.pids()]
        return sum(sizes), max(sizes, default=0)

    def max_process_rss_bytes(self) -> int:
        """Resident memory of the largest single process of the group, in bytes."""
        return self.rss()[1]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    @staticmethod
    def _wait_group_gone(pgid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(True for _ in _group_pids(pgid)):
            time.sleep(0.05)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_pids(pgid: int) -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        # After "(comm)": state ppid pgrp ...; a zombie has no memory left to count.
        if int(fields[2]) == pgid and fields[0] != b"Z":
            yield int(entry)


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE_KIB * 1024
    except (OSError, IndexError, ValueError):
        return 0


def stop_all() -> None:
    """Stop every service this process started (idempotent)."""
    with _REGISTRY_LOCK:
        services = list(_REGISTRY)
    for service in services:
        with contextlib.suppress(Exception):
            service.stop(timeout=5)


atexit.register(stop_all)


def wait_http_ok(url: str, timeout: float = 30.0) -> None:
    """Wait until ``GET url`` answers 200; raise TimeoutError after ``timeout`` seconds."""
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.rpartition(":")
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection(host, int(port), timeout=2)
        try:
            connection.request("GET", "/" + path)
            if connection.getresponse().status == 200:
                return
        except OSError as error:
            last = str(error)
        finally:
            connection.close()
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout}s ({last})")


class PostgresDatabase:
    """A throw-away PostgreSQL database made next to ``base_url``'s, dropped by :meth:`drop`."""

    def __init__(self, base_url: str) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        self.base_url = base_url
        self.name = f"hgw_chaos_{uuid.uuid4().hex[:12]}"
        admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        finally:
            admin.dispose()
        self.url = make_url(base_url).set(database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        from sqlalchemy import create_engine, text

        admin = create_engine(self.base_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        finally:
            admin.dispose()


class RssSampler:
    """Sample the memory of some services every ``interval`` seconds; keep the peaks."""

    def __init__(self, services: list[Service], interval: float = 0.2) -> None:
        self.services = services
        self.interval = interval
        self.peak_group: dict[str, int] = {}
        self.peak_process: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> None:
        for service in self.services:
            group, single = service.rss()
            self.peak_group[service.name] = max(self.peak_group.get(service.name, 0), group)
            self.peak_process[service.name] = max(self.peak_process.get(service.name, 0), single)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def peak_mib(self, prefix: str) -> float:
        """Peak memory of the largest single process among services named ``prefix*``, MiB."""
        values = [v for name, v in self.peak_process.items() if name.startswith(prefix)]
        return max(values, default=0) / (1024 * 1024)
