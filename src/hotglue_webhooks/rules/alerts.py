"""Which failures are "the same" alert: fingerprints and thread keys.

A failure alert opens a thread; the same tenant, flow and error failing again within
``[slack] repeat_window_hours`` is a reply in it, so 500 failures of 200 tenants make at
most 200 top-level messages (issue 5).
"""

from __future__ import annotations

import hashlib
import re

from hotglue_webhooks.rules.model import JobEvent

# Parts of an error line that change between two runs of the same failure.
_VOLATILE = re.compile(
    r"""(?x)
    [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}  # uuids
    | 0x[0-9a-f]+                                                  # addresses
    | \b[0-9a-f]{12,}\b                                            # long hex ids
    | \d+                                                           # numbers, dates, times
    """,
    re.IGNORECASE,
)


def fingerprint(status: str | None, error_line: str | None) -> str:
    """Return a short, stable id of a failure: its status and its error line without ids.

    ``"SYNC_FAILED"`` + ``"Timeout after 30s at 2026-11-28T06:05"`` and the same with
    other numbers give the same fingerprint. 16 hex characters.
    """
    normalised = _VOLATILE.sub("#", (error_line or "").strip().lower())
    material = f"{(status or '').upper()}\x1f{normalised}"
    return hashlib.sha256(material.encode("utf-8", "replace")).hexdigest()[:16]


def thread_key(event: JobEvent, print_: str) -> str:
    """Return the key of the alert thread for ``event``'s tenant, flow and fingerprint."""
    return f"{event.env_id}|{event.tenant}|{event.flow_id}|{print_}"
