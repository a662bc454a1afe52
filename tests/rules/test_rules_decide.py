"""Every shared payload, with facts, gives exactly the expected actions (rule table tests)."""

from __future__ import annotations

import dataclasses

from datetime import UTC, datetime
from typing import Any

import pytest
from rules_support import example_config, make_event

from hotglue_webhooks.rules import (
    Action,
    SLACK_ACTION_FAILED,
    STATE_CHANGING_KINDS,
    HOTGLUE_LINK_TARGET,
    HOTGLUE_PUT_SCHEDULE,
    HOTGLUE_START_JOB,
    SLACK_POST,
    Decision,
    FactNeeds,
    Facts,
    RulesConfig,
    Schedule,
    decide,
    needed_facts,
)
from hotglue_webhooks.rules.messages import SECTION_LIMIT, TEXT_LIMIT, blocks_text
from hotglue_webhooks.rules.decide import is_urgent

config = example_config()
NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
CHANNEL = "#hotglue-webhooks"
ENV = "production.hotglue.example.com"
SOURCE = "Xk2pQ9aLm"
TENANT_CONFIG = {
    "apiCredentials": {
        "username": "buyer@example.com",
        "password": "pw-SECRET-1",
        "client_id": "cid-1",
        "client_secret": "cs-SECRET-2",
        "account_id": 98,
        "webshop_uuid": "w-1",
    },
    "hotglue_metadata": {"metadata": {"webshop_handle": "shop"}},
}
# The credentials are not in the action: the executor fills "{config}" in at POST time.
LINK_BODY = {"target": {"target": "optiply", "config": "{config}"}}
NOT_READ = Facts(unavailable={"*": "dry-run: no HotGlue API key"})

FULL = "4821/flows/Xk2pQ9aLm/jobs/2026/11/6/28/07/Q7mZr|JOB_COMPLETED"
AUTO = "5077/flows/Xk2pQ9aLm/jobs/2026/11/6/28/09/a81Kd|JOB_COMPLETED"
NAMED = "4821/flows/Xk2pQ9aLm/jobs/2026/11/6/28/10/Hh20p|JOB_COMPLETED"
ENCODED = "4821/flows/Xk2pQ9aLm/jobs/2026/11/6/28/11/Jr5sW|JOB_COMPLETED"
TOKEN = "3310/flows/Rb7TnE4wz/jobs/2026/11/6/28/06/mE2kV|SYNC_FAILED"

TOKEN_LINE = "401 Client Error: Unauthorized for url: https://start.exactonline.nl/api/oauth2/token"


def hotglue(
    kind: str, key: str, flow: str, tenant: str, body: dict[str, Any], deps: tuple[str, ...] = ()
) -> tuple[Any, ...]:
    params = {"env_id": ENV, "flow_id": flow, "tenant": tenant, "body": body}
    if kind == HOTGLUE_LINK_TARGET:
        params["config_from"] = "apiCredentials"
    return (kind, key, deps, params)


def slack(key: str, text: str, deps: tuple[str, ...] = ()) -> tuple[Any, ...]:
    return (SLACK_POST, key, deps, CHANNEL, text)


def without_alerts(needs: FactNeeds) -> FactNeeds:
    """Drop the needs of our own records (every completed or failed job of a tenant's flow
    asks for its open alerts and for the newest end of another job)."""
    return dataclasses.replace(needs, open_alerts=False, newest_terminal=False)


def outcome(decision: Decision) -> list[tuple[Any, ...]]:
    """Return the actions as comparable tuples: Slack by channel and exact text, HotGlue by params.

    The failure reports are checked here and left out: each rule that plans a
    state-changing action plans one report, right after its actions, watching exactly
    those actions (their texts: test_failure_report_*).
    """
    assert_failure_reports(decision)
    rows: list[tuple[Any, ...]] = []
    for action in decision.actions:
        if action.kind == SLACK_ACTION_FAILED:
            continue
        if action.kind == SLACK_POST:
            # "about" (what a snooze looks at) and "incident" (the grouping the worker judges):
            # test_rules_incidents.py and test_incidents.py.
            assert set(action.params) - {"alert", "thread_ts", "about", "incident"} == {"channel", "text", "blocks"}
            assert_valid_blocks(action.params)
            rows.append(
                (action.kind, action.key, action.depends_on, action.params["channel"], action.params["text"])
            )
        else:
            rows.append((action.kind, action.key, action.depends_on, dict(action.params)))
    return rows


