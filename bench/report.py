"""The figures table (terminal and Markdown) and the machine description."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB = 2**20


@dataclass(frozen=True)
class Row:
    measurement: str
    sqlite: str
    postgresql: str
    ratio: str
    target: str
    met: str


def _fmt(value: float | None, unit: str, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f} {unit}".strip()


def _ratio(ours: float | None, ceiling: float | None) -> str:
    if not ours or not ceiling:
        return ""
    return f"{ours / ceiling:.0%}"


def _verdict(*checks: bool | None) -> str:
    known = [c for c in checks if c is not None]
    if not known:
        return ""
    return "yes" if all(known) else "NO"


def _get(results: dict[str, Any], *path: str) -> Any:
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def rows(results: dict[str, Any], rate: float) -> list[Row]:
    out: list[Row] = []
    ceiling_rps = _get(results, "ceiling", "saturate", "rps")
    ceiling_p99 = _get(results, "ceiling", "rate", "p99_ms")
    ceiling_p50 = _get(results, "ceiling", "rate", "p50_ms")
    client = _get(results, "ceiling", "saturate", "client") or "?"
    if ceiling_rps is not None:
        out.append(
            Row(
                f"ceiling: bare Flask 202, saturated ({client})",
                _fmt(ceiling_rps, "req/s"), "", "100%", "", "",
            )
        )
        out.append(
            Row(
                f"ceiling: p50 / p99 at {rate:.0f} req/s",
                f"{_fmt(ceiling_p50, 'ms', 1)} / {_fmt(ceiling_p99, 'ms', 1)}", "", "", "", "",
            )
        )
    sat = {k: _get(results, f"ingest_{k}", "saturate", "rps") for k in ("sqlite", "postgresql")}
    ratio = {k: _get(results, f"ingest_{k}", "saturate", "ratio") for k in ("sqlite", "postgresql")}
    if any(v is not None for v in sat.values()):
        out.append(
            Row(
                "ingest: signed POST, saturated",
                _fmt(sat["sqlite"], "req/s"), _fmt(sat["postgresql"], "req/s"),
                " / ".join(f"{v:.0%}" for v in ratio.values() if v is not None),
                "≥ 50% of ceiling",
                _verdict(*(v >= 0.5 if v is not None else None for v in ratio.values())),
            )
        )
    p50 = {k: _get(results, f"ingest_{k}", "rate", "p50_ms") for k in ("sqlite", "postgresql")}
    p99 = {k: _get(results, f"ingest_{k}", "rate", "p99_ms") for k in ("sqlite", "postgresql")}
    if any(v is not None for v in p99.values()):
        out.append(
            Row(
                f"ingest: p50 / p99 at {rate:.0f} req/s",
                f"{_fmt(p50['sqlite'], 'ms', 1)} / {_fmt(p99['sqlite'], 'ms', 1)}",
                f"{_fmt(p50['postgresql'], 'ms', 1)} / {_fmt(p99['postgresql'], 'ms', 1)}",
                " / ".join(_ratio(v, ceiling_p99) for v in p99.values() if v is not None) + " (p99)",
                "p99 < 25 ms",
                _verdict(*(v < 25 if v is not None else None for v in p99.values())),
            )
        )
    for workers, target in ((1, None), (3, 1000.0)):
        sqlite = _get(results, f"process_sqlite_{workers}", "events_per_second")
        postgres = _get(results, f"process_postgresql_{workers}", "events_per_second")
        if sqlite is None and postgres is None:
            continue
        checks: list[bool | None] = []
        targets = []
        if workers == 1:
            targets.append("≥ 300 ev/s (SQLite)")
            checks.append(sqlite >= 300 if sqlite is not None else None)
        if target is not None:
            targets.append(f"≥ {target:,.0f} ev/s (PostgreSQL)")
            checks.append(postgres >= target if postgres is not None else None)
        plural = "es" if workers > 1 else ""
        ceilings = {
            kind: _get(results, f"process_{kind}_{workers}", "ceiling", "events_per_second")
            for kind in ("sqlite", "postgresql")
        }
        if any(ceilings.values()):
            out.append(
                Row(
                    f"ceiling: the same peer requests alone, {workers} process{plural}, events/s",
                    _fmt(ceilings["sqlite"], "ev/s"), _fmt(ceilings["postgresql"], "ev/s"), "100%", "", "",
                )
            )
        ratios = [_ratio(ours, ceilings[kind]) for kind, ours in (("sqlite", sqlite), ("postgresql", postgres))]
        out.append(
            Row(
                f"processing: {workers} worker process{plural}, events/s",
                _fmt(sqlite, "ev/s"), _fmt(postgres, "ev/s"), " / ".join(r for r in ratios if r),
                "; ".join(targets), _verdict(*checks),
            )
        )
    lat = {k: (_get(results, f"latency_{k}", "p50_ms"), _get(results, f"latency_{k}", "p99_ms")) for k in ("sqlite", "postgresql")}
    if any(v[0] is not None for v in lat.values()):
        out.append(
            Row(
                "receipt → Slack request, idle: p50 / p99",
                f"{_fmt(lat['sqlite'][0], 'ms')} / {_fmt(lat['sqlite'][1], 'ms')}",
                f"{_fmt(lat['postgresql'][0], 'ms')} / {_fmt(lat['postgresql'][1], 'ms')}",
                "", "p50 < 500 ms", _verdict(*(v[0] < 500 if v[0] is not None else None for v in lat.values())),
            )
        )
    purge = {k: _get(results, f"purge_{k}") for k in ("sqlite", "postgresql")}
    if any(purge.values()):
        events = next(p["events"] for p in purge.values() if p)
        out.append(
            Row(
                f"retention: purge {events:,} events",
                _fmt(purge["sqlite"]["purge_seconds"], "s", 1) if purge["sqlite"] else "–",
                _fmt(purge["postgresql"]["purge_seconds"], "s", 1) if purge["postgresql"] else "–",
                "", "", "",
            )
        )
        during = {k: (p["during"]["p99_ms"] if p else None) for k, p in purge.items()}
        out.append(
            Row(
                f"retention: ingest p99 at {rate:.0f} req/s during the purge",
                _fmt(during["sqlite"], "ms", 1), _fmt(during["postgresql"], "ms", 1),
                " / ".join(_ratio(v, ceiling_p99) for v in during.values() if v is not None),
                "< 50 ms", _verdict(*(v < 50 if v is not None else None for v in during.values())),
            )
        )
    out += _burst_rows(results)
    rss = {k: _get(results, f"rss_{k}") for k in ("sqlite", "postgresql")}
    if any(rss.values()):
        events = next(r.get("answered_2xx", r["events"]) for r in rss.values() if r)
        processed = next(r.get("processed", 0) for r in rss.values() if r)

        def cell(r: dict[str, Any] | None) -> str:
            if not r:
                return "–"
            return (
                f"master {r['web_master_bytes'] / MB:.0f} / web worker {r['web_worker_max_bytes'] / MB:.0f} / "
                f"worker {r['worker_max_bytes'] / MB:.0f} MB"
            )

        biggest = [
            max(r["web_master_bytes"], r["web_worker_max_bytes"], r["worker_max_bytes"]) for r in rss.values() if r
        ]
        out.append(
            Row(
                f"memory: RSS after {events:,} events ({processed:,} processed)", cell(rss["sqlite"]),
                cell(rss["postgresql"]), "",
                "< 150 MB per process", _verdict(*(b < 150 * MB for b in biggest)),
            )
        )
    return out


def _burst_rows(results: dict[str, Any]) -> list[Row]:
    """The burst (issue 11): each cell is "zero latency / real-peer latency"."""
    runs = {(k, label): _get(results, f"burst_{k}_{label}") for k in ("sqlite", "postgresql") for label in ("zero", "latency")}
    some = next((r for r in runs.values() if r), None)
    if some is None:
        return []

    def cell(kind: str, show: Any) -> str:
        zero, slow = runs[(kind, "zero")], runs[(kind, "latency")]
        if not zero and not slow:
            return "–"
        return " / ".join(show(r) if r else "–" for r in (zero, slow))

    def slow(key: str) -> list[Any]:
        return [r[key] for (_, label), r in runs.items() if r and label == "latency" and r.get(key) is not None]

    title = f"burst of {some['jobs']:,} jobs ({some['webhooks']:,} webhooks), zero / real-peer latency"
    return [
        Row(
            f"{title}: drain time ÷ ideal",
            cell("sqlite", lambda r: f"×{r['drain_over_ideal']:.2f} ({r['drain_seconds']:.1f} s)"),
            cell("postgresql", lambda r: f"×{r['drain_over_ideal']:.2f} ({r['drain_seconds']:.1f} s)"),
            "", "≤ 1.25× with latency", _verdict(*(v <= 1.25 for v in slow("drain_over_ideal"))),
        ),
        Row(
            f"{title}: failure alert receipt → Slack p50 / p99",
            cell("sqlite", lambda r: f"{r['alert_p50_ms']:,.0f}/{r['alert_p99_ms']:,.0f} ms"),
            cell("postgresql", lambda r: f"{r['alert_p50_ms']:,.0f}/{r['alert_p99_ms']:,.0f} ms"),
            "", "p99 < 2 s with latency",
            _verdict(*(v < 2000 for v in slow("alert_p99_ms")), *(r["alerted"] == r["failures"] for r in runs.values() if r)),
        ),
        Row(
            f"{title}: peak queue depth",
            cell("sqlite", lambda r: f"{r['peak_queue_depth']:,}"), cell("postgresql", lambda r: f"{r['peak_queue_depth']:,}"),
            "", "", "",
        ),
        Row(
            f"{title}: CPU per event (web + worker processes)",
            cell("sqlite", lambda r: _fmt(r["cpu_ms_per_event"], "ms", 1)),
            cell("postgresql", lambda r: _fmt(r["cpu_ms_per_event"], "ms", 1)),
            "", "", "",
        ),
    ]


def processing_note(results: dict[str, Any]) -> str:
    """One sentence per processing run: CPU milliseconds per event of our worker processes,
    of the fake peers, and of the ceiling's replay (which shows what the machine could give)."""
    parts = []
    for name, label in (
        ("process_sqlite_1", "SQLite, 1 worker"), ("process_postgresql_1", "PostgreSQL, 1 worker"),
        ("process_postgresql_3", "PostgreSQL, 3 workers"),
    ):
        run = results.get(name)
        if not run or not run.get("processed"):
            continue
        per_event = 1000 / run["processed"]
        ceiling = run.get("ceiling") or {}
        parts.append(
            f"{label}: workers {run['worker_cpu_seconds'] * per_event:.1f}, fake peers "
            f"{run['peer_cpu_seconds'] * per_event:.1f}"
            + (f", the ceiling's replay {ceiling['cpu_seconds'] * per_event:.1f}" if ceiling else "")
        )
    if not parts:
        return ""
    return "Processing, CPU ms per event: " + "; ".join(parts) + ". "


HEADERS = ("measurement", "SQLite", "PostgreSQL", "ours ÷ ceiling", "target", "met")


def text_table(table: list[Row]) -> str:
    cells = [HEADERS, *[(r.measurement, r.sqlite, r.postgresql, r.ratio, r.target, r.met) for r in table]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADERS))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(table: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for r in table:
        lines.append(f"| {r.measurement} | {r.sqlite} | {r.postgresql} | {r.ratio} | {r.target} | {r.met} |")
    return "\n".join(lines)


def machine(versions: dict[str, str]) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        found = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        if found:
            memory = f"{int(found.group(1)) / 2**20:.1f} GiB"
    except OSError:
        pass
    described = {
        "cores (nproc)": str(os.cpu_count()),
        "CPU": cpu,
        "RAM": memory,
        "OS": platform.platform(),
        "Python": sys.version.split()[0],
    }
    for name, version in versions.items():
        described[name] = version
    try:
        import gunicorn

        described["gunicorn"] = gunicorn.__version__
    except ImportError:
        pass
    try:
        described["wrk"] = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0][:40]
    except OSError:
        pass
    return described
