"""Settings: the one module that reads the environment (``HGW_*``) and the TOML rules file.

Nothing reads the environment at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hotglue_webhooks.rules import RulesConfig

ENV_PREFIX = "HGW_"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_HOTGLUE_API_URL = "https://api.hotglue.com"  # REFERENCE.md §4
MIB = 1024 * 1024
DEFAULT_RULES_FILE = Path(__file__).resolve().parent / "defaults" / "rules.toml"


class SettingsError(Exception):
    """A setting or the rules file is invalid; ``str()`` is one line naming it."""


class Settings(BaseSettings):
    """Every knob of the receiver. Environment variable = ``HGW_`` + field name, upper case."""

    # allow_inf_nan=False: "inf" or "nan" parse as floats and pass gt=0/ge=0 (inf) or make
    # every comparison false (nan); no duration or timeout here means either.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", validate_default=True, allow_inf_nan=False
    )

    database_url: str = "sqlite:///hotglue-webhooks.db"
    """SQLAlchemy URL; ``postgresql+psycopg://user@host/db`` for PostgreSQL."""
    webhook_secret: SecretStr | None = None
    """HotGlue's webhook secret; when set, ``X-Hub-Signature`` is required."""
    hotglue_api_url: str = DEFAULT_HOTGLUE_API_URL
    hotglue_api_key: SecretStr | None = None
    """HotGlue environment API key; without it HotGlue actions are dry-run."""
    slack_bot_token: SecretStr | None = None
    """Slack bot token (``xoxb-…``); without it Slack actions are dry-run."""
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_channel: str = "#hotglue-webhooks"
    """Slack channel for alerts and reports: a name (``#alerts``) or an id; not blank."""
    admin_token: SecretStr | None = None
    """When set, ``/api/*`` requires ``Authorization: Bearer <token>``."""
    slack_signing_secret: SecretStr | None = None
    """The Slack app's signing secret: when set, ``POST /slack/interactions`` takes button
    clicks (``X-Slack-Signature`` checked over the raw body) and messages carry buttons;
    unset, the endpoint answers 404 and no message has a button."""
    slack_allowed_users: Annotated[tuple[str, ...], NoDecode] = ()
    """Slack user ids (comma-separated, ``U0123ABCD``) whose clicks act; empty: everyone
    in the workspace."""
    retention_days: int = Field(default=30, ge=1, le=36_500)
    dry_run: bool = False
    """Record every action as ``dry_run`` with the request it would send; send nothing."""
    rules_file: Path | None = None
    public_url: str | None = None
    """The dashboard's public base URL (``https://hooks.example.com``): Slack messages link
    to an event as ``{public_url}/events/{id}``; unset, they name the event id."""

    bind: str = "127.0.0.1:8000"
    """host:port the web process listens on."""
    web_workers: int = Field(default=2, ge=1)
    """gunicorn worker processes of the web server."""
    web_threads: int = Field(default=32, ge=1)
    """Requests one web worker process serves at once (gunicorn ``gthread`` workers). A client
    that trickles its request holds one thread, never the whole process; idle keep-alive
    connections hold none."""
    serve_workers: int = Field(default=2, ge=1)
    """Worker processes ``serve`` runs beside its web server. One process uses one core
    at most (Python's GIL); on SQLite a burst's backlog drained at half the speed with
    one (docs/benchmarks.md). Writers of all of them queue for SQLite's one write lock."""
    worker_threads: int = Field(default=8, ge=1)
    """Events one worker process works on at once: reading and writing the database,
    deciding. Each holds one pooled database connection meanwhile (the pool is this + 2).
    An event waiting for HotGlue or Slack gives its turn and its connection back."""
    worker_in_flight: int = Field(default=32, ge=1)
    """Events one worker process holds at once, counting those waiting for a HotGlue or
    Slack answer (hundreds of ms each, tails of seconds: REFERENCE.md §9): at most this
    many peer requests in flight per process. With too few, a burst's alerts wait seconds
    behind slow answers to other tenants (bench/burst.py, docs/benchmarks.md)."""
    max_body_bytes: int = Field(default=MIB, ge=1024)
    max_attempts: int = Field(default=8, ge=1)
    """Attempts per action before it is parked as ``dead``."""
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    lease_seconds: float = Field(default=120.0, gt=0)
    """How long a claimed event stays with its worker before another may take it."""
    poll_seconds: float = Field(default=0.5, gt=0)
    purge_interval_seconds: float = Field(default=3600.0, gt=0)
    purge_batch_size: int = Field(default=100, ge=1)
    """Events deleted per transaction by the retention purge (which rests as long as each
    batch took): smaller batches, shorter waits for ingest."""
    reconcile_interval_seconds: float = Field(default=900.0, ge=0)
    """The worker reconciles with HotGlue's job lists at most this often (0: never)."""
    reconcile_window_seconds: float = Field(default=86_400.0, gt=0)
    """The worker's pass recovers terminal stages updated within this many seconds."""
    reconcile_max_rps: float = Field(default=5.0, gt=0)
    """HotGlue calls per second of a reconciliation pass, at most."""
    reconcile_all_tenants: bool = False
    """Also reconcile every tenant of ``GET /tenants/{env_id}`` with its linked flows, not
    only the pairs seen in the event log."""
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=10.0, gt=0)
    """A webhook body not fully received within this many seconds is refused with 408."""
    slack_min_interval_seconds: float = Field(default=1.1, ge=0)
    """Send slots of one Slack channel are this far apart (Slack allows about one message
    per second per channel: https://api.slack.com/apis/rate-limits). The 0.1 s above 1 s
    is for a send that starts late against its slot (a busy machine, 8 worker threads):
    the next message, on time, still arrives at least 1 s after it."""
    slack_pacing_horizon_seconds: float = Field(default=1.5, ge=0)
    """A worker waits in place for a channel slot at most this long, else comes back later."""
    proxy_fix: int = Field(default=0, ge=0, le=10)
    """How many proxies in front of the web server to trust for ``X-Forwarded-For``,
    ``-Proto`` and ``-Host`` (werkzeug's ProxyFix); 0 trusts none. With it, a request that
    reached the proxy over HTTPS gets a ``Secure`` session cookie and the rate limit
    counts the client's address, not the proxy's."""
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|console)$")
    redact_keys: Annotated[tuple[str, ...], NoDecode] = ()
    """More secret-looking keys (comma-separated) whose values are redacted, at any depth,
    in payloads, headers, logs, the dashboard, the API and Slack. Added to the built-in
    list (``redaction.DEFAULT_SECRET_KEYS``), never replacing it: the defaults protect the
    tenant credentials this receiver reads itself."""

    @field_validator("redact_keys", "slack_allowed_users", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError("must start with sqlite:// or postgresql+psycopg://")
        if value.startswith("postgresql:"):
            # psycopg 3 is the driver we ship; plain postgresql:// would pick psycopg2.
            value = "postgresql+psycopg:" + value[len("postgresql:") :]
        return value

    @field_validator("hotglue_api_url", "slack_api_url")
    @classmethod
    def _peer_url(cls, value: str) -> str:
        # httpx and slack_sdk take any string and fail only at the first request (or
        # silently never send): a typo must stop start-up instead.
        try:
            parts = urlsplit(value.strip())
            _ = parts.port  # raises ValueError for a port that is not a number in range
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host, e.g. https://api.example.com")
        return value.strip()

    @field_validator("public_url", mode="before")
    @classmethod
    def _public_url(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str) and any(c in value for c in "|<> "):
            raise ValueError("must be a plain URL: no '|', '<', '>' or spaces (Slack's link syntax uses them)")
        return cls._peer_url(value).rstrip("/")

    @field_validator("slack_channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a Slack channel (#name or its id), not be blank")
        return value

    @field_validator("bind")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, e.g. 127.0.0.1:8000")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @property
    def hotglue_dry_run(self) -> bool:
        """True when HotGlue calls must not be sent (dry-run, or no API key)."""
        return self.dry_run or not _secret(self.hotglue_api_key)

    @property
    def slack_dry_run(self) -> bool:
        """True when Slack calls must not be sent (dry-run, or no bot token)."""
        return self.dry_run or not _secret(self.slack_bot_token)

    @property
    def slack_buttons(self) -> bool:
        """True when messages carry buttons: a signing secret is set to verify their clicks."""
        return bool(_secret(self.slack_signing_secret))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def secret_value(value: SecretStr | None) -> str:
    """Return the plain text of a secret setting, or "" when unset."""
    return _secret(value)


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    name = ENV_PREFIX + "_".join(str(part) for part in first["loc"]).upper()
    return f"{name}: {first['msg']}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment (``HGW_*``), with keyword overrides on top.

    Raises SettingsError with one line naming the variable and what is wrong.
    """
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(_one_line(error)) from None


def load_rules(path: Path | None) -> RulesConfig:
    """Read the TOML rules file at ``path``; None reads the packaged ``defaults/rules.toml``.

    Raises SettingsError naming the file, the line (for TOML syntax errors) or the key,
    and the reason.
    """
    if path is None:
        path = DEFAULT_RULES_FILE
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise SettingsError(f"{path}: cannot read rules file: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise SettingsError(f"{path}: rules file is not UTF-8 (byte {error.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # tomllib's message already ends with "(at line L, column C)".
        raise SettingsError(f"{path}: {error}") from None
    try:
        return RulesConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        line = _line_of(text, first["loc"])
        where = f"line {line}, " if line else ""
        raise SettingsError(f"{path}: {where}{key}: {first['msg']}") from None


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """Return the 1-based line where the last named key of ``loc`` appears, if findable."""
    names = [str(part) for part in loc if isinstance(part, str)]
    if not names:
        return None
    wanted = names[-1]
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(wanted) and stripped[len(wanted) :].lstrip().startswith("="):
            return number
        if stripped.strip("[]").strip() == wanted:
            return number
    return None


def environment_api_keys(rules: RulesConfig, settings: Settings) -> dict[str, str | None]:
    """Return each configured ``env_id``'s HotGlue API key (None when its variable is unset).

    ``[environments.<env_id>] api_key_env`` names the variable; without it the environment
    uses ``HGW_HOTGLUE_API_KEY``. An empty dict means "no per-environment keys configured".
    """
    keys: dict[str, str | None] = {}
    for env_id, environment in rules.environments.items():
        if environment.api_key_env:
            keys[env_id] = os.environ.get(environment.api_key_env) or None
        else:
            keys[env_id] = secret_value(settings.hotglue_api_key) or None
    return keys