def primary(decision: Decision) -> list[Action]:
    """Return the actions but the failure reports (checked by :func:`assert_failure_reports`)."""
    assert_failure_reports(decision)
    return [action for action in decision.actions if action.kind != SLACK_ACTION_FAILED]


def assert_failure_reports(decision: Decision) -> None:
    changing: dict[str, list[str]] = {}
    reports: dict[str, tuple[str, ...]] = {}
    for action in decision.actions:
        if action.kind in STATE_CHANGING_KINDS:
            changing.setdefault(action.rule, []).append(action.key)
        elif action.kind == SLACK_ACTION_FAILED:
            assert action.rule not in reports, "one report per rule"
            assert action.key.endswith(f"|{action.rule}|slack:action_failed")
            assert [step["action_key"] for step in action.params["steps"]] == list(action.depends_on)
            reports[action.rule] = action.depends_on
    assert {rule: list(keys) for rule, keys in reports.items()} == changing


def assert_valid_blocks(params: Any) -> None:
    assert 0 < len(params["text"]) <= TEXT_LIMIT
    assert 0 < len(params["blocks"]) <= 50
    for text in blocks_text(params["blocks"]):
        assert 0 < len(text) <= SECTION_LIMIT


FAILURE_TEXT = {
    "sync_failed__shopify_500": (
        "4821/flows/Xk2pQ9aLm/jobs/2026/11/6/28/13/Zc4Tu|SYNC_FAILED",
        ":red_circle: SYNC_FAILED for tenant 4821 on flow Xk2pQ9aLm (shopify → optiply), job Zc4Tu: "
        "singer_sdk.exceptions.RetriableAPIError: 500 Server Error: Internal Server Error for path: "
        "/admin/api/2024-01/orders.json",
    ),
    "etl_failed__transform": (
        "4821/flows/Xk2pQ9aLm/jobs/2026/11/6/28/14/Et7Lq|ETL_FAILED",
        ":red_circle: ETL_FAILED for tenant 4821 on flow Xk2pQ9aLm (shopify → optiply), job Et7Lq: "
        "ETL script failed: KeyError: 'sku'",
    ),
    "export_failed__exact_crash": (
        "3310/flows/Vd3HsW8qc/jobs/2026/11/6/28/09/Cr4sH|EXPORT_FAILED",
        ":red_circle: EXPORT_FAILED for tenant 3310 on flow Vd3HsW8qc (optiply → exact), job Cr4sH: "
        "AttributeError: 'NoneType' object has no attribute 'strftime'\n"
        "Number of failed buy orders unknown: the export left no report.",
    ),
}


@pytest.mark.parametrize("name", sorted(FAILURE_TEXT))
def test_failures_send_one_alert(name: str) -> None:
    key, text = FAILURE_TEXT[name]
    ev = make_event(name)

    # our own records: open alerts to thread a repeat, the newest other job to tell a late one
    assert needed_facts(ev, config) == FactNeeds(open_alerts=True, newest_terminal=True)
    decision = decide(ev, Facts(), config, NOW, CHANNEL)
    assert outcome(decision) == [slack(f"{key}|failure_alert|slack", text)]
    alert = decision.actions[0].params["alert"]
    assert alert["op"] == "open"
    assert alert["thread_key"] == f"{ev.env_id}|{ev.tenant}|{ev.flow_id}|{alert['fingerprint']}"
    grouping = decision.actions[0].params["incident"]
    assert grouping["tenant"] == ev.tenant and grouping["thread_key"] == alert["thread_key"]
    assert grouping["channel"] == CHANNEL and len(grouping["group"]) == 16
    assert decision.actions[0].params["about"] == {"tenant": ev.tenant, "group": grouping["group"]}


@pytest.mark.parametrize(
    ("name", "why"),
    [
        (
            "job_created__scheduled",
            "JOB_CREATED is a progress stage: only JOB_COMPLETED and *_FAILED lead to actions",
        ),
        ("job_completed__incremental", "incremental_sync job without a full-sync marker in its name"),
        (
            "job_completed__incremental_encoded_ignore",
            "incremental_sync job named with '62112121925143' (fullsync) but also the ignore marker '971415185' (ignore)",
        ),
    ],
)
def test_stored_without_action(name: str, why: str) -> None:
    ev = make_event(name)

    assert without_alerts(needed_facts(ev, config)) == FactNeeds()
    assert decide(ev, Facts(), config, NOW, CHANNEL) == Decision(actions=(), notes=("no rule matched", why))


