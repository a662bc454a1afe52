"""The production HTTP server: gunicorn, configured in code, with threaded workers.

Why ``gthread`` and not ``sync`` workers: gunicorn reads a request's line and headers
before the application sees it, and a sync worker serves one connection at a time, so a
handful of clients trickling their headers held every worker and no webhook got in
(reliability scenario 5). A gthread worker hands a connection to one of its
``HGW_WEB_THREADS`` threads only once data arrived, and keeps idle keep-alive
connections in a poller: a slow client holds one thread, not a process.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker as GunicornThreadWorker

from hotglue_webhooks.settings import Settings, load_settings

# How many connections one web process may be closing at once (see ThreadWorker).
CLOSING_THREADS = 8


class ThreadWorker(GunicornThreadWorker):  # type: ignore[misc]
    """gunicorn's ``gthread`` worker, closing finished connections off its main thread.

    gunicorn 27 closes a connection "gracefully" (RFC 9112 §9.6: half-close, then read
    until the client closes, for up to 2 s) on the worker's main thread, the one that
    accepts connections and hands them to threads. A client that keeps its end open after
    the answer (one refused for a body it never sent, say) so stopped the whole process
    for 2 s each: measured, five such clients stopped every webhook for 10 s. Here that
    linger runs on a small pool of its own. Everything else is gunicorn's.
    """

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        """Skip gunicorn's "No keepalived connections can be handled" warning, printed at
        every start because ``worker_connections`` equals ``threads`` (see
        :func:`gunicorn_options`). That is deliberate: a finished connection is closed, not
        kept alive, so a process whose threads are all held stops accepting. ``keepalive``
        still matters: it bounds how long an accepted connection may wait in the poller for
        its first bytes (gunicorn 27's gthread), so it cannot be 0 to silence the warning."""

    def init_process(self) -> None:
        self.closing = ThreadPoolExecutor(max_workers=CLOSING_THREADS, thread_name_prefix="close")
        super().init_process()

    def finish_request(self, conn: Any, fs: Any) -> None:
        close = conn.close

        def close_elsewhere(graceful: bool = False) -> None:
            if graceful:
                self.closing.submit(close, True)
            else:
                close()

        conn.close = close_elsewhere
        super().finish_request(conn, fs)


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """The gunicorn settings of ``hotglue-webhooks web`` (names as in gunicorn's docs)."""
    return {
        "bind": settings.bind,
        "workers": settings.web_workers,
        "worker_class": f"{ThreadWorker.__module__}.{ThreadWorker.__qualname__}",
        "threads": settings.web_threads,
        # A process takes no more connections than it has threads: one whose threads are
        # all held (slow clients) stops accepting, and the kernel's listen queue hands new
        # connections to the other processes.
        "worker_connections": settings.web_threads,
        "timeout": 30,
        "graceful_timeout": 20,
        # Seconds an accepted connection may wait for its first bytes; connections are not
        # kept alive after a response (worker_connections == threads, see ThreadWorker).
        "keepalive": 5,
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "accesslog": None,
        "errorlog": "-",
        # gunicorn's control socket sits at one path per user: two receivers on a host
        # would take each other's. Nothing here uses it.
        "control_socket_disable": True,
    }


def run(settings: Settings, fd: int | None = None) -> None:
    """Serve the receiver with gunicorn until stopped; each worker builds its own app.

    ``fd``: an inherited socket already bound and listening (``serve`` binds the port
    itself), given to gunicorn as ``fd://N`` instead of ``HGW_BIND``.

    The app factory is looked up in :mod:`hotglue_webhooks.app` when a worker loads, so
    ``bench/ceiling.py`` can swap it and keep every server option.
    """

    class Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in gunicorn_options(settings).items():
                self.cfg.set(key, value)
            if fd is not None:
                self.cfg.set("bind", [f"fd://{fd}"])

        def load(self) -> Any:
            from hotglue_webhooks import app

            return app.create_app(load_settings())

    Gunicorn().run()
