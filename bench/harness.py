"""The measurements of issue 6, each one a function of a :class:`Bench`.

Every process is started from here, on 127.0.0.1 only, with a time limit, and stopped
at the end of its measurement (``Procs.close`` at the latest). Results are plain dicts
collected in ``Bench.results``; ``report.py`` turns them into the table.
"""

from __future__ import annotations

import json
import os
import statistics
import shutil
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench import burst, databases, payloads
from bench.burst import Latency
from chaos.scenarios import rules_without_incidents
from hotglue_webhooks.settings import Settings
from hotglue_webhooks.storage.db import make_engine
from bench.procs import Finished, Measured, Proc, Procs, free_port, run_measured, wait_port

PYTHON = sys.executable
OPEN_EVENTS = "SELECT count(*) FROM events WHERE state IN ('pending', 'processing', 'retrying')"
# The worker spaces Slack messages to one channel 1 s apart (Slack's ~1/s/channel limit).
# Throughput runs measure our code against a peer without that limit, so they turn the
# pacing off; the receipt → Slack latency run keeps it, with alerts more than 1 s apart.
UNPACED = {"HGW_SLACK_MIN_INTERVAL_SECONDS": "0"}
# The worker's threads per process (HGW_WORKER_THREADS, not set by the harness): the
# processing ceiling sends with as many.
WORKER_THREADS: int = Settings.model_fields["worker_threads"].default
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "signed_post.lua"


@dataclass
class Sizes:
    """How big each measurement is; ``smoke()`` is the CI version (a few hundred requests)."""

    saturate_seconds: float = 8.0
    rounds: int = 3
    rate: float = 200.0
    rate_seconds: float = 15.0
    process_events_1: int = 3000
    process_events_3: int = 6000
    latency_events: int = 40
    latency_rate: float = 2.0
    latency_min_gap: float = 1.0
    purge_events: int = 1_000_000
    rss_events: int = 100_000
    rss_worker_seconds: float = 300.0
    tenants_per_family: int = 200
    burst_jobs: int = 1000

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(
            saturate_seconds=1.0, rounds=1, rate=100.0, rate_seconds=1.0, process_events_1=60, process_events_3=60,
            latency_events=4, latency_rate=10.0, latency_min_gap=0.0, purge_events=2000, rss_events=120, rss_worker_seconds=60.0, tenants_per_family=4,
            burst_jobs=20,
        )

    def scaled(self, factor: float) -> Sizes:
        """The big sizes (purge, RSS, processing) times ``factor``; durations unchanged."""
        return Sizes(
            saturate_seconds=self.saturate_seconds, rounds=self.rounds, rate=self.rate, rate_seconds=self.rate_seconds,
            process_events_1=max(60, int(self.process_events_1 * factor)),
            process_events_3=max(60, int(self.process_events_3 * factor)),
            latency_events=self.latency_events, latency_rate=self.latency_rate, latency_min_gap=self.latency_min_gap,
            purge_events=max(1000, int(self.purge_events * factor)),
            rss_events=max(100, int(self.rss_events * factor)),
            rss_worker_seconds=self.rss_worker_seconds,
            tenants_per_family=self.tenants_per_family,
            burst_jobs=max(20, int(self.burst_jobs * factor)),
        )