def test_full_sync_enables_schedule_links_target_and_starts_one_job() -> None:
    ev = make_event("job_completed__full_sync")
    facts = Facts(
        tenant_config=TENANT_CONFIG,
        tenant_config_read=True,
        schedules={SOURCE: Schedule("cron(0 */4 * * ? *)", "DISABLED")},
        linked_targets={SOURCE: ()},
        source_state={SOURCE: None},
    )

    assert without_alerts(needed_facts(ev, config)) == FactNeeds(
        tenant_config=True,
        schedules=frozenset({SOURCE}),
        linked_targets=frozenset({SOURCE}),
        source_state=frozenset({SOURCE}),
    )
    decision = decide(ev, facts, config, NOW, CHANNEL)
    assert outcome(decision) == [
        hotglue(
            HOTGLUE_PUT_SCHEDULE,
            f"{FULL}|full_sync|schedule:{SOURCE}",
            SOURCE,
            "4821",
            {"schedule_expression": "cron(0 */4 * * ? *)", "state": "ENABLED"},
        ),
        slack(
            f"{FULL}|full_sync|slack:schedule:{SOURCE}",
            ":large_green_circle: Schedule enabled for tenant 4821 on flow Xk2pQ9aLm: cron(0 */4 * * ? *). "
            "It was DISABLED.",
            deps=(f"{FULL}|full_sync|schedule:{SOURCE}",),
        ),
        hotglue(HOTGLUE_LINK_TARGET, f"{FULL}|full_sync|link:{SOURCE}:optiply", SOURCE, "4821", LINK_BODY),
        hotglue(
            HOTGLUE_START_JOB,
            f"start_job|{ENV}|4821|{SOURCE}|shopify|2026-11-28",
            SOURCE,
            "4821",
            {"tap": "shopify", "job_name": "wh-Xk2pQ9aLm-shopify-2026-11-28"},
            deps=(f"{FULL}|full_sync|link:{SOURCE}:optiply",),
        ),
    ]
    assert decision.notes == (
        "full_sync: enabling the schedule of flow Xk2pQ9aLm: cron(0 */4 * * ? *) (was DISABLED)",
        "full_sync: tenant config valid",
        "full_sync: linking optiply in flow Xk2pQ9aLm with the tenant config's apiCredentials",
        "full_sync: the schedule of flow Xk2pQ9aLm is enabled above",
        "full_sync: starting job wh-Xk2pQ9aLm-shopify-2026-11-28 in flow Xk2pQ9aLm",
    )


def test_auto_sync_with_target_already_linked_starts_the_job_without_waiting() -> None:
    facts = Facts(
        tenant_config=TENANT_CONFIG,
        tenant_config_read=True,
        schedules={SOURCE: None},
        linked_targets={SOURCE: ("optiply",)},
        source_state={SOURCE: {"bookmarks": {}}},
    )

    assert outcome(decide(make_event("job_completed__auto_sync"), facts, config, NOW, CHANNEL)) == [
        hotglue(
            HOTGLUE_PUT_SCHEDULE,
            f"{AUTO}|full_sync|schedule:{SOURCE}",
            SOURCE,
            "5077",
            {"schedule_expression": "cron(0 */6 * * ? *)", "state": "ENABLED"},
        ),
        slack(
            f"{AUTO}|full_sync|slack:schedule:{SOURCE}",
            ":large_green_circle: Schedule enabled for tenant 5077 on flow Xk2pQ9aLm: cron(0 */6 * * ? *). "
            "The tenant had no schedule for this flow; it was created with the default expression.",
            deps=(f"{AUTO}|full_sync|schedule:{SOURCE}",),
        ),
        hotglue(
            HOTGLUE_START_JOB,
            f"start_job|{ENV}|5077|{SOURCE}|woocommerce|2026-11-28",
            SOURCE,
            "5077",
            {"tap": "woocommerce", "job_name": "wh-Xk2pQ9aLm-woocommerce-2026-11-28"},
        ),
    ]


