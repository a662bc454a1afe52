"""Slack client: post and update messages through slack_sdk's WebClient.

It formats nothing (the rules write the text and blocks); it only keeps a message within
Slack's limits as a safety net, retries a rate limit inline when the wait is short, and
turns every failure into :mod:`.errors`. Limits and error codes are from
https://docs.slack.dev/reference/methods/chat.postMessage and
https://docs.slack.dev/reference/block-kit/blocks.
"""

from __future__ import annotations

import copy
import http.client
import logging
import re
import time
import urllib.error
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError as SdkSlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest as RetryHttpRequest
from slack_sdk.http_retry.response import HttpResponse as RetryHttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

from hotglue_webhooks.clients.errors import (
    SlackApiError,
    SlackError,
    SlackRateLimited,
    SlackServerError,
    SlackTransportError,
    parse_retry_after,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "SlackClient",
    "fit_message",
    "SECTION_TEXT_LIMIT",
    "SECTION_FIELD_LIMIT",
    "HEADER_TEXT_LIMIT",
    "MESSAGE_TEXT_LIMIT",
    "MAX_BLOCKS",
    "masked_response_url",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://slack.com/api/"
REDACTED = "[redacted]"
JSON_CONTENT_TYPE = "application/json;charset=utf-8"  # what WebClient sends for json= calls

# Block Kit limits (docs.slack.dev/reference/block-kit/blocks): Slack rejects a whole
# message with ``invalid_blocks`` when one block is over, so one long traceback would lose
# the alert. chat.postMessage truncates ``text`` beyond 40,000 characters by itself.
SECTION_TEXT_LIMIT = 3000
SECTION_FIELD_LIMIT = 2000
HEADER_TEXT_LIMIT = 150
MESSAGE_TEXT_LIMIT = 40_000
MAX_BLOCKS = 50
_TRUNCATED = "… (truncated)"
# Slack ids: C… public, G… private (older), D… direct message channels.
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_FENCE = "```"


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit - len(_TRUNCATED) - len(_FENCE) - 1]
    # A cut inside a ``` code block would leave the rest of the message as code.
    if head.count(_FENCE) % 2 == 1:
        return head + _TRUNCATED + "\n" + _FENCE
    return head + _TRUNCATED


def _fit_text_object(obj: Any, limit: int) -> None:
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        obj["text"] = _truncate(obj["text"], limit)


def fit_message(text: str, blocks: Sequence[Mapping[str, Any]] | None) -> tuple[str, list[dict[str, Any]] | None]:
    """Return copies of ``text`` and ``blocks`` cut to Slack's limits; inputs are untouched.

    Section text over 3,000 characters, section fields over 2,000, header text over 150
    and fallback text over 40,000 end in "… (truncated)" (closing an open code fence);
    blocks beyond the 50th are dropped. An empty fallback text is replaced by the first
    block text (or "(no text)"): Slack shows it in notifications and slack_sdk warns
    without it.
    """
    fitted: list[dict[str, Any]] | None = None
    if blocks is not None:
        fitted = [copy.deepcopy(dict(block)) for block in blocks]
        if len(fitted) > MAX_BLOCKS:
            log.warning("slack message has %d blocks; keeping the first %d", len(fitted), MAX_BLOCKS)
            fitted = fitted[:MAX_BLOCKS]
        for block in fitted:
            kind = block.get("type")
            if kind == "section":
                _fit_text_object(block.get("text"), SECTION_TEXT_LIMIT)
                fields = block.get("fields")
                if isinstance(fields, list):
                    for field in fields:
                        _fit_text_object(field, SECTION_FIELD_LIMIT)
            elif kind == "header":
                _fit_text_object(block.get("text"), HEADER_TEXT_LIMIT)
    if not text or not text.strip():
        text = _first_block_text(fitted) or "(no text)"
    return _truncate(text, MESSAGE_TEXT_LIMIT), fitted


def _first_block_text(blocks: list[dict[str, Any]] | None) -> str | None:
    for block in blocks or []:
        obj = block.get("text")
        if isinstance(obj, dict) and isinstance(obj.get("text"), str) and obj["text"].strip():
            return str(obj["text"])
    return None


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            if isinstance(value, list):
                return str(value[0]) if value else None
            return str(value)
    return None


