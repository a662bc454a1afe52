"""A fake of Slack's Web API (chat.postMessage, chat.update) and of interactivity's
``response_url`` (``POST /actions/...``), over real HTTP.

Answers follow https://docs.slack.dev/reference/methods/chat.postMessage and
https://docs.slack.dev/reference/methods/chat.update: HTTP 200 with ``ok`` true or false
and an error code, message ``ts`` values that increase, and Block Kit limits enforced
(``invalid_blocks``) so that a client's safety net is tested against a strict peer.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
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
    values count up from ``first_ts`` by 0.0001 s: ``1700000000.000100``, ``…000200``.
    """

    peer = "slack"

    def __init__(
        self,
        *,
        token: str | None = None,
        first_ts: int = 1_700_000_000,
        host: str = "127.0.0.1",
        port: int = 0,
        on_request: Callable[[RecordedRequest], None] | None = None,
    ) -> None:
        super().__init__(host=host, port=port, on_request=on_request)
        self.token = token
        self._first_ts = first_ts
        self._posted = 0
        self._messages: list[SlackMessage] = []
        self._responses: list[dict[str, Any]] = []
        self._response_urls = 0

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
        if request.method != "POST":
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
        return 404, {"ok": False, "error": "unknown_method", "req_method": api_method}, {}

    @staticmethod
    def _arguments(request: RecordedRequest) -> dict[str, Any] | None:
        if "json" in (request.header("content-type") or ""):
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