@pytest.mark.parametrize(
    ("tenant_config", "text"),
    [
        (
            {"apiCredentials": {"username": "x", "password": "", "client_id": None, "account_id": 98}},
            ":warning: Invalid tenant config for tenant 5077: apiCredentials.client_id: null, expected string; "
            "apiCredentials.client_secret: missing; apiCredentials.password: empty.",
        ),
        (
            None,
            ":warning: Invalid tenant config for tenant 5077: HotGlue has no tenant config for this tenant.",
        ),
    ],
)
def test_invalid_tenant_config_is_reported_and_blocks_the_job(tenant_config: Any, text: str) -> None:
    facts = Facts(
        tenant_config=tenant_config,
        tenant_config_read=True,
        schedules={SOURCE: Schedule("cron(0 */6 * * ? *)", "DISABLED")},
        linked_targets={SOURCE: ("optiply",)},
        source_state={SOURCE: None},
    )

    decision = decide(make_event("job_completed__auto_sync"), facts, config, NOW, CHANNEL)

    assert [a.kind for a in primary(decision)] == [HOTGLUE_PUT_SCHEDULE, SLACK_POST, SLACK_POST]
    assert outcome(decision)[2] == slack(f"{AUTO}|full_sync|slack:tenant_config", text)
    assert decision.notes[-1] == "full_sync: no job triggered: the tenant config is invalid"


@pytest.mark.parametrize(
    ("name", "key", "marker"),
    [
        ("job_completed__incremental_named_full_sync", NAMED, "'full sync'"),
        ("job_completed__incremental_encoded_full_sync", ENCODED, "'62112121925143' (fullsync)"),
    ],
)
def test_incremental_named_full_sync_enables_schedule_and_links_only(
    name: str, key: str, marker: str
) -> None:
    ev = make_event(name)
    facts = Facts(
        tenant_config=TENANT_CONFIG,
        tenant_config_read=True,
        schedules={SOURCE: Schedule("cron(0 */6 * * ? *)", "ENABLED")},
        linked_targets={SOURCE: ("other",)},
    )

    assert without_alerts(needed_facts(ev, config)) == FactNeeds(
        tenant_config=True, schedules=frozenset({SOURCE}), linked_targets=frozenset({SOURCE})
    )
    decision = decide(ev, facts, config, NOW, CHANNEL)
    assert outcome(decision) == [
        hotglue(
            HOTGLUE_PUT_SCHEDULE,
            f"{key}|full_sync_marker|schedule:{SOURCE}",
            SOURCE,
            "4821",
            {"schedule_expression": "cron(0 */6 * * ? *)", "state": "ENABLED"},
        ),
        slack(
            f"{key}|full_sync_marker|slack:schedule:{SOURCE}",
            ":large_green_circle: Schedule enabled for tenant 4821 on flow Xk2pQ9aLm: cron(0 */6 * * ? *). "
            "It was already ENABLED.",
            deps=(f"{key}|full_sync_marker|schedule:{SOURCE}",),
        ),
        hotglue(
            HOTGLUE_LINK_TARGET, f"{key}|full_sync_marker|link:{SOURCE}:optiply", SOURCE, "4821", LINK_BODY
        ),
    ]
    assert decision.notes[0] == f"full_sync_marker: incremental job named as a full sync: {marker}"


def test_exact_token_401_turns_off_every_schedule_of_the_tenant() -> None:
    ev = make_event("sync_failed__exact_token_401")
    facts = Facts(
        linked_flows=("Rb7TnE4wz", "Vd3HsW8qc", SOURCE),
        schedules={
            "Rb7TnE4wz": Schedule("cron(0 */6 * * ? *)", "ENABLED"),
            "Vd3HsW8qc": Schedule("cron(0 8 * * ? *)", "ENABLED"),
            SOURCE: None,
        },
    )
    off = [f"{TOKEN}|exact_token_401|schedule:Rb7TnE4wz", f"{TOKEN}|exact_token_401|schedule:Vd3HsW8qc"]

    assert without_alerts(needed_facts(ev, config)) == FactNeeds(
        linked_flows=True, schedules_of_linked_flows=True, schedules=frozenset({"Rb7TnE4wz"})
    )
    decision = decide(ev, facts, config, NOW, CHANNEL)
    assert outcome(decision) == [
        slack(
            f"{TOKEN}|failure_alert|slack",
            ":red_circle: SYNC_FAILED for tenant 3310 on flow Rb7TnE4wz (exact → optiply), job mE2kV: "
            "RuntimeError: Failed OAuth login, response was '{'error': 'unauthorized_client', "
            f"'error_description': 'Old refresh token used.'}}'. {TOKEN_LINE}",
        ),
        hotglue(
            HOTGLUE_PUT_SCHEDULE,
            off[0],
            "Rb7TnE4wz",
            "3310",
            {"schedule_expression": "cron(0 */6 * * ? *)", "state": "DISABLED"},
        ),
        hotglue(
            HOTGLUE_PUT_SCHEDULE,
            off[1],
            "Vd3HsW8qc",
            "3310",
            {"schedule_expression": "cron(0 8 * * ? *)", "state": "DISABLED"},
        ),
        slack(
            f"{TOKEN}|exact_token_401|slack",
            ":lock: Schedules turned off for tenant 3310: Exact Online refused its refresh token. "
            "The customer must reconnect Exact Online. Turned off: Rb7TnE4wz, Vd3HsW8qc.",
            deps=tuple(off),
        ),
    ]
    assert decision.notes == (
        "failure_alert: Slack alert for SYNC_FAILED",
        f"exact_token_401: Exact refused the refresh token ({TOKEN_LINE}); turning off 2 schedule(s); "
        "Xk2pQ9aLm has no schedule",
    )


