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

:meth:`Redactor.redact` applies the free-text rules to every string it copies, not only
to ``message``: a config value is text too (``"db_url": "postgresql://bob:pw@db/x"``,
``"connection_string": "Server=x;Password=pw;"``). It also redacts the value of a
name/value pair whose name is secret-looking (``{"name": "Authorization", "value": …}``,
``{"key": "api_key", "value": …}``): the key that names the secret is in a value there.
Redacting redacted data changes nothing.

This is the one rule set: ingest, the worker, logs, the rules' Slack texts
(``rules.messages.scrub``) and the HotGlue client (``redact_secrets``, error summaries)
all use it. The module imports nothing but ``re`` and ``functools``, so the pure rules may
import it. A key and its value stay on one line; after ``key: `` a word continued by more
words is prose ("Invalid API token: Shopify returned 401", tap-shopify), not a value; a
credential named in words ("Basic …", "refresh token …", "token …") is redacted when the
value looks generated (a digit, or a capital inside it).
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
        "jwt",
        "passphrase",
    }
)
EXACT_SECRET_KEYS: frozenset[str] = frozenset({"pass", "key"})
"""Secret only as the whole key: ``{"pass": …}``, ``{"key": …}``, never ``replication_key``
(Singer's bookmark field), ``primary_key`` or ``bypass``. ``key`` of a name/value pair
(``{"key": "api_key", "value": …}``) names the secret and stays."""
SECRET_WORDS: frozenset[str] = frozenset(
    {
        "password", "passwd", "pwd", "secret", "token", "apikey", "authorization", "authentication", "auth",
        "credential", "credentials", "signature", "session", "bearer", "privatekey", "jwt", "passphrase",
    }
)
"""A key with one of these as a word is secret whatever the rest says."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# A key in text: a whole word (never starting inside one), taken atomically so a long
# run of word characters is scanned once, then ": " or "=". The value is matched only
# after a secret key: the value of any other key ("Error: password=…", "https://…?token=")
# is scanned for pairs of its own.
# Key, separator and value stay on one line: "…/oauth2/token\n:repeat: Failed" (our own
# Slack text after an error line) is not a "token:" pair.
_TEXT_KEY = re.compile(r"""(?<![\w-])(["']?)([\w-]{1,128}+)\1[ \t]*([:=])[ \t]*""")
# After "key: " (a colon, not "="), an unquoted word of letters continued by more words is
# prose, not a value: "Invalid API token: Shopify returned 401" (tap-shopify). An auth
# scheme ("Authorization: Bearer x") is never prose.
_PROSE = re.compile(r"(?!(?i:bearer|basic|token|digest)\b)[A-Za-z][a-z]{0,19}+[ \t]++[A-Za-z(]")
# Free text without ":" or "=": an auth scheme or a token named in words, then its value
# ("Basic dXNlcjpwYXNz", "refresh token 8f3a…", "token abc123…"). The value must look like
# a credential (see _is_credential), so "token expired" and "refresh token used" stay.
_WORDS_KEY = re.compile(r"(?i)(?<![\w-])(?:basic|bearer|(?:(?:refresh|access|api|bearer)[ _-])?token)[ \t]++")
_WORDS_VALUE = re.compile(r"[A-Za-z0-9._~+/-]{8,4096}+=*+(?![\w\[])")
# "[redacted]" (ending the value) first: text redacted once (a stored payload, a log line)
# comes out the same when redacted again, not "[redacted]]" (a bare value stops at "]").
_TEXT_VALUE = re.compile(
    re.escape(REDACTED)
    + r"""(?![^\s,&;}\]'"])|"""
    + r"""(?:bearer|basic|token|digest)\s+[^\s,;'"]++"""
    # A quoted value goes on to the end of its word (''a, "x"y): what follows the quote
    # is part of the value, and redacting it again must find "[redacted]" ending it.
    + r"""|"(?:[^"\\\n]|\\.)*+"[^\s,&;}\]'"]*+|'(?:[^'\\\n]|\\.)*+'[^\s,&;}\]'"]*+|[^\s,&;}\]'"]++""",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]{0,20}+://[^\s/:@]{1,256}+:)([^\s/@]{1,256}+)(?=@)", re.IGNORECASE)


# Values redact() does not walk (exact types: a str subclass still takes the long way).
# Strings among them still pass through redact_text.
_LEAVES = frozenset({str, int, float, bool, type(None)})

# A name/value pair: {"name": "Authorization", "value": "…"}, {"key": "api_key", "value": …}.
# Only a mapping with one of these value keys is looked at (four dict look-ups a mapping).
_PAIR_VALUE_KEYS = ("value", "values", "Value", "Values")
_PAIR_NAME_KEYS = frozenset({"name", "key", "header", "field", "param", "parameter", "variable"})


def _is_credential(value: str) -> bool:
    """Return True when a word after "token " looks generated: a digit, or a capital inside it."""
    return any(c.isdigit() for c in value) or any(c.isupper() for c in value[1:])


def _may_hold_secret(text: str) -> bool:
    """Return False when no rule of :meth:`Redactor.redact_text` can match ``text``."""
    return ":" in text or "=" in text or "oken" in text or "OKEN" in text or "asic" in text or "ASIC" in text or (
        "earer" in text or "EARER" in text
    )


def _normalise(key: str) -> str:
    return _CAMEL.sub("_", key.strip()).lower().replace("-", "_").replace(" ", "_")


class Redactor:
    """Replace the values of secret-looking keys with ``"[redacted]"``, at any depth.

    ``extra_keys`` are added to :data:`DEFAULT_SECRET_KEYS` (``HGW_REDACT_KEYS``).
    """

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        self.secret_keys = frozenset(_normalise(k) for k in (*DEFAULT_SECRET_KEYS, *extra_keys))
        self._needles = _needles(self.secret_keys | SECRET_WORDS | EXACT_SECRET_KEYS)
        # Payload keys repeat across every webhook: the answer is cached (20% of ingest CPU).
        self.is_secret = functools.lru_cache(maxsize=4096)(self._is_secret)  # type: ignore[method-assign]

    def is_secret(self, key: str) -> bool:
        """Return True when a mapping key (or a header name) names a secret."""
        return self._is_secret(key)

    def _is_secret(self, key: str) -> bool:
        name = _normalise(key)
        if name in self.secret_keys or name in EXACT_SECRET_KEYS:
            return True
        if any(name.endswith("_" + k) for k in self.secret_keys):
            return True
        return not SECRET_WORDS.isdisjoint(name.split("_"))

    def _secret_pair_values(self, pair: Mapping[Any, Any]) -> tuple[Any, ...]:
        """Return the value keys of ``pair`` to redact: all of them when one of its name
        keys (``name``, ``key``, ``header``…, any case) holds a secret-looking name."""
        for name_key, name in pair.items():
            if (
                type(name) is str
                and isinstance(name_key, str)
                and name_key.lower() in _PAIR_NAME_KEYS
                and self.is_secret(name)
            ):
                return tuple(key for key in _PAIR_VALUE_KEYS if key in pair)
        return ()

    def redact(self, value: Any, *, free_text: bool = True) -> Any:
        """Return a copy of a JSON-like value with secret-looking keys' values replaced.

        Every string copied goes through :meth:`redact_text` (inlined: most strings hold
        neither ``:`` nor ``=``), unless ``free_text`` is False: for text we wrote
        ourselves, where ``apiCredentials.password: empty`` names a field, not a secret.
        Lists and dicts are walked iteratively, so deep nesting cannot overflow the stack.
        """
        redact_text = self.redact_text if free_text else _unchanged
        if type(value) in _LEAVES:
            return redact_text(value) if type(value) is str else value
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
                hidden: tuple[Any, ...] = ()
                names: frozenset[str] = frozenset()
                for value_key in _PAIR_VALUE_KEYS:
                    if value_key in item:
                        hidden = self._secret_pair_values(item)
                        names = _PAIR_NAME_KEYS  # {"key": "api_key", "value": …}: "key" names
                        break
                for key, child in item.items():
                    child_kind = type(child)
                    if child is not None and (
                        (isinstance(key, str) and key not in names and is_secret(key)) or key in hidden
                    ):
                        copy[key] = REDACTED
                    elif child_kind is str:
                        copy[key] = redact_text(child) if _may_hold_secret(child) else child
                    elif child_kind in _LEAVES:
                        copy[key] = child
                    else:
                        copy[key] = None
                        stack.append((child, copy, key))
            elif kind is list or (kind not in _LEAVES and isinstance(item, list)):
                items: list[Any] = list(item)
                parent[slot] = items
                for index, child in enumerate(item):
                    child_kind = type(child)
                    if child_kind is str:
                        if _may_hold_secret(child):
                            items[index] = redact_text(child)
                    elif child_kind not in _LEAVES:
                        stack.append((child, items, index))
            else:
                parent[slot] = redact_text(item) if isinstance(item, str) else item
        return root[0]

    def redact_headers(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Return the headers as a dict with secret-looking ones redacted, and the free-text
        rules applied to the others (``Referer: https://user:pw@host``)."""
        return {name: (REDACTED if self.is_secret(name) else self.redact_text(value)) for name, value in headers}

    def redact_text(self, text: str) -> str:
        """Redact secret values in free text: key/value pairs, auth schemes, URL passwords,
        and credentials named in words ("Basic …", "refresh token …")."""
        if not _may_hold_secret(text):
            return text  # every pattern needs a "key:", "key=", "scheme://" or an auth word
        if ":" not in text and "=" not in text:
            return _redact_words(text)
        if self._needles is not None:  # a secret key holds one of these words
            lowered = text.lower()
            for needle in self._needles:
                if needle in lowered:
                    break
            else:  # no secret key: a timestamp, "hotglue-executor-v2:4", a URL
                return _redact_words(_redact_url_passwords(text))
        parts: list[str] = []
        copied = position = 0
        while (key := _TEXT_KEY.search(text, position)) is not None:
            position = key.end()
            if not self.is_secret(key.group(2)):
                continue
            if key.group(3) == ":" and not key.group(1) and _PROSE.match(text, position):
                continue
            value = _TEXT_VALUE.match(text, position)
            if value is None:
                continue
            parts += (text[copied:position], REDACTED)
            copied = position = value.end()
        parts.append(text[copied:])
        return _redact_words(_redact_url_passwords("".join(parts)))


def _redact_words(text: str) -> str:
    parts: list[str] = []
    copied = position = 0
    while (key := _WORDS_KEY.search(text, position)) is not None:
        position = key.end()
        value = _WORDS_VALUE.match(text, position)
        if value is None or not _is_credential(value.group()):
            continue
        parts += (text[copied:position], REDACTED)
        copied = position = value.end()
    parts.append(text[copied:])
    return "".join(parts)


def _unchanged(text: str) -> str:
    return text


def _redact_url_passwords(text: str) -> str:
    # The pattern costs microseconds even on a short text: look first for a ":" between
    # the first "://" and the last "@", which every "scheme://user:password@" has.
    start = text.find("://")
    if start < 0:
        return text
    at = text.rfind("@")
    if at < 0 or text.find(":", start + 3, at) < 0:
        return text
    return _URL_PASSWORD.sub(r"\1" + REDACTED, text)


def _needles(names: Iterable[str]) -> tuple[str, ...] | None:
    """Return words one of which every secret-looking key holds in lower case, or None.

    Normalising a key only adds or swaps separators, so a key matching a (normalised)
    name holds each ``_``-separated word of that name, unbroken, in lower case; a text
    whose lower case holds no needle holds no secret key. Each name adds its last word
    (``api_key`` → ``key``, not ``api`` of every API URL) unless one of its words already
    holds a needle. None (check every text) when a word is empty or not ASCII:
    lower-casing a whole text could then differ from lower-casing a key in it.
    """
    needles: set[str] = set()
    for name in sorted(names, key=lambda name: (name.count("_"), len(name), name)):
        words = name.split("_")
        if not all(word.isascii() and word for word in words):
            return None
        if not any(needle in word for word in words for needle in needles):
            needles.add(words[-1])
    return tuple(sorted(needle for needle in needles if not any(other in needle for other in needles - {needle})))


DEFAULT_REDACTOR = Redactor()
"""The built-in rule set without ``HGW_REDACT_KEYS``: for code that has no settings (the
pure rules' Slack texts, the HotGlue client's error summaries)."""


def redact(value: Any, *, free_text: bool = True) -> Any:
    """Return :meth:`Redactor.redact` of ``value`` under the built-in rules."""
    return DEFAULT_REDACTOR.redact(value, free_text=free_text)


def redact_text(text: str) -> str:
    """Return :meth:`Redactor.redact_text` of ``text`` under the built-in rules."""
    return DEFAULT_REDACTOR.redact_text(text)