class _RateLimitHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler, bounded: waits via ``sleep`` and never longer than allowed.

    The stock handler always sleeps ``Retry-After`` (an int parse that fails on an HTTP
    date) with ``time.sleep``; a long wait belongs to the worker's durable retry instead.
    """

    def __init__(self, max_retry_count: int, max_inline_wait: float, sleep: Callable[[float], None]) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_inline_wait = max_inline_wait
        self.sleep = sleep

    @staticmethod
    def _wait(response: RetryHttpResponse | None) -> float:
        retry_after = parse_retry_after(_header(response.headers, "retry-after")) if response else None
        return 1.0 if retry_after is None else retry_after  # slack_sdk's default is ~1 s too

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: RetryHttpRequest,
        response: RetryHttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return (
            super()._can_retry(state=state, request=request, response=response, error=error)
            and self._wait(response) <= self.max_inline_wait
        )

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: RetryHttpRequest,
        response: RetryHttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        wait = self._wait(response)
        log.warning("slack rate limited; retry %d in %.2fs", state.current_attempt + 1, wait)
        self.sleep(wait)
        state.increment_current_attempt()


class _ConnectionHandler(ConnectionErrorRetryHandler):
    """slack_sdk's connection-error handler, waiting through ``sleep`` (testable)."""

    def __init__(self, max_retry_count: int, backoff_base: float, sleep: Callable[[float], None]) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.backoff_base = backoff_base
        self.sleep = sleep

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: RetryHttpRequest,
        response: RetryHttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        self.sleep(self.backoff_base * (2.0**state.current_attempt))
        state.increment_current_attempt()


