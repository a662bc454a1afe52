"""A person in a real browser (Debian's Chromium, driven by Playwright) against a real server.

Opens the dashboard, filters by a tenant, opens the failed event whose Slack alert died,
replays it and watches the action come back; saves screenshots in the test's tmp folder.
Outside CI the test skips when /usr/bin/chromium is missing; in CI (CI=true) it must run
(``.ci/run`` installs Debian's chromium). Playwright never downloads a browser here.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from conftest import Receiver
from web.helpers import action_states, send

CHROMIUM = os.environ.get("HGW_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def chromium() -> str:
    if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run installs Debian's chromium package")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium); set HGW_TEST_CHROMIUM to use another")
    return CHROMIUM


@pytest.fixture
def served(database_url: str) -> Iterator[tuple[str, Receiver]]:
    """The receiver (dry-run) over real HTTP."""
    receiver = Receiver(database_url, poll_seconds=0.05, log_level="WARNING")
    server = make_server("127.0.0.1", 0, receiver.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", receiver
    server.shutdown()
    server.server_close()
    thread.join()
    receiver.close()


def test_find_a_failed_exact_job_replay_it_and_see_the_action(
    chromium: str, served: tuple[str, Receiver], database_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, receiver = served
    # Yesterday's deliveries, processed while Slack was unreachable: the alert died.
    broken = Receiver(
        database_url, slack_bot_token="xoxb-test", slack_api_url=f"http://127.0.0.1:{_closed_port()}/api/",
        max_attempts=1, log_level="ERROR",
    )
    try:
        [exact] = send(broken, "sync_failed__exact_token_401")
        broken.worker().drain()
    finally:
        broken.close()
    send(receiver, "sync_failed__shopify_500", "job_created__scheduled")  # other tenants, fine
    receiver.worker().drain()
    assert ("dead", 1) in action_states(receiver, exact)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.goto(base + "/")
            expect(page.locator("figure.chart svg")).to_be_visible()
            expect(page.locator("table.list tbody tr")).to_have_count(3)
            page.get_by_label("Tenant").fill("3310")
            page.get_by_role("button", name="Filter").click()
            expect(page).to_have_url(f"{base}/?tenant=3310&flow_id=&status=&sync_type=&since=&q=")
            expect(page.locator("table.list tbody tr")).to_have_count(1)
            page.screenshot(path=str(tmp_path / "1-filtered.png"), full_page=True)

            page.get_by_role("link", name="Rb7TnE4wz-exact-20261128-063000").click()
            expect(page.locator("h1")).to_contain_text("SYNC_FAILED")
            expect(page.locator("pre.message-block")).to_contain_text("Old refresh token used.")
            expect(page.locator("article.action .badge.bad").first).to_have_text("dead")
            expect(page.locator("article.action").first).to_contain_text("Connection refused")
            page.screenshot(path=str(tmp_path / "2-failed-event.png"), full_page=True)

            page.get_by_role("button", name="Replay").click()
            expect(page.locator("p.flash.ok")).to_contain_text(f"Event {exact} is queued again.")
            stop = threading.Event()
            worker = threading.Thread(target=receiver.worker().run, args=(stop, 1), daemon=True)
            worker.start()
            try:
                # The page refreshes itself while the event is open; the action comes back done.
                expect(page.locator("article.action .badge.okish").first).to_have_text("dry_run", timeout=15_000)
                expect(page.locator("article.action .badge.bad")).to_have_count(0)
                expect(page.locator("article.action").first).to_contain_text("chat.postMessage")
            finally:
                stop.set()
                worker.join(timeout=10)
            page.screenshot(path=str(tmp_path / "3-replayed.png"), full_page=True)
        finally:
            browser.close()
    assert all(state == "dry_run" for state, _ in action_states(receiver, exact))
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["1-filtered.png", "2-failed-event.png", "3-replayed.png"]


SCREENS = Path(__file__).resolve().parents[2] / "test-output" / "screens"
WIDTHS = {"desktop": (1366, 900), "narrow": (420, 860)}


def _many_tenants(receiver: Receiver) -> dict[str, int]:
    """Store what a day of 40 tenants looks like: scheduled jobs that complete, some that
    fail at sync or ETL, one first full sync; a few failures' alerts dead. Returns ids to visit."""
    from conftest import payload
    from web.helpers import kill_actions

    base = payload("sync_failed__shopify_500")
    ids: dict[str, int] = {}
    for n in range(40):
        tenant = f"{1000 + n * 37}"
        for job in range(2):
            root = f"{tenant}/flows/Xk2pQ9aLm/jobs/2026/11/6/28/{job}"
            # Some fail in their second job (still failing), some in their first (recovered).
            fails = (n % 7 == 0 and job == 1) or (n % 5 == 2 and job == 0)
            end = "SYNC_FAILED" if fails else "ETL_FAILED" if n % 11 == 5 else "JOB_COMPLETED"
            for minute, status in enumerate(("JOB_CREATED", "SYNC_STARTED", "SYNC_SUCCESS", end) if end != "SYNC_FAILED" else ("JOB_CREATED", "SYNC_STARTED", end)):
                body = {**base, "tenant": tenant, "s3_root": root, "status": status,
                        "job_name": f"Xk2pQ9aLm-shopify-20261128-0{job}0500",
                        "last_updated": f"2026-11-28T0{6 + job}:{minute * 3:02d}:00+00:00"}
                if not status.endswith("_FAILED"):
                    body.pop("message")
                answer = receiver.post(body)
                assert answer.status_code == 202, answer.json
                if status.endswith("_FAILED"):
                    ids.setdefault("failed", int(answer.json["id"]))
                    ids["last_failed"] = int(answer.json["id"])
    [ids["full_sync"]] = send(receiver, "job_completed__full_sync")
    [ids["exact"]] = send(receiver, "sync_failed__exact_token_401")
    receiver.worker().drain()
    kill_actions(receiver, ids["last_failed"])
    kill_actions(receiver, ids["full_sync"], error="HotGlue PUT schedule: 503 Service Unavailable")
    return ids


