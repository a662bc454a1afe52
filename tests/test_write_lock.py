"""The SQLite writers' kernel lock (storage/db.py ``_WriteLock``), with a real second process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from hotglue_webhooks.storage import db

pytestmark = pytest.mark.skipif(db.fcntl is None, reason="POSIX locks only")

HOLD = db.LONG_HOLD_SECONDS * 4

WAITER = """
import sys
from hotglue_webhooks.storage.db import _WriteLock
with _WriteLock(sys.argv[1])():
    print("got it", flush=True)
"""


def _wait_until(condition, seconds: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_long_hold_with_nobody_waiting_costs_no_rest(tmp_path: Path) -> None:
    rests: list[float] = []
    lock = db._WriteLock(str(tmp_path / "db.writelock"), sleep=rests.append)
    for _ in range(3):
        with lock():
            time.sleep(HOLD)
    assert rests == []


def test_a_long_hold_while_another_process_waits_rests_as_long(tmp_path: Path) -> None:
    path = str(tmp_path / "db.writelock")
    rests: list[float] = []
    lock = db._WriteLock(path, sleep=rests.append)
    with lock():
        fd = lock._file()
        assert fd is not None
        assert not lock.waited_for(fd)
        waiter = subprocess.Popen([sys.executable, "-c", WAITER, path], stdout=subprocess.PIPE, text=True)
        try:
            _wait_until(lambda: lock.waited_for(fd))
            started = time.monotonic()
            time.sleep(HOLD)
            held = time.monotonic() - started
        except BaseException:
            waiter.kill()
            raise
    out, _ = waiter.communicate(timeout=30)
    assert out.strip() == "got it"
    with lock():  # the next write of this process rests first
        pass
    assert len(rests) == 1
    assert rests[0] >= held * 0.5

