"""Job-name markers: plain words and their a=1..z=26 digit codes.

Support engineers steer the rules through a job's name. HotGlue keeps ``job_name`` as
given, but some tools that start jobs only allow digits and dashes there, so a marker
can also be written as its letters' alphabet positions: "fullsync" is
``6 21 12 12 19 25 14 3`` → ``62112121925143``, "ignore" is ``971415185``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

_A = ord("a")


def encode(word: str) -> str:
    """Return ``word`` as concatenated alphabet positions (a=1 … z=26), case-insensitive.

    ``encode("fullsync") == "62112121925143"``. Raises ValueError when ``word`` holds
    anything but ASCII letters (a space or digit has no code, and silently dropping it
    would make a marker match something the config did not say).
    """
    if not word or not word.isascii() or not word.isalpha():
        raise ValueError(f"only ASCII letters can be encoded, got {word!r}")
    return "".join(str(ord(c) - _A + 1) for c in word.lower())


def decode(digits: str) -> Iterator[str]:
    """Yield, in alphabetical order, every lowercase word whose :func:`encode` is ``digits``.

    The code is ambiguous ("11" is "aa" or "k"), and the readings grow exponentially with
    the length, so take what you need: ``"ignore" in decode("971415185")``. Raises
    ValueError for anything but digits.
    """
    if not digits.isascii() or not digits.isdigit():
        raise ValueError(f"only digits can be decoded, got {digits!r}")
    return _readings(digits)


def _readings(digits: str) -> Iterator[str]:
    # Depth first, one digit before two: a one-digit letter (a-i) sorts before any
    # two-digit one (j-z), so the words come out in alphabetical order.
    stack = [(0, "")]
    while stack:
        i, prefix = stack.pop()
        if i == len(digits):
            yield prefix
            continue
        for width in (2, 1):
            part = digits[i : i + width]
            if len(part) == width and part[0] != "0" and 1 <= int(part) <= 26:
                stack.append((i + width, prefix + chr(_A + int(part) - 1)))


def normalise_job_name(job_name: str) -> str:
    """Return ``job_name`` lowercased with runs of whitespace collapsed to one space."""
    return " ".join(job_name.lower().split())


def find_marker(job_name: str | None, plain: Iterable[str], encoded: Iterable[str]) -> str | None:
    """Return the first marker found in ``job_name``, described for a note, or None.

    ``plain`` markers match as case-insensitive substrings (whitespace collapsed);
    ``encoded`` words match as the substring of their digits. The description is
    ``'full sync'`` or ``'62112121925143' (fullsync)``.
    """
    if not job_name:
        return None
    name = normalise_job_name(job_name)
    for marker in plain:
        if normalise_job_name(marker) and normalise_job_name(marker) in name:
            return repr(marker)
    for word in encoded:
        digits = encode(word)
        if digits in name:
            return f"{digits!r} ({word.lower()})"
    return None
