"""The ``hotglue-webhooks`` command line (click, as Flask already ships it)."""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import httpx
from sqlalchemy.exc import SQLAlchemyError

from hotglue_webhooks.ingest import parse_time
from hotglue_webhooks.settings import Settings, SettingsError, load_settings, secret_value
from hotglue_webhooks.signature import HEADER, sign


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


def _runtime(migrate: bool = False, database: bool = True) -> Any:
    """The command's Runtime. ``migrate`` creates or upgrades the database; otherwise, with
    ``database``, a SQLite file that does not exist is an error rather than a new empty
    database (the default URL is relative: run from elsewhere, it would not be serve's)."""
    from hotglue_webhooks.runtime import Runtime
    from hotglue_webhooks.storage.db import sqlite_file

    try:
        runtime = Runtime(_settings())
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    path = sqlite_file(runtime.settings.database_url)
    if not migrate and database and path is not None and not path.exists():
        raise click.ClickException(
            f"no database at {path.resolve()}: run this where `serve` runs, or set HGW_DATABASE_URL to "
            "the database it uses (`db upgrade` creates a new, empty one)"
        )
    click.get_current_context().call_on_close(runtime.close)
    if migrate:
        try:
            runtime.migrate()
        except OSError as error:  # a database error goes to _Commands, like any command's
            raise click.ClickException(_database_error(error)) from None
    return runtime


def _first_line(error: BaseException) -> str:
    """One line of a database error: the driver's message without SQLAlchemy's footer."""
    original = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__


def _safe_url(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable URL)"


