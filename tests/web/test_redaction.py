"""No secret sent in a payload or a header surfaces anywhere: database, logs, API, HTML."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import inspect, text

from conftest import Receiver, payload, signed_headers
from hotglue_webhooks.redaction import REDACTED
from web.helpers import text_of

SECRETS = {
    "password": "pw-7Hq2-never-stored",
    "client_secret": "cs-9Jx4-never-stored",
    "refresh_token": "rt-3Kd8-never-stored",
    "api_key": "ak-5Lm1-never-stored",
    "apikey": "ak2-8Vb6-never-stored",
    "access_token": "at-2Nc7-never-stored",
    "x-api-key": "xak-6Pz3-never-stored",
    "token": "tk-4Qs9-never-stored",
    "authorization": "Basic au-1Rw5-never-stored",
    "secret": "sc-0Ty2-never-stored",
}
HEADER_SECRETS = {
    "X-Api-Key": "hdr-xak-never-stored",
    "Authorization": "Bearer hdr-bearer-never-stored",
    "X-Shopify-Access-Token": "hdr-shpat-never-stored",
    "Cookie": "session=hdr-cookie-never-stored",
}
ALL = list(SECRETS.values()) + [value.split(" ")[-1].split("=")[-1] for value in HEADER_SECRETS.values()]


def secret_payload() -> dict:
    event = payload("sync_failed__exact_token_401")
    event["override_source_config"] = {
        "apiCredentials": {"username": "shop@example.com", **{k: SECRETS[k] for k in ("password", "client_secret")}},
        "oauth": {"refresh_token": SECRETS["refresh_token"], "nested": [{"access_token": SECRETS["access_token"]}]},
        "api_key": SECRETS["api_key"],
        "apikey": SECRETS["apikey"],
        "x-api-key": SECRETS["x-api-key"],
    }
    event["override_target_config"] = {
        "token": SECRETS["token"],
        "Authorization": SECRETS["authorization"],
        "secret": SECRETS["secret"],
    }
    return event


def database_text(receiver: Receiver) -> str:
    """Every row of every table, as text."""
    engine = receiver.runtime.engine
    parts = []
    with engine.connect() as connection:
        for table in inspect(engine).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                parts.append(f"{table}: {tuple(row)!r}")
    return "\n".join(parts)


def test_a_secret_in_override_source_config_appears_nowhere(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    receiver = Receiver(database_url, log_format="json", admin_token="admin-token-x")
    try:
        body = json.dumps(secret_payload()).encode()
        answer = receiver.client.post("/webhooks/hotglue", data=body, headers={**signed_headers(body), **HEADER_SECRETS})
        assert answer.status_code == 202
        event_id = answer.json["id"]
        # The same body with a bad signature and as broken JSON: rejected, with an excerpt kept.
        assert receiver.post(body, headers={"X-Hub-Signature": "0" * 40}, sign_it=False).status_code == 401
        assert receiver.post(body[:-1]).status_code == 400
        receiver.worker().drain()
        receiver.client.post(f"/api/events/{event_id}/replay", json={}, headers={"Authorization": "Bearer admin-token-x"})
        receiver.worker().drain()

        stored = database_text(receiver)
        assert REDACTED in stored and "shop@example.com" in stored  # redacted, not dropped

        bearer = {"Authorization": "Bearer admin-token-x"}
        api = "\n".join(
            text_of(receiver.client.get(url, headers=bearer))
            for url in (
                "/api/events",
                f"/api/events/{event_id}",
                "/api/actions",
                "/api/tenants/3310/events",
                "/metrics",
            )
        )
        assert REDACTED in api
        form = text_of(receiver.client.get("/login"))
        token = form.split('name="csrf_token" value="')[1].split('"')[0]
        receiver.client.post("/login", data={"csrf_token": token, "token": "admin-token-x"})
        html = "\n".join(
            text_of(receiver.client.get(url))
            for url in ("/", f"/events/{event_id}", "/tenants", "/tenants/3310", "/dead", "/?q=never-stored")
        )
        assert "[redacted]" in html and "Rb7TnE4wz-exact-20261128-063000" in html
        logs = capsys.readouterr()
        assert "webhook_accepted" in logs.err and "webhook_rejected" in logs.err

        for secret in ALL:
            for where, haystack in (("database", stored), ("API", api), ("HTML", html), ("logs", logs.out + logs.err)):
                assert secret not in haystack, f"{secret} found in the {where}"
    finally:
        receiver.close()


def test_the_redacted_keys_are_configurable_for_payloads_and_headers(database_url: str) -> None:
    receiver = Receiver(database_url, redact_keys=("webshop_uuid", "x-custom-auth"))
    try:
        event = payload("job_created__scheduled")
        event["override_source_config"] = {"webshop_uuid": "uuid-never-stored", "password": "pw-never-stored"}
        answer = receiver.post(event, headers={"X-Custom-Auth": "hdr-never-stored"})
        detail = receiver.client.get(f"/api/events/{answer.json['id']}").json
        # Added to the defaults, never replacing them.
        assert detail["payload"]["override_source_config"] == {"webshop_uuid": REDACTED, "password": REDACTED}
        assert detail["headers"]["X-Custom-Auth"] == REDACTED
        assert "uuid-never-stored" not in database_text(receiver)
    finally:
        receiver.close()


def test_secrets_inside_config_strings_and_name_value_pairs_appear_nowhere(database_url: str) -> None:
    # A URL password, a connection string and a header list: the secret-looking word is
    # inside a value, not a key. Non-secret values next to them stay as they were.
    receiver = Receiver(database_url)
    try:
        event = payload("sync_failed__exact_token_401")
        event["override_source_config"] = {
            "db_url": "postgresql://bob:PW555@db/x",
            "connection": {"connection_string": "Server=x;Password=PW911;", "base_url": "https://api.example.com/x"},
        }
        event["override_target_config"] = {
            "url": "https://user:PW912@api.example.com",
            "headers": [{"name": "Authorization", "value": "PW913"}, {"name": "Accept", "value": "application/json"}],
            "params": [{"key": "api_key", "value": "PW914"}, {"name": "password", "value": "PW915"}],
        }
        answer = receiver.post(event)
        assert answer.status_code == 202
        detail = receiver.client.get(f"/api/events/{answer.json['id']}").json
        stored = detail["payload"]
        assert stored["override_source_config"] == {
            "db_url": f"postgresql://bob:{REDACTED}@db/x",
            "connection": {
                "connection_string": f"Server=x;Password={REDACTED};",
                "base_url": "https://api.example.com/x",
            },
        }
        assert stored["override_target_config"] == {
            "url": f"https://user:{REDACTED}@api.example.com",
            "headers": [{"name": "Authorization", "value": REDACTED}, {"name": "Accept", "value": "application/json"}],
            "params": [{"key": "api_key", "value": REDACTED}, {"name": "password", "value": REDACTED}],
        }
        assert stored["s3_root"] == event["s3_root"] and stored["job_name"] == event["job_name"]
        assert stored["tenant"] == "3310" and stored["start_time"] == event["start_time"]
        everything = database_text(receiver) + json.dumps(detail)
        for secret in ("PW555", "PW911", "PW912", "PW913", "PW914", "PW915"):
            assert secret not in everything
    finally:
        receiver.close()
