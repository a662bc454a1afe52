"""schemathesis against /openapi.json: no 5xx, and every answer matches the document.

Bounded (a few examples per operation) so that the suite stays fast; the ingest endpoint
takes random JSON objects, the admin API random filters, ids and bodies. The operations
are driven with Hypothesis directly (``APIOperation.as_strategy``) because schemathesis'
pytest fixture loader does not run under pytest 9.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from conftest import Receiver
from web.helpers import kill_actions, send

TOKEN = "fuzz-admin-token"
EXAMPLES = 15


def test_every_operation_answers_within_its_document(database_url: str) -> None:
    receiver = Receiver(database_url, webhook_secret=None, admin_token=TOKEN, log_level="ERROR")
    try:
        ids = send(receiver, "sync_failed__shopify_500", "sync_failed__exact_token_401", "job_created__scheduled")
        receiver.worker().drain()
        kill_actions(receiver, ids[0])
        schema = schemathesis.openapi.from_wsgi("/openapi.json", receiver.app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 10

        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            )
            def call(case: Any) -> None:
                case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"})

            call()
    finally:
        receiver.close()
