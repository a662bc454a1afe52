"""Job-name markers and their a=1..z=26 digit code."""

from __future__ import annotations

import itertools

import pytest

from hotglue_webhooks.rules.markers import decode, encode, find_marker


def test_encode_known_markers() -> None:
    assert encode("fullsync") == "62112121925143"
    assert encode("FullSync") == "62112121925143"
    assert encode("ignore") == "971415185"
    assert encode("az") == "126"


@pytest.mark.parametrize("word", ["", "full sync", "wh-1", "ñ"])
def test_encode_refuses_what_has_no_code(word: str) -> None:
    with pytest.raises(ValueError, match="only ASCII letters"):
        encode(word)


def test_decode_lists_every_reading() -> None:
    assert list(decode("126")) == ["abf", "az", "lf"]
    assert "fullsync" in decode("62112121925143")
    assert "ignore" in decode("971415185")
    assert list(decode("10")) == ["j"]
    assert list(decode("30")) == []
    assert list(itertools.islice(decode("1" * 5000), 2)) == ["a" * 5000, "a" * 4998 + "k"]


def test_decode_refuses_non_digits() -> None:
    with pytest.raises(ValueError, match="only digits"):
        decode("12a")


@pytest.mark.parametrize(
    ("job_name", "found"),
    [
        ("Full Sync after reconnect", "'full sync'"),
        ("FULL   SYNC", "'full sync'"),
        ("support-62112121925143-ticket-7781", "'62112121925143' (fullsync)"),
        ("fullsync", None),  # only the digits of the encoded word count
        ("full-sync", None),
        ("", None),
        (None, None),
    ],
)
def test_find_full_sync_marker(job_name: str | None, found: str | None) -> None:
    assert find_marker(job_name, ["full sync"], ["fullsync"]) == found
