"""Start, watch and stop the benchmark's processes; read their CPU time and memory.

Every process is started in a session of its own and stopped by its process-group id
(SIGTERM, then SIGKILL), so gunicorn's workers go with their master and nothing the
harness started outlives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS if fields else 0.0


def rss_bytes(pid: int) -> int:
    """Resident set size of one process, in bytes (0 when it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError):
        return 0


def group_pids(pgid: int) -> list[int]:
    """Every live process in process group ``pgid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and int(fields[2]) == pgid:
                pids.append(int(entry))
    return sorted(pids)


@dataclass
class Proc:
    """A started process (and its children, in its own process group)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    children_cpu: dict[int, float] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def pids(self) -> list[int]:
        return group_pids(self.pid)

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def rss(self) -> dict[int, int]:
        return {pid: rss_bytes(pid) for pid in self.pids()}

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (a worker that ignored SIGTERM) goes now.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Procs:
    """The processes of one run; :meth:`close` stops every one still running."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Proc] = []

    def start(self, name: str, argv: Sequence[str], env: dict[str, str], cwd: Path | None = None) -> Proc:
        log = self.workdir / f"{name}-{len(self.started)}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            list(argv), env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        handle.close()
        proc = Proc(name, popen, log)
        self.started.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.started:
            self.started.remove(proc)

    def close(self) -> None:
        while self.started:
            self.started.pop().stop()

    @contextlib.contextmanager
    def running(self, name: str, argv: Sequence[str], env: dict[str, str]) -> Iterator[Proc]:
        proc = self.start(name, argv, env)
        try:
            yield proc
        finally:
            self.stop(proc)


@dataclass(frozen=True)
class Finished:
    """A process run to its end: output, wall and CPU seconds (its own, via wait4)."""

    returncode: int
    stdout: str
    wall_seconds: float
    cpu_seconds: float


class Measured:
    """A process whose own CPU time is read when it ends (``os.wait4``)."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], workdir: Path, name: str) -> None:
        self.out = workdir / f"{name}.out"
        with self.out.open("wb") as handle:
            self.started = time.monotonic()
            self.popen = subprocess.Popen(
                list(argv), env=env, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def interrupt(self) -> None:
        """Ask it to stop early (SIGINT): the load client then reports what it measured."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.popen.pid, signal.SIGINT)

    def finish(self, timeout: float) -> Finished:
        """Wait for the end (killing the process group after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.popen.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(self.popen.pid, 0)
                break
            time.sleep(0.02)
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - self.started
        return Finished(
            self.popen.returncode, self.out.read_text(errors="replace"), wall, usage.ru_utime + usage.ru_stime
        )


def run_measured(argv: Sequence[str], env: dict[str, str], timeout: float, workdir: Path, name: str) -> Finished:
    """Run a process to its end (killed after ``timeout`` s); return its output and CPU time."""
    return Measured(argv, env, workdir, name).finish(timeout)
