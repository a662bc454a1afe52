"""Table tests of a (tenant, flow)'s rhythm and of silence: pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hotglue_webhooks.rules import Schedule
from hotglue_webhooks.rules.config import SilenceGrace, SilenceRules
from hotglue_webhooks.rules.rhythm import (
    DISABLED, MEDIAN_GAP, NO_RHYTHM, SCHEDULED, TURNED_OFF, cron_fields, judge_silence, rhythm_of,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
RULES = SilenceRules()
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("expression", "cron"),
    [
        ("cron(0 * * * ? *)", "0 * * * *"),  # hourly, HotGlue's (AWS) form
        ("cron(0 */6 * * ? *)", "0 */6 * * *"),  # six-hourly
        ("cron(30 2 * * ? *)", "30 2 * * *"),  # daily
        ("cron(0 8 ? * 2-6 *)", "0 8 * * 1-5"),  # AWS weekdays MON-FRI are 2-6
        ("0 */4 * * *", "0 */4 * * *"),  # the 5-field form
        ("cron(0 */6 * * *)", "0 */6 * * *"),
        ("cron(nonsense)", None),
        ("every day", None),
    ],
)
def test_cron_fields_reads_hotglue_forms(expression: str, cron: str | None) -> None:
    assert cron_fields(expression) == cron


@pytest.mark.parametrize(
    ("expression", "interval"),
    [("cron(0 * * * ? *)", H), ("cron(0 */6 * * ? *)", 6 * H), ("cron(30 2 * * ? *)", 24 * H)],
)
def test_a_schedule_gives_its_interval_and_next_run(expression: str, interval: timedelta) -> None:
    rhythm = rhythm_of(Schedule(expression, "ENABLED"), [], RULES, now=NOW)
    assert (rhythm.kind, rhythm.interval) == (SCHEDULED, interval)
    last = NOW - 2 * H
    expected = rhythm.expected_after(last)
    assert expected is not None and last < expected <= last + interval


def hourly_jobs(count: int, jitter: list[int] | None = None, scheduled: bool | None = True) -> list[tuple[datetime, bool | None]]:
    jitter = jitter or [0] * count
    return [(NOW - (count - i) * H + timedelta(minutes=jitter[i]), scheduled) for i in range(count)]


@pytest.mark.parametrize(
    ("schedule", "jobs", "turned_off", "kind", "interval"),
    [
        # No schedule read: the median gap of recent regular jobs.
        (None, hourly_jobs(5, [0, 1, 0, 1, 0]), False, MEDIAN_GAP, H),
        # Too few jobs, irregular manual runs, or manual jobs only: no rhythm, never silent.
        (None, hourly_jobs(3), False, NO_RHYTHM, None),
        (None, [(NOW - 50 * H, None), (NOW - 49 * H, None), (NOW - 20 * H, None), (NOW - 2 * H, None)], False,
         NO_RHYTHM, None),
        (None, hourly_jobs(6, scheduled=False), False, NO_RHYTHM, None),
        # A disabled schedule: never silent, whatever the jobs did before.
        (Schedule("cron(0 * * * ? *)", "DISABLED"), hourly_jobs(6), False, DISABLED, None),
        # Turned off by this receiver (Exact 401): expected silence.
        (Schedule("cron(0 * * * ? *)", "ENABLED"), hourly_jobs(6), True, TURNED_OFF, None),
        # An unreadable expression falls back to the jobs.
        (Schedule("rate(1 hour)", "ENABLED"), hourly_jobs(5), False, MEDIAN_GAP, H),
    ],
)
def test_the_rhythm_of_a_pair(
    schedule: Schedule | None, jobs: list[tuple[datetime, bool | None]], turned_off: bool, kind: str,
    interval: timedelta | None,
) -> None:
    rhythm = rhythm_of(schedule, jobs, RULES, turned_off_by_us=turned_off, now=NOW)
    assert (rhythm.kind, rhythm.interval) == (kind, interval)


@pytest.mark.parametrize(
    ("expression", "last_ago", "silent"),
    [
        ("cron(0 * * * ? *)", 2 * H + timedelta(minutes=29), False),  # 2 intervals + 30 min not yet passed
        ("cron(0 * * * ? *)", 2 * H + timedelta(minutes=31), True),
        ("cron(0 */6 * * ? *)", 12 * H, False),
        ("cron(0 */6 * * ? *)", 12 * H + timedelta(minutes=31), True),
        ("cron(30 2 * * ? *)", 47 * H, False),
        ("cron(30 2 * * ? *)", 49 * H, True),
    ],
)
def test_silence_after_two_intervals_and_thirty_minutes(expression: str, last_ago: timedelta, silent: bool) -> None:
    rhythm = rhythm_of(Schedule(expression, "ENABLED"), [], RULES, now=NOW)
    verdict = judge_silence(rhythm, NOW - last_ago, NOW, RULES, "flow")
    assert verdict.silent is silent
    assert verdict.deadline == NOW - last_ago + 2 * rhythm.interval + timedelta(minutes=30)  # type: ignore[operator]


def test_never_silent_without_rhythm_or_without_a_finished_job() -> None:
    disabled = rhythm_of(Schedule("cron(0 * * * ? *)", "DISABLED"), [], RULES, now=NOW)
    manual = rhythm_of(None, hourly_jobs(6, scheduled=False), RULES, now=NOW)
    hourly = rhythm_of(Schedule("cron(0 * * * ? *)", "ENABLED"), [], RULES, now=NOW)
    assert not judge_silence(disabled, NOW - 100 * H, NOW, RULES, "f").silent
    assert not judge_silence(manual, NOW - 100 * H, NOW, RULES, "f").silent
    assert not judge_silence(hourly, None, NOW, RULES, "f").silent
    assert not judge_silence(hourly, NOW - 100 * H, NOW, SilenceRules(enabled=False), "f").silent


def test_a_flow_can_have_its_own_grace() -> None:
    rules = SilenceRules(flows={"slow": SilenceGrace(grace_intervals=5, grace_minutes=0)})
    hourly = rhythm_of(Schedule("cron(0 * * * ? *)", "ENABLED"), [], rules, now=NOW)
    assert judge_silence(hourly, NOW - 3 * H, NOW, rules, "other").silent
    assert not judge_silence(hourly, NOW - 3 * H, NOW, rules, "slow").silent
    assert judge_silence(hourly, NOW - 5 * H - timedelta(seconds=1), NOW, rules, "slow").silent
