"""Structured logs (structlog): one JSON object per line on stderr, secrets redacted.

Lines from libraries that log through the standard ``logging`` module (the HotGlue
client, httpx, alembic) go through the same processors, so they are JSON too and carry
the event id, tenant and flow that the worker binds while it handles an event.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from hotglue_webhooks.redaction import Redactor

# httpx logs every request at INFO; the worker already logs each action's outcome.
_QUIET_LOGGERS = {"httpx": logging.WARNING, "httpcore": logging.WARNING}


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stderr handler this module installs (found again and replaced on reconfigure)."""


def configure_logging(level: str = "INFO", fmt: str = "json", redactor: Redactor | None = None) -> None:
    """Send structlog and stdlib logging to stderr as JSON (or console) lines.

    Every event dict passes through ``redactor`` so a secret-looking key never reaches a log.
    Safe to call again (e.g. once per app in tests): it replaces its own handler only.
    """
    redactor = redactor or Redactor()

    def redact(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
        cleaned: dict[str, Any] = redactor.redact(event_dict)  # the event text and every string value too
        return cleaned

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # One write per line (message and newline together): processes sharing stderr
        # (gunicorn workers) cannot run their lines together.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = _OurHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.processors.format_exc_info, redact],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name, quiet in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(quiet, logging.getLevelName(level)))
