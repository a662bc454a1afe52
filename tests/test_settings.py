"""Settings from HGW_* variables and the rules file: defaults, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotglue_webhooks.settings import SettingsError, load_rules, load_settings

NOT_A_PEER_URL = "must be an http:// or https:// URL with a host, e.g. https://api.example.com"


def test_defaults() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///hotglue-webhooks.db"
    assert settings.hotglue_api_url == "https://api.hotglue.com"
    assert settings.slack_channel == "#hotglue-webhooks"
    assert settings.retention_days == 30
    assert settings.max_body_bytes == 1024 * 1024
    # No key and no token: both peers are dry-run, so the service is safe out of the box.
    assert settings.hotglue_dry_run and settings.slack_dry_run


def test_environment_is_read_with_the_hgw_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HGW_RETENTION_DAYS", "7")
    monkeypatch.setenv("HGW_HOTGLUE_API_KEY", "k")
    monkeypatch.setenv("HGW_SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("HGW_DATABASE_URL", "postgresql://u@h/db")
    settings = load_settings()
    assert settings.retention_days == 7
    assert not settings.hotglue_dry_run and not settings.slack_dry_run
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert "xoxb-1" not in repr(settings)
    monkeypatch.setenv("HGW_DRY_RUN", "1")
    assert load_settings().hotglue_dry_run and load_settings().slack_dry_run


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HGW_RETENTION_DAYS", "soon", "HGW_RETENTION_DAYS: Input should be a valid integer, unable to parse string as an integer"),
        ("HGW_RETENTION_DAYS", "0", "HGW_RETENTION_DAYS: Input should be greater than or equal to 1"),
        ("HGW_DATABASE_URL", "mysql://x", "HGW_DATABASE_URL: Value error, must start with sqlite:// or postgresql+psycopg://"),
        ("HGW_BIND", "8000", "HGW_BIND: Value error, must be host:port, e.g. 127.0.0.1:8000"),
        ("HGW_DRY_RUN", "perhaps", "HGW_DRY_RUN: Input should be a valid boolean, unable to interpret input"),
        ("HGW_SLACK_CHANNEL", " ", "HGW_SLACK_CHANNEL: Value error, must name a Slack channel (#name or its id), not be blank"),
        ("HGW_SLACK_API_URL", "notaurl", f"HGW_SLACK_API_URL: Value error, {NOT_A_PEER_URL}"),
        ("HGW_HOTGLUE_API_URL", "ftp://x", f"HGW_HOTGLUE_API_URL: Value error, {NOT_A_PEER_URL}"),
        ("HGW_HOTGLUE_API_URL", "https://", f"HGW_HOTGLUE_API_URL: Value error, {NOT_A_PEER_URL}"),
        ("HGW_SLACK_API_URL", "http://h:99999/api/", f"HGW_SLACK_API_URL: Value error, {NOT_A_PEER_URL}"),
        ("HGW_HTTP_TIMEOUT_SECONDS", "inf", "HGW_HTTP_TIMEOUT_SECONDS: Input should be a finite number"),
        ("HGW_HTTP_TIMEOUT_SECONDS", "nan", "HGW_HTTP_TIMEOUT_SECONDS: Input should be a finite number"),
        ("HGW_HTTP_TIMEOUT_SECONDS", "0", "HGW_HTTP_TIMEOUT_SECONDS: Input should be greater than 0"),
        ("HGW_BODY_TIMEOUT_SECONDS", "-1", "HGW_BODY_TIMEOUT_SECONDS: Input should be greater than 0"),
        ("HGW_BODY_TIMEOUT_SECONDS", "Infinity", "HGW_BODY_TIMEOUT_SECONDS: Input should be a finite number"),
        ("HGW_POLL_SECONDS", "1e400", "HGW_POLL_SECONDS: Input should be a finite number"),
        ("HGW_RETRY_MAX_SECONDS", "inf", "HGW_RETRY_MAX_SECONDS: Input should be a finite number"),
        ("HGW_LEASE_SECONDS", "inf", "HGW_LEASE_SECONDS: Input should be a finite number"),
        ("HGW_SLACK_MIN_INTERVAL_SECONDS", "inf", "HGW_SLACK_MIN_INTERVAL_SECONDS: Input should be a finite number"),
        ("HGW_SLACK_PACING_HORIZON_SECONDS", "inf", "HGW_SLACK_PACING_HORIZON_SECONDS: Input should be a finite number"),
        ("HGW_PURGE_INTERVAL_SECONDS", "-inf", "HGW_PURGE_INTERVAL_SECONDS: Input should be a finite number"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HGW_SLACK_API_URL", "http://127.0.0.1:9002/api/"),
        ("HGW_HOTGLUE_API_URL", "https://api.hotglue.com"),
        ("HGW_HOTGLUE_API_URL", "http://[::1]:9001"),
    ],
)
def test_peer_urls_over_http_or_https_are_accepted(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    settings = load_settings()
    assert value in (settings.slack_api_url, settings.hotglue_api_url)


def test_rules_file_floats_must_be_finite(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[slack]\nrepeat_window_hours = inf\n")
    with pytest.raises(SettingsError) as raised:
        load_rules(path)
    assert str(raised.value) == f"{path}: line 2, slack.repeat_window_hours: Input should be a finite number"


def test_rules_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "rules.toml"
    broken.write_text('[slack]\nchannel = "#x"\nchannel = "#y"\n')
    with pytest.raises(SettingsError) as raised:
        load_rules(broken)
    assert str(raised.value).startswith(f"{broken}: ")
    assert "line 3" in str(raised.value)

    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[slack]\nchanel = "#typo"\n')
    with pytest.raises(SettingsError) as raised:
        load_rules(unknown)
    assert str(raised.value) == f"{unknown}: line 2, slack.chanel: Extra inputs are not permitted"

    with pytest.raises(SettingsError) as raised:
        load_rules(tmp_path / "missing.toml")
    assert "cannot read rules file" in str(raised.value)


def test_rules_file_shape_from_the_issue_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[slack]\nchannel = "#alerts"\n')
    assert load_rules(path).slack.channel == "#alerts"
    assert load_rules(None).slack.channel is None


@pytest.mark.parametrize("expression", ["cron(0 */6 * * ? *)", "cron(0 */6 * * *)", "cron(30 2 ? * MON-FRI 2026-2030)"])
def test_hotglue_schedule_expressions_are_accepted(tmp_path: Path, expression: str) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[schedules]\ndefault_expression = "{expression}"\n')
    assert load_rules(rules).schedules.default_expression == expression


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("0 */6 * * ? *", "is not a cron(...) expression"),
        ("cron(0 */6 * *)", "has 4 fields"),
        ("cron(61 * * * ? *)", "is not a valid cron expression"),
        ("cron(0 */6 * * ? 1800x)", "is not a valid cron expression"),
    ],
)
def test_a_bad_default_expression_stops_start_up_naming_the_key(tmp_path: Path, expression: str, why: str) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[schedules]\ndefault_expression = "{expression}"\n')
    with pytest.raises(SettingsError) as raised:
        load_rules(rules)
    message = str(raised.value)
    assert message.startswith(f"{rules}: line 2, schedules.default_expression: Value error, {expression!r} {why}")
    assert "\n" not in message
