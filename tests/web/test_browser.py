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
