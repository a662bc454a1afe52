"""Structured logs (structlog): one JSON object per line, secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from hotglue_webhooks.redaction import Redactor


def configure_logging(level: str = "INFO", fmt: str = "json", redactor: Redactor | None = None) -> None:
    """Send structlog and stdlib logging to stderr as JSON (or console) lines.

    Every event dict passes through ``redactor`` so a secret-looking key never reaches a log.
    """
    redactor = redactor or Redactor()

    def redact(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
        cleaned: dict[str, Any] = redactor.redact(event_dict)
        return cleaned

    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