def test_exact_token_401_falls_back_to_the_events_flow() -> None:
    facts = Facts(
        schedules={"Rb7TnE4wz": Schedule("cron(0 */6 * * ? *)", "ENABLED")},
        unavailable={"linked_flows": "HotGlue answered 404"},
    )

    decision = decide(make_event("sync_failed__exact_token_401"), facts, config, NOW, CHANNEL)

    assert [(a.kind, a.params.get("flow_id")) for a in primary(decision)] == [
        (SLACK_POST, None),
        (HOTGLUE_PUT_SCHEDULE, "Rb7TnE4wz"),
        (SLACK_POST, None),
    ]
    assert (
        decision.notes[1]
        == "exact_token_401: linked flows unknown (HotGlue answered 404): only the event's flow"
    )


def test_exact_token_401_with_unreadable_schedules_turns_nothing_off_and_says_so() -> None:
    decision = decide(make_event("sync_failed__exact_token_401"), NOT_READ, config, NOW, CHANNEL)

    assert outcome(decision)[1] == slack(
        f"{TOKEN}|exact_token_401|slack",
        ":lock: Exact Online refused the refresh token of tenant 3310; no schedule was turned off. "
        "The customer must reconnect Exact Online.",
    )
    assert decision.notes[-1].endswith(
        "turning off 0 schedule(s); schedule of Rb7TnE4wz unknown (dry-run: no HotGlue API key): not turned off"
    )


def test_buy_order_report_counts_distinct_hashes() -> None:
    ev = make_event("job_completed__exact_buy_orders_failed")

    assert without_alerts(needed_facts(ev, config)) == FactNeeds()
    assert outcome(decide(ev, Facts(), config, NOW, CHANNEL)) == [
        slack(
            "3310/flows/Vd3HsW8qc/jobs/2026/11/6/28/08/Bo9xQ|JOB_COMPLETED|buy_order_report|slack",
            ":package: Export to Exact Online for tenant 3310: 3 of 4 buy orders failed, "
            "plus 1 error not tied to a buy order.",
        )
    ]


def test_export_report_with_only_the_token_401_also_turns_schedules_off() -> None:
    report = {
        "bookmarks": {"BuyOrders": [{"success": False, "hash": "h1", "error": f"Sync failed: {TOKEN_LINE}"}]},
        "summary": {"BuyOrders": {"success": 0, "fail": 1}},
    }
    ev = make_event("job_completed__exact_buy_orders_failed", target_state=report)
    facts = Facts(
        linked_flows=("Vd3HsW8qc",), schedules={"Vd3HsW8qc": Schedule("cron(0 8 * * ? *)", "ENABLED")}
    )

    assert needed_facts(ev, config).linked_flows
    decision = decide(ev, facts, config, NOW, CHANNEL)
    assert [(a.rule, a.kind) for a in primary(decision)] == [
        ("buy_order_report", SLACK_POST),
        ("exact_token_401", HOTGLUE_PUT_SCHEDULE),
        ("exact_token_401", SLACK_POST),
    ]


