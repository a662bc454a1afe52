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
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token.json",
        "401 Client Error: Unauthorized for url: https://start.exactonline.us/api/oauth2/token",
        "401 Client Error: Unauthorized for url: http://start.exactonline.nl/api/oauth2/token",
        "4401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token",
        "",
    ],
)
def test_near_misses_do_not_match(text: str) -> None:
    assert find_token_401(text, RULES) is None


# The connectors' own words (REFERENCE §5): tap-exact and target-exact raise
# RuntimeError(f"Failed OAuth login, response was '{response}'. {ex}") where ``ex`` is the
# requests HTTPError, whose text carries the whole URL (a query included when the token
# request sends its body as params) and, in some versions, more text after it.
FAILED_LOGIN = "RuntimeError: Failed OAuth login, response was '{body}'. {error}"
DEAD = "{'error': 'invalid_grant'}"
OLD = "{'error': 'unauthorized_client', 'error_description': 'Old refresh token used.'}"


def _login(error: str, body: str = OLD) -> str:
    return FAILED_LOGIN.format(body=body, error=error)


@pytest.mark.parametrize(
    ("text", "expected_host"),
    [
        # tap-exact: the line after requests' HTTPError, and inside the RuntimeError.
        (f"requests.exceptions.HTTPError: {LINE.format(tld='be')}\n\n{_login(LINE.format(tld='be'))}", "be"),
        # the token URL followed by more text
        (_login(f"{LINE.format(tld='nl')}: {DEAD}", body=DEAD), "nl"),
        (f"{LINE.format(tld='de')}: {DEAD}", "de"),
        # the token URL with a query: requests prints it whole
        (_login(LINE.format(tld="nl") + "?refresh_token=REDACTED&grant_type=refresh_token"), "nl"),
        (_login(LINE.format(tld="fr") + "?grant_type=refresh_token"), "fr"),
        # target-exact logs the same words, then the export fails on them
        (f"ERROR Failed OAuth login, response was '{DEAD}'. {LINE.format(tld='es')}\n", "es"),
        (f"{LINE.format(tld='com')}. Please reconnect", "com"),
        # the other country hosts, upper case as some proxies and logs print them
        (_login(LINE.format(tld="co.uk").replace("start.exactonline.co.uk", "START.EXACTONLINE.CO.UK")), "co.uk"),
        (_login(LINE.format(tld="be").replace("start.exactonline.be", "Start.ExactOnline.BE")), "be"),
        (_login(LINE.format(tld="de").replace("/api/oauth2/token", "/API/OAuth2/Token") + ": x"), "de"),
    ],
)
def test_real_connector_texts_match(text: str, expected_host: str) -> None:
    found = find_token_401(text, RULES)

    assert found is not None
    assert found.lower() == LINE.format(tld=expected_host).lower()
    assert "refresh_token" not in found and "?" not in found  # the query never leaves the text


@pytest.mark.parametrize(
    "text",
    [
        # data endpoints, in the connectors' words
        _login("401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/v1/123/current/Me"),
        "401 Client Error: Unauthorized for url: https://START.EXACTONLINE.NL/API/V1/42/purchaseorder/PurchaseOrders",
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/v1/current/Me?$select=CurrentDivision",
        # 400s on the token URL, with a query or more text
        _login("400 Client Error: Bad Request for url: https://start.exactonline.nl/api/oauth2/token", body=DEAD),
        "400 Client Error: Bad Request for url: https://start.exactonline.be/api/oauth2/token?refresh_token=x",
        f"400 Client Error: Bad Request for url: https://start.exactonline.de/api/oauth2/token: {DEAD}",
        # URLs that only start like the token path
        _login("401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/tokenx"),
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/tokenx?refresh_token=x",
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token_v2: x",
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token-refresh",
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token.json.",
        "401 Client Error: Unauthorized for url: https://START.EXACTONLINE.NL/API/OAUTH2/TOKENX",
    ],
)
def test_real_connector_near_misses_do_not_match(text: str) -> None:
    assert find_token_401(text, RULES) is None


def test_none_does_not_match() -> None:
    assert find_token_401(None, RULES) is None


def test_hosts_and_path_come_from_config() -> None:
    rules = ExactRules(token_hosts=["start.exactonline.nl"], token_path="/oauth/token")

    assert find_token_401(LINE.format(tld="nl"), rules) is None
    assert find_token_401(LINE.format(tld="be").replace("/api/oauth2/", "/oauth/"), rules) is None
    assert find_token_401(LINE.format(tld="nl").replace("/api/oauth2/", "/oauth/"), rules) is not None