class SlackClient:
    """Post and update Slack messages with one bot token.

    ``base_url`` is the Web API root (``https://slack.com/api/``; a missing trailing slash
    is added). ``timeout`` bounds connect and read, in seconds. A 429 is retried inline up
    to ``max_retry_count`` times (0 disables) when its ``Retry-After`` is at most
    ``max_inline_wait`` seconds; otherwise :class:`~.errors.SlackRateLimited` is raised with
    ``retry_after`` for the worker's durable retry. Connection failures are retried
    ``connection_retries`` times after ``backoff_base * 2**attempt`` seconds. 5xx answers
    are not retried inline: Slack may have posted the message, and posting again would
    duplicate it. ``sleep`` receives every wait in seconds (tests pass a recorder).
    """

    def __init__(
        self,
        token: str | None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        max_retry_count: int = 2,
        max_inline_wait: float = 5.0,
        connection_retries: int = 1,
        backoff_base: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout = timeout
        self._has_token = bool(token)
        self._channel_ids: dict[str, str] = {}
        self.web = WebClient(
            token=token or None,
            base_url=self.base_url,
            timeout=timeout,  # type: ignore[arg-type]  # annotated int; urllib takes float seconds
            retry_handlers=[
                _RateLimitHandler(max_retry_count, max_inline_wait, sleep),
                _ConnectionHandler(connection_retries, backoff_base, sleep),
            ],
        )

    def __repr__(self) -> str:
        return f"SlackClient({self.base_url!r}, token={REDACTED if self._has_token else None})"

    # --- requests as data (dry-run) --------------------------------------------------------

    def post_message_request(
        self,
        channel: str,
        text: str,
        blocks: Sequence[Mapping[str, Any]] | None = None,
        thread_ts: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Describe the exact ``chat.postMessage`` call :meth:`post_message` would make.

        Returns ``{"method": "POST", "url": "{base_url}chat.postMessage", "headers":
        {"Authorization": "[redacted]", "Content-Type": ...}, "json": body}``; the body is
        already cut to Slack's limits (:func:`fit_message`). ``metadata`` is Slack's message
        metadata (``{"event_type": str, "event_payload": dict}``,
        https://api.slack.com/metadata/using).
        """
        fitted_text, fitted_blocks = fit_message(text, blocks)
        body: dict[str, Any] = {"channel": channel, "text": fitted_text}
        if fitted_blocks:
            body["blocks"] = fitted_blocks
        if thread_ts:
            body["thread_ts"] = thread_ts
        if metadata:
            body["metadata"] = dict(metadata)
        return self._describe("chat.postMessage", body)

    def update_message_request(
        self,
        channel: str,
        ts: str,
        text: str,
        blocks: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Describe the exact ``chat.update`` call :meth:`update_message` would make.

        Same shape as :meth:`post_message_request`. ``blocks=None`` leaves the message's
        blocks out of the call; ``[]`` sends an empty list (Slack then drops the blocks).
        """
        fitted_text, fitted_blocks = fit_message(text, blocks)
        body: dict[str, Any] = {"channel": channel, "ts": ts, "text": fitted_text}
        if fitted_blocks is not None:
            body["blocks"] = fitted_blocks
        return self._describe("chat.update", body)

    def _describe(self, api_method: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": JSON_CONTENT_TYPE}
        if self._has_token:
            headers["Authorization"] = REDACTED
        return {"method": "POST", "url": self.base_url + api_method, "headers": headers, "json": body}

    # --- calls ----------------------------------------------------------------------------

    def post_message(
        self,
        channel: str,
        text: str,
        blocks: Sequence[Mapping[str, Any]] | None = None,
        thread_ts: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        """Post a message (a thread reply with ``thread_ts``); return ``{"channel", "ts"}``.

        ``channel`` is a name (``#hotglue-webhooks``) or an id; the answer's ``channel`` is
        the id, which chat.update needs. Sends exactly :meth:`post_message_request`'s body.
        Raises :class:`~.errors.SlackError`.
        """
        return self.send(self.post_message_request(channel, text, blocks, thread_ts, metadata))

    def update_message(
        self,
        channel: str,
        ts: str,
        text: str,
        blocks: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, str]:
        """Replace the text and blocks of message ``ts``; return ``{"channel", "ts"}``.

        ``channel`` must be the channel id returned by :meth:`post_message`. Sends exactly
        :meth:`update_message_request`'s body. Raises :class:`~.errors.SlackError`.
        """
        return self.send(self.update_message_request(channel, ts, text, blocks))

    # --- reads: was a message already posted? ----------------------------------------------

    def channel_id(self, channel: str) -> str:
        """Return the id of ``channel`` (a ``#name``, a bare name, or already an id).

        The conversations.* read methods take ids only. A name is looked up once through
        ``conversations.list`` (public and private channels the bot sees, paged by
        cursor; scope ``channels:read``/``groups:read``) and kept. Raises
        :class:`~.errors.SlackApiError` (``channel_not_found``) when no channel has that
        name, else :class:`~.errors.SlackError` as every call.
        """
        if _CHANNEL_ID.match(channel):
            return channel
        name = channel.lstrip("#")
        if name in self._channel_ids:
            return self._channel_ids[name]
        cursor = ""
        while True:
            params = {"types": "public_channel,private_channel", "exclude_archived": "true", "limit": "200"}
            if cursor:
                params["cursor"] = cursor
            data = self._read("conversations.list", params)
            for item in data.get("channels") or []:
                if isinstance(item, dict) and item.get("name") == name and item.get("id"):
                    self._channel_ids[name] = str(item["id"])
                    return self._channel_ids[name]
            cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                raise SlackApiError(
                    f"Slack conversations.list: no channel named #{name}", error="channel_not_found", status_code=200
                )

    def find_message(
        self, channel: str, event_type: str, payload: Mapping[str, Any], oldest: float, thread_ts: str | None = None
    ) -> dict[str, str] | None:
        """Return ``{"channel", "ts"}`` of a message posted since ``oldest`` (Unix seconds)
        whose metadata has ``event_type`` and every item of ``payload``; None if there is none.

        A top-level message is looked for in ``conversations.history``, a thread reply
        (``thread_ts``) in ``conversations.replies``, both with ``include_all_metadata``
        (https://docs.slack.dev/messaging/message-metadata), every page (cursor) from
        ``oldest`` on. ``channel`` may be a name (see :meth:`channel_id`). Raises
        :class:`~.errors.SlackError` when a read fails.
        """
        channel_id = self.channel_id(channel)
        api_method = "conversations.replies" if thread_ts else "conversations.history"
        cursor = ""
        while True:
            params = {
                "channel": channel_id, "oldest": f"{oldest:.6f}", "inclusive": "true",
                "include_all_metadata": "true", "limit": "200",
            }
            if thread_ts:
                params["ts"] = thread_ts
            if cursor:
                params["cursor"] = cursor
            data = self._read(api_method, params)
            for message in data.get("messages") or []:
                metadata = message.get("metadata") if isinstance(message, dict) else None
                if (
                    isinstance(metadata, dict)
                    and metadata.get("event_type") == event_type
                    and isinstance(metadata.get("event_payload"), dict)
                    and all(metadata["event_payload"].get(k) == v for k, v in payload.items())
                ):
                    return {"channel": channel_id, "ts": str(message.get("ts", ""))}
            cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return None

    def _read(self, api_method: str, params: Mapping[str, str]) -> dict[str, Any]:
        try:
            response = self.web.api_call(api_method, params=dict(params))  # a form POST, as slack_sdk sends reads
        except SdkSlackApiError as exc:
            raise self._error_for(api_method, exc.response) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise SlackTransportError(f"Slack {api_method}: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:
            raise SlackServerError(f"Slack {api_method} answered a body that is not valid JSON") from exc
        return response.data if isinstance(response.data, dict) else {}

    def send(self, described: Mapping[str, Any]) -> dict[str, str]:
        """Make the call a ``*_request`` method described (its ``url`` and ``json``); return
        ``{"channel", "ts"}``. Raises :class:`~.errors.SlackError`.

        For a caller that keeps the description as the record of what was sent: the
        message is fitted to Slack's limits once, not again for sending.
        """
        api_method = described["url"][len(self.base_url) :]
        try:
            response = self.web.api_call(api_method, json=described["json"])
        except SdkSlackApiError as exc:
            raise self._error_for(api_method, exc.response) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            # URLError: refused/unresolvable; OSError covers socket timeouts and resets.
            raise SlackTransportError(f"Slack {api_method}: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:
            # slack_sdk parses a body that starts with "{" itself and lets a broken one escape.
            raise SlackServerError(f"Slack {api_method} answered a body that is not valid JSON") from exc
        data = response.data if isinstance(response.data, dict) else {}
        return {"channel": str(data.get("channel", "")), "ts": str(data.get("ts", ""))}

    # --- response_url (interactivity) ---------------------------------------------------------

    def respond_request(self, response_url: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Describe the POST of ``body`` to a click's ``response_url`` (same shape as
        :meth:`post_message_request`; no token: the URL itself is the credential).

        ``body``: ``{"text", "response_type": "ephemeral", "replace_original": false}``
        (https://docs.slack.dev/interactivity/handling-user-interaction#message_responses).
        Record it only through :func:`masked_response_url`.
        """
        return {"method": "POST", "url": response_url, "headers": {"Content-Type": JSON_CONTENT_TYPE}, "json": dict(body)}

    def respond(self, described: Mapping[str, Any]) -> dict[str, str]:
        """Send what :meth:`respond_request` described, with slack_sdk's WebhookClient;
        return ``{"status": "200"}``. Raises :class:`~.errors.SlackError`: 429 and 5xx are
        transient; any other status (``expired_url``, ``used_url``, 404) is permanent."""
        client = WebhookClient(described["url"], timeout=int(max(1, self.timeout)))
        try:
            response = client.send_dict(dict(described["json"]))
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise SlackTransportError(f"Slack response_url: {type(exc).__name__}") from exc
        status = response.status_code
        if status == 429:
            retry_after = parse_retry_after(_header(response.headers or {}, "retry-after"))
            raise SlackRateLimited("Slack response_url rate limited (HTTP 429)", status_code=status, retry_after=retry_after)
        if status >= 500:
            raise SlackServerError(f"Slack response_url failed: HTTP {status}", status_code=status)
        if status != 200:
            code = (response.body or "").strip()[:100] or f"http_{status}"
            raise SlackApiError(f"Slack response_url failed: {code} (HTTP {status})", error=code, status_code=status)
        return {"status": str(status)}

    @staticmethod
    def _error_for(api_method: str, response: SlackResponse) -> SlackError:
        status = response.status_code
        headers = response.headers if isinstance(response.headers, Mapping) else {}
        retry_after = parse_retry_after(_header(headers, "retry-after"))
        data = response.data if isinstance(response.data, dict) else {}
        error = str(data.get("error") or "")
        # slack_sdk turns a body it cannot parse into ok:false with this prose as "error".
        if error.startswith("Received a response in a non-JSON format"):
            error = ""
        if status == 429:
            return SlackRateLimited(
                f"Slack {api_method} rate limited (HTTP 429)", status_code=status, retry_after=retry_after
            )
        if status >= 500:
            return SlackServerError(
                f"Slack {api_method} failed: HTTP {status}", status_code=status, retry_after=retry_after
            )
        if status == 200 and not error:
            return SlackServerError(
                f"Slack {api_method} answered HTTP 200 with a body that is not JSON", status_code=status
            )
        code = error or f"http_{status}"
        return SlackApiError(
            f"Slack {api_method} failed: {code} (HTTP {status})",
            error=code,
            status_code=status,
            retry_after=retry_after,
        )


def masked_response_url(url: str) -> str:
    """Return a ``response_url`` fit to store or show: scheme, host and first path segment,
    the rest (the capability) ``[redacted]`` (``https://hooks.slack.com/actions/[redacted]``)."""
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    first = path.split("/", 1)[0]
    return f"{scheme}://{host}/{first + '/' if first else ''}{REDACTED}"