def test_dry_run_without_facts_still_enables_the_schedule_and_explains() -> None:
    decision = decide(make_event("job_completed__full_sync"), NOT_READ, config, NOW, CHANNEL)

    assert outcome(decision) == [
        hotglue(
            HOTGLUE_PUT_SCHEDULE,
            f"{FULL}|full_sync|schedule:{SOURCE}",
            SOURCE,
            "4821",
            {"schedule_expression": "cron(0 */6 * * ? *)", "state": "ENABLED"},
        ),
        slack(
            f"{FULL}|full_sync|slack:schedule:{SOURCE}",
            ":large_green_circle: Schedule enabled for tenant 4821 on flow Xk2pQ9aLm: cron(0 */6 * * ? *). "
            "Its schedule could not be read (dry-run: no HotGlue API key), so the default expression was written.",
            deps=(f"{FULL}|full_sync|schedule:{SOURCE}",),
        ),
    ]
    assert decision.notes == (
        "full_sync: schedule of flow Xk2pQ9aLm unknown (dry-run: no HotGlue API key): writing cron(0 */6 * * ? *) ENABLED",
        "full_sync: tenant config not validated: unknown (dry-run: no HotGlue API key)",
        "full_sync: linked targets of flow Xk2pQ9aLm unknown (dry-run: no HotGlue API key): "
        "optiply not linked, no job triggered",
    )


def test_job_started_by_the_receiver_starts_no_other_job() -> None:
    ev = make_event("job_completed__full_sync", job_name="wh-Xk2pQ9aLm-shopify-2026-11-28")
    facts = Facts(
        tenant_config=TENANT_CONFIG,
        tenant_config_read=True,
        schedules={SOURCE: Schedule("cron(0 */6 * * ? *)", "ENABLED")},
        linked_targets={SOURCE: ("optiply",)},
        source_state={SOURCE: None},
    )

    assert needed_facts(ev, config).source_state == frozenset()
    decision = decide(ev, facts, config, NOW, CHANNEL)
    assert HOTGLUE_START_JOB not in [a.kind for a in decision.actions]
    assert decision.notes[-1] == (
        "full_sync: loop guard: job 'wh-Xk2pQ9aLm-shopify-2026-11-28' was started by this receiver, so it triggers none"
    )


def test_source_state_with_bookmarks_starts_no_job() -> None:
    facts = Facts(
        tenant_config=TENANT_CONFIG,
        tenant_config_read=True,
        schedules={SOURCE: None},
        linked_targets={SOURCE: ("optiply",)},
        source_state={SOURCE: {"bookmarks": {"orders": {"replication_key_value": "2026-11-01"}}}},
    )

    decision = decide(make_event("job_completed__full_sync"), facts, config, NOW, CHANNEL)

    assert HOTGLUE_START_JOB not in [a.kind for a in decision.actions]
    assert decision.notes[-1] == "full_sync: no job triggered: flow Xk2pQ9aLm already has source state"


def test_duplicate_deliveries_share_keys_and_other_events_share_the_daily_job_key() -> None:
    facts = Facts(
        tenant_config=TENANT_CONFIG,
        tenant_config_read=True,
        schedules={SOURCE: None},
        linked_targets={SOURCE: ("optiply",)},
        source_state={SOURCE: None},
    )
    first = decide(make_event("job_completed__full_sync"), facts, config, NOW, CHANNEL)
    again = decide(make_event("job_completed__full_sync"), facts, config, NOW.replace(hour=23), CHANNEL)
    other = decide(
        make_event("job_completed__full_sync", s3_root="4821/flows/Xk2pQ9aLm/jobs/other", job_id="Other"),
        facts,
        config,
        NOW,
        CHANNEL,
    )
    next_day = decide(
        make_event("job_completed__full_sync"),
        facts,
        config,
        datetime(2026, 11, 29, 0, 1, tzinfo=UTC),
        CHANNEL,
    )

    assert [a.key for a in first.actions] == [a.key for a in again.actions]
    start_key = f"start_job|{ENV}|4821|{SOURCE}|shopify|2026-11-28"
    assert primary(first)[-1].key == primary(other)[-1].key == start_key
    assert {a.key for a in primary(first)[:-1]}.isdisjoint(a.key for a in other.actions)
    assert primary(next_day)[-1].key == f"start_job|{ENV}|4821|{SOURCE}|shopify|2026-11-29"
    assert primary(next_day)[-1].params["body"]["job_name"] == "wh-Xk2pQ9aLm-shopify-2026-11-29"