def test_every_page_reads_at_desktop_width_and_at_420_px(chromium: str, served: tuple[str, Receiver]) -> None:
    """Screenshots of each page into test-output/screens/ (look at them); at 420 px no page
    scrolls sideways: wide tables scroll in their own box."""
    from playwright.sync_api import sync_playwright

    base, receiver = served
    ids = _many_tenants(receiver)
    pages = {
        "events": "/",
        "events-progress-hidden": "/?progress=hide",
        "jobs": "/?view=jobs&progress=hide",
        "events-7d": "/?chart=7d",
        "tenants": "/tenants?sort=failures",
        "tenant": "/tenants/1000",
        "tenant-full-sync": "/tenants/4821",
        "event-failed": f"/events/{ids['failed']}",
        "event-completed": f"/events/{ids['full_sync']}",
        "dead": "/dead",
        "attention": "/attention",
    }
    SCREENS.mkdir(parents=True, exist_ok=True)
    for old in SCREENS.glob("*.png"):
        old.unlink()
    overflowing = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            for width_name, (width, height) in WIDTHS.items():
                page = browser.new_page(viewport={"width": width, "height": height})
                for name, url in pages.items():
                    answer = page.goto(base + url)
                    assert answer is not None and answer.status == 200, (name, url)
                    page.screenshot(path=str(SCREENS / f"{name}-{width_name}.png"), full_page=True)
                    page.screenshot(path=str(SCREENS / f"{name}-{width_name}-top.png"))  # the first screenful
                    scroll_width = page.evaluate("document.documentElement.scrollWidth")
                    if scroll_width > width:
                        overflowing[f"{name}-{width_name}"] = scroll_width
                page.close()
        finally:
            browser.close()
    assert overflowing == {}
    assert len(list(SCREENS.glob("*.png"))) == 2 * 2 * len(pages)