class _Commands(click.Group):
    """The command group; a database error ends any command with one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as error:
            raise click.ClickException(_database_error(error)) from None


def _database_error(error: BaseException) -> str:
    """One line naming the database (password hidden) and what went wrong with it."""
    try:
        url = _safe_url(load_settings().database_url)
    except SettingsError:
        url = "(HGW_DATABASE_URL)"
    message = f"database {url}: {_first_line(error)}"
    original = getattr(error, "orig", None)
    if "no such table" in str(original) or type(original).__name__ == "UndefinedTable":
        message += " (no schema here: run `hotglue-webhooks db upgrade`, or set HGW_DATABASE_URL)"
    return message


@click.group(cls=_Commands)
def main() -> None:
    """Receive HotGlue job-lifecycle webhooks and turn them into Slack alerts and HotGlue actions.

    Configuration comes from HGW_* environment variables (see the README).
    """


# -- processes -------------------------------------------------------------------------


@main.command()
def serve() -> None:
    """Run the web server and ``HGW_SERVE_WORKERS`` worker processes together (the
    embedded default).

    The port is bound first (in use: one line, exit 1); children die with serve, and a
    child that exits is started again after a back-off (see supervisor.py).
    """
    from hotglue_webhooks.prometheus_dir import use_multiprocess_dir
    from hotglue_webhooks.supervisor import PortInUse, Supervisor, bind_listener, serve_children

    settings = _settings()
    try:
        listener = bind_listener(settings.bind)
    except PortInUse as error:
        raise click.ClickException(f"{error} (HGW_BIND; is another serve running?)") from None
    use_multiprocess_dir()  # before prometheus-client loads: /metrics then counts web and worker
    runtime = _runtime(migrate=True)
    runtime.close()
    _banner(settings)

    def say(line: str) -> None:
        click.echo(f"hotglue-webhooks serve: {line}", err=True)

    code = Supervisor(serve_children(listener, settings.serve_workers), log=say).run()
    listener.close()
    sys.exit(code)


def _banner(settings: Settings) -> None:
    host, _, port = settings.bind.rpartition(":")
    click.echo(f"hotglue-webhooks: listening on http://{host}:{port}/webhooks/hotglue", err=True)
    click.echo(f"  database:  {_safe_url(settings.database_url)}", err=True)
    click.echo(
        f"  signature: {'required (HGW_WEBHOOK_SECRET set)' if settings.webhook_secret else 'not checked (HGW_WEBHOOK_SECRET unset)'}",
        err=True,
    )
    click.echo(f"  HotGlue:   {'dry-run' if settings.hotglue_dry_run else settings.hotglue_api_url}", err=True)
    click.echo(f"  Slack:     {'dry-run' if settings.slack_dry_run else settings.slack_channel}", err=True)
    if not settings.admin_token and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            "  WARNING: HGW_ADMIN_TOKEN is unset and the dashboard and admin API are reachable beyond localhost",
            err=True,
        )


@main.command()
@click.option("--fd", type=int, default=None, hidden=True, help="Serve on this inherited, bound socket (serve).")
def web(fd: int | None) -> None:
    """Run only the HTTP server (gunicorn), for scale-out."""
    from hotglue_webhooks.prometheus_dir import use_multiprocess_dir

    use_multiprocess_dir()  # before prometheus-client loads: every gunicorn worker counts into it

    settings = _settings()
    from hotglue_webhooks.app import create_app

    try:
        create_app(settings)  # fail now, in one line, rather than in every gunicorn worker
    except SettingsError as error:
        raise click.ClickException(str(error)) from None

    from hotglue_webhooks.web import server

    server.run(settings, fd=fd)


@main.command()
@click.option("--once", is_flag=True, help="Process what is due now, then exit.")
def worker(once: bool) -> None:
    """Run only the worker (claims events, decides, acts), for scale-out."""
    from hotglue_webhooks.logs import configure_logging

    runtime = _runtime()
    settings = runtime.settings
    configure_logging(settings.log_level, settings.log_format, runtime.redactor)
    the_worker = runtime.worker()
    if once:
        count = the_worker.drain()
        click.echo(f"processed {count} event(s)")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    the_worker.run(stop)


# -- sending ---------------------------------------------------------------------------


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", default=None, help="Webhook URL (default: http://HGW_BIND/webhooks/hotglue).")
def send(files: tuple[Path, ...], url: str | None) -> None:
    """Sign each FILE with HGW_WEBHOOK_SECRET, POST it, and print the answer."""
    settings = _settings()
    if url is None:
        host, _, port = settings.bind.rpartition(":")
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "[::]") else host
        url = f"http://{host}:{port}/webhooks/hotglue"
    secret = secret_value(settings.webhook_secret)
    failed = False
    with httpx.Client(timeout=30) as client:
        for path in files:
            body = path.read_bytes()
            headers = {"Content-Type": "application/json"}
            if secret:
                headers[HEADER] = sign(body, secret)
            try:
                answer = client.post(url, content=body, headers=headers)
            except (httpx.HTTPError, httpx.InvalidURL) as error:
                raise click.ClickException(f"{url}: {error}") from None
            click.echo(f"{path.name}: {answer.status_code} {answer.text.strip()}")
            failed = failed or answer.status_code >= 400
    if failed:
        sys.exit(1)


# -- looking at events -----------------------------------------------------------------


# Event ids are 64-bit integers in both databases; a larger number cannot name one.
EVENT_ID = click.IntRange(1, 2**63 - 1)
MAX_DAYS = 36_500  # a hundred years: further back than any datetime arithmetic needs


def _since(value: str | None) -> datetime | None:
    """Accept an ISO time or a relative one: 30m, 12h, 7d."""
    if value is None:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if value[:-1].isdigit() and value[-1:] in units:
        try:
            return datetime.now(UTC) - timedelta(**{units[value[-1]]: int(value[:-1])})
        except (OverflowError, ValueError):
            raise click.BadParameter(f"{value} reaches before the year 1", param_hint="--since") from None
    parsed = parse_time(value)
    if parsed is None:
        raise click.BadParameter("use an ISO-8601 time or a relative one like 30m, 12h, 7d", param_hint="--since")
    return parsed


@main.group()
def events() -> None:
    """Look at stored events."""


@events.command("list")
@click.option("--tenant")
@click.option("--flow", "flow_id")
@click.option("--status")
@click.option("--since", help="ISO-8601 time, or 30m / 12h / 7d ago.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="One JSON document with every event.")
def events_list(
    tenant: str | None, flow_id: str | None, status: str | None, since: str | None, limit: int, as_json: bool
) -> None:
    """List events, newest first."""
    from hotglue_webhooks.storage.queries import EventFilter, action_view, event_summary, get_event, list_events

    runtime = _runtime()
    rows = list_events(
        runtime.sessions, EventFilter(tenant=tenant, flow_id=flow_id, status=status, since=_since(since)), limit=limit
    )
    if as_json:
        out = []
        for row in rows:
            found = get_event(runtime.sessions, row.id)
            actions = found[1] if found else []
            out.append({**event_summary(row), "actions": [action_view(a) for a in actions]})
        click.echo(json.dumps(out, indent=2))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from hotglue_webhooks.display import escape_invisible

    # Id, time and state never wrap; the other columns fold within the width,
    # so no value is cut. Values are Text, not markup: a tenant id "[red]x" stays as is.
    table = Table(expand=False)
    for name, fixed in (("id", True), ("received (UTC)", True), ("tenant", False), ("flow", False),
                        ("status", False), ("sync_type", False), ("state", True)):
        table.add_column(name, no_wrap=fixed, overflow="fold", max_width=None if fixed else 24)
    table.add_column("decision", overflow="fold", ratio=1)
    for row in rows:
        table.add_row(
            Text(str(row.id)),
            Text(row.received_at.strftime("%Y-%m-%d %H:%M:%S")),
            Text(escape_invisible(row.tenant or "")),
            Text(escape_invisible(row.flow_id or "")),
            Text(row.status or ""),
            Text(row.sync_type or ""),
            Text(row.state),
            Text(escape_invisible("; ".join(row.decision or []))),
        )
    # The terminal's width; COLUMNS when set (a pipe, a narrow split); 120 for a pipe without it.
    Console(width=shutil.get_terminal_size((120, 24)).columns).print(table)


@events.command("show")
@click.argument("event_id", type=EVENT_ID)
def events_show(event_id: int) -> None:
    """Show one event, its decision and its actions with their outcomes (JSON)."""
    from hotglue_webhooks.storage.queries import event_detail, get_event

    found = get_event(_runtime().sessions, event_id)
    if found is None:
        raise click.ClickException(f"no event {event_id}")
    click.echo(json.dumps(event_detail(*found), indent=2))


@main.command()
@click.argument("event_id", type=EVENT_ID)
@click.option(
    "--wait", "wait_seconds", type=click.FloatRange(0, 3600), default=30.0, show_default=True,
    help="Seconds to wait for the running worker to process it.",
)
@click.option("--no-wait", is_flag=True, help="Queue it and return at once.")
@click.option(
    "--live", is_flag=True,
    help="Also send for real what it recorded as dry-run (asks first, showing the event's age).",
)
@click.option("--yes", is_flag=True, help="With --live: do not ask.")
def replay(event_id: int, wait_seconds: float, no_wait: bool, live: bool, yes: bool) -> None:
    """Queue an event to be decided again; actions already done stay done.

    The running worker does it, with its own HotGlue keys and Slack token: this shell's
    settings (often none) would record the actions as dry-runs, which are final. Dry-run
    records stay dry_run until replayed with --live, which needs this shell to have the
    keys the worker has (it refuses otherwise: they would be dry-runs again).
    """
    from hotglue_webhooks.replay import LiveReplayRefused, plan_live_replay, replay_live
    from hotglue_webhooks.storage.models import EVENT_DEAD, EVENT_DONE
    from hotglue_webhooks.storage.queries import action_view, get_event
    from hotglue_webhooks.worker import reopen_event

    runtime = _runtime()
    if live:
        try:
            plan = plan_live_replay(runtime, event_id)
        except LiveReplayRefused as refused:
            raise click.ClickException(f"replay --live: {refused}") from None
        now = datetime.now(UTC)
        click.echo(plan.summary(now), err=True)
        if not yes:
            click.confirm("send them for real?", abort=True, err=True)
        if not replay_live(runtime, plan, now):
            raise click.ClickException(f"no event {event_id}")
    elif not reopen_event(runtime.sessions, event_id, datetime.now(UTC)):
        raise click.ClickException(f"no event {event_id}")
    deadline = time.monotonic() + (0 if no_wait else wait_seconds)
    while True:
        found = get_event(runtime.sessions, event_id)
        assert found is not None
        event, actions = found
        finished = event.state in (EVENT_DONE, EVENT_DEAD) and event.decided_at is not None
        if finished or time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    if not finished:
        click.echo(f"event {event_id}: queued ({event.state}); the running worker takes it up")
        return
    click.echo(f"event {event_id}: {event.state}; {'; '.join(event.decision or [])}")
    for action in actions:
        view = action_view(action)
        click.echo(f"  {view['kind']} [{view['state']}] {view['idempotency_key']}")


@main.group()
def actions() -> None:
    """Look after decided actions."""


@actions.command("replay")
@click.option("--tenant")
@click.option("--flow", "flow_id")
@click.option("--kind", help="e.g. slack.post_message, hotglue.put_schedule")
@click.option("--rule")
@click.option("--since", help="Died at or after: ISO-8601 time, or 30m / 12h / 7d ago.")
@click.option("--until", help="Died before: ISO-8601 time, or 30m / 12h / 7d ago.")
@click.option("--yes", is_flag=True, help="Do not ask before replaying.")
def actions_replay(
    tenant: str | None, flow_id: str | None, kind: str | None, rule: str | None,
    since: str | None, until: str | None, yes: bool,
) -> None:
    """Replay the dead actions the filters select: their events are decided and acted on
    again by the running worker; actions already done stay done."""
    from rich.console import Console
    from rich.progress import Progress

    from hotglue_webhooks.metrics import count_replays
    from hotglue_webhooks.storage.queries import ActionFilter, action_event_ids
    from hotglue_webhooks.worker import reopen_events

    runtime = _runtime()
    until_at = _since(until) if until else None
    selection = ActionFilter(
        state="dead", tenant=tenant, flow_id=flow_id, kind=kind, rule=rule, since=_since(since), until=until_at
    )
    matched, event_ids = action_event_ids(runtime.sessions, selection)
    if not event_ids:
        click.echo("no dead actions match")
        return
    if not yes:
        click.confirm(f"replay {matched} dead action(s) of {len(event_ids)} event(s)?", abort=True, err=True)
    stderr = Console(stderr=True)
    with Progress(console=stderr, transient=True, disable=not stderr.is_terminal) as progress:
        task = progress.add_task("reopening events", total=len(event_ids))
        reopened = reopen_events(
            runtime.sessions, event_ids, datetime.now(UTC), progress=lambda _id: progress.advance(task)
        )
    count_replays("cli", reopened)
    click.echo(f"replayed {matched} dead action(s) of {reopened} event(s); the worker takes them up now")


def _ahead(text: str) -> datetime:
    """A time ahead: ISO-8601, or a duration from now (``30m``, ``2h``, ``7d``)."""
    units = {"m": 60, "h": 3600, "d": 86400}
    text = text.strip()
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(UTC) + timedelta(seconds=int(text[:-1]) * units[text[-1]])
    moment = parse_time(text)
    if moment is None:
        raise click.BadParameter(f"{text!r}: use ISO-8601 (2026-12-07T18:00Z) or a duration (30m, 2h, 7d)")
    return moment


@main.group()
def snooze() -> None:
    """Hold the Slack alerts of a tenant or an incident signature until a time.

    A snoozed failure is still stored, decided, shown and acted on in HotGlue; only its
    Slack alert is held. When the snooze ends, one summary of what happened is posted.
    """


def _make_snooze(scope: str, target: str, for_: str | None, until: str | None, by: str, reason: str | None) -> None:
    from hotglue_webhooks.storage.db import write_session
    from hotglue_webhooks.storage.snoozes import snooze as make

    if (for_ is None) == (until is None):
        raise click.UsageError("give exactly one of --for DURATION or --until TIME")
    end = _ahead(for_ or until or "")
    runtime = _runtime()
    try:
        with write_session(runtime.sessions) as session:
            made = make(session, scope=scope, target=target, until=end, by=by, reason=reason,
                        max_days=runtime.rules.snooze.max_days)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"snooze {made.id}: {scope} {target} until {made.until.isoformat()} by {made.by}")


_SNOOZE_OPTIONS = [
    click.option("--for", "for_", metavar="DURATION", help="How long: 30m, 2h, 7d."),
    click.option("--until", metavar="TIME", help="Until when: ISO-8601 (UTC unless an offset is given)."),
    click.option("--by", default="cli", show_default=True, help="Who snoozes (recorded)."),
    click.option("--reason", help="Why (recorded, shown in the summary)."),
]


def _with_snooze_options(command: Any) -> Any:
    for option in reversed(_SNOOZE_OPTIONS):
        command = option(command)
    return command


@snooze.command("tenant")
@click.argument("tenant")
@_with_snooze_options
def snooze_tenant(tenant: str, for_: str | None, until: str | None, by: str, reason: str | None) -> None:
    """Hold every Slack alert of TENANT."""
    _make_snooze("tenant", tenant, for_, until, by, reason)


@snooze.command("signature")
@click.argument("signature")
@_with_snooze_options
def snooze_signature(signature: str, for_: str | None, until: str | None, by: str, reason: str | None) -> None:
    """Hold the Slack alerts of one failure signature (shown on incident messages and by `incidents`)."""
    _make_snooze("signature", signature, for_, until, by, reason)


@snooze.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also the snoozes that ended.")
def snooze_list(show_all: bool) -> None:
    """The snoozes in force (or all, newest first), with who, until when and how many alerts held."""
    from hotglue_webhooks.display import escape_invisible
    from hotglue_webhooks.storage.snoozes import active_snoozes, recent_snoozes

    runtime = _runtime()
    with runtime.sessions() as session:
        rows = recent_snoozes(session) if show_all else active_snoozes(session, datetime.now(UTC))
    if not rows:
        click.echo("no snooze in force" if not show_all else "no snooze")
        return
    for row in rows:
        click.echo(
            f"{row.id}\t{row.scope} {escape_invisible(row.target)}\tuntil {row.until.isoformat()}\tby {escape_invisible(row.by)}"
            f"\theld {row.held}" + (f"\t{escape_invisible(row.reason)}" if row.reason else "")
        )


@snooze.command("lift")
@click.argument("snooze_id", type=click.IntRange(1, 2**63 - 1))
def snooze_lift(snooze_id: int) -> None:
    """End snooze SNOOZE_ID now; its summary follows."""
    from hotglue_webhooks.storage.db import write_session
    from hotglue_webhooks.storage.snoozes import lift

    runtime = _runtime()
    with write_session(runtime.sessions) as session:
        lifted = lift(session, snooze_id)
    if lifted is None:
        raise click.ClickException(f"no snooze {snooze_id}")
    click.echo(f"snooze {lifted.id} ends {lifted.until.isoformat()}; the worker posts its summary")


@main.command()
@click.option("--all", "show_all", is_flag=True, help="Also resolved and expired ones.")
def incidents(show_all: bool) -> None:
    """Incidents (a failure shared by many tenants), newest first: id, state, signature, tenants, what."""
    from hotglue_webhooks.storage.incidents import incident_rows

    runtime = _runtime()
    rows = incident_rows(runtime.sessions, open_only=not show_all)
    if not rows:
        click.echo("no open incident" if not show_all else "no incident")
        return
    for row in rows:
        click.echo(
            f"{row['id']}\t{row['state']}\t{row['group']}\t{row['tenants']} tenants ({row['recovered']} recovered)"
            f"\t{row['stage']} on {row['connector']}\tsince {row['first_seen_at']}"
        )


@main.command()
@click.option("--days", type=click.IntRange(1, MAX_DAYS), default=None, help="Default: HGW_RETENTION_DAYS.")
def purge(days: int | None) -> None:
    """Delete events (and their actions) and rejections older than the retention."""
    from rich.console import Console
    from rich.progress import Progress

    from hotglue_webhooks.retention import purge as run_purge

    runtime = _runtime()
    retention = days or runtime.settings.retention_days
    stderr = Console(stderr=True)
    with Progress(console=stderr, transient=True, disable=not stderr.is_terminal) as progress:
        task = progress.add_task("purging events", total=None)
        result = run_purge(
            runtime.sessions, retention, batch_size=runtime.settings.purge_batch_size,
            progress=lambda n: progress.advance(task, n),
        )
    click.echo(
        f"purged {result.events} event(s), {result.actions} action(s), {result.rejections} rejection(s) "
        f"received before {result.cutoff.isoformat()}"
    )


@main.command()
@click.option("--since", default="24h", show_default=True, help="Recover stages updated since: ISO-8601, or 30m / 12h / 7d ago.")
@click.option("--tenant")
@click.option("--flow", "flow_id")
@click.option("--dry-run", is_flag=True, help="Store nothing; print what would be recovered.")
def reconcile(since: str, tenant: str | None, flow_id: str | None, dry_run: bool) -> None:
    """Compare HotGlue's job lists with the log once, and store the terminal stages whose
    webhooks never arrived (processed by the running worker).

    Reads GET /{env_id}/{flow_id}/{tenant}/jobs for every pair of the log (paced by
    HGW_RECONCILE_MAX_RPS); ends with pairs read, jobs seen, stages recovered by status,
    errors and silent pairs. A pass of the same filters left unfinished is resumed.
    """
    from rich.console import Console
    from rich.progress import Progress

    from hotglue_webhooks.reconcile import PairProgress

    runtime = _runtime()
    start = _since(since)
    assert start is not None
    stderr = Console(stderr=True)
    with Progress(console=stderr, transient=True, disable=not stderr.is_terminal) as bar:
        task = bar.add_task("reading job lists", total=None)

        def advance(step: PairProgress) -> None:
            bar.update(task, completed=step.position, description=f"reading job lists ({step.pair})")

        summary = runtime.reconciler().run(
            start, tenant=tenant, flow_id=flow_id, dry_run=dry_run, progress=advance,
            started=lambda total: bar.update(task, total=total),
        )
    if dry_run:
        for stage in summary.would_recover:
            click.echo(f"would recover {stage['status']} {stage['s3_root']} ({stage['pair']}, {stage['last_updated']})")
    for line in summary.lines():
        click.echo(line)
    if summary.recovered and not dry_run:
        click.echo("the running worker processes the recovered stages")


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    runtime = _runtime(migrate=True)
    click.echo(f"database at the newest schema: {_safe_url(runtime.settings.database_url)}")


# -- configuration and plans -----------------------------------------------------------


@main.command("check-config")
def check_config() -> None:
    """Validate the settings and the rules file, and print what was understood."""
    from hotglue_webhooks.rules.markers import encode as encode_word
    from hotglue_webhooks.settings import DEFAULT_RULES_FILE

    runtime = _runtime(database=False)
    settings, rules = runtime.settings, runtime.rules
    out = click.echo
    out(f"rules file:      {settings.rules_file or DEFAULT_RULES_FILE}")
    out(f"database:        {_safe_url(settings.database_url)}")
    out(f"signature:       {'required' if settings.webhook_secret else 'not checked (HGW_WEBHOOK_SECRET unset)'}")
    out(
        f"HotGlue:         {settings.hotglue_api_url} ({'dry-run' if settings.hotglue_dry_run else 'live'}; "
        f"HGW_HOTGLUE_API_KEY {'set' if secret_value(settings.hotglue_api_key) else 'MISSING'})"
    )
    out(
        f"Slack:           {settings.slack_api_url} ({'dry-run' if settings.slack_dry_run else 'live'}; "
        f"HGW_SLACK_BOT_TOKEN {'set' if secret_value(settings.slack_bot_token) else 'MISSING'})"
    )
    out(f"admin token:     {'set' if secret_value(settings.admin_token) else 'MISSING (dashboard and admin API need no login)'}")
    allowed = ", ".join(settings.slack_allowed_users) or "everyone in the workspace"
    out(
        "Slack buttons:   "
        + (f"on (HGW_SLACK_SIGNING_SECRET set; clicks act for {allowed})" if settings.slack_buttons
           else "off (HGW_SLACK_SIGNING_SECRET unset: no buttons, /slack/interactions answers 404)")
    )
    attention = rules.attention
    out(f"attention:       {attention.repeated_failures} failures of a flow within {attention.window_hours:g} h")
    out(f"channel:         {rules.slack.channel or settings.slack_channel}")
    for rule, channel in sorted(rules.slack.channels_by_rule.items()):
        out(f"  {rule} -> {channel}")
    if rules.environments:
        out("environments (events from any other env_id are flagged, not acted on):")
        for env_id, environment in sorted(rules.environments.items()):
            key = "set" if runtime.api_keys.get(env_id) else "MISSING"
            out(
                f"  {env_id}: API key {key} ({environment.api_key_env or 'HGW_HOTGLUE_API_KEY'}), "
                f"channel {rules.environment_channel(env_id, settings.slack_channel)}"
            )
    else:
        out("environments:    any env_id, with HGW_HOTGLUE_API_KEY")
    markers = rules.markers
    out(
        "full-sync marks: "
        + ", ".join([repr(m) for m in markers.full_sync] + [f"{encode_word(w)} ({w})" for w in markers.full_sync_encoded])
    )
    out(
        "ignore marks:    "
        + (", ".join([repr(m) for m in markers.ignore] + [f"{encode_word(w)} ({w})" for w in markers.ignore_encoded]) or "none")
    )
    out(f"Exact token URL: https://{{{','.join(rules.exact.token_hosts)}}}{rules.exact.token_path}")
    out(
        f"buy orders:      targets {', '.join(rules.buy_orders.targets)}; "
        f"V2 connectors {', '.join(rules.buy_orders.connector_ids)}; streams {', '.join(rules.buy_orders.streams)}"
    )
    out(f"default schedule {rules.schedules.default_expression}")
    out(f"job name:        {rules.jobs.name_format} (loop guard: names starting {rules.jobs.loop_guard_prefix!r})")
    out(f"tenant config:   default schema requires {', '.join(_required(rules.tenant_config.default_schema))}")
    for flow_id in sorted(rules.tenant_config.schemas):
        out(f"  flow {flow_id}: own schema, requires {', '.join(_required(rules.tenant_config.schemas[flow_id])) or 'nothing'}")
    if not rules.target_links:
        out("target links:    none")
    for link in rules.target_links:
        out(
            f"target link:     flow {link.source_flow} tap {link.tap} -> link {link.target} in flow "
            f"{link.target_flow or link.source_flow} with the tenant config's {link.config_from}, schedule "
            f"{link.schedule_expression or rules.schedules.default_expression}"
        )
    incidents = rules.incidents
    if incidents.enabled:
        out(
            f"incidents:       {incidents.min_tenants} tenants with one signature within {incidents.window_minutes:g} min; "
            f"first alerts wait {incidents.group_wait_seconds:g} s; updates at most every "
            f"{incidents.update_interval_seconds:g} s; idle {incidents.expire_minutes:g} min closes one"
        )
    else:
        out("incidents:       off (every failure alerts on its own)")
    digest = rules.digest
    out(
        f"daily digest:    {'at %02d:00 UTC to %s' % (digest.hour_utc, ', '.join(digest.channels) or 'each environment channel') if digest.enabled else 'off'}"
    )
    out(f"snoozes:         at most {rules.snooze.max_days:g} days")


def _required(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """List the required paths of a JSON Schema object, e.g. ``apiCredentials.password``."""
    paths = []
    properties = schema.get("properties") or {}
    for name in schema.get("required") or []:
        child = properties.get(name)
        nested = _required(child, f"{prefix}{name}.") if isinstance(child, dict) else []
        paths += nested or [f"{prefix}{name}"]
    return paths


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def explain(file: Path) -> None:
    """Print the actions a payload FILE would produce now, and the facts read; send nothing.

    Facts are read from HotGlue when an API key is set (reads change nothing); no action
    is executed and nothing is stored.
    """
    import hashlib

    from hotglue_webhooks.clients.errors import PeerError
    from hotglue_webhooks.facts import facts_for_record
    from hotglue_webhooks.ingest import BadPayload, dedupe_key, parse_payload
    from hotglue_webhooks.rules import JobEvent

    runtime = _runtime()
    body = file.read_bytes()
    try:
        payload = parse_payload(body)
    except BadPayload as error:
        raise click.ClickException(f"{file}: {error}") from None
    job = JobEvent.from_payload(
        runtime.redactor.redact(payload), event_key=dedupe_key(payload, hashlib.sha256(body).hexdigest())
    )
    worker = runtime.worker()
    try:
        facts, decision = worker.plan(job)
    except PeerError as error:
        raise click.ClickException(f"reading facts from HotGlue failed: {error}") from None
    click.echo(f"event:   tenant {job.tenant} flow {job.flow_id} status {job.status} sync_type {job.sync_type}")
    click.echo(f"         job {job.job_id} {job.job_name!r}")
    click.echo("facts:")
    for line in json.dumps(facts_for_record(facts, runtime.redactor), indent=2).splitlines():
        click.echo("  " + line)
    click.echo("decision:")
    for note in decision.notes:
        click.echo(f"  - {note}")
    if not decision.actions:
        click.echo("actions: none")
    for number, action in enumerate(decision.actions, start=1):
        request = runtime.redactor.redact(worker.effects.preview(action.kind, action.params))
        after = f" (after {', '.join(action.depends_on)})" if action.depends_on else ""
        click.echo(f"action {number}: {action.kind} [{action.rule}] key {action.key}{after}")
        click.echo(f"  {request['method']} {request['url']}")
        for line in json.dumps(request.get("json"), indent=2, ensure_ascii=False).splitlines():
            click.echo("  " + line)


# -- the a=1 … z=26 scheme -------------------------------------------------------------


@main.command()
@click.argument("word")
def encode(word: str) -> None:
    """Print WORD in the a=1 … z=26 digits used in job names (fullsync → 62112121925143)."""
    from hotglue_webhooks.rules.markers import encode as encode_word

    try:
        click.echo(encode_word(word))
    except ValueError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.argument("digits")
@click.option("--all", "show_all", is_flag=True, help="Print every reading, likeliest first.")
def decode(digits: str, show_all: bool) -> None:
    """Print the likeliest word DIGITS spells in the a=1 … z=26 scheme; --all prints every reading.

    The code is ambiguous ("11" is "aa" or "k"); the shortest reading is usually the
    intended word (62112121925143 → fullsync), and readings are ordered shortest first,
    then alphabetically. Without --all, stderr says how many other readings there are.
    """
    from hotglue_webhooks.rules.markers import decode as decode_digits

    if len(digits) > 200:
        raise click.ClickException("at most 200 digits can be decoded")
    try:
        words = list(itertools.islice(decode_digits(digits), 10_000))
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    if not words:
        raise click.ClickException(f"{digits} spells no word: every letter is 1 to 26, and 0 only ends 10 or 20")
    words.sort(key=lambda word: (len(word), word))
    for word in words if show_all else words[:1]:
        click.echo(word)
    if not show_all and len(words) > 1:
        more = len(words) - 1
        click.echo(f"{more} other reading{'s' if more > 1 else ''}, longer or later in the alphabet; see them all with: decode {digits} --all", err=True)