@dataclass
class Bench:
    workdir: Path
    postgres_url: str | None
    sizes: Sizes
    web_workers: int = 4
    wrk: str | None = None
    wrk_threads: int = 2
    connections: int = 16
    worker_threads: int | None = None
    """HGW_WORKER_THREADS of every worker started (None: the receiver's default)."""
    receiver_env: dict[str, str] = field(default_factory=dict)
    """More ``HGW_*`` settings for every receiver process (``--receiver-env``), applied last."""
    log: Any = print
    results: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.procs = Procs(self.workdir)
        self.dbs = databases.Databases(self.workdir, self.postgres_url)
        self.nonce = uuid.uuid4().hex[:8]
        self.ingest_templates = self.workdir / "ingest.templates"
        self.ingest_templates.write_bytes(payloads.template() + b"\n")
        self.tenants = payloads.Tenants(self.sizes.tenants_per_family)
        self.mixed_templates = self.workdir / "mixed.templates"
        payloads.write_templates(self.mixed_templates, payloads.all_fixtures(), self.tenants)
        # One tenant per alert: a second failure of the same tenant and flow is threaded
        # (a reply and an update of the first message), which is not the idle case.
        self.alert_templates = self.workdir / "alert.templates"
        payloads.write_templates(
            self.alert_templates, [payloads.ALERT_FIXTURE], payloads.Tenants(max(self.sizes.latency_events, 1))
        )
        self.seed = self.workdir / "hotglue-seed.json"
        self.seed.write_text(json.dumps(self.tenants.seed()))
        self.peers: Proc | None = None
        self.hotglue_port = self.slack_port = 0
        self._runs = 0

    # -- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        try:
            self.procs.close()
        finally:
            self.dbs.drop_all()

    def env(self, database_url: str, port: int, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HGW_", "PROMETHEUS_"))}
        env.update(
            HGW_DATABASE_URL=database_url,
            HGW_WEBHOOK_SECRET=payloads.SECRET,
            HGW_BIND=f"127.0.0.1:{port}",
            HGW_WEB_WORKERS=str(self.web_workers),
            HGW_LOG_FORMAT="json",
            HGW_LOG_LEVEL="INFO",
        )
        if self.worker_threads:
            env["HGW_WORKER_THREADS"] = str(self.worker_threads)
        env.update(self.receiver_env)
        if self.peers is not None:
            env.update(
                HGW_HOTGLUE_API_URL=f"http://127.0.0.1:{self.hotglue_port}",
                HGW_HOTGLUE_API_KEY=payloads.API_KEY,
                HGW_SLACK_API_URL=f"http://127.0.0.1:{self.slack_port}/api/",
                HGW_SLACK_BOT_TOKEN=payloads.SLACK_TOKEN,
            )
        env.update(extra)
        return env

    def start_web(self, name: str, database_url: str, ceiling: bool = False) -> tuple[Proc, str]:
        port = free_port()
        module = "bench.ceiling" if ceiling else "hotglue_webhooks"
        root = str(payloads.ROOT)
        env = self.env(database_url, port, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = self.procs.start(name, [PYTHON, "-m", module, "web"] if not ceiling else [PYTHON, "-m", module], env)
        try:
            wait_port(port, 60, proc.popen)
        except Exception:
            self.log(proc.tail())
            raise
        # gunicorn's workers boot after the master listens: wait until all of them are up.
        deadline = time.monotonic() + 60
        while len(proc.pids()) < self.web_workers + 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        return proc, f"http://127.0.0.1:{port}/webhooks/hotglue"

    def start_workers(self, database_url: str, count: int, **extra: str) -> list[Proc]:
        env = self.env(database_url, free_port(), **extra)
        return [self.procs.start(f"worker{n}", [PYTHON, "-m", "hotglue_webhooks", "worker"], env) for n in range(count)]

    def start_peers(
        self, seed: Path | None = None, hotglue_latency: Latency | None = None, slack_latency: Latency | None = None
    ) -> None:
        if self.peers is not None:
            return
        self.hotglue_port, self.slack_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HGW_")}
        self.peers = self.procs.start(
            "fakepeers",
            [
                PYTHON, "-m", "bench.fakepeers", "--hotglue-port", str(self.hotglue_port),
                "--slack-port", str(self.slack_port), "--api-key", payloads.API_KEY,
                "--slack-token", payloads.SLACK_TOKEN, "--seed", str(seed or self.seed), "--max-seconds", "3600",
                "--hotglue-latency", _latency_arg(hotglue_latency), "--slack-latency", _latency_arg(slack_latency),
            ],
            {**env, "PYTHONPATH": str(payloads.ROOT)},
        )
        wait_port(self.hotglue_port, 30, self.peers.popen)
        wait_port(self.slack_port, 30, self.peers.popen)

    def peer_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.peer_call("GET", "/_bench/stats").json()
        return stats

    def _name(self, what: str) -> str:
        self._runs += 1
        return f"{self._runs:02d}-{what}"

    # -- load ---------------------------------------------------------------------------

    def client_argv(self, url: str, templates: Path, nonce: str, **options: Any) -> list[str]:
        argv = [
            PYTHON, "-m", "bench.client", url, "--templates", str(templates), "--secret", payloads.SECRET,
            "--nonce", nonce,
        ]
        for key, value in options.items():
            if value is True:
                argv.append(f"--{key}")
            elif value is not None and value is not False:
                argv += [f"--{key}", str(value)]
        return argv

    def client_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HGW_")}
        env["PYTHONPATH"] = str(payloads.ROOT)
        return env

    def run_client(self, url: str, templates: Path, timeout: float, **options: Any) -> dict[str, Any]:
        nonce = options.pop("nonce", None) or f"{self.nonce}{self._runs}"
        finished = run_measured(
            self.client_argv(url, templates, nonce, **options), self.client_env(), timeout, self.workdir,
            self._name("client"),
        )
        return _bench_json(finished, "python")

    def saturate(self, url: str, templates: Path, server: Proc) -> dict[str, Any]:
        """Throughput at saturation: wrk when installed, else the Python client."""
        seconds = self.sizes.saturate_seconds
        cpu_before = server.cpu()
        if self.wrk:
            argv = [
                self.wrk, "-t", str(self.wrk_threads), "-c", str(self.connections), "-d", f"{max(1, round(seconds))}s",
                "--timeout", "10s", "-s", str(WRK_SCRIPT), url, "--", str(templates), payloads.SECRET,
                f"{self.nonce}w{self._runs}",
            ]
            finished = run_measured(argv, self.client_env(), seconds + 30, self.workdir, self._name("wrk"))
            result = _bench_json(finished, "wrk")
            duration = result["duration_us"] / 1e6
            errors = sum(result[k] for k in result if k.startswith("errors_"))
            result.update(
                client="wrk",
                seconds=duration,
                ok=result["requests"] - errors,
                rps=(result["requests"] - errors) / duration,
                p50_ms=result["p50_us"] / 1000,
                p99_ms=result["p99_us"] / 1000,
            )
        else:
            result = self.run_client(url, templates, seconds + 60, duration=seconds, connections=self.connections)
            result["client"] = "python"
        result["server_cpu_seconds"] = server.cpu() - cpu_before
        result["server_cpu_share"] = result["server_cpu_seconds"] / result["seconds"]
        result["client_cpu_share"] = result["client_cpu_seconds"] / result["seconds"]
        return result

    def fixed_rate(self, url: str, templates: Path) -> dict[str, Any]:
        sizes = self.sizes
        result = self.run_client(
            url, templates, sizes.rate_seconds + 60, rate=sizes.rate, duration=sizes.rate_seconds
        )
        result["client_cpu_share"] = result["client_cpu_seconds"] / result["seconds"]
        return result

    # -- the measurements ---------------------------------------------------------------

    def ingest(self, kinds: list[str]) -> None:
        """The ceiling and our ingest on each database, loaded in turns.

        All servers run at once (an idle gunicorn costs nothing) and take the load one
        after the other, ``rounds`` times: anything else running on the machine then
        hits them all alike. Each figure is the median of its rounds; each ratio is the
        median of the per-round ratios.
        """
        sizes = self.sizes
        self.log(f"ceiling and ingest ({', '.join(kinds)}), {sizes.rounds} round(s) of {sizes.saturate_seconds:.0f} s each")
        targets: dict[str, tuple[Proc, str, str | None]] = {}
        dummy = f"sqlite:///{self.workdir / 'ceiling.db'}"
        targets["ceiling"] = (*self.start_web("ceiling", dummy, ceiling=True), None)
        for kind in kinds:
            url_db = self.dbs.fresh(kind, "ingest")
            targets[f"ingest_{kind}"] = (*self.start_web(f"web-{kind}", url_db), url_db)
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        try:
            for proc, url, _ in targets.values():
                self.run_client(url, self.ingest_templates, 30, duration=0.5, connections=4)  # warm up
            for _ in range(sizes.rounds):
                for name, (proc, url, database) in targets.items():
                    before = databases.scalar(database, "SELECT count(*) FROM events") if database else 0
                    result = self.saturate(url, self.ingest_templates, proc)
                    if database:
                        result["stored"] = databases.scalar(database, "SELECT count(*) FROM events") - before
                    rounds[name].append(result)
            steady = {name: self.fixed_rate(url, self.ingest_templates) for name, (_, url, _) in targets.items()}
        finally:
            for proc, _, _ in targets.values():
                self.procs.stop(proc)
        ceiling = rounds["ceiling"]
        for name, results in rounds.items():
            median = dict(sorted(results, key=lambda r: r["rps"])[len(results) // 2])
            median["rounds_rps"] = [r["rps"] for r in results]
            median["ratio"] = statistics.median(r["rps"] / c["rps"] for r, c in zip(results, ceiling, strict=True))
            self.results[name] = {"saturate": median, "rate": steady[name]}
            stored = f", {sum(r.get('stored', 0) for r in results)} stored of {sum(r['ok'] for r in results)} answered 2xx" if name != "ceiling" else ""
            self.log(
                f"  {name}: {median['rps']:.0f} req/s (rounds {', '.join(f'{r:.0f}' for r in median['rounds_rps'])}; "
                f"{median['ratio']:.0%} of ceiling{stored}); p99 at {sizes.rate:.0f} req/s {steady[name]['p99_ms']:.1f} ms"
            )

    def processing(self, kind: str, workers: int, events: int) -> None:
        """Events/s through decide → act → record, peers answering at once."""
        self.log(f"processing on {kind} with {workers} worker process(es), {events} events")
        self.start_peers()
        url_db = self.dbs.fresh(kind, "process")
        web, url = self.start_web(f"web-{kind}", url_db)
        try:
            loaded = self.run_client(
                url, self.mixed_templates, 600, count=events, connections=self.connections, duration=3600
            )
        finally:
            self.procs.stop(web)
        pending = databases.scalar(url_db, "SELECT count(*) FROM events")
        peers_before = self.peer_stats()
        self.peer_call("POST", "/_bench/record")
        procs = self.start_workers(url_db, workers, **UNPACED)
        started = time.monotonic()
        timeout = max(120.0, events / 20)
        try:
            while time.monotonic() - started < timeout:
                open_events = databases.scalar(
                    url_db, "SELECT count(*) FROM events WHERE state IN ('pending', 'processing', 'retrying')"
                )
                if not open_events:
                    break
                if not all(p.alive() for p in procs):
                    raise RuntimeError("a worker died:\n" + "\n".join(p.tail() for p in procs))
                time.sleep(0.25)
            wall = time.monotonic() - started
            cpu = sum(p.cpu() for p in procs)
            rss = max(max(p.rss().values(), default=0) for p in procs)
        finally:
            for proc in procs:
                self.procs.stop(proc)
        peers_after = self.peer_stats()
        sent = self.workdir / f"requests-{kind}-{workers}.json"
        sent.write_bytes(self.peer_call("GET", "/_bench/record").content)
        times = databases.processed_times(url_db)
        states = dict(databases.rows(url_db, "SELECT state, count(*) FROM actions GROUP BY state"))
        event_states = dict(databases.rows(url_db, "SELECT state, count(*) FROM events GROUP BY state"))
        requests = _count_delta(peers_before, peers_after)
        rate = _steady_rate(times)
        result = {
            "events": pending,
            "loaded_2xx": loaded["ok"],
            "processed": len(times),
            "event_states": event_states,
            "action_states": states,
            "peer_requests": requests,
            "events_per_second": rate,
            "wall_seconds": wall,
            "worker_cpu_seconds": cpu,
            "peer_cpu_seconds": peers_after["cpu_seconds"] - peers_before["cpu_seconds"],
            "worker_rss_bytes": rss,
        }
        result["ceiling"] = ceiling = self.replay(sent, workers, len(times))
        self.results[f"process_{kind}_{workers}"] = result
        self.log(
            f"  {rate:.0f} events/s; {len(times)}/{pending} processed; actions {states}; "
            f"peer requests {sum(requests.values())}; ceiling (the same requests alone) "
            f"{ceiling['events_per_second']:.0f} events/s"
        )

    def replay(self, sent: Path, processes: int, events: int) -> dict[str, Any]:
        """The processing ceiling: the requests in ``sent`` sent again by ``processes``
        processes with the worker's thread count and nothing else (``bench/replay.py``);
        ``events`` ÷ the slowest process's wall time."""
        argv = [
            PYTHON, "-m", "bench.replay", str(sent), "--hotglue-url", f"http://127.0.0.1:{self.hotglue_port}",
            "--slack-url", f"http://127.0.0.1:{self.slack_port}/api/", "--api-key", payloads.API_KEY,
            "--slack-token", payloads.SLACK_TOKEN, "--threads", str(self.worker_threads or WORKER_THREADS),
        ]
        running = [
            Measured([*argv, "--slice", f"{n}/{processes}"], self.client_env(), self.workdir, self._name("replay"))
            for n in range(processes)
        ]
        parts = [_bench_json(proc.finish(600), "replay") for proc in running]
        seconds = max(part["seconds"] for part in parts)
        return {
            "requests": sum(part["requests"] for part in parts),
            "errors": sum(part["errors"] for part in parts),
            "seconds": seconds,
            "cpu_seconds": sum(part["cpu_seconds"] for part in parts),  # the replay only, not start-up
            "events_per_second": events / seconds if seconds else None,
        }

    def peer_call(self, method: str, path: str) -> Any:
        import httpx

        answer = httpx.request(method, f"http://127.0.0.1:{self.slack_port}{path}", timeout=60)
        answer.raise_for_status()
        return answer

    def receipt_to_slack(self, kind: str) -> None:
        """Receipt → Slack request latency with an idle receiver (web + 1 worker)."""
        sizes = self.sizes
        gap = sizes.latency_min_gap + 1 / sizes.latency_rate
        self.log(f"receipt → Slack on {kind}, {sizes.latency_events} alerts, one per {gap:.1f} s on average")
        self.start_peers()
        url_db = self.dbs.fresh(kind, "latency")
        web, url = self.start_web(f"web-{kind}", url_db)
        procs = self.start_workers(url_db, 1)
        try:
            time.sleep(3)  # the worker imports and connects; idle means it is waiting for work
            sent = self.run_client(
                url, self.alert_templates, sizes.latency_events / sizes.latency_rate + 60,
                rate=sizes.latency_rate, count=sizes.latency_events, poisson=True, trace=True,
                nonce=f"trace-{self.nonce}{self._runs}", **{"min-gap": sizes.latency_min_gap},
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                traced = self.peer_stats()["traced"]
                if all(job in traced for job in sent["sent"]):
                    break
                time.sleep(0.2)
        finally:
            for proc in [web, *procs]:
                self.procs.stop(proc)
        latencies = sorted((traced[job] - at) * 1000 for job, at in sent["sent"].items() if job in traced)
        result = {
            "sent": len(sent["sent"]),
            "arrived": len(latencies),
            "p50_ms": _percentile(latencies, 50),
            "p99_ms": _percentile(latencies, 99),
            "max_ms": latencies[-1] if latencies else 0.0,
        }
        self.results[f"latency_{kind}"] = result
        self.log(f"  p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms ({len(latencies)}/{result['sent']})")

    def retention(self, kind: str) -> None:
        """Time to purge N old events, and ingest latency at the fixed rate meanwhile."""
        sizes = self.sizes
        self.log(f"retention on {kind}: insert {sizes.purge_events} old events, purge under {sizes.rate:.0f} req/s")
        url_db = self.dbs.fresh(kind, "purge")
        started = time.monotonic()
        databases.insert_old_events(url_db, sizes.purge_events, payloads.template())
        inserted_seconds = time.monotonic() - started
        web, url = self.start_web(f"web-{kind}", url_db)
        try:
            client = Measured(
                self.client_argv(
                    url, self.ingest_templates, f"{self.nonce}r{self._runs}", rate=sizes.rate, duration=3600
                ),
                self.client_env(), self.workdir, self._name("client-during-purge"),
            )
            time.sleep(1.0)
            purge = run_measured(
                [PYTHON, "-m", "hotglue_webhooks", "purge"], self.env(url_db, free_port()),
                max(600.0, sizes.purge_events / 500), self.workdir, self._name("purge"),
            )
            client.interrupt()
            during = _bench_json(client.finish(120), "python")
        finally:
            self.procs.stop(web)
        left = databases.scalar(url_db, "SELECT count(*) FROM events WHERE received_at < :cutoff",
                                cutoff=_cutoff(url_db))
        if purge.returncode != 0:
            raise RuntimeError(f"purge failed:\n{purge.stdout[-2000:]}")
        result = {
            "events": sizes.purge_events,
            "insert_seconds": inserted_seconds,
            "purge_seconds": purge.wall_seconds,
            "purge_cpu_seconds": purge.cpu_seconds,
            "purge_output": purge.stdout.strip().splitlines()[-1:],
            "old_left": left,
            "during": during,
        }
        self.results[f"purge_{kind}"] = result
        self.log(
            f"  inserted in {inserted_seconds:.0f} s; purged in {purge.wall_seconds:.1f} s; "
            f"ingest p99 meanwhile {during['p99_ms']:.1f} ms ({during['ok']} requests)"
        )

    def memory(self, kind: str, workers: int) -> None:
        """RSS of the web processes after N deliveries, then of the workers after processing
        them for a bounded time (the table says how many they processed)."""
        sizes = self.sizes
        self.log(f"memory on {kind}: {sizes.rss_events} events through web, then {workers} worker(s)")
        self.start_peers()
        url_db = self.dbs.fresh(kind, "rss")
        web, url = self.start_web(f"web-{kind}", url_db)
        procs: list[Proc] = []
        try:
            start_web = web.rss()
            loaded = self.run_client(
                url, self.mixed_templates, 3600, count=sizes.rss_events, connections=2 * self.connections,
                duration=3600,
            )
            web_rss = web.rss()
            self.procs.stop(web)
            procs = self.start_workers(url_db, workers, **UNPACED)
            time.sleep(3)
            start_workers = [max(p.rss().values(), default=0) for p in procs]
            # The workers get a bounded time (the run must end); the table says how many
            # events they processed by then.
            deadline = time.monotonic() + sizes.rss_worker_seconds
            while time.monotonic() < deadline:
                open_events = databases.scalar(
                    url_db, "SELECT count(*) FROM events WHERE state IN ('pending', 'processing', 'retrying')"
                )
                if not open_events:
                    break
                time.sleep(1)
            worker_rss = [max(p.rss().values(), default=0) for p in procs]
        finally:
            for proc in [web, *procs]:
                self.procs.stop(proc)
        processed = databases.scalar(url_db, "SELECT count(*) FROM events WHERE state = 'done'")
        master = min(web_rss)  # gunicorn's master has the lowest pid of its group
        result = {
            "events": sizes.rss_events,
            "answered_2xx": loaded["ok"],
            "processed": processed,
            "web_master_bytes": web_rss[master],
            "web_worker_max_bytes": max(v for pid, v in web_rss.items() if pid != master),
            "worker_max_bytes": max(worker_rss),
            "start": {"web": start_web, "workers": start_workers},
        }
        self.results[f"rss_{kind}"] = result
        self.log(
            f"  web master {result['web_master_bytes'] / 2**20:.0f} MB, web worker max "
            f"{result['web_worker_max_bytes'] / 2**20:.0f} MB after {loaded['ok']} deliveries; worker max "
            f"{result['worker_max_bytes'] / 2**20:.0f} MB after {processed} processed"
        )


    def burst(self, kind: str, hotglue: Latency, slack: Latency) -> None:
        """A top-of-the-hour burst (bench/burst.py) through the whole receiver, against
        peers answering with ``hotglue``/``slack`` latency: on SQLite ``serve`` with its
        defaults; on PostgreSQL one web process (2 gunicorn workers) and 3 workers. Slack
        pacing off. Figures: drain time against the ideal (every tenant's chain of peer
        delays, from the receipt of its first terminal stage; not before the end of
        ingest), receipt → Slack of the
        failure alerts, peak queue depth, CPU ms per event (web + worker processes)."""
        jobs = self.sizes.burst_jobs
        label = "zero" if hotglue.zero and slack.zero else "latency"
        self.log(f"burst on {kind}: {jobs} jobs, HotGlue {hotglue}, Slack {slack}")
        deliveries = burst.lifecycles(jobs, f"{self.nonce}{self._runs}")
        self._runs += 1
        seed = self.workdir / f"burst-seed-{kind}-{label}.json"
        seed.write_text(json.dumps(burst.seed_ops(deliveries)))
        # Its own peers: their latency and seed are the burst's; the other steps' peers
        # (zero latency) start again when needed.
        if self.peers is not None:
            self.procs.stop(self.peers)
            self.peers = None
        self.start_peers(seed=seed, hotglue_latency=hotglue, slack_latency=slack)
        url_db = self.dbs.fresh(kind, f"burst{label}")
        port = free_port()
        procs: list[Proc]
        # serve's defaults but Slack pacing; no reconciliation pass (its job-list reads
        # of every tenant are not the burst's work, and would count in the chains); no
        # incidents: their 30 s group wait would be the drain time and the alerts' delay,
        # and their folded alerts name no job (chaos scenario 6 measures incidents).
        burst_env = {
            "HGW_WEB_WORKERS": "2", "HGW_RECONCILE_INTERVAL_SECONDS": "0",
            "HGW_RULES_FILE": str(rules_without_incidents(self.workdir)), **UNPACED,
        }
        if kind == "sqlite":
            env = self.env(url_db, port, **burst_env)
            procs = [self.procs.start("serve", [PYTHON, "-m", "hotglue_webhooks", "serve"], env)]
            wait_port(port, 60, procs[0].popen)
        else:
            env = self.env(url_db, port, **burst_env)
            procs = [self.procs.start("web", [PYTHON, "-m", "hotglue_webhooks", "web"], env)]
            wait_port(port, 60, procs[0].popen)
            procs += self.start_workers(url_db, 3, **burst_env)
        url = f"http://127.0.0.1:{port}/webhooks/hotglue"
        time.sleep(3)  # gunicorn's workers and the worker processes boot
        depth = _DepthWatch(url_db)
        try:
            cpu_before = sum(p.cpu() for p in procs)
            started = time.time()
            depth.start()
            answers = burst.send_all(url, deliveries, payloads.SECRET)
            ingested = time.time()
            deadline = time.monotonic() + max(300.0, jobs * 0.5)
            while (drained_at := depth.drained_after(ingested)) is None and time.monotonic() < deadline:
                if not all(p.alive() for p in procs):
                    raise RuntimeError("a process died:\n" + "\n".join(p.tail() for p in procs))
                time.sleep(0.05)
            drained = drained_at or time.time()
            timed_out = drained_at is None
            cpu = sum(p.cpu() for p in procs) - cpu_before
        finally:
            depth.stop()
            for proc in procs:
                self.procs.stop(proc)
        stats = self.peer_stats()
        self.procs.stop(self.peers)  # type: ignore[arg-type]
        self.peers = None
        received = {
            job: _unix(at)
            for job, at in databases.rows(
                url_db, "SELECT job_id, received_at FROM events WHERE job_id LIKE 'trace-%' AND status LIKE '%FAILED'"
            )
        }
        traced = stats["traced"]
        latencies = sorted((traced[job] - at) * 1000 for job, at in received.items() if job in traced)
        # The ideal: unlimited workers. A tenant's peer requests (each waited for in
        # turn: its events run one at a time) can start no earlier than its first
        # terminal stage's receipt (progress stages send none), and nothing ends before
        # the end of ingest. A lower bound on the drain time, then.
        first_terminal = {
            tenant: _unix(at)
            for tenant, at in databases.rows(
                url_db,
                "SELECT tenant, min(received_at) FROM events WHERE status = 'JOB_COMPLETED' OR status LIKE '%FAILED'"
                " GROUP BY tenant",
            )
        }
        chains = stats["chains"]
        longest_chain = max(chains.values(), default=0.0)
        ideal_end = max(
            [ingested, *(first_terminal[t] + seconds for t, seconds in chains.items() if t in first_terminal)]
        )
        ideal = ideal_end - started
        event_states = dict(databases.rows(url_db, "SELECT state, count(*) FROM events GROUP BY state"))
        action_states = dict(databases.rows(url_db, "SELECT state, count(*) FROM actions GROUP BY state"))
        stored = sum(event_states.values())
        result = {
            "jobs": jobs, "webhooks": len(deliveries), "answers": answers, "hotglue": str(hotglue), "slack": str(slack),
            "ingest_seconds": ingested - started, "drain_seconds": drained - started, "ideal_seconds": ideal,
            "longest_chain_seconds": longest_chain, "drain_over_ideal": (drained - started) / ideal if ideal else None,
            "failures": len(received), "alerted": len(latencies),
            "alert_p50_ms": _percentile(latencies, 50), "alert_p99_ms": _percentile(latencies, 99),
            "alert_max_ms": latencies[-1] if latencies else 0.0,
            "peak_queue_depth": depth.peak, "cpu_ms_per_event": cpu * 1000 / stored if stored else None,
            "event_states": event_states, "action_states": action_states,
            "timed_out": timed_out, "peer_requests": stats.get("counts", {}),
            "topology": "serve" if kind == "sqlite" else "1 web (2 gunicorn workers) + 3 workers",
        }
        self.results[f"burst_{kind}_{label}"] = result
        self.log(
            f"  drained in {result['drain_seconds']:.1f} s (ingest {result['ingest_seconds']:.1f} s, ideal "
            f"{ideal:.1f} s: ×{result['drain_over_ideal'] or 0:.2f}); alerts p50 {result['alert_p50_ms']:.0f} ms, "
            f"p99 {result['alert_p99_ms']:.0f} ms ({len(latencies)}/{len(received)}); peak queue {depth.peak}; "
            f"events {event_states}"
        )


class _DepthWatch:
    """Counts the open events every 0.1 s in a thread: ``peak``, and ``latest`` (the
    count, and the Unix time it was read)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.peak = 0
        self.latest: tuple[int, float] = (-1, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def drained_after(self, moment: float) -> float | None:
        """When the queue was read empty after ``moment`` (Unix seconds), or None."""
        count, at = self.latest
        return at if count == 0 and at > moment else None

    def _run(self) -> None:
        engine = make_engine(self.url)
        try:
            while not self._stop.is_set():
                with engine.connect() as connection:
                    count = connection.execute(text(OPEN_EVENTS)).scalar() or 0
                self.peak = max(self.peak, count)
                self.latest = (count, time.time())
                self._stop.wait(0.1)
        finally:
            engine.dispose()


def _latency_arg(latency: Latency | None) -> str:
    if latency is None:
        return "0"
    return f"{latency.p50},{latency.tail_share}@{latency.tail_seconds}"


def _unix(value: Any) -> float:
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


def _cutoff(url: str) -> Any:
    from datetime import UTC, datetime, timedelta

    value = datetime.now(UTC) - timedelta(days=30)
    return value.replace(tzinfo=None) if url.startswith("sqlite") else value


def _bench_json(finished: Finished, client: str) -> dict[str, Any]:
    for line in finished.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result: dict[str, Any] = json.loads(line[len("BENCH_JSON ") :])
            result["client"] = client
            result["client_cpu_seconds"] = finished.cpu_seconds
            return result
    raise RuntimeError(f"{client} printed no result (exit {finished.returncode}):\n{finished.stdout[-3000:]}")


def _count_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    old = before["counts"]
    return {key: n - old.get(key, 0) for key, n in after["counts"].items() if n - old.get(key, 0)}


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    index = min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))
    return values[index]


def _steady_rate(times: list[float]) -> float:
    """Events/s between the 5th and 95th percentile of completion times (start-up and
    the last stragglers left out); the whole span when there are too few events."""
    if len(times) < 2:
        return 0.0
    if len(times) < 100:
        span = times[-1] - times[0]
        return (len(times) - 1) / span if span > 0 else 0.0
    lo, hi = int(len(times) * 0.05), int(len(times) * 0.95)
    span = times[hi] - times[lo]
    return (hi - lo) / span if span > 0 else 0.0


def cleanup(workdir: Path, keep: bool) -> None:
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)

