"""The errors the HotGlue and Slack clients raise, in one tree.

Every failure of a peer call surfaces as exactly one of these (httpx style: catch the
base class you care about, read ``transient`` and ``retry_after`` to decide)::

    PeerError                      status_code, retry_after (s), summary, transient
    ├── HotGlueError
    │   ├── HotGlueAuthError       401 / 403                       permanent
    │   ├── HotGlueNotFound        404                             permanent
    │   ├── HotGlueRateLimited     429 / 423 (+ Retry-After)       transient
    │   ├── HotGlueServerError     5xx, or an unreadable 2xx body  transient
    │   │   └── UnexpectedShape    a 2xx JSON answer of the wrong shape  permanent
    │   ├── HotGlueBadRequest      any other 4xx (and 3xx)         permanent
    │   └── HotGlueTransportError  timeout, connection refused...  transient
    └── SlackError
        ├── SlackRateLimited       HTTP 429 (+ Retry-After)        transient
        ├── SlackServerError       HTTP 5xx, or an unreadable body transient
        ├── SlackApiError          ``ok: false`` (``.error`` code) permanent, except
        │                          ``ratelimited``, ``internal_error``, ``fatal_error``,
        │                          ``service_unavailable``, ``request_timeout``
        └── SlackTransportError    timeout, connection refused...  transient

The worker schedules a durable retry for a ``transient`` error, no earlier than
``retry_after`` seconds when that is set, and parks a permanent one. ``summary`` is
short and safe to store or show: it never holds an API key, a token or a secret value.
"""

from __future__ import annotations

import email.utils
import math
import time
from datetime import timezone

__all__ = [
    "PeerError",
    "HotGlueError",
    "HotGlueAuthError",
    "HotGlueNotFound",
    "HotGlueRateLimited",
    "HotGlueServerError",
    "HotGlueBadRequest",
    "HotGlueTransportError",
    "UnexpectedShape",
    "SlackError",
    "SlackRateLimited",
    "SlackServerError",
    "SlackApiError",
    "SlackTransportError",
    "TRANSIENT_SLACK_ERRORS",
    "parse_retry_after",
]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks us to wait, or None.

    Accepts both forms of RFC 9110 §10.2.3: delay seconds (``"5"``, also ``"1.5"``) and an
    HTTP date (``"Wed, 21 Oct 2015 07:28:00 GMT"``, measured from ``now``, a Unix time in
    seconds defaulting to the current time). A date in the past gives 0.0; an absent or
    unreadable value gives None.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


class PeerError(Exception):
    """A call to HotGlue or Slack failed.

    ``status_code`` is the HTTP status (None when no response arrived), ``retry_after``
    the seconds the peer asked us to wait (None when it did not say), ``summary`` a short
    redacted description, ``transient`` whether the same call may succeed later.
    """

    #: Default for the class; an instance may override it (see :class:`SlackApiError`).
    transient: bool = False

    def __init__(
        self,
        summary: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(summary)
        self.summary = summary
        self.status_code = status_code
        self.retry_after = retry_after
        if transient is not None:
            self.transient = transient

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments defeat Exception's default pickling (``cls(*args)``).
        return (_restore, (type(self), self.summary, dict(self.__dict__)))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.summary!r}, status_code={self.status_code!r}, "
            f"retry_after={self.retry_after!r}, transient={self.transient!r})"
        )


def _restore(cls: type[PeerError], summary: str, state: dict[str, object]) -> PeerError:
    error = cls.__new__(cls)
    Exception.__init__(error, summary)
    error.__dict__.update(state)
    return error


# --- HotGlue (https://docs.hotglue.com/api-reference; REFERENCE.md §4) -------------------


class HotGlueError(PeerError):
    """A HotGlue REST API call failed."""


class HotGlueAuthError(HotGlueError):
    """HotGlue refused the API key (401) or its scope (403)."""


class HotGlueNotFound(HotGlueError):
    """HotGlue answered 404: unknown environment, flow, tenant or resource."""


class HotGlueRateLimited(HotGlueError):
    """HotGlue answered 429 or 423; HotGlue's own SDK retries both with back-off."""

    transient = True


class HotGlueServerError(HotGlueError):
    """HotGlue answered 5xx, or a success whose body is not JSON (e.g. a proxy's HTML)."""

    transient = True


class UnexpectedShape(HotGlueServerError):
    """HotGlue answered 2xx with valid JSON of another shape than documented (e.g. an
    object where REFERENCE.md §7 says an array). Asking again gives the same answer."""

    transient = False


class HotGlueBadRequest(HotGlueError):
    """HotGlue rejected the request (a 4xx other than 401/403/404/423/429, or a 3xx)."""


class HotGlueTransportError(HotGlueError):
    """No HTTP answer from HotGlue: connect/read timeout, refused or dropped connection."""

    transient = True


# --- Slack (https://docs.slack.dev/reference/methods/chat.postMessage) ---------------------

#: ``ok: false`` error codes that Slack documents as temporary conditions.
TRANSIENT_SLACK_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackError(PeerError):
    """A Slack Web API call failed."""


class SlackRateLimited(SlackError):
    """Slack answered HTTP 429; ``retry_after`` comes from its Retry-After header."""

    transient = True


class SlackServerError(SlackError):
    """Slack answered HTTP 5xx, or a body that is not JSON (e.g. a proxy's error page)."""

    transient = True


class SlackApiError(SlackError):
    """Slack answered ``ok: false``; ``error`` holds its error code (e.g. ``invalid_auth``).

    Permanent unless the code is in :data:`TRANSIENT_SLACK_ERRORS`.
    """

    def __init__(
        self,
        summary: str,
        *,
        error: str,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            summary,
            status_code=status_code,
            retry_after=retry_after,
            transient=error in TRANSIENT_SLACK_ERRORS,
        )
        self.error = error


class SlackTransportError(SlackError):
    """No HTTP answer from Slack: timeout, refused or dropped connection."""

    transient = True
