"""Clients for the peers the receiver acts on: HotGlue's REST API and Slack's Web API.

They execute calls and decide nothing; every failure is a :class:`~.errors.PeerError`.
This package must not import the rules, storage, worker or web packages.
"""

from hotglue_webhooks.clients.errors import (
    HotGlueAuthError,
    HotGlueBadRequest,
    HotGlueError,
    HotGlueNotFound,
    HotGlueRateLimited,
    HotGlueServerError,
    HotGlueTransportError,
    PeerError,
    SlackApiError,
    SlackError,
    SlackRateLimited,
    SlackServerError,
    SlackTransportError,
)
from hotglue_webhooks.clients.hotglue_api import HotGlueClient, LinkedTarget, describe_request, redact_secrets
from hotglue_webhooks.clients.slack import SlackClient, fit_message

__all__ = [
    "HotGlueAuthError",
    "HotGlueBadRequest",
    "HotGlueClient",
    "HotGlueError",
    "HotGlueNotFound",
    "HotGlueRateLimited",
    "HotGlueServerError",
    "HotGlueTransportError",
    "LinkedTarget",
    "PeerError",
    "SlackApiError",
    "SlackClient",
    "SlackError",
    "SlackRateLimited",
    "SlackServerError",
    "SlackTransportError",
    "describe_request",
    "fit_message",
    "redact_secrets",
]
