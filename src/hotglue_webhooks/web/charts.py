"""The events-and-failures-per-hour chart, laid out for a server-side SVG.

Pure layout: hourly counts in, rectangles, ticks and labels out (pixels in the SVG's own
coordinates); ``templates/_chart.html`` draws them. No JavaScript, no CDN.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotglue_webhooks.storage.queries import HourCount

WIDTH = 960
HEIGHT = 200
LEFT = 44  # room for the y-axis labels
RIGHT = 8
TOP = 12
BOTTOM = 28  # room for the day labels


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    events_y: float
    events_height: float
    failures_y: float
    failures_height: float
    title: str


LABEL_CHAR_WIDTH = 6.2  # pixels per character of an 11 px axis label (system sans-serif)
CHART_SPANS = {"24h": 24, "7d": 168}
"""The chart's spans (URL ``chart=``), in hours; the first is the default."""


@dataclass(frozen=True)
class Tick:
    position: float
    label: str
    anchor: str = "start"
    """SVG ``text-anchor``: a label that would run past the plot's right edge ends at its tick."""


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    top: int
    plot_width: float
    plot_height: float
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    total_events: int
    total_failures: int
    peak: int
    span: str
    """What the chart covers, for its caption: "24 hours" or "7 days"."""


def _nice_top(peak: int) -> int:
    """Return a round axis maximum ≥ ``peak`` (1, 2, 5 × 10ⁿ)."""
    if peak <= 4:
        return 4
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude * 4 >= peak:
                return step * magnitude * 4
        magnitude *= 10


def _x_tick(x: float, label: str, right_edge: float) -> Tick:
    if x + 3 + len(label) * LABEL_CHAR_WIDTH > right_edge:
        return Tick(position=round(x, 2), label=label, anchor="end")
    return Tick(position=round(x, 2), label=label)


def hourly_chart(counts: list[HourCount]) -> Chart:
    """Lay out one bar per hour: the events, with the failures drawn over them in red.

    Up to 48 hours are labelled every 3 hours (the day's name at midnight), longer spans
    at each midnight only.
    """
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    peak = max((count.events for count in counts), default=0)
    top = _nice_top(peak)
    slot = plot_width / max(1, len(counts))
    gap = 1.0 if slot > 3 else 0.0
    bars = []
    x_ticks = []
    for index, count in enumerate(counts):
        x = LEFT + index * slot
        events_height = plot_height * count.events / top
        failures_height = plot_height * count.failures / top
        hour = count.hour.strftime("%a %d %b %H:00")
        bars.append(
            Bar(
                x=round(x, 2),
                width=round(max(1.0, slot - gap), 2),
                events_y=round(TOP + plot_height - events_height, 2),
                events_height=round(events_height, 2),
                failures_y=round(TOP + plot_height - failures_height, 2),
                failures_height=round(failures_height, 2),
                title=f"{hour} UTC: {count.events} event(s), {count.failures} failure(s)",
            )
        )
        if count.hour.hour == 0:
            x_ticks.append(_x_tick(x, count.hour.strftime("%a %d %b"), WIDTH - RIGHT))
        elif len(counts) <= 48 and count.hour.hour % 3 == 0:
            x_ticks.append(_x_tick(x, count.hour.strftime("%H:00"), WIDTH - RIGHT))
    y_ticks = [
        Tick(position=round(TOP + plot_height - plot_height * value / top, 2), label=str(value))
        for value in (0, top // 4, top // 2, 3 * top // 4, top)
    ]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        top=TOP,
        plot_width=plot_width,
        plot_height=plot_height,
        bars=bars,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        total_events=sum(count.events for count in counts),
        total_failures=sum(count.failures for count in counts),
        peak=peak,
        span=f"{len(counts) // 24} days" if len(counts) > 48 and len(counts) % 24 == 0 else f"{len(counts)} hours",
    )
