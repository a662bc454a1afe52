"""A (tenant, flow)'s rhythm, and whether it went silent: the dead man's switch.

Pure: times come in as arguments (aware UTC datetimes), nothing reads a clock. The
rhythm is the flow's schedule when one was read (HotGlue writes cron in AWS's form,
``cron(0 */6 * * ? *)``: minutes, hours, day of month, month, day of week, year, with
``?`` for "any"; the 5-field form is seen too, REFERENCE.md §4), else the median gap
between its recent scheduled jobs when those are regular, else none. Cron arithmetic
is croniter's.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter

from hotglue_webhooks.rules.config import SilenceRules
from hotglue_webhooks.rules.model import Schedule

# Rhythm kinds.
SCHEDULED = "schedule"  # an enabled schedule's cron expression
MEDIAN_GAP = "median_gap"  # the median gap of recent regular jobs
NO_RHYTHM = "none"  # too few jobs, or irregular (manual) ones: never silent
DISABLED = "disabled"  # the schedule is off: never silent
TURNED_OFF = "turned_off"  # this receiver turned the schedule off (Exact 401): expected silence

_AWS_CRON = re.compile(r"^\s*cron\((?P<body>[^)]*)\)\s*$", re.IGNORECASE)
_AWS_DAYS = {"1": "0", "2": "1", "3": "2", "4": "3", "5": "4", "6": "5", "7": "6"}


@dataclass(frozen=True)
class Rhythm:
    """How often a (tenant, flow) runs: ``kind`` (see the module's constants), the
    ``interval`` between two runs (None without one), the ``cron`` expression in 5-field
    form for a schedule, and ``why`` in words."""

    kind: str
    interval: timedelta | None = None
    cron: str | None = None
    why: str = ""

    @property
    def judged(self) -> bool:
        """True when a missing stage can mean silence (a schedule or a regular gap)."""
        return self.kind in (SCHEDULED, MEDIAN_GAP) and self.interval is not None

    def expected_after(self, last: datetime) -> datetime | None:
        """The next run expected after a job at ``last``: the schedule's next fire, or
        ``last`` + the median gap; None without a rhythm."""
        if self.kind == SCHEDULED and self.cron:
            return _next_fire(self.cron, last)
        if self.kind == MEDIAN_GAP and self.interval is not None:
            return last + self.interval
        return None


@dataclass(frozen=True)
class Silence:
    """The verdict on one (tenant, flow) at ``now``: ``silent`` when ``deadline`` (the last
    terminal stage + grace) has passed; ``expected`` is its next expected run."""

    silent: bool
    rhythm: Rhythm
    last_at: datetime | None
    expected: datetime | None
    deadline: datetime | None


def cron_fields(expression: str) -> str | None:
    """Return ``expression`` as a 5-field cron (``m h dom mon dow``), or None when unreadable.

    Accepts HotGlue's AWS form ``cron(0 */6 * * ? *)`` (6 fields, the last the year, ``?``
    for "any", days of week 1-7 = SUN-SAT) and plain 5-field cron, with or without
    ``cron(...)`` around it.
    """
    text = expression.strip()
    match = _AWS_CRON.match(text)
    if match:
        text = match.group("body")
    fields = text.split()
    if len(fields) == 6:  # AWS: the year is the 6th field, and days of week count from 1
        fields = fields[:5]
        fields[4] = re.sub(r"\b[1-7]\b", lambda m: _AWS_DAYS[m.group(0)], fields[4])
    if len(fields) != 5:
        return None
    fields = ["*" if field == "?" else field for field in fields]
    cron = " ".join(fields)
    return cron if croniter.is_valid(cron) else None


def _next_fire(cron: str, after: datetime) -> datetime:
    result: datetime = croniter(cron, after).get_next(datetime)
    return result


def schedule_interval(cron: str, around: datetime) -> timedelta:
    """The gap between the two fires of ``cron`` that follow ``around``."""
    first = _next_fire(cron, around)
    return _next_fire(cron, first) - first


def rhythm_of(
    schedule: Schedule | None,
    job_times: Sequence[tuple[datetime, bool | None]],
    rules: SilenceRules,
    *,
    turned_off_by_us: bool = False,
    now: datetime,
) -> Rhythm:
    """Return the rhythm of a (tenant, flow).

    ``schedule`` is its schedule as read from HotGlue (None: none, or not read);
    ``job_times`` its recent jobs' ``(last_updated, scheduled_job)``; manual jobs
    (``scheduled_job`` false) do not count towards a rhythm. ``turned_off_by_us``: the last
    schedule write of this receiver for the pair was ``DISABLED`` (Exact 401).
    """
    if turned_off_by_us:
        return Rhythm(TURNED_OFF, why="this receiver turned the schedule off (Exact 401)")
    if schedule is not None and schedule.schedule_expression:
        if (schedule.state or "ENABLED").upper() == "DISABLED":
            return Rhythm(DISABLED, why="the schedule is disabled")
        cron = cron_fields(schedule.schedule_expression)
        if cron is not None:
            return Rhythm(
                SCHEDULED, schedule_interval(cron, now), cron, why=f"schedule {schedule.schedule_expression}"
            )
    times = sorted(when for when, scheduled in job_times if scheduled is not False)
    if len(times) < rules.min_jobs:
        return Rhythm(NO_RHYTHM, why=f"fewer than {rules.min_jobs} scheduled jobs")
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(times, times[1:])]
    median = statistics.median(gaps)
    if median <= 0 or any(abs(gap - median) > rules.regularity * median for gap in gaps):
        return Rhythm(NO_RHYTHM, why="irregular jobs")
    return Rhythm(MEDIAN_GAP, timedelta(seconds=median), why=f"median gap of {len(times)} jobs")


def judge_silence(
    rhythm: Rhythm, last_at: datetime | None, now: datetime, rules: SilenceRules, flow_id: str | None
) -> Silence:
    """Judge a pair silent when no terminal stage came within its grace.

    ``last_at`` is the ``last_updated`` of its newest terminal stage (a job's own time, so
    that a recovered or late stage counts at its real time); None when none is known (never
    silent: there is nothing to measure from). The grace is ``grace_intervals`` × the
    rhythm's interval + ``grace_minutes`` (``[silence]``, per flow in ``[silence.flows]``).
    """
    if last_at is None or not rhythm.judged or not rules.enabled:
        return Silence(False, rhythm, last_at, rhythm.expected_after(last_at) if last_at else None, None)
    assert rhythm.interval is not None
    grace = rules.grace_for(flow_id)
    deadline = last_at + rhythm.interval * grace.grace_intervals + timedelta(minutes=grace.grace_minutes)
    return Silence(now > deadline, rhythm, last_at, rhythm.expected_after(last_at), deadline)
