"""Fake HotGlue and Slack servers over real HTTP, for tests and for trying the receiver by hand.

Each fake is a werkzeug server on 127.0.0.1 in a background thread (port 0 picks a free
port) that records every request exactly and can be told to fail on cue. Shipped in the
package like warehouse's console email sender; it must not import the rest of the receiver.

    with FakeHotGlue(api_key="k") as hotglue, FakeSlack(token="xoxb-t") as slack:
        hotglue.fail_next(1, 429, headers={"Retry-After": "5"})   # then one 429
        slack.outage(60, status=503)                              # 503 for the next 60 s
        ... point the receiver at hotglue.url and slack.url ...
        assert hotglue.requests[0].raw_path == "/env/flow/acme_2/jobs/schedule"

By hand: ``python -m hotglue_webhooks.fakes --hotglue-port 8101 --slack-port 8102``.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Self
from urllib.parse import quote

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

__all__ = [
    "CannedResponse",
    "FakeServer",
    "RecordedRequest",
    "EMPTY",
    "DEFAULT",
    "FakeHotGlue",
    "FakeSlack",
    "SlackMessage",
]

log = logging.getLogger(__name__)

#: Pass as a body to answer with no body at all (``None`` means JSON ``null``).
EMPTY = b""


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


#: A programmed answer's body when none is given: the fake picks one typical of the peer.
DEFAULT: Any = _Default()


@dataclass
class RecordedRequest:
    """One request exactly as the fake received it.

    ``path`` is percent-decoded; ``raw_path`` is as sent (``/env/flow/a%2Fb%20c/jobs``),
    without the query. ``query`` keeps the last value of each parameter, ``query_string``
    the raw text. ``headers`` has lower-case names. ``json`` is the parsed JSON body (None
    when the body is not JSON), ``form`` the parsed form fields, ``body`` the raw bytes.
    ``received_at`` is a Unix time in seconds, taken on arrival. ``status`` is the status
    answered (None while the answer is pending); ``fault`` names the programmed failure
    that answered it (``"scripted"``, ``"outage"``) or is None for the fake's own answer.
    """

    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    query_string: str
    headers: dict[str, str]
    json: Any
    form: dict[str, str]
    body: bytes
    received_at: float
    status: int | None = None
    fault: str | None = None

    def header(self, name: str) -> str | None:
        """Return a header's value by case-insensitive name, or None."""
        return self.headers.get(name.lower())

    @property
    def route(self) -> str:
        """``"METHOD /raw/path"``: what ``match`` patterns are matched against."""
        return f"{self.method} {self.raw_path}"


@dataclass
class CannedResponse:
    """A programmed answer: ``status`` with ``body`` and ``headers`` after ``delay`` seconds.

    ``status=None`` means "wait ``delay`` seconds, then answer normally" (a slow peer; a
    delay beyond the client's timeout is a timeout). ``body`` is JSON-encoded (None gives
    ``null``) unless it is bytes (sent as is; :data:`EMPTY` for no body) or str (sent as
    text); left as :data:`DEFAULT` the fake picks a body typical of the peer for that
    status. ``match`` limits it to requests whose ``"METHOD /raw/path"`` matches the
    :mod:`fnmatch` pattern (e.g. ``"PUT */jobs/schedule"``, ``"*chat.postMessage"``);
    None matches every request.
    """

    status: int | None = 503
    body: Any = DEFAULT
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    match: str | None = None

    def matches(self, request: RecordedRequest) -> bool:
        return self.match is None or fnmatch.fnmatchcase(request.route, self.match)


@dataclass
class _Outage:
    until: float
    response: CannedResponse


class _QuietHandler(WSGIRequestHandler):
    # HTTP/1.0: one request per connection, so no idle keep-alive connection holds a
    # handler thread (and its socket) open when the fake stops.
    protocol_version = "HTTP/1.0"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the fakes record requests themselves; werkzeug's access log is noise here

    def log(self, type: str, message: str, *args: Any) -> None:
        log.debug("fake server %s: " + message.rstrip(), type, *args)