def test_the_attention_list_offers_the_command_and_clears_by_itself(chromium: str, database_url: str, tmp_path: Path) -> None:
    """Exact refused 3310's token and the receiver turned its schedules off: /attention
    lists it (with the count in the navigation bar), Re-enable schedules is clicked in the
    browser, the worker writes the schedules back, and the row is gone."""
    from playwright.sync_api import expect, sync_playwright

    from hotglue_webhooks.fakes import FakeHotGlue
    from test_flows import API_KEY, ENV

    with FakeHotGlue(api_key=API_KEY) as hotglue:
        hotglue.link_flow(ENV, "3310", "Rb7TnE4wz")
        hotglue.set_schedule(ENV, "Rb7TnE4wz", "3310", "cron(30 * * * ? *)", "ENABLED")
        receiver = Receiver(
            database_url, hotglue_api_key=API_KEY, hotglue_api_url=hotglue.url, poll_seconds=0.05, log_level="WARNING"
        )
        server = make_server("127.0.0.1", 0, receiver.app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            send(receiver, "sync_failed__exact_token_401", "sync_failed__shopify_500")
            receiver.worker().drain()
            assert hotglue.schedule(ENV, "Rb7TnE4wz", "3310")["state"] == "DISABLED"
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
                try:
                    page = browser.new_page(viewport={"width": 1366, "height": 900})
                    page.goto(base + "/")
                    expect(page.locator("#attention-count")).to_have_text("1")
                    page.get_by_role("link", name="Needs attention").click()
                    rows = page.locator("table.attention tbody tr")
                    expect(rows).to_have_count(1)
                    expect(rows.first).to_contain_text("3310")
                    expect(rows.first.locator(".reason")).to_have_text("exact_reconnect")
                    expect(rows.first).to_contain_text("Ask the customer to reconnect Exact Online")
                    expect(rows.first.get_by_role("link", name="SYNC_FAILED 1")).to_be_visible()
                    page.screenshot(path=str(tmp_path / "1-attention.png"), full_page=True)

                    rows.first.get_by_role("button", name="Re-enable schedules").click()
                    expect(page.locator("p.flash.ok")).to_contain_text("Re-enable schedules is queued")
                    receiver.worker().drain()
                    assert hotglue.schedule(ENV, "Rb7TnE4wz", "3310")["state"] == "ENABLED"
                    expect(page.locator("#commands")).to_contain_text("enable_schedules")
                    page.goto(base + "/attention")
                    expect(page.locator("p.empty")).to_contain_text("Nobody is waiting")
                    page.screenshot(path=str(tmp_path / "2-cleared.png"), full_page=True)
                finally:
                    browser.close()
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
            receiver.close()


def test_an_incident_s_tenants_wait_with_a_link_to_snooze_it(
    chromium: str, served: tuple[str, Receiver], tmp_path: Path
) -> None:
    """Three tenants fail the same way: one incident. /attention lists each with reason
    ``incident``; its Snooze incident… link opens the snooze form filled in."""
    from playwright.sync_api import expect, sync_playwright

    from test_incidents import shopify_500

    base, receiver = served
    for tenant in ("1001", "1002", "1003"):
        assert receiver.post(shopify_500(tenant)).status_code == 202
    receiver.worker().drain()
    (incident,) = receiver.client.get("/api/incidents").get_json()["incidents"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.goto(base + "/attention")
            rows = page.locator("table.attention tbody tr")
            expect(rows).to_have_count(3)
            expect(rows.locator(".reason")).to_have_text(["incident"] * 3)
            expect(rows.first).to_contain_text("in incident 1 (SYNC_FAILED on shopify")
            page.screenshot(path=str(tmp_path / "attention-incident.png"), full_page=True)
            rows.first.get_by_role("link", name="Snooze incident…").click()
            expect(page.locator("select[name=scope]")).to_have_value("signature")
            expect(page.locator("input[name=target]")).to_have_value(incident["group"])
        finally:
            browser.close()
