"""Redact secret-looking values before anything is stored, logged or shown.

HotGlue payloads can carry credentials in ``override_source_config`` and
``override_target_config`` (REFERENCE.md §2); tenant configs hold passwords and client
secrets (§4). A key is secret-looking when its normalised name (lower case, camelCase
and ``-`` split into ``_`` words: ``clientSecret`` → ``client_secret``) is in the list,
ends with ``_`` + a listed name (``shopify_access_token``), or has one of
:data:`SECRET_WORDS` as a word (``aws_secret_access_key``, ``password_hash``).

Free text (HotGlue's ``message``, a rejected body, a log line) gets the same test for
``key: value`` / ``"key": "value"`` / ``key=value`` pairs, ``Authorization: Bearer …``
values, and passwords in URLs (``scheme://user:password@host``). Every pattern runs in
time linear in the text: a 100 KB unbroken token must not stall ingest.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[redacted]"

DEFAULT_SECRET_KEYS: frozenset[str] = frozenset(
    {
        "password",
        "passwd",
        "client_secret",
        "secret",
        "access_token",
        "refresh_token",
        "api_key",
        "apikey",
        "token",
        "authorization",
        "x_api_key",
        "x_hub_signature",
        "private_key",
        "access_key",
        "cookie",
        "set_cookie",
    }
)
SECRET_WORDS: frozenset[str] = frozenset(
    {
        "password", "passwd", "pwd", "secret", "token", "apikey", "authorization", "authentication", "auth",
        "credential", "credentials", "signature", "session", "bearer", "privatekey",
    }
)
"""A key with one of these as a word is secret whatever the rest says."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# A key in text: a whole word (never starting inside one), taken atomically so a long
# run of word characters is scanned once, then ": " or "=". The value is matched only
# after a secret key: the value of any other key ("Error: password=…", "https://…?token=")
# is scanned for pairs of its own.
_TEXT_KEY = re.compile(r"""(?<![\w-])(["']?)([\w-]{1,128}+)\1\s*[:=]\s*""")
_TEXT_VALUE = re.compile(
    r"""(?:bearer|basic|token|digest)\s+[^\s,;'"]++|"(?:[^"\\\n]|\\.)*+"|'(?:[^'\\\n]|\\.)*+'|[^\s,&;}\]'"]++""",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]{0,20}+://[^\s/:@]{1,256}+:)([^\s/@]{1,256}+)(?=@)", re.IGNORECASE)


# Values redact() copies as they are (exact types: a str subclass still takes the long way).
_LEAVES = frozenset({str, int, float, bool, type(None)})


def _normalise(key: str) -> str:
    return _CAMEL.sub("_", key.strip()).lower().replace("-", "_").replace(" ", "_")


class Redactor:
    """Replace the values of secret-looking keys with ``"[redacted]"``, at any depth.

    ``extra_keys`` are added to :data:`DEFAULT_SECRET_KEYS` (``HGW_REDACT_KEYS``).
    """

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        self.secret_keys = frozenset(_normalise(k) for k in (*DEFAULT_SECRET_KEYS, *extra_keys))
        # Payload keys repeat across every webhook: the answer is cached (20% of ingest CPU).
        self.is_secret = functools.lru_cache(maxsize=4096)(self._is_secret)  # type: ignore[method-assign]

    def is_secret(self, key: str) -> bool:
        """Return True when a mapping key (or a header name) names a secret."""
        return self._is_secret(key)

    def _is_secret(self, key: str) -> bool:
        name = _normalise(key)
        if name in self.secret_keys:
            return True
        if any(name.endswith("_" + k) for k in self.secret_keys):
            return True
        return not SECRET_WORDS.isdisjoint(name.split("_"))

    def redact(self, value: Any) -> Any:
        """Return a copy of a JSON-like value with secret-looking keys' values replaced.

        Lists and dicts are walked iteratively, so deep nesting cannot overflow the stack.
        """
        if type(value) in _LEAVES:
            return value
        is_secret = self.is_secret
        root: list[Any] = [None]
        stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
        while stack:
            item, parent, slot = stack.pop()
            # Exact types first: isinstance(str, Mapping) is an ABC check, and JSON's
            # leaves (most of a payload) would each pay for it.
            kind = type(item)
            if kind is dict or (kind not in _LEAVES and kind is not list and isinstance(item, Mapping)):
                copy: dict[Any, Any] = {}
                parent[slot] = copy
                for key, child in item.items():
                    if child is not None and isinstance(key, str) and is_secret(key):
                        copy[key] = REDACTED
                    elif type(child) in _LEAVES:
                        copy[key] = child
                    else:
                        copy[key] = None
                        stack.append((child, copy, key))
            elif kind is list or (kind not in _LEAVES and isinstance(item, list)):
                items: list[Any] = list(item)
                parent[slot] = items
                for index, child in enumerate(item):
                    if type(child) not in _LEAVES:
                        stack.append((child, items, index))
            else:
                parent[slot] = item
        return root[0]

    def redact_headers(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Return the headers as a dict with secret-looking ones redacted."""
        return {name: (REDACTED if self.is_secret(name) else value) for name, value in headers}

    def redact_text(self, text: str) -> str:
        """Redact secret values in free text: key/value pairs, auth schemes, URL passwords."""
        if ":" not in text and "=" not in text:
            return text  # every pattern needs a "key:", "key=" or "scheme://" (a log event name)
        parts: list[str] = []
        copied = position = 0
        while (key := _TEXT_KEY.search(text, position)) is not None:
            position = key.end()
            if not self.is_secret(key.group(2)):
                continue
            value = _TEXT_VALUE.match(text, position)
            if value is None:
                continue
            parts += (text[copied:position], REDACTED)
            copied = position = value.end()
        parts.append(text[copied:])
        return _URL_PASSWORD.sub(r"\1" + REDACTED, "".join(parts))
