"""How the receiver acts for one HotGlue environment: its clients and channel.

Below the executor (``effects``), the ``worker`` and the ``runtime`` that builds it, so
the first two take an :class:`Environment` without importing the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotglue_webhooks.clients.hotglue_api import HotGlueClient


@dataclass(frozen=True)
class Environment:
    """How the receiver acts for events of one HotGlue ``env_id``.

    ``hotglue`` always builds requests (its key may be None); ``reader`` is the same client
    when a key is set, else None (facts are then unavailable). ``flagged`` is the reason no
    action may run for this environment, or None.
    """

    env_id: str | None
    hotglue: HotGlueClient
    hotglue_dry_run: bool
    reader: HotGlueClient | None
    slack_channel: str
    flagged: str | None = None
