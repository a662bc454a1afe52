"""Redaction of keys and of free text: what counts as a secret, and that it stays fast."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hotglue_webhooks.redaction import REDACTED, Redactor

redactor = Redactor()


@pytest.mark.parametrize(
    "key",
    [
        "password", "Password", "client_secret", "clientSecret", "accessToken", "refreshToken", "apiToken",
        "privateKey", "secretKey", "passwordHash", "aws_secret_access_key", "X-Custom-Token-Thing", "x-api-key",
        "shopify_access_token", "Authorization", "credentials", "auth", "X-Auth", "Authentication", "bearer",
        "signature", "X-Hub-Signature-256", "X-Amz-Signature", "sessionId", "X-Session-Id", "X-Access-Key",
        "private key",
    ],
)
def test_secret_looking_keys(key: str) -> None:
    assert redactor.is_secret(key)
    assert redactor.redact({"a": [{key: "s3cr3t"}]}) == {"a": [{key: REDACTED}]}


@pytest.mark.parametrize("key", ["tenant", "flow_id", "s3_root", "job_name", "sync_type", "status", "tokenization"])
def test_ordinary_keys_stay(key: str) -> None:
    assert not redactor.is_secret(key)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer MSGBEARER111 then", f"Authorization: {REDACTED} then"),
        ("authorization=Basic dXNlcjpwdw==", f"authorization={REDACTED}"),
        ("{'clientSecret': 'cs-1', 'shop': 'acme'}", f"{{'clientSecret': {REDACTED}, 'shop': 'acme'}}"),
        ('"accessToken":"tk-9"', f'"accessToken":{REDACTED}'),
        ("db postgres://user:PASS@db.example:5432/x", f"db postgres://user:{REDACTED}@db.example:5432/x"),
        ("see https://user:pw@host/path", f"see https://user:{REDACTED}@host/path"),
        ("Old refresh token used.", "Old refresh token used."),
        ("token_response.raise_for_status()", "token_response.raise_for_status()"),
        # A secret pair inside the value of another key (an exception's text, a URL).
        ("Error: password=S1 and more", f"Error: password={REDACTED} and more"),
        ("Error: password: S1", f"Error: password: {REDACTED}"),
        ("RuntimeError: token=S1", f"RuntimeError: token={REDACTED}"),
        ("headers: Authorization: Bearer S1", f"headers: Authorization: {REDACTED}"),
        ("for url https://h/a?access_token=S1", f"for url https://h/a?access_token={REDACTED}"),
        (
            "401 Client Error: for url: https://x/oauth/token?refresh_token=S1&client_secret=S2&grant=y",
            f"401 Client Error: for url: https://x/oauth/token?refresh_token={REDACTED}&client_secret={REDACTED}&grant=y",
        ),
        (
            "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token",
            "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token",
        ),
    ],
)
def test_free_text(text: str, expected: str) -> None:
    assert redactor.redact_text(text) == expected


def test_extra_keys_add_to_the_defaults() -> None:
    extended = Redactor(["webshop_uuid"])
    assert extended.is_secret("webshop_uuid") and extended.is_secret("password")


def test_long_unbroken_tokens_are_scanned_in_linear_time() -> None:
    # A base64 blob or JWT in a traceback once took seconds per 10 KB (quadratic
    # backtracking) and lost the webhook to gunicorn's timeout. No clock here: a quadratic
    # scan of this text would not finish within CI's time, a linear one takes milliseconds.
    blob = "y" * 400_000
    text = f"Traceback: token_{blob} and secret={blob} and {blob}-{blob}: {blob}"
    assert redactor.redact_text(text) == text.replace(f"secret={blob}", f"secret={REDACTED}")


class _Text(str):
    """A str subclass: redact() keeps such a value as it is, like any other leaf."""


def test_redact_copies_every_container_and_keeps_leaves() -> None:
    from collections import OrderedDict

    value = {
        "list": [1, 2.5, True, None, "s", {"password": "p", "kept": [{"token": None}]}],
        "mapping": OrderedDict([("clientSecret", "cs"), ("x", ("tuple", {"password": "left as is"}))]),
        "subclass": _Text("t"),
        3: "non-str key",
    }
    redacted = redactor.redact(value)
    assert redacted == {
        "list": [1, 2.5, True, None, "s", {"password": REDACTED, "kept": [{"token": None}]}],
        "mapping": {"clientSecret": REDACTED, "x": ("tuple", {"password": "left as is"})},
        "subclass": "t",
        3: "non-str key",
    }
    assert type(redacted["mapping"]) is dict and type(redacted["subclass"]) is _Text
    # Nothing of the input is shared or changed: the stored copy can be cleaned in place.
    redacted["list"][5]["kept"][0]["token"] = "changed"
    redacted["list"].append("more")
    assert value["list"][5] == {"password": "p", "kept": [{"token": None}]} and len(value["list"]) == 6
    assert redactor.redact("a leaf") == "a leaf" and redactor.redact([]) == []


@pytest.mark.parametrize("text", ["webhook_accepted", "token secret password", "a plain sentence, no pairs"])
def test_text_without_a_colon_or_equals_sign_is_returned_as_it_is(text: str) -> None:
    assert redactor.redact_text(text) == text
    assert redactor.redact_text(text + " token=S1") == text + f" token={REDACTED}"


# Secrets in string values outside ``message``: a config holds URLs, connection strings
# and header lists, and the secret-looking key is then inside the value.
CONFIG = {
    "db_url": "postgresql://bob:PW555@db/x",
    "url": "https://user:PW912@api.example.com",
    "connection_string": "Server=x;Password=PW911;",
    "headers": [
        {"name": "Authorization", "value": "PW913"},
        {"name": "password", "value": "PW914"},
        {"key": "api_key", "value": "PW915"},
        {"Header": "X-Auth-Token", "Value": "PW916"},
        {"field": "clientSecret", "values": ["PW917"]},
        {"name": "Accept", "value": "application/json"},
    ],
    "notes": ["dsn=mysql://u:PW918@h/db", "plain: text"],
    "base_url": "https://api.example.com/x",
    "install": "git+https://github.com/hotgluexyz/tap-exact.git@v2.1.0",
    "s3_root": "3310/flows/Rb7TnE4wz/jobs/2026/11/6/28/06/mE2kV",
    "tenant": "3310",
    "job_name": "Rb7TnE4wz-exact-20261128-063000",
    "start_time": "2026-11-28T06:05:00.113270+00:00",
    "task": {"id": "hotglue-executor-v2:4", "query": "a=1&b=2"},
    "empty_pair": {"name": "token", "value": None},
}
REDACTED_CONFIG = {
    **CONFIG,
    "db_url": f"postgresql://bob:{REDACTED}@db/x",
    "url": f"https://user:{REDACTED}@api.example.com",
    "connection_string": f"Server=x;Password={REDACTED};",
    "headers": [
        {"name": "Authorization", "value": REDACTED},
        {"name": "password", "value": REDACTED},
        {"key": "api_key", "value": REDACTED},
        {"Header": "X-Auth-Token", "Value": REDACTED},
        {"field": "clientSecret", "values": REDACTED},
        {"name": "Accept", "value": "application/json"},
    ],
    "notes": [f"dsn=mysql://u:{REDACTED}@h/db", "plain: text"],
}


def test_every_string_value_gets_the_free_text_rules_and_name_value_pairs_are_redacted() -> None:
    redacted = redactor.redact({"override_source_config": {"deep": [CONFIG]}})
    assert redacted == {"override_source_config": {"deep": [REDACTED_CONFIG]}}
    assert "PW9" not in repr(redacted) and "PW555" not in repr(redacted)
    assert redactor.redact(CONFIG["db_url"]) == REDACTED_CONFIG["db_url"]  # a string on its own too


def test_redacting_twice_changes_nothing() -> None:
    once = redactor.redact(CONFIG)
    assert redactor.redact(once) == once
    texts = ("password=S1", "Authorization: Bearer S1", "{'token': 'S1', 'x': 1}", "postgres://u:S1@h/x", "a=1&secret=S2")
    for text in texts:
        assert redactor.redact_text(redactor.redact_text(text)) == redactor.redact_text(text) != text


def test_strings_that_cannot_hold_a_secret_are_not_scanned() -> None:
    # A timestamp or a plain URL has a ":" but no secret-looking word and no URL password:
    # it is returned as it is, without a regex scan or a key-cache entry.
    fresh = Redactor()
    value = {"t": "2026-11-28T06:05:00+00:00", "u": ["https://api.example.com/x", "hotglue-executor-v2:4"]}
    redacted = fresh.redact(value)
    assert redacted == value and redacted["t"] is value["t"] and redacted["u"][0] is value["u"][0]
    assert fresh.is_secret.cache_info().currsize == 2  # "t" and "u", nothing else


@pytest.mark.parametrize(
    "key",
    ["password", "clientSecret", "X-Api-Key", "x_hub_signature", "accessKey", "set-cookie", "sessionId", "privateKey",
     "AWS_SECRET_ACCESS_KEY", "credentials", "bearer", "pwd"],
)
def test_the_text_shortcut_never_skips_a_secret_key(key: str) -> None:
    assert redactor.redact_text(f"{key}=S1") == f"{key}={REDACTED}"
    assert redactor.redact({"config": f"{{{key!r}: 'S1'}}"}) == {"config": f"{{{key!r}: {REDACTED}}}"}
    extended = Redactor(["webshop_uuid", "x-custom-auth"])
    text = "WebshopUuid: S1, X-Custom-Auth=S2"
    assert extended.redact_text(text) == f"WebshopUuid: {REDACTED}, X-Custom-Auth={REDACTED}"


def test_header_values_get_the_free_text_rules() -> None:
    headers = [("Referer", "https://u:PW1@h/x"), ("Content-Type", "text/plain; charset=utf-8"), ("X-Api-Key", "k")]
    assert redactor.redact_headers(headers) == {
        "Referer": f"https://u:{REDACTED}@h/x",
        "Content-Type": "text/plain; charset=utf-8",
        "X-Api-Key": REDACTED,
    }


def test_our_own_text_can_keep_its_field_names() -> None:
    params = {"text": "Invalid tenant config: apiCredentials.password: empty.", "password": "x"}
    assert Redactor().redact(params, free_text=False) == {
        "text": "Invalid tenant config: apiCredentials.password: empty.", "password": REDACTED,
    }
    assert Redactor().redact(params)["text"] == "Invalid tenant config: apiCredentials.password: [redacted]"


# Real connector error texts (tap-shopify, tap-exact, target-exact, singer_sdk), both ways:
# what must stay exactly as it is, and the secret each one hides.
@pytest.mark.parametrize(
    "text",
    [
        "Invalid API token: Shopify returned 401",
        "singer_sdk.exceptions.FatalAPIError: 401 Client Error: Unauthorized for path: /admin/api/2024-01/shop.json",
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token",
        "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token\n:repeat: Failed 2 times",
        "  File \"/tap_exact/auth.py\", line 58, in update_access_token_locally\n    token_response.raise_for_status()",
        "requests.exceptions.HTTPError: 400 Client Error: Bad Request for url: https://start.exactonline.nl/api/oauth2/token",
        "singer_sdk.exceptions.RetriableAPIError: 500 Server Error: Internal Server Error for path: /admin/api/2024-01/orders.json",
        "target_exact: AttributeError: 'NoneType' object has no attribute 'strftime'",
        "Old refresh token used.",
        "Access token expired, refreshing token for tenant 3310",
        "Basic authentication failed",
        ":repeat: Failed again (2nd time): SYNC_FAILED, job mE2kV at 2026-11-28 06:30 UTC",
    ],
)
def test_connector_texts_that_hold_no_secret_stay_as_they_are(text: str) -> None:
    assert redactor.redact_text(text) == text
    assert redactor.redact({"message": text}) == {"message": text}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("HTTPError: 401 for Authorization: Basic dXNlcjpwYXNz", f"HTTPError: 401 for Authorization: {REDACTED}"),
        ("requesting with Basic dXNlcjpwYXNz failed", f"requesting with Basic {REDACTED} failed"),
        ("tap_exact: refresh token 8f3a9c2e71b4 was rejected", f"tap_exact: refresh token {REDACTED} was rejected"),
        ("refreshing with token eyJhbGciOiJIUzI1NiJ9.e30.x1", f"refreshing with token {REDACTED}"),
        ("Bearer ya29.a0AfH6SMBx rejected", f"Bearer {REDACTED} rejected"),
        ("ValueError: bad config {'pass': 'S1', 'key': 'S2', 'jwt': 'S3'}",
         f"ValueError: bad config {{'pass': {REDACTED}, 'key': {REDACTED}, 'jwt': {REDACTED}}}"),
        ("Invalid API token: shpat_0123456789abcdef", f"Invalid API token: {REDACTED}"),
        ("password: hunter2", f"password: {REDACTED}"),
    ],
)
def test_connector_texts_lose_their_secrets(text: str, expected: str) -> None:
    assert redactor.redact_text(text) == expected
    assert redactor.redact_text(expected) == expected


def test_pass_key_and_jwt_keys_are_secret_but_not_as_a_suffix() -> None:
    value = {"pass": "S1", "key": "S2", "jwt": "S3", "googleJwt": "S4", "replication_key": "updated_at",
             "primary_key": "id", "header": {"key": "api_key", "value": "S5"}}
    assert redactor.redact(value) == {
        "pass": REDACTED, "key": REDACTED, "jwt": REDACTED, "googleJwt": REDACTED, "replication_key": "updated_at",
        "primary_key": "id", "header": {"key": "api_key", "value": REDACTED},
    }


def test_the_rules_and_the_hotglue_client_use_the_same_rule_set() -> None:
    from hotglue_webhooks.clients.hotglue_api import redact_secrets
    from hotglue_webhooks.rules.messages import scrub

    value = {"pass": "S1", "jwt": "S2", "config": {"passphrase": "S3", "key": "S4"}, "note": "token: abc123"}
    assert redact_secrets(value) == redactor.redact(value, free_text=False)
    for text in ("Basic dXNlcjpwYXNz", "Invalid API token: Shopify returned 401", "x\n:repeat: y", "pass=S1"):
        assert scrub(text) == redactor.redact_text(text)


_texty = st.lists(
    st.sampled_from([*"abcXYZ019 :=\n'\"/@_-.[]{},", "token", "Basic ", "password", "://u:", "refresh ", REDACTED]),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_texty)
@example("token:''a")  # a quoted value with text after the quote (found by hypothesis)
@example('secret="x"y, more')
def test_redacting_text_twice_changes_nothing(text: str) -> None:
    once = redactor.redact_text(text)
    assert redactor.redact_text(once) == once


@settings(max_examples=200, deadline=None)
@given(st.recursive(_texty, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["pass", "key", "value", "name", "token", "note", "jwt"]), inner, max_size=3), max_leaves=8))
def test_redacting_a_value_twice_changes_nothing(value: object) -> None:
    once = redactor.redact(value)
    assert redactor.redact(once) == once
