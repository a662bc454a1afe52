"""The Exact token-401 matcher fires on the dead refresh token only, not on its near misses."""

from __future__ import annotations

import pytest
from rules_support import load_payload

from hotglue_webhooks.rules.config import ExactRules
from hotglue_webhooks.rules.exact import find_token_401

RULES = ExactRules()
LINE = "401 Client Error: Unauthorized for url: https://start.exactonline.{tld}/api/oauth2/token"
REFERENCE_TRACEBACK = load_payload("sync_failed__exact_token_401")["message"]


@pytest.mark.parametrize("tld", ["nl", "be", "de", "co.uk", "com", "fr", "es"])
def test_every_country_host_matches(tld: str) -> None:
    text = f"requests.exceptions.HTTPError: {LINE.format(tld=tld)}\n"

    assert find_token_401(text, RULES) == LINE.format(tld=tld)


def test_reference_traceback_with_the_line_twice_matches() -> None:
    assert REFERENCE_TRACEBACK.count(LINE.format(tld="nl")) == 2
    assert find_token_401(REFERENCE_TRACEBACK, RULES) == LINE.format(tld="nl")


@pytest.mark.parametrize(
    "text",
    [
        f"RuntimeError: Failed OAuth login, response was '{{...}}'. {LINE.format(tld='nl')}",  # at the very end
        f"error='{LINE.format(tld='be')}'",
        f"({LINE.format(tld='de')})",
        f'{{"error": "{LINE.format(tld="fr")}"}}',
        LINE.format(tld="NL").upper().replace("HTTPS://", "https://"),
    ],
)
def test_url_may_end_at_text_end_quote_or_bracket(text: str) -> None:
    assert find_token_401(text, RULES) is not None


@pytest.mark.parametrize(
    "text",
    [
        "400 Client Error: Bad Request for url: https://start.exactonline.nl/api/oauth2/token",
        "403 Client Error: Forbidden for url: https://start.exactonline.nl/api/oauth2/token",
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/v1/123/current/Me",
        "401 Client Error: Unauthorized for path: /api/v1/123/purchaseorder/PurchaseOrders",
        "401 Client Error: Unauthorized for url: https://api.hotglue.com/oauth/token",
        "401 Client Error: Unauthorized for url: https://client-api.hotglue.xyz/api/oauth2/token",
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl.evil.com/api/oauth2/token",
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl.example/api/oauth2/token",
        "401 Client Error: Unauthorized for url: https://evil.com/start.exactonline.nl/api/oauth2/token",
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token/extra",
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/tokens",
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token?x=1",
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token.json",
        "401 Client Error: Unauthorized for url: https://start.exactonline.us/api/oauth2/token",
        "401 Client Error: Unauthorized for url: http://start.exactonline.nl/api/oauth2/token",
        "4401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token",
        "",
    ],
)
def test_near_misses_do_not_match(text: str) -> None:
    assert find_token_401(text, RULES) is None


def test_none_does_not_match() -> None:
    assert find_token_401(None, RULES) is None


def test_hosts_and_path_come_from_config() -> None:
    rules = ExactRules(token_hosts=["start.exactonline.nl"], token_path="/oauth/token")

    assert find_token_401(LINE.format(tld="nl"), rules) is None
    assert find_token_401(LINE.format(tld="be").replace("/api/oauth2/", "/oauth/"), rules) is None
    assert find_token_401(LINE.format(tld="nl").replace("/api/oauth2/", "/oauth/"), rules) is not None
