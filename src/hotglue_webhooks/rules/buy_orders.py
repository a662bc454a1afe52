"""Find an Exact export's per-record report in a job payload and count the failed buy orders.

Report shape (REFERENCE §5, from hotgluexyz/target-exact)::

    {"bookmarks": {"BuyOrders": [{"success": true, "hash": "…", "id": "…"},
                                 {"success": false, "hash": "…", "error": "…"}]},
     "summary": {"BuyOrders": {"success": 1, "fail": 1, "existing": 0, "updated": 0}}}

Where the report reaches the receiver is unconfirmed, so it is searched for in every
payload value and in JSON inside ``message``. ``summary`` is not used for counting: it
counts bookmarks, and one failed buy order can yield two failed bookmarks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_MAX_DEPTH = 3  # payload key → value → nested value: deep enough for "a key of the payload"
_MAX_NODES = 2_000  # bounds the search on hostile or huge payloads
_MAX_JSON_CHARS = 5_000_000


@dataclass(frozen=True)
class ErrorGroup:
    """Failed bookmarks that share one error text."""

    text: str  # stripped; "" when the target wrote no error text
    count: int  # failed bookmarks with this text
    ids: tuple[str, ...]  # buy-order ids of those bookmarks, where the target wrote one


@dataclass(frozen=True)
class BuyOrderReport:
    """What a report says about buy orders.

    ``orders`` and ``failed`` count distinct hashes (plus hash-less successes in
    ``orders``); ``extra_errors`` counts failed bookmarks without a hash, which are errors
    but not buy orders. ``found_at`` is the payload key (dotted path) or ``message``.
    """

    found_at: str
    orders: int
    failed: int
    extra_errors: int
    errors: tuple[ErrorGroup, ...]

    @property
    def has_failures(self) -> bool:
        """True when any bookmark failed."""
        return self.failed > 0 or self.extra_errors > 0


def read_buy_orders(payload: Mapping[str, Any], streams: Sequence[str]) -> BuyOrderReport | None:
    """Return the buy-order counts of the first report found in ``payload``, or None.

    ``streams`` are the bookmark streams that hold buy orders (default ``BuyOrders``).
    None means no report: the number of failed buy orders is then unknown.
    """
    found = find_report(payload, streams)
    if found is None:
        return None
    where, report = found
    return summarise(report, streams, where)


def find_report(payload: Mapping[str, Any], streams: Sequence[str]) -> tuple[str, Mapping[str, Any]] | None:
    """Return ``(where, report)`` for the first report in ``payload``, breadth first, or None.

    A report is an object whose ``bookmarks`` object has a list under one of ``streams``
    (a Singer source state also has ``bookmarks``, but holds objects there, not lists).
    Strings that hold a JSON object are parsed, and ``message`` may also carry one after
    some text.
    """
    for where, value in _walk(payload):
        if _is_report(value, streams):
            return where, value
    return None


def summarise(report: Mapping[str, Any], streams: Sequence[str], where: str = "") -> BuyOrderReport:
    """Count the buy orders in ``report`` (REFERENCE §5 quirks).

    Failed means ``success`` is not ``true`` (some versions write ``null``); a buy order
    is failed when any of its bookmarks failed. Error groups are ordered by count, then
    by first appearance.
    """
    bookmarks = report.get("bookmarks")
    all_hashes: set[str] = set()
    failed_hashes: set[str] = set()
    hashless_ok = 0
    extra_errors = 0
    groups: dict[str, tuple[int, list[str]]] = {}
    for stream in streams:
        entries = bookmarks.get(stream) if isinstance(bookmarks, Mapping) else None
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            order_hash = _scalar(entry.get("hash"))
            if entry.get("success") is True:
                if order_hash:
                    all_hashes.add(order_hash)
                else:
                    hashless_ok += 1
                continue
            if order_hash:
                all_hashes.add(order_hash)
                failed_hashes.add(order_hash)
            else:
                extra_errors += 1
            text = _error_text(entry.get("error"))
            count, ids = groups.get(text, (0, []))
            order_id = _scalar(entry.get("id"))
            groups[text] = (count + 1, [*ids, order_id] if order_id else ids)
    ordered = sorted(groups.items(), key=lambda item: -item[1][0])  # stable: first seen first
    return BuyOrderReport(
        found_at=where,
        orders=len(all_hashes) + hashless_ok,
        failed=len(failed_hashes),
        extra_errors=extra_errors,
        errors=tuple(ErrorGroup(text, count, tuple(ids)) for text, (count, ids) in ordered),
    )


def _is_report(value: Any, streams: Sequence[str]) -> bool:
    if not isinstance(value, Mapping):
        return False
    bookmarks = value.get("bookmarks")
    return isinstance(bookmarks, Mapping) and any(isinstance(bookmarks.get(s), list) for s in streams)


def _walk(payload: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    queue: list[tuple[str, Any, int]] = [(str(k), v, 1) for k, v in payload.items()]
    for visited, (where, value, depth) in enumerate(queue):
        if visited >= _MAX_NODES:
            return
        if isinstance(value, str):
            parsed = _json_object(value, embedded=where == "message")
            if parsed is None:
                continue
            value = parsed
        yield where, value
        if depth < _MAX_DEPTH and isinstance(value, Mapping):
            queue.extend((f"{where}.{k}", v, depth + 1) for k, v in value.items())


def _json_object(text: str, embedded: bool) -> Mapping[str, Any] | None:
    """Parse ``text`` as a JSON object; with ``embedded``, also the ``{…}`` inside other text."""
    if len(text) > _MAX_JSON_CHARS or "{" not in text:
        return None
    candidates = [text.strip()]
    if embedded:
        candidates.append(text[text.find("{") : text.rfind("}") + 1])
    for candidate in candidates:
        if not candidate.startswith("{"):
            continue
        try:
            parsed = json.loads(candidate)
        except (ValueError, RecursionError):
            continue
        if isinstance(parsed, Mapping):
            return parsed
    return None


def _scalar(value: Any) -> str | None:
    """Return a hash or id as text; None for absent, empty or non-scalar values."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int, float)):
        return str(value).strip() or None
    return None


def _error_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError, RecursionError):
        return str(type(value).__name__)
