"""Redact secret-looking values before anything is stored, logged or shown.

HotGlue payloads can carry credentials in ``override_source_config`` and
``override_target_config`` (REFERENCE.md §2); tenant configs hold passwords and client
secrets (§4). A key is secret-looking when its normalised name (lower case, ``-`` as
``_``) is in the list, or ends with ``_`` + a listed name (``shopify_access_token``).
"""

from __future__ import annotations

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
        "cookie",
        "set_cookie",
    }
)


def _normalise(key: str) -> str:
    return key.strip().lower().replace("-", "_")


class Redactor:
    """Replace the values of secret-looking keys with ``"[redacted]"``, at any depth."""

    def __init__(self, secret_keys: Iterable[str] = DEFAULT_SECRET_KEYS) -> None:
        self.secret_keys = frozenset(_normalise(k) for k in secret_keys)
        # Keys are normalised with "_"; in text a header-style "x-api-key" must match too.
        names = "|".join(
            sorted((re.escape(k).replace("_", "[-_]") for k in self.secret_keys), key=len, reverse=True)
        )
        # For text that is not JSON (a rejected body, a traceback): "key": "value",
        # key=value and key: value forms.
        self._text_pattern = re.compile(
            r"""(?ix)
            (["']?[\w-]*(?:%s)["']?\s*[:=]\s*)
            ("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,&;}\]]+)
            """
            % names
        )

    def is_secret(self, key: str) -> bool:
        """Return True when a mapping key names a secret."""
        name = _normalise(key)
        if name in self.secret_keys:
            return True
        return any(name.endswith("_" + k) for k in self.secret_keys)

    def redact(self, value: Any) -> Any:
        """Return a copy of a JSON-like value with secret-looking keys' values replaced.

        Lists and dicts are walked iteratively, so deep nesting cannot overflow the stack.
        """
        root: list[Any] = [None]
        stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
        while stack:
            item, parent, slot = stack.pop()
            if isinstance(item, Mapping):
                copy: dict[Any, Any] = {}
                parent[slot] = copy
                for key, child in item.items():
                    if isinstance(key, str) and self.is_secret(key) and child is not None:
                        copy[key] = REDACTED
                    else:
                        copy[key] = None
                        stack.append((child, copy, key))
            elif isinstance(item, list):
                items: list[Any] = [None] * len(item)
                parent[slot] = items
                for index, child in enumerate(item):
                    stack.append((child, items, index))
            else:
                parent[slot] = item
        return root[0]

    def redact_headers(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Return the headers as a dict with secret-looking ones redacted."""
        return {name: (REDACTED if self.is_secret(name) else value) for name, value in headers}

    def redact_text(self, text: str) -> str:
        """Redact ``key: value`` / ``"key": "value"`` / ``key=value`` pairs in free text."""
        return self._text_pattern.sub(lambda m: m.group(1) + REDACTED, text)