class FakeServer:
    """Base of the fakes: a threaded HTTP server that records and can be told to fail.

    Subclasses implement :meth:`handle`. Programmable failures, checked in this order for
    every request:

    - :meth:`enqueue` / :meth:`fail_next`: one-shot answers, first matching one wins;
    - :meth:`outage`: every matching request until a time gets the same answer.

    ``on_request`` is called (in the server thread) with each :class:`RecordedRequest`
    once it has been answered. ``host``/``port`` default to 127.0.0.1 and a free port.
    """

    peer = "fake"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        on_request: Callable[[RecordedRequest], None] | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.on_request = on_request
        self._lock = threading.RLock()
        self._arrived = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._script: list[CannedResponse] = []
        self._outages: list[_Outage] = []
        self._stopping = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving in a background thread; return self. Idempotent."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = make_server(self.host, self._requested_port, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self._server = server
        # A short poll interval keeps stop() fast (serve_forever's default is 0.5 s).
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=f"fake-{self.peer}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release delayed answers and close the socket. Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a programmed delay
        server.shutdown()
        if thread is not None:
            thread.join(timeout=5)
        server.server_close()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port (the server must be started)."""
        if self._server is None:
            raise RuntimeError(f"fake {self.peer} is not started")
        return int(self._server.port)

    @property
    def root_url(self) -> str:
        """``http://host:port`` without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The base URL a client is configured with."""
        return self.root_url

    # --- what was received ----------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a snapshot)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, pattern: str) -> list[RecordedRequest]:
        """Requests whose ``"METHOD /raw/path"`` matches an :mod:`fnmatch` pattern."""
        return [r for r in self.requests if fnmatch.fnmatchcase(r.route, pattern)]

    def clear(self) -> None:
        """Forget the recorded requests (state and programmed failures stay)."""
        with self._lock:
            self._requests.clear()

    def wait_for(self, count: int, *, match: str | None = None, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until ``count`` requests (matching ``match``) have arrived; return them.

        Raises TimeoutError after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout

        def matching() -> list[RecordedRequest]:
            return [r for r in self._requests if match is None or fnmatch.fnmatchcase(r.route, match)]

        with self._arrived:
            while len(found := matching()) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fake {self.peer}: {len(found)} of {count} requests after {timeout}s")
                self._arrived.wait(remaining)
            return found

    # --- programmable failures ------------------------------------------------------------

    def enqueue(self, *responses: CannedResponse) -> None:
        """Queue one-shot answers; each is used by the first later request it matches."""
        with self._lock:
            self._script.extend(responses)

    def fail_next(
        self,
        n: int = 1,
        status: int | None = 503,
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = DEFAULT,
        delay: float = 0.0,
        match: str | None = None,
    ) -> None:
        """Answer the next ``n`` (matching) requests with ``status`` after ``delay`` seconds.

        E.g. ``fail_next(2, 429, headers={"Retry-After": "5"})``. See :class:`CannedResponse`.
        """
        self.enqueue(*(CannedResponse(status, body, dict(headers or {}), delay, match) for _ in range(n)))

    def outage(
        self,
        seconds: float | None = None,
        *,
        until: float | None = None,
        status: int | None = 503,
        headers: Mapping[str, str] | None = None,
        body: Any = DEFAULT,
        delay: float = 0.0,
        match: str | None = None,
    ) -> None:
        """Answer every (matching) request with ``status`` for ``seconds``, or until ``until``.

        ``until`` is a Unix time in seconds. With ``status=None`` and a ``delay`` the peer
        is slow instead of failing (a timeout when ``delay`` exceeds the client's).
        One-shot answers from :meth:`fail_next` take precedence while they last.
        """
        if seconds is not None and until is None:
            end = time.time() + seconds
        elif until is not None and seconds is None:
            end = float(until)
        else:
            raise ValueError("give exactly one of seconds or until")
        with self._lock:
            self._outages.append(_Outage(end, CannedResponse(status, body, dict(headers or {}), delay, match)))

    def end_outage(self) -> None:
        """End every outage now."""
        with self._lock:
            self._outages.clear()

    def reset_faults(self) -> None:
        """Drop all queued answers and outages."""
        with self._lock:
            self._script.clear()
            self._outages.clear()

    # --- for subclasses -------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> tuple[int, Any, Mapping[str, str]]:
        """Answer a request normally: ``(status, body, headers)``; called under the lock."""
        raise NotImplementedError

    def error_body(self, status: int) -> Any:
        """The body a programmed ``status`` gets when none was given."""
        return {"message": _phrase(status)}

    # --- plumbing -------------------------------------------------------------------------

    def _record(self, request: Request) -> RecordedRequest:
        raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
        if raw_uri:
            # The WSGI environ carries the request target as latin-1; undo that.
            raw_path = raw_uri.encode("latin-1").decode("utf-8", "replace").split("?", 1)[0]
        else:
            raw_path = quote(request.path)
        raw_body = request.get_data(cache=True)
        parsed_json: Any = None
        if raw_body:
            try:
                parsed_json = json.loads(raw_body)
            except ValueError:
                parsed_json = None
        form = {k: request.form[k] for k in request.form} if request.mimetype.endswith("form-urlencoded") else {}
        return RecordedRequest(
            method=request.method,
            path=request.path,
            raw_path=raw_path,
            query={k: v for k, v in request.args.items(multi=True)},
            query_string=request.query_string.decode("latin-1"),
            headers={k.lower(): v for k, v in request.headers.items()},
            json=parsed_json,
            form=form,
            body=raw_body,
            received_at=time.time(),
        )

    def _fault_for(self, recorded: RecordedRequest) -> tuple[str, CannedResponse] | None:
        with self._lock:
            for i, canned in enumerate(self._script):
                if canned.matches(recorded):
                    del self._script[i]
                    return "scripted", canned
            now = time.time()
            self._outages = [o for o in self._outages if o.until > now]
            for outage in self._outages:
                if outage.response.matches(recorded):
                    return "outage", outage.response
        return None

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        recorded = self._record(request)
        with self._arrived:
            self._requests.append(recorded)
            self._arrived.notify_all()
        try:
            status, body, headers = self._answer(recorded)
        except Exception:
            log.exception("fake %s failed on %s", self.peer, recorded.route)
            status, body, headers = 500, {"message": "fake server error"}, {}
        recorded.status = status
        response = _response(status, body, headers)
        if self.on_request is not None:
            try:
                self.on_request(recorded)
            except Exception:
                log.exception("fake %s: on_request hook failed", self.peer)
        return response(environ, start_response)

    def _answer(self, recorded: RecordedRequest) -> tuple[int, Any, Mapping[str, str]]:
        fault = self._fault_for(recorded)
        if fault is not None:
            kind, canned = fault
            if canned.delay > 0:
                self._stopping.wait(canned.delay)
            if canned.status is not None:
                recorded.fault = kind
                body = self.error_body(canned.status) if canned.body is DEFAULT else canned.body
                return canned.status, body, {k: str(v) for k, v in canned.headers.items()}
        with self._lock:
            return self.handle(recorded)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _response(status: int, body: Any, headers: Mapping[str, str]) -> Response:
    if isinstance(body, bytes):
        data, mimetype = body, "application/octet-stream" if body else None
    elif isinstance(body, str):
        data, mimetype = body.encode("utf-8"), "text/plain"
    else:
        data, mimetype = json.dumps(body).encode("utf-8"), "application/json"
    response = Response(data, status=status, mimetype=mimetype)
    if mimetype is None:
        response.headers.pop("Content-Type", None)
    for name, value in headers.items():
        response.headers[name] = value
    return response


# Imported last: the fakes subclass FakeServer above.
from hotglue_webhooks.fakes.hotglue import FakeHotGlue  # noqa: E402
from hotglue_webhooks.fakes.slack import FakeSlack, SlackMessage  # noqa: E402