def test_target_in_another_flow_gets_its_schedule_after_the_link() -> None:
    config = RulesConfig.model_validate(
        {
            "target_links": [
                {
                    "source_flow": "*",
                    "tap": "shop*",
                    "target_flow": "Tg1",
                    "target": "optiply",
                    "schedule_expression": "cron(0 1 * * ? *)",
                }
            ]
        }
    )
    ev = make_event("job_completed__full_sync")
    facts = Facts(
        tenant_config=TENANT_CONFIG,
        tenant_config_read=True,
        schedules={SOURCE: Schedule("cron(0 */6 * * ? *)", "DISABLED"), "Tg1": None},
        linked_targets={"Tg1": ()},
        source_state={"Tg1": {}},
    )

    assert without_alerts(needed_facts(ev, config)) == FactNeeds(
        tenant_config=True,
        schedules=frozenset({SOURCE, "Tg1"}),
        linked_targets=frozenset({"Tg1"}),
        source_state=frozenset({"Tg1"}),
    )
    decision = decide(ev, facts, config, NOW, CHANNEL)
    link_key = f"{FULL}|full_sync|link:Tg1:optiply"
    assert outcome(decision)[2:] == [
        hotglue(HOTGLUE_LINK_TARGET, link_key, "Tg1", "4821", LINK_BODY),
        hotglue(
            HOTGLUE_PUT_SCHEDULE,
            f"{FULL}|full_sync|schedule:Tg1",
            "Tg1",
            "4821",
            {"schedule_expression": "cron(0 1 * * ? *)", "state": "ENABLED"},
            deps=(link_key,),
        ),
        hotglue(
            HOTGLUE_START_JOB,
            f"start_job|{ENV}|4821|Tg1|shopify|2026-11-28",
            "Tg1",
            "4821",
            {"tap": "shopify", "job_name": "wh-Tg1-shopify-2026-11-28"},
            deps=(link_key,),
        ),
    ]


def test_link_body_template_and_channels_are_configurable() -> None:
    config = RulesConfig.model_validate(
        {
            "slack": {"channel": "#ops", "channels_by_rule": {"full_sync": "#onboarding"}},
            "jobs": {"name_format": "auto-{tenant}-{tap}-{date}"},
            "target_links": [
                {
                    "source_flow": SOURCE,
                    "target": "optiply",
                    "config_from": "importCredentials",
                    "body": {
                        "name": "{target}",
                        "settings": "{config}",
                        "tap": "{tap}",
                        "flow": "{flow_id}",
                        "fixed": [1, "x"],
                    },
                }
            ],
        }
    )
    facts = Facts(
        tenant_config={**TENANT_CONFIG, "importCredentials": {"token": "t"}},
        tenant_config_read=True,
        schedules={SOURCE: None},
        linked_targets={SOURCE: ()},
        source_state={SOURCE: None},
    )

    decision = decide(make_event("job_completed__full_sync"), facts, config, NOW, CHANNEL)

    assert decision.actions[1].params["channel"] == "#onboarding"
    assert decision.actions[2].params["body"] == {
        "name": "optiply",
        "settings": "{config}",
        "tap": "shopify",
        "flow": SOURCE,
        "fixed": [1, "x"],
    }
    assert decision.actions[2].params["config_from"] == "importCredentials"
    assert decision.actions[3].params["body"]["job_name"] == "auto-4821-shopify-2026-11-28"
    # The caller resolves the environment's channel: [environments.X] slack_channel,
    # then [slack] channel, then HGW_SLACK_CHANNEL.
    channel = config.environment_channel(ENV, CHANNEL)
    failure = decide(make_event("sync_failed__shopify_500"), Facts(), config, NOW, channel)
    assert failure.actions[0].params["channel"] == "#ops"
    per_env = RulesConfig.model_validate({"slack": {"channel": "#ops"}, "environments": {ENV: {"slack_channel": "#prod"}}})
    assert per_env.environment_channel(ENV, CHANNEL) == "#prod"
    assert per_env.environment_channel("dev.example.com", CHANNEL) == "#ops"
    assert RulesConfig().environment_channel(ENV, CHANNEL) == CHANNEL


