"""Properties over arbitrary payloads: decide never raises and always answers within Slack's limits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rules_support import load_payload

from hotglue_webhooks.rules import (
    SLACK_ACTION_FAILED,
    SLACK_POST,
    SLACK_UPDATE,
    FactNeeds,
    Facts,
    JobEvent,
    RulesConfig,
    Schedule,
    decide,
    needed_facts,
)
from hotglue_webhooks.rules.messages import SECTION_LIMIT, TEXT_LIMIT, action_failed, blocks_text

CONFIG = RulesConfig.model_validate(
    {
        "target_links": [
            {"source_flow": "*", "target": "optiply"},
            {"source_flow": "F*", "target_flow": "T", "target": "x"},
        ]
    }
)
TOKEN_LINE = "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token"
SAMPLE = load_payload("job_completed__full_sync")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
interesting = {
    "status": st.sampled_from(
        ["JOB_COMPLETED", "SYNC_FAILED", "EXPORT_FAILED", "X_FAILED", "JOB_CREATED", ""]
    ),
    "sync_type": st.sampled_from(["auto_sync", "full_sync", "incremental_sync", None]),
    "target": st.sampled_from(["exact", "optiply", None]),
    "job_name": st.sampled_from(["wh-F-t-2026-01-01", "Full Sync", "62112121925143-971415185", None]),
    "message": st.sampled_from([TOKEN_LINE, "Traceback (most recent call last):\n  x\nE: y", "{" * 50, None]),
    "target_state": st.sampled_from(
        [
            {"bookmarks": {"BuyOrders": [{"success": None, "error": TOKEN_LINE}, 1, {"hash": []}]}},
            {"bookmarks": {"BuyOrders": "no"}},
            None,
        ]
    ),
}
payloads = st.one_of(
    st.dictionaries(st.text(max_size=15), json_values, max_size=8),
    st.fixed_dictionaries({}, optional={**{k: json_values for k in SAMPLE}, **interesting}),
    st.fixed_dictionaries({}, optional=interesting).map(lambda overrides: {**SAMPLE, **overrides}),
)
facts = st.builds(
    Facts,
    tenant_config=st.none() | st.dictionaries(st.text(max_size=15), json_values, max_size=4),
    tenant_config_read=st.booleans(),
    linked_flows=st.none() | st.tuples(st.sampled_from(["Xk2pQ9aLm", "T", "F1"])),
    schedules=st.dictionaries(
        st.sampled_from(["Xk2pQ9aLm", "T", "F1"]),
        st.none() | st.builds(Schedule, st.none() | st.text(max_size=10), st.none() | st.text(max_size=10)),
    ),
    linked_targets=st.dictionaries(
        st.sampled_from(["Xk2pQ9aLm", "T"]), st.tuples(st.sampled_from(["optiply", "x"]))
    ),
    source_state=st.dictionaries(st.sampled_from(["Xk2pQ9aLm", "T"]), json_values),
    unavailable=st.dictionaries(st.sampled_from(["*", "schedules", "tenant_config"]), st.text(max_size=10)),
)


@settings(max_examples=300, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=payloads, known=facts, now=st.datetimes(timezones=st.just(UTC)) | st.datetimes())
def test_decide_never_raises_on_any_json_object(payload: dict[str, Any], known: Facts, now: datetime) -> None:
    event = JobEvent.from_payload(payload, event_key="k")

    needs = needed_facts(event, CONFIG)
    decision = decide(event, known, CONFIG, now, "#c")

    assert decision.notes
    assert len({a.key for a in decision.actions}) == len(decision.actions)
    planned = {a.key for a in decision.actions}
    for action in decision.actions:
        assert set(action.depends_on) <= planned
        if action.kind == SLACK_ACTION_FAILED:
            # Whatever the errors, the report posted fits Slack's limits.
            keys = [step["action_key"] for step in action.params["steps"]]
            assert keys == list(action.depends_on) and keys
            posted = action_failed(action.params, {key: ("dead", "x" * 50_000) for key in keys}, 2**63 - 1, "https://h")
            assert len(posted["text"]) <= TEXT_LIMIT
            assert all(len(t) <= SECTION_LIMIT for t in blocks_text(posted["blocks"]))
        elif action.kind in (SLACK_POST, SLACK_UPDATE):
            assert len(action.params["text"]) <= TEXT_LIMIT
            assert all(len(t) <= SECTION_LIMIT for t in blocks_text(action.params["blocks"]))
        else:
            assert action.params["env_id"] and action.params["tenant"] and action.params["flow_id"]
    if not decision.actions:
        # Only our own alert records may be read for an event that then matches no rule.
        own_records = FactNeeds(open_alerts=needs.open_alerts, newest_terminal=needs.newest_terminal)
        assert needs.empty or needs == own_records or decision.notes[0] != "no rule matched"


def test_decide_is_deterministic() -> None:
    event = JobEvent.from_payload(SAMPLE, event_key="k")
    now = datetime(2026, 11, 28, tzinfo=UTC)

    assert decide(event, Facts(), CONFIG, now, "#c") == decide(event, Facts(), CONFIG, now, "#c")
