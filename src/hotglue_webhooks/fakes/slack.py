"""A fake of Slack's Web API (chat.postMessage, chat.update, conversations.history,
conversations.replies, conversations.list) and of interactivity's ``response_url``
(``POST /actions/...``), over real HTTP.

Answers follow https://docs.slack.dev/reference/methods/chat.postMessage,
https://docs.slack.dev/reference/methods/chat.update and the conversations.* pages: HTTP
200 with ``ok`` true or false and an error code, message ``ts`` values that increase (Unix
seconds, as Slack's are), Block Kit limits enforced (``invalid_blocks``) so that a
client's safety net is tested against a strict peer. Reads take a channel *id* (a name is
``channel_not_found``, as at Slack), ``oldest``/``latest`` (exclusive unless
``inclusive``), ``limit`` and ``cursor``; message ``metadata`` is returned only with
``include_all_metadata`` (https://docs.slack.dev/messaging/message-metadata).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hotglue_webhooks.fakes import FakeServer, RecordedRequest

__all__ = ["FakeSlack", "SlackMessage"]

_Answer = tuple[int, Any, Mapping[str, str]]
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
# Block Kit limits (docs.slack.dev/reference/block-kit/blocks).
_MAX_BLOCKS = 50
_SECTION_TEXT = 3000
_SECTION_FIELD = 2000
_HEADER_TEXT = 150


@dataclass
class SlackMessage:
    """A message as the fake Slack holds it.

    ``channel`` is what the poster named (``#hotglue-webhooks``), ``channel_id`` what Slack
    answered (``C…``). ``text``/``blocks`` are the current content; ``history`` holds the
    earlier ``(text, blocks)`` versions replaced by chat.update, oldest first.
    """

    channel: str
    channel_id: str
    ts: str
    text: str | None
    blocks: list[Any] | None
    thread_ts: str | None = None
    history: list[tuple[str | None, list[Any] | None]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    """Message metadata as posted (the receiver puts its action's idempotency key there)."""


def _ok(body: Mapping[str, Any]) -> _Answer:
    return 200, {"ok": True, **body}, {}


def _fail(error: str) -> _Answer:
    # Slack reports API errors with HTTP 200 and ok:false.
    return 200, {"ok": False, "error": error}, {}


class FakeSlack(FakeServer):
    """Fake Slack Web API. ``url`` is the API base URL (``http://127.0.0.1:PORT/api/``).

    ``token`` set: requests must carry ``Authorization: Bearer <token>`` (or a ``token``
    form field); none gives ``not_authed``, another gives ``invalid_auth``. Both JSON and
    form bodies are read (form ``blocks`` is a JSON string, as Slack takes it). ``ts``
    ``channels`` are the workspace's channel names (conversations.list lists them and every
    channel posted to by name). ``ts`` values are the clock's Unix time (each at least 0.0001 s after the one before), or,
    with ``first_ts``, count up from it by 0.0001 s: ``1700000000.000100``, ``…000200``.
    """

    peer = "slack"

    def __init__(
        self,
        *,
        token: str | None = None,
        first_ts: int | None = None,
        channels: tuple[str, ...] = ("#hotglue-webhooks",),
        host: str = "127.0.0.1",
        port: int = 0,
        on_request: Callable[[RecordedRequest], None] | None = None,
    ) -> None:
        super().__init__(host=host, port=port, on_request=on_request)
        self.token = token
        self._first_ts = first_ts
        self._posted = 0
        self._last_ts = 0.0
        self._messages: list[SlackMessage] = []
        self._responses: list[dict[str, Any]] = []
        self._response_urls = 0
        self._channels = [name.lstrip("#") for name in channels]

    @property
    def url(self) -> str:
        """The Web API base URL to give a Slack client (ends with ``/api/``)."""
        return self.root_url + "/api/"

    @property
    def messages(self) -> list[SlackMessage]:
        """Every message posted (in its current version), oldest first (copies)."""
        with self._lock:
            return copy.deepcopy(self._messages)

    def response_url(self) -> str:
        """Return a new ``response_url`` of this fake, as Slack puts in a click's payload
        (``{root}/actions/T0FAKE/{n}/{token}``); a POST to it is recorded in :attr:`responses`."""
        with self._lock:
            self._response_urls += 1
            n = self._response_urls
        return f"{self.root_url}/actions/T0FAKE/{n}/{hashlib.sha1(str(n).encode()).hexdigest()[:24]}"

    @property
    def responses(self) -> list[dict[str, Any]]:
        """Every body POSTed to a ``response_url``, oldest first, with its ``url`` (copies)."""
        with self._lock:
            return copy.deepcopy(self._responses)

    def replies(self, ts: str) -> list[SlackMessage]:
        """The messages posted in the thread of message ``ts``, oldest first."""
        return [m for m in self.messages if m.thread_ts == ts]

    @staticmethod
    def channel_id(channel: str) -> str:
        """Return the id the fake gives a channel name (ids are kept as they are)."""
        if _CHANNEL_ID.match(channel):
            return channel
        name = channel.lstrip("#")
        return "C" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:10].upper()

    def error_body(self, status: int) -> Any:
        if status == 429:
            return {"ok": False, "error": "ratelimited"}
        return {"ok": False, "error": "service_unavailable" if status >= 500 else "invalid_request"}

    # --- the API --------------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> _Answer:
        api_method = request.path.rstrip("/").rsplit("/", 1)[-1]
        # Slack's read methods take GET with a query string (slack_sdk sends them so) or POST.
        if request.method != "POST" and not (request.method == "GET" and api_method in _READS):
            return 405, {"ok": False, "error": "method_not_allowed"}, {}
        if request.path.startswith("/actions/"):
            return self._respond(request)
        args = self._arguments(request)
        if args is None:
            return _fail("invalid_json")
        auth_error = self._auth_error(request, args)
        if auth_error:
            return _fail(auth_error)
        if api_method == "chat.postMessage":
            return self._post(args)
        if api_method == "chat.update":
            return self._update(args)
        if api_method in _READS:
            return _READS[api_method](self, args)
        return 404, {"ok": False, "error": "unknown_method", "req_method": api_method}, {}

    @staticmethod
    def _arguments(request: RecordedRequest) -> dict[str, Any] | None:
        if request.method == "POST" and "json" in (request.header("content-type") or ""):
            return request.json if isinstance(request.json, dict) else None
        args: dict[str, Any] = {**request.query, **request.form}
        if isinstance(args.get("blocks"), str):
            try:
                args["blocks"] = json.loads(args["blocks"])
            except ValueError:
                args["blocks"] = "invalid"
        return args

    def _auth_error(self, request: RecordedRequest, args: Mapping[str, Any]) -> str | None:
        if self.token is None:
            return None
        authorization = request.header("authorization") or ""
        sent = authorization[len("Bearer ") :] if authorization.startswith("Bearer ") else args.get("token")
        if not sent:
            return "not_authed"
        return None if sent == self.token else "invalid_auth"

    @staticmethod
    def _blocks_error(blocks: Any) -> str | None:
        if blocks is None:
            return None
        if not isinstance(blocks, list) or len(blocks) > _MAX_BLOCKS:
            return "invalid_blocks"
        for block in blocks:
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                return "invalid_blocks"
            text = block.get("text")
            text = text.get("text") if isinstance(text, dict) else None
            if block["type"] == "section":
                if isinstance(text, str) and len(text) > _SECTION_TEXT:
                    return "invalid_blocks"
                for item in block.get("fields") or []:
                    if isinstance(item, dict) and len(str(item.get("text", ""))) > _SECTION_FIELD:
                        return "invalid_blocks"
            if block["type"] == "header" and isinstance(text, str) and len(text) > _HEADER_TEXT:
                return "invalid_blocks"
        return None

    def _next_ts(self) -> str:
        self._posted += 1
        if self._first_ts is None:
            self._last_ts = max(round(time.time(), 6), round(self._last_ts + 0.0001, 6))
            return f"{self._last_ts:.6f}"
        micros = self._posted * 100
        return f"{self._first_ts + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _post(self, args: Mapping[str, Any]) -> _Answer:
        channel = args.get("channel")
        if not isinstance(channel, str) or not channel:
            return _fail("channel_not_found")
        text, blocks = args.get("text"), args.get("blocks")
        if not text and not blocks:
            return _fail("no_text")
        error = self._blocks_error(blocks)
        if error:
            return _fail(error)
        thread_ts = args.get("thread_ts") or None
        message = SlackMessage(
            channel=channel,
            channel_id=self.channel_id(channel),
            ts=self._next_ts(),
            text=text,
            blocks=copy.deepcopy(blocks),
            thread_ts=str(thread_ts) if thread_ts else None,
            metadata=copy.deepcopy(args["metadata"]) if isinstance(args.get("metadata"), dict) else None,
        )
        self._messages.append(message)
        echoed: dict[str, Any] = {"type": "message", "text": text, "ts": message.ts}
        if blocks:
            echoed["blocks"] = blocks
        if message.thread_ts:
            echoed["thread_ts"] = message.thread_ts
        return _ok({"channel": message.channel_id, "ts": message.ts, "message": echoed})

    def _respond(self, request: RecordedRequest) -> _Answer:
        """A POST to a response_url: JSON with ``text`` (Slack answers 200 ``ok``; 404
        ``no_text`` style errors are not modelled beyond a missing text)."""
        body = request.json
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return 400, "no_text", {}
        self._responses.append({"url": request.path, **copy.deepcopy(body)})
        return 200, "ok", {}

    def _update(self, args: Mapping[str, Any]) -> _Answer:
        channel, ts = args.get("channel"), args.get("ts")
        if not isinstance(channel, str) or not channel:
            return _fail("channel_not_found")
        if "text" not in args and "blocks" not in args:
            return _fail("no_text")
        error = self._blocks_error(args.get("blocks"))
        if error:
            return _fail(error)
        channel_id = self.channel_id(channel)
        for message in self._messages:
            if message.channel_id == channel_id and message.ts == ts:
                message.history.append((message.text, copy.deepcopy(message.blocks)))
                if "text" in args:
                    message.text = args["text"]
                if "blocks" in args:
                    message.blocks = copy.deepcopy(args["blocks"]) or None
                return _ok({"channel": channel_id, "ts": message.ts, "text": message.text})
        return _fail("message_not_found")

    # --- reads (conversations.*) -----------------------------------------------------------

    def _history(self, args: Mapping[str, Any]) -> _Answer:
        """conversations.history: the channel's top-level messages, newest first (thread
        replies are not part of a channel's history)."""
        channel_id = self._known_channel(args.get("channel"))
        if channel_id is None:
            return _fail("channel_not_found")
        found = [m for m in self._messages if m.channel_id == channel_id and m.thread_ts in (None, m.ts)]
        return self._page(list(reversed(found)), args)

    def _replies(self, args: Mapping[str, Any]) -> _Answer:
        """conversations.replies: the thread's parent, then its replies, oldest first."""
        channel_id = self._known_channel(args.get("channel"))
        if channel_id is None:
            return _fail("channel_not_found")
        ts = str(args.get("ts") or "")
        parent = [m for m in self._messages if m.channel_id == channel_id and m.ts == ts]
        if not parent:
            return _fail("thread_not_found")
        thread = parent + [m for m in self._messages if m.channel_id == channel_id and m.thread_ts == ts and m.ts != ts]
        return self._page(thread, args)

    def _list(self, args: Mapping[str, Any]) -> _Answer:
        """conversations.list: the workspace's channels and every channel posted to by name."""
        names: dict[str, str] = {self.channel_id(name): name for name in self._channels}
        for message in self._messages:
            if not _CHANNEL_ID.match(message.channel):
                names.setdefault(message.channel_id, message.channel.lstrip("#"))
        channels = [{"id": cid, "name": name, "is_channel": True, "is_archived": False} for cid, name in names.items()]
        start, limit = self._cursor(args, default_limit=100)
        page = channels[start : start + limit]
        next_cursor = _encode_cursor(start + limit) if start + limit < len(channels) else ""
        return _ok({"channels": page, "response_metadata": {"next_cursor": next_cursor}})

    def _known_channel(self, channel: Any) -> str | None:
        # The read methods take ids only; any id-shaped one is a channel (maybe empty).
        return channel if isinstance(channel, str) and _CHANNEL_ID.match(channel) else None

    def _page(self, messages: list[SlackMessage], args: Mapping[str, Any]) -> _Answer:
        inclusive = _truthy(args.get("inclusive"))
        oldest, latest = _float_or_none(args.get("oldest")), _float_or_none(args.get("latest"))

        def within(message: SlackMessage) -> bool:
            ts = float(message.ts)
            if oldest is not None and (ts < oldest or (ts == oldest and not inclusive)):
                return False
            return latest is None or ts < latest or (ts == latest and inclusive)

        kept = [m for m in messages if within(m)]
        start, limit = self._cursor(args, default_limit=100)
        page = kept[start : start + limit]
        has_more = start + limit < len(kept)
        with_metadata = _truthy(args.get("include_all_metadata"))
        return _ok({
            "messages": [_as_read(m, with_metadata) for m in page],
            "has_more": has_more,
            "response_metadata": {"next_cursor": _encode_cursor(start + limit) if has_more else ""},
        })

    @staticmethod
    def _cursor(args: Mapping[str, Any], *, default_limit: int) -> tuple[int, int]:
        try:
            limit = max(1, min(999, int(args.get("limit") or default_limit)))
        except (TypeError, ValueError):
            limit = default_limit
        cursor = str(args.get("cursor") or "")
        start = int(cursor[len("next:") :]) if cursor.startswith("next:") and cursor[5:].isdigit() else 0
        return start, limit


def _encode_cursor(offset: int) -> str:
    return f"next:{offset}"


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _as_read(message: SlackMessage, with_metadata: bool) -> dict[str, Any]:
    """A message as conversations.history/replies answer it."""
    item: dict[str, Any] = {"type": "message", "text": message.text, "ts": message.ts, "bot_id": "BFAKE"}
    if message.blocks:
        item["blocks"] = copy.deepcopy(message.blocks)
    if message.thread_ts:
        item["thread_ts"] = message.thread_ts
    if with_metadata and message.metadata:
        item["metadata"] = copy.deepcopy(message.metadata)
    return item


_READS: dict[str, Callable[[FakeSlack, Mapping[str, Any]], _Answer]] = {
    "conversations.history": FakeSlack._history,
    "conversations.replies": FakeSlack._replies,
    "conversations.list": FakeSlack._list,
}