def test_missing_link_config_skips_the_link_and_the_job() -> None:
    facts = Facts(
        tenant_config={"importCredentials": {}},
        tenant_config_read=True,
        schedules={SOURCE: None},
        linked_targets={SOURCE: ()},
        source_state={SOURCE: None},
    )

    decision = decide(make_event("job_completed__incremental_named_full_sync"), facts, config, NOW, CHANNEL)

    assert [a.kind for a in primary(decision)] == [HOTGLUE_PUT_SCHEDULE, SLACK_POST]
    assert (
        decision.notes[-1]
        == "full_sync_marker: the tenant config has no apiCredentials object: optiply not linked"
    )


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"status": "JOB_PAUSED"}, "unknown status 'JOB_PAUSED': stored, no action"),
        ({"status": None}, "the payload has no status"),
        ({"status": 42}, "unknown status '42': stored, no action"),
        ({"sync_type": None}, "JOB_COMPLETED without sync_type: unknown, not taken as incremental"),
        ({"sync_type": "weird_sync"}, "JOB_COMPLETED with sync_type 'weird_sync': no rule for it"),
    ],
)
def test_unknown_or_odd_events_match_no_rule(overrides: dict[str, Any], why: str) -> None:
    ev = make_event("job_completed__full_sync", **overrides)

    assert without_alerts(needed_facts(ev, config)) == FactNeeds()
    assert decide(ev, Facts(), config, NOW, CHANNEL) == Decision(actions=(), notes=("no rule matched", why))


def test_future_failed_status_gets_the_failure_alert() -> None:
    decision = decide(
        make_event("sync_failed__shopify_500", status="SNAPSHOT_FAILED"), Facts(), config, NOW, CHANNEL
    )

    assert [a.rule for a in decision.actions] == ["failure_alert"]


def test_odd_typed_fields_never_raise() -> None:
    odd = {
        "tenant": ["x"],
        "started_by": {"a": 1},
        "flow_id": 12,
        "tap": None,
        "target": True,
        "job_name": 3.5,
        "message": {"not": "text"},
        "last_updated": "yesterday",
        "target_state": {
            "bookmarks": {"BuyOrders": [1, None, {"success": "yes", "hash": {"h": 1}, "error": ["e"]}]}
        },
    }
    for name in (
        "job_completed__full_sync",
        "sync_failed__exact_token_401",
        "job_completed__exact_buy_orders_failed",
    ):
        ev = make_event(name, **odd)
        decision = decide(ev, NOT_READ, config, NOW, CHANNEL)
        assert decision.notes
        for action in decision.actions:
            if action.kind == SLACK_POST:
                assert_valid_blocks(action.params)


def test_event_without_env_or_tenant_only_alerts() -> None:
    ev = make_event("sync_failed__exact_token_401", env_id=None)

    assert without_alerts(needed_facts(ev, config)) == FactNeeds()
    decision = decide(ev, NOT_READ, config, NOW, CHANNEL)
    assert [a.kind for a in decision.actions] == [SLACK_POST, SLACK_POST]
    assert (
        decision.notes[1] == "exact_token_401: cannot turn schedules off: the event has no env_id or tenant"
    )


def test_v2_schedule_put_carries_job_type_and_connector() -> None:
    ev = make_event(
        "job_completed__full_sync", tap=None, target=None, connector_id="shopify", job_type="read"
    )

    decision = decide(ev, NOT_READ, config, NOW, CHANNEL)

    assert decision.actions[0].params["body"] == {
        "schedule_expression": "cron(0 */6 * * ? *)",
        "state": "ENABLED",
        "job_type": "read",
        "connector_id": "shopify",
    }


@pytest.mark.parametrize(
    ("status", "sync_type", "urgent"),
    [
        ("SYNC_FAILED", "incremental_sync", True),
        ("EXPORT_FAILED", None, True),
        ("discover_failed", None, True),  # any case
        ("SOMETHING_NEW_FAILED", None, True),  # a *_FAILED status HotGlue adds later
        ("JOB_COMPLETED", "auto_sync", True),
        ("JOB_COMPLETED", "FULL_SYNC", True),
        ("JOB_COMPLETED", "incremental_sync", False),
        ("JOB_COMPLETED", None, False),
        ("SYNC_STARTED", "full_sync", False),
        ("JOB_CREATED", None, False),
        ("FAILED", None, False),  # not a *_FAILED stage name
        (None, None, False),
    ],
)
def test_urgent_stages_are_failures_and_full_sync_ends(status: str | None, sync_type: str | None, urgent: bool) -> None:
    assert is_urgent(status, sync_type) is urgent
