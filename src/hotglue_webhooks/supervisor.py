"""``serve``: one process that holds the listening socket and keeps a web server and a
worker running as its children.

- The port is bound here, before anything else: a port in use is one line and exit 1 at
  once, and "listening on" is printed only once connections can arrive (the kernel queues
  them until gunicorn accepts). The web child gets the bound socket (gunicorn's
  ``fd://N`` bind), so a restarted web server never races anyone for the port.
- Each child asks Linux to send it SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``,
  man 2 prctl), so a ``kill -9`` of ``serve`` leaves no web server or worker behind, and
  the port is free once they are gone. gunicorn's own worker processes notice their
  master is gone within a second (gunicorn's ``is_parent_alive``) and exit too.
- A child that exits while ``serve`` is not stopping is started again after a back-off
  (1 s, doubling to 30 s; back to 1 s once it ran a minute), with one line saying which
  child, its exit code (and its last line on stderr) or the signal that killed it.

Linux only for the parent-death signal (elsewhere children are not tied to serve).
Imports nothing of the receiver but settings: it starts ``hotglue-webhooks web`` and
``worker`` as processes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

# man 2 prctl: PR_SET_PDEATHSIG = 1.
PR_SET_PDEATHSIG = 1
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
# A child that ran this long before exiting starts again after the first back-off.
STABLE_SECONDS = 60.0
# How long a stopping child may take after SIGTERM before it is killed, in seconds.
STOP_TIMEOUT_SECONDS = 30.0
LISTEN_BACKLOG = 2048  # gunicorn's default


class PortInUse(OSError):
    """The address of ``HGW_BIND`` cannot be bound (in use, or not ours to bind)."""


def bind_listener(bind: str) -> socket.socket:
    """Return a listening TCP socket bound to ``bind`` (``host:port``, ``[v6]:port``).

    Raises PortInUse with a one-line reason when the address is in use or cannot be
    bound (permission, no such address).
    """
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    # As gunicorn does: a port left in TIME_WAIT by the previous serve can be bound again
    # (on Linux this never allows binding a port another socket listens on).
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, int(port)))
        listener.listen(LISTEN_BACKLOG)
    except OSError as error:
        listener.close()
        reason = "address already in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
        raise PortInUse(f"cannot listen on {bind}: {reason}") from None
    return listener


def die_with_parent() -> Callable[[], None] | None:
    """Return a ``preexec_fn`` that makes the child get SIGTERM when this process dies
    (None where Linux's prctl is not available).

    Runs in the child between fork and exec, so it may only make async-signal-safe calls
    (prctl, getppid, _exit): safe while the forking process has a single thread, which
    :class:`Supervisor` checks before every start. A parent that died before the prctl
    took effect is seen by getppid() no longer being it.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


@dataclass
class Child:
    """One supervised process: its command, the fds it inherits, and its current run."""

    name: str
    argv: list[str]
    pass_fds: tuple[int, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff: float = BACKOFF_FIRST_SECONDS
    restart_at: float | None = None
    last_line: str = ""
    _partial: bytes = field(default=b"", repr=False)


class Supervisor:
    """Run ``children`` until SIGTERM or SIGINT; restart any that exits meanwhile.

    Children's stderr passes through this process (to ``stderr``), line by line, so the
    last line of a child that died can be named. ``log`` receives serve's own lines.
    """

    def __init__(
        self,
        children: list[Child],
        *,
        log: Callable[[str], None],
        stderr: IO[bytes] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.children = children
        self.log = log
        self.stderr = stderr if stderr is not None else sys.stderr.buffer
        self.clock = clock
        self.stopping: str | None = None
        self.selector = selectors.DefaultSelector()
        self.preexec = die_with_parent()

    def run(self) -> int:
        """Start the children and supervise them; return serve's exit code (0 once stopped
        by a signal, else 1)."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for child in self.children:
            self._start(child)
        while self.stopping is None:
            self._pump(0.2)
            now = self.clock()
            for child in self.children:
                if self.stopping is not None:
                    break  # a Ctrl-C reaches the children too: their exits are no crash
                if child.process is not None and child.process.poll() is not None:
                    self._exited(child, now)
                elif child.process is None and child.restart_at is not None and now >= child.restart_at:
                    self._start(child)
        self.log(f"stopping ({self.stopping}): sending SIGTERM to the web server and the worker")
        return self._stop_children()

    def _stop(self, signum: int, _frame: Any) -> None:
        self.stopping = signal.Signals(signum).name

    def _start(self, child: Child) -> None:
        # preexec_fn is only safe in a process with one thread (subprocess docs).
        if threading.active_count() != 1:
            raise RuntimeError("serve must not run threads: it forks its children with a preexec_fn")
        child.process = subprocess.Popen(
            child.argv, stderr=subprocess.PIPE, pass_fds=child.pass_fds, preexec_fn=self.preexec
        )
        child.started_at, child.restart_at, child.last_line, child._partial = self.clock(), None, "", b""
        assert child.process.stderr is not None
        os.set_blocking(child.process.stderr.fileno(), False)
        self.selector.register(child.process.stderr, selectors.EVENT_READ, child)

    def _exited(self, child: Child, now: float) -> None:
        assert child.process is not None
        self._drain(child)
        code = child.process.returncode
        ran = now - child.started_at
        if ran >= STABLE_SECONDS:
            child.backoff = BACKOFF_FIRST_SECONDS
        why = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
        # A signal came from outside: the child's last line says nothing about it.
        last = f"; its last line: {child.last_line}" if child.last_line and code > 0 else ""
        self.log(
            f"{child.name} (pid {child.process.pid}) {why} after {ran:.0f} s{last}; "
            f"starting it again in {child.backoff:.0f} s"
        )
        child.process, child.restart_at = None, now + child.backoff
        child.backoff = min(BACKOFF_MAX_SECONDS, child.backoff * 2)

    def _pump(self, timeout: float) -> None:
        """Pass children's stderr through, remembering each one's last line."""
        for key, _ in self.selector.select(timeout):
            self._read(key.data, key.fileobj)  # type: ignore[arg-type]

    def _read(self, child: Child, stream: IO[bytes]) -> str:
        """Pass on what the child wrote: "data", "none" (nothing now) or "end" (the pipe
        closed; it is then unregistered)."""
        try:
            chunk = os.read(stream.fileno(), 65536)
        except BlockingIOError:
            return "none"
        except OSError:
            chunk = b""
        if not chunk:
            self.selector.unregister(stream)
            stream.close()
            if child._partial.strip():
                child.last_line = child._partial.decode("utf-8", "replace").strip()[:500]
            return "end"
        self.stderr.write(chunk)
        self.stderr.flush()
        lines = (child._partial + chunk).split(b"\n")
        child._partial = lines.pop()[-4096:]
        for line in reversed(lines):
            if line.strip():
                child.last_line = line.decode("utf-8", "replace").strip()[:500]
                break
        return "data"

    def _drain(self, child: Child) -> None:
        """Read an exited child's last output (for up to a second: its own children, such
        as gunicorn's workers, may hold the pipe a little longer), then let the pipe go."""
        assert child.process is not None
        stream = child.process.stderr
        if stream is None or stream.closed:
            return
        deadline = self.clock() + 1.0
        while self.clock() < deadline:
            state = self._read(child, stream)
            if state == "end":
                return
            if state == "none":
                time.sleep(0.02)
        self.selector.unregister(stream)
        stream.close()

    def _stop_children(self) -> int:
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = self.clock() + STOP_TIMEOUT_SECONDS
        code = 0
        for child in running:
            assert child.process is not None
            while child.process.poll() is None and self.clock() < deadline:
                self._pump(0.1)
            if child.process.poll() is None:
                self.log(f"{child.name} (pid {child.process.pid}) did not stop within {STOP_TIMEOUT_SECONDS:.0f} s: killed")
                child.process.kill()
                child.process.wait()
                code = 1
            self._drain(child)
        return code


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def serve_children(listener: socket.socket, workers: int = 1) -> list[Child]:
    """The web server (given ``listener``'s fd) and ``workers`` worker processes, as
    ``hotglue-webhooks`` commands of this interpreter (named "worker", or "worker 1" …)."""
    fd = listener.fileno()
    command = [sys.executable, "-m", "hotglue_webhooks"]
    names = ["worker"] if workers == 1 else [f"worker {n}" for n in range(1, workers + 1)]
    return [
        Child("web server", [*command, "web", "--fd", str(fd)], pass_fds=(fd,)),
        *(Child(name, [*command, "worker"]) for name in names),
    ]
