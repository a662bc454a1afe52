"""The hotglue-webhooks command line, against a real database and a real HTTP server."""

from __future__ import annotations

from pathlib import Path

import json
import threading
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from conftest import FIXTURES, SECRET, Receiver
from hotglue_webhooks.cli import main


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HGW_DATABASE_URL", database_url)
    monkeypatch.setenv("HGW_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("HGW_LOG_FORMAT", "console")
    return database_url


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


@pytest.fixture
def live_url(cli_env: str) -> Iterator[str]:
    """The receiver served over real HTTP on a free port."""
    receiver = Receiver(cli_env)
    server = make_server("127.0.0.1", 0, receiver.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/webhooks/hotglue"
    server.shutdown()
    server.server_close()
    thread.join()
    receiver.close()


def test_encode_and_decode() -> None:
    assert run("encode", "fullsync") == (0, "62112121925143\n")
    assert run("encode", "FullSync") == (0, "62112121925143\n")
    code, out = run("decode", "62112121925143")
    assert code == 0 and "fullsync" in out.split()
    code, out = run("decode", "971415185")
    assert code == 0 and "ignore" in out.split()


def test_decode_prints_the_likeliest_reading_and_how_to_see_the_others() -> None:
    result = CliRunner().invoke(main, ["decode", "62112121925143"], catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (0, "fullsync\n")
    assert result.stderr == (
        "135 other readings, longer or later in the alphabet; see them all with: decode 62112121925143 --all\n"
    )
    every = CliRunner().invoke(main, ["decode", "62112121925143", "--all"], catch_exceptions=False)
    words = every.stdout.split()
    assert len(words) == 136 and words[:2] == ["fullsync", "fballsync"] and every.stderr == ""
    assert CliRunner().invoke(main, ["decode", "2085"]).stderr == ""  # one reading only: "the"


def test_events_list_fits_columns_and_wraps_the_decision(cli_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = Receiver(cli_env)
    receiver.post({**json.loads((FIXTURES / "job_created__scheduled.json").read_text()), "tenant": "[red]t\u202eevil"})
    receiver.close()
    assert run("worker", "--once") == (0, "processed 1 event(s)\n")
    monkeypatch.setenv("COLUMNS", "100")
    code, out = run("events", "list")
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    tenant = "".join(line.split("│")[3].strip() for line in lines if line.count("│") > 2)
    assert tenant == "[red]t\\u202eevil"  # shown as text, the invisible character escaped
    # The decision is wrapped inside its column, never cut: its words are all there.
    decision = " ".join(line.split("│")[-2].strip() for line in lines if line.count("│") > 2)
    assert "no rule matched" in decision
    monkeypatch.setenv("COLUMNS", "240")
    wide = run("events", "list")[1].splitlines()
    assert len(wide) < len(lines) and max(len(line) for line in wide) <= 240


def test_send_signs_posts_and_prints_the_answers(live_url: str) -> None:
    files = [str(FIXTURES / "sync_failed__shopify_500.json"), str(FIXTURES / "job_created__scheduled.json")]
    code, out = run("send", "--url", live_url, *files)
    assert code == 0
    assert out.splitlines() == [
        'sync_failed__shopify_500.json: 202 {"duplicate":false,"id":"1"}',
        'job_created__scheduled.json: 202 {"duplicate":false,"id":"2"}',
    ]
    code, out = run("send", "--url", live_url, files[0])
    assert (code, out) == (0, 'sync_failed__shopify_500.json: 200 {"duplicate":true,"id":"1"}\n')


def test_send_to_a_url_httpx_cannot_parse_is_one_line() -> None:
    result = CliRunner().invoke(main, ["send", "--url", "http://[::1", str(FIXTURES / "sync_failed__shopify_500.json")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: http://[::1: ") and result.output.count("\n") == 1
    assert "Traceback" not in result.output


def test_send_with_the_wrong_secret_exits_non_zero(live_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HGW_WEBHOOK_SECRET", "forged")
    code, out = run("send", "--url", live_url, str(FIXTURES / "sync_failed__shopify_500.json"))
    assert code == 1
    assert out == 'sync_failed__shopify_500.json: 401 {"error":"X-Hub-Signature does not match the body"}\n'


def test_events_list_show_replay_and_purge(cli_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `worker --once` drains what is due: without this, the alert would wait its group wait.
    rules = tmp_path / "rules.toml"
    rules.write_text("[incidents]\ngroup_wait_seconds = 0\n")
    monkeypatch.setenv("HGW_RULES_FILE", str(rules))
    receiver = Receiver(cli_env)
    receiver.post("sync_failed__shopify_500")
    receiver.post("job_created__scheduled")
    receiver.close()
    assert run("worker", "--once") == (0, "processed 2 event(s)\n")

    code, out = run("events", "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [(e["status"], e["state"]) for e in listed] == [("JOB_CREATED", "done"), ("SYNC_FAILED", "done")]
    assert listed[0]["actions"] == []
    [alert] = listed[1]["actions"]
    assert (alert["kind"], alert["state"]) == ("slack.post_message", "dry_run")

    code, out = run("events", "list", "--tenant", "4821", "--status", "SYNC_FAILED", "--since", "1h")
    assert code == 0 and "SYNC_FAILED" in out and "JOB_CREATED" not in out
    assert run("events", "list", "--since", "whenever")[0] == 2

    code, out = run("events", "show", "1")
    assert json.loads(out)["actions"][0]["request"]["json"]["channel"] == "#hotglue-webhooks"
    assert run("events", "show", "99")[0] == 1

    # replay queues the event for the running worker; this process acts on nothing.
    assert run("replay", "1", "--no-wait") == (0, "event 1: queued (retrying); the running worker takes it up\n")
    assert run("replay", "1", "--wait", "0.3") == (0, "event 1: queued (retrying); the running worker takes it up\n")
    assert run("events", "list", "--json")[1].count('"state": "retrying"') == 1
    def running_worker() -> None:
        elsewhere = Receiver(cli_env)
        elsewhere.worker().drain()
        elsewhere.close()

    worker = threading.Timer(0.5, running_worker)
    worker.start()
    code, out = run("replay", "1", "--wait", "20")
    worker.join()
    assert code == 0
    assert out.splitlines()[0].startswith("event 1: done; failure_alert")
    assert "slack.post_message [dry_run]" in out

    code, out = run("purge")
    assert code == 0 and out.startswith("purged 0 event(s), 0 action(s), 0 rejection(s)")


def test_a_bad_setting_stops_the_command_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HGW_RETENTION_DAYS", "-3")
    code, out = run("purge")
    assert code == 1
    assert out == "Error: HGW_RETENTION_DAYS: Input should be greater than or equal to 1\n"


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("HGW_SLACK_API_URL", "notaurl", "must be an http:// or https:// URL with a host"),
        ("HGW_HOTGLUE_API_URL", "ftp://x", "must be an http:// or https:// URL with a host"),
        ("HGW_HTTP_TIMEOUT_SECONDS", "inf", "Input should be a finite number"),
    ],
)
def test_check_config_refuses_a_bad_peer_url_or_timeout(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, complaint: str
) -> None:
    # It used to exit 0 and call the peers "live".
    monkeypatch.setenv(name, value)
    code, out = run("check-config")
    assert code == 1
    assert out.startswith(f"Error: {name}: ") and complaint in out and out.count("\n") == 1


def test_a_missing_sqlite_file_is_named_and_not_created(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # E.g. the CLI run outside the clone with the default (relative) URL.
    missing = tmp_path / "hotglue-webhooks.db"
    monkeypatch.setenv("HGW_DATABASE_URL", f"sqlite:///{missing}")
    for args in (("events", "list"), ("events", "show", "1"), ("replay", "1"), ("purge",), ("worker", "--once")):
        code, out = run(*args)
        assert (code, out.count("\n")) == (1, 1), args
        assert out.startswith(f"Error: no database at {missing}: run this where `serve` runs"), out
        assert not missing.exists()
    assert run("check-config")[0] == 0  # needs no database


def test_a_database_without_the_schema_is_named_in_one_line(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An empty SQLite file (created by something else): the missing schema is named.
    (tmp_path / "empty.db").touch()
    monkeypatch.setenv("HGW_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    code, out = run("events", "list")
    assert code == 1
    assert out.startswith(f"Error: database sqlite:///{tmp_path / 'empty.db'}: no such table: events")
    assert out.endswith("run `hotglue-webhooks db upgrade`, or set HGW_DATABASE_URL)\n")
    assert out.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("events", "show", "99999999999999999999999"), "99999999999999999999999 is not in the range"),
        (("replay", "99999999999999999999999"), "99999999999999999999999 is not in the range"),
        (("events", "list", "--since", "99999999999h"), "99999999999h reaches before the year 1"),
        (("actions", "replay", "--since", "1000000d", "--yes"), "1000000d reaches before the year 1"),
        (("purge", "--days", "99999999999"), "99999999999 is not in the range 1<=x<=36500"),
    ],
)
def test_numbers_out_of_range_are_refused_in_one_line(cli_env: str, args: tuple[str, ...], complaint: str) -> None:
    code, out = run(*args)
    assert code == 2
    assert complaint in out and "Traceback" not in out


def test_db_upgrade_is_idempotent(cli_env: str) -> None:
    code, out = run("db", "upgrade")
    assert code == 0 and out.startswith("database at the newest schema: ")
    assert run("db", "upgrade")[0] == 0


def test_check_config_prints_what_it_understood(cli_env: str) -> None:
    code, out = run("check-config")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("rules file:") and lines[0].endswith("defaults/rules.toml")
    assert [line for line in lines if "MISSING" in line or " set" in line] == [
        "HotGlue:         https://api.hotglue.com (dry-run; HGW_HOTGLUE_API_KEY MISSING)",
        "Slack:           https://slack.com/api/ (dry-run; HGW_SLACK_BOT_TOKEN MISSING)",
        "admin token:     MISSING (dashboard and admin API need no login)",
    ]
    assert "full-sync marks: 'full sync', 62112121925143 (fullsync)" in lines
    assert "ignore marks:    971415185 (ignore)" in lines
    assert (
        "target link:     flow Xk2pQ9aLm tap * -> link optiply in flow Xk2pQ9aLm with the tenant config's "
        "apiCredentials, schedule cron(0 */6 * * ? *)"
    ) in lines


def test_check_config_names_the_file_line_and_reason(
    cli_env: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[schedules]\ndefault_expresion = "cron(0 * * * ? *)"\n')
    monkeypatch.setenv("HGW_RULES_FILE", str(rules))
    code, out = run("check-config")
    assert code == 1
    assert out == f"Error: {rules}: line 2, schedules.default_expresion: Extra inputs are not permitted\n"


def test_environments_with_a_missing_key_are_reported(cli_env: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[environments."prod.example.com"]\napi_key_env = "HGW_KEY_PROD"\nslack_channel = "#prod"\n'
        '[environments."dev.example.com"]\napi_key_env = "HGW_KEY_DEV"\n'
    )
    monkeypatch.setenv("HGW_RULES_FILE", str(rules))
    monkeypatch.setenv("HGW_KEY_PROD", "prod-secret-key")
    code, out = run("check-config")
    assert code == 0
    assert "  prod.example.com: API key set (HGW_KEY_PROD), channel #prod" in out.splitlines()
    assert "  dev.example.com: API key MISSING (HGW_KEY_DEV), channel #hotglue-webhooks" in out.splitlines()
    assert "prod-secret-key" not in out


def test_explain_reads_facts_and_prints_the_plan_without_acting(cli_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from hotglue_webhooks.fakes import FakeHotGlue

    env = "production.hotglue.example.com"
    with FakeHotGlue(api_key="k") as hotglue:
        hotglue.set_schedule(env, "Xk2pQ9aLm", "4821", "cron(0 1 * * ? *)", "DISABLED")
        hotglue.set_tenant_config(
            env, "4821",
            {"apiCredentials": {"username": "u", "password": "pw-secret", "client_id": "c", "client_secret": "s", "account_id": 1}},
        )
        monkeypatch.setenv("HGW_HOTGLUE_API_URL", hotglue.url)
        monkeypatch.setenv("HGW_HOTGLUE_API_KEY", "k")
        code, out = run("explain", str(FIXTURES / "job_completed__full_sync.json"))
        methods = {r.method for r in hotglue.requests}
        url = hotglue.url
    assert code == 0
    assert methods == {"GET"}  # facts read, nothing written
    assert "full_sync: tenant config valid" in out
    assert f"  PUT {url}/{env}/Xk2pQ9aLm/4821/jobs/schedule" in out
    assert f"  POST {url}/{env}/Xk2pQ9aLm/4821/linkedTargets" in out
    assert '"config": "<apiCredentials from the tenant config>"' in out
    assert f"  POST {url}/{env}/Xk2pQ9aLm/4821/jobs" in out
    assert "pw-secret" not in out
    code, out = run("explain", str(FIXTURES / "job_completed__incremental.json"))
    assert "actions: none" in out and "no rule matched" in out
