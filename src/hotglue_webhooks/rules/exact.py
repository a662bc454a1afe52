"""Recognise "Exact Online refused the refresh token" in a job's error text.

Source: REFERENCE §5, from hotgluexyz/tap-exact and target-exact. When the refresh token
is dead, Exact's token endpoint answers 401 and ``requests`` raises
``401 Client Error: Unauthorized for url: https://start.exactonline.<tld>/api/oauth2/token``;
the connectors print that line once after ``requests.exceptions.HTTPError:`` and again
inside ``RuntimeError: Failed OAuth login, ...``. Only the customer reconnecting fixes it.
"""

from __future__ import annotations

import re
from functools import lru_cache

from hotglue_webhooks.rules.config import ExactRules

# What may follow the URL: the end of the text, whitespace, a character that closes a quote
# or bracket around it, the ':' before more text (``.../token: {'error': 'invalid_grant'}``),
# a query or fragment (``requests`` prints the whole URL, ``?refresh_token=...`` included,
# when a connector sends its body as params), or a full stop that ends a sentence. Anything
# else ('/', letters, digits, '.', '-', '_') makes it another URL: a longer path such as
# ``/api/oauth2/tokenx`` or a look-alike host such as start.exactonline.nl.evil.com.
_URL_END = r"(?=[\s'\"`)\]}>,;:?#\\]|\.(?:[\s'\"]|\Z)|\Z)"


@lru_cache(maxsize=16)
def _pattern(hosts: tuple[str, ...], path: str) -> re.Pattern[str]:
    host_alternatives = "|".join(re.escape(h) for h in sorted(hosts, key=len, reverse=True))
    return re.compile(
        # (?<!\d): "401" must be the status, not the tail of a longer number.
        r"(?<!\d)401 Client Error: Unauthorized for url: "
        rf"https://(?:{host_alternatives}){re.escape(path)}{_URL_END}",
        re.IGNORECASE,
    )


def find_token_401(text: str | None, rules: ExactRules) -> str | None:
    """Return the first Exact token-401 line in ``text`` (the matched words only), or None.

    Matches only a 401 on one of ``rules.token_hosts`` + ``rules.token_path`` (any case)
    with the path ending there: followed by the end of the text, whitespace, a quote or
    bracket, ``:`` and more text, or a query (``?…``, never part of the returned words, so
    a ``refresh_token`` in it stays out of notes and Slack). Near misses that return None:
    400/403 on the token URL, a 401 on a data endpoint (``…/api/v1/…`` or
    ``for path: /api/v1/…``), HotGlue's own token API, look-alike hosts and longer paths
    (``/api/oauth2/tokenx``, ``/api/oauth2/token/…``, ``/api/oauth2/token.json``).
    """
    if not text:
        return None
    match = _pattern(tuple(rules.token_hosts), rules.token_path).search(text)
    return match.group(0) if match else None
