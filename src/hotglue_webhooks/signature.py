"""Verify HotGlue's ``X-Hub-Signature`` header.

Source: https://docs.hotglue.com/environment-settings/webhooks (REFERENCE.md §3):
HMAC-SHA1 of the request body keyed with the webhook secret, lowercase hex. HotGlue's
sample sends the bare hex digest; other senders prefix ``sha1=``. Both are accepted.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature"
_PREFIX = "sha1="


def sign(body: bytes, secret: str) -> str:
    """Return the bare lowercase hex HMAC-SHA1 of ``body`` keyed with ``secret``."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Return True when ``header`` is the HMAC-SHA1 of exactly ``body`` under ``secret``.

    ``body`` must be the raw bytes received (never re-serialised JSON). The header may be
    the bare hex digest or ``sha1=<hex>``, in any letter case. Compared in constant time.
    """
    if not header:
        return False
    candidate = header.strip()
    if candidate[: len(_PREFIX)].lower() == _PREFIX:
        candidate = candidate[len(_PREFIX) :]
    expected = sign(body, secret)
    return hmac.compare_digest(candidate.lower().encode("ascii", "replace"), expected.encode("ascii"))
