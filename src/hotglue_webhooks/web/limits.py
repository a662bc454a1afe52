"""A short-lived, per-client limit on wrong admin tokens (the login form, the API's bearer).

After :data:`MAX_FAILURES` wrong tokens from one client (``request.remote_addr``: the
proxy's client address when ``HGW_PROXY_FIX`` is set) within :data:`WINDOW_SECONDS`, that
client's next tries answer 429 with ``Retry-After`` until the oldest of those failures is
older than the window; the token is not even compared meanwhile. Only wrong tokens count:
a client that sends the right one is never limited, and other clients are not affected.

The counts live in each web process's memory (gunicorn runs ``HGW_WEB_WORKERS`` of them,
so a client can make up to that many times :data:`MAX_FAILURES` tries a window). That is
enough to turn guessing a 32-character token from hopeless into more hopeless, with no
shared store to run; Flask-Limiter would need Redis or Memcached to share its counts.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from flask import Flask, current_app

MAX_FAILURES = 5
"""Wrong tokens one client may send within :data:`WINDOW_SECONDS` before it gets 429."""
WINDOW_SECONDS = 60.0
MAX_CLIENTS = 10_000
"""Clients remembered at once; the least recently failing are forgotten first (bounded memory)."""


class FailureLimiter:
    """Count each client's wrong tokens over a sliding window (seconds, ``clock``'s)."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int | None:
        """Return the whole seconds ``client`` must wait before its next try, or None."""
        with self._lock:
            failures = self._recent(client)
            if failures is None or len(failures) < self.max_failures:
                return None
            return max(1, math.ceil(failures[0] + self.window_seconds - self.clock()))

    def record_failure(self, client: str) -> None:
        """Count one wrong token from ``client``."""
        with self._lock:
            failures = self._recent(client)
            if failures is None:
                failures = self._failures[client] = deque(maxlen=self.max_failures)
                while len(self._failures) > MAX_CLIENTS:
                    self._failures.popitem(last=False)
            failures.append(self.clock())
            self._failures.move_to_end(client)

    def _recent(self, client: str) -> deque[float] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        horizon = self.clock() - self.window_seconds
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures


def client_of(remote_addr: str | None) -> str:
    """Return the key a request's client is counted under."""
    return remote_addr or "unknown"


_EXTENSION = "hotglue_webhooks.token_limiter"


def init_app(app: Flask, limiter: FailureLimiter | None = None) -> None:
    """Give ``app`` its wrong-token limiter (one per process)."""
    app.extensions[_EXTENSION] = limiter or FailureLimiter()


def token_limiter() -> FailureLimiter:
    """Return the current app's wrong-token limiter."""
    limiter: FailureLimiter = current_app.extensions[_EXTENSION]
    return limiter
