"""Scenario 5: bad input against the real gunicorn web process.

Requests go over raw sockets, so that anything can be sent: hypothesis-generated bodies,
headers, methods and framing (a ``Content-Length`` that lies, broken chunking, no body),
deterministic extremes (100,000 levels of ``[``, huge strings and numbers, a 100 MB body,
dates that overflow), and slow-loris clients that trickle their headers. Every request
carries ``X-Chaos-Id`` so that its rejection can be found in the log and the table.
"""

from __future__ import annotations

import json
import queue
import random
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from chaos.cluster import SECRET, Cluster, Topology
from chaos.procs import RssSampler
from chaos.scenarios import (
    MIB,
    Options,
    Result,
    Watchdog,
    counts,
    finish_figures,
    settings_for,
    wait_drained,
)
from chaos.verify import Figures, load_rows
from chaos.workload import load_templates
from hotglue_webhooks.signature import sign
from hotglue_webhooks.storage.models import Rejection

PATH = "/webhooks/hotglue"
CHAOS_HEADER = "X-Chaos-Id"
HUNDRED_MB = 100 * 1000 * 1000


@dataclass
class Case:
    """One raw request: ``head`` lines after the request line, ``body`` bytes as sent.

    ``content_length``: "auto" adds the true length, None adds none, anything else is
    sent as the header's value. ``half_close`` shuts the sending side after the body (the
    server sees EOF where it may expect more).
    """

    kind: str
    method: str = "POST"
    path: str = PATH
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    content_length: Any = "auto"
    half_close: bool = False
    version: str = "HTTP/1.1"
    raw_head: bytes | None = None  # sent instead of the request line and headers

    def encode(self, chaos_id: int, host: str) -> bytes:
        if self.raw_head is not None:
            return self.raw_head + self.body
        lines = [f"{self.method} {self.path} {self.version}", f"Host: {host}", f"{CHAOS_HEADER}: {chaos_id}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.content_length == "auto":
            lines.append(f"Content-Length: {len(self.body)}")
        elif self.content_length is not None:
            lines.append(f"Content-Length: {self.content_length}")
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + self.body


@dataclass
class Answer:
    status: int | None
    from_app: bool  # JSON answer from Flask (vs gunicorn's own HTML error page)
    error: str | None
    seconds: float
    body: bytes = b""


def exchange(port: int, data: bytes | Iterable[bytes], *, half_close: bool = False, timeout: float = 15.0) -> Answer:
    """Send raw bytes to 127.0.0.1:``port`` and read the answer; never raises."""
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sent_error = None
    try:
        try:
            for chunk in [data] if isinstance(data, bytes) else data:
                sock.sendall(chunk)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError as error:  # the server may answer (413) and close before all is sent
            sent_error = f"{type(error).__name__}: {error}"
        received = bytearray()
        try:
            while len(received) < 256 * 1024:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except OSError as error:
            if not received:
                return Answer(None, False, sent_error or f"{type(error).__name__}: {error}", time.monotonic() - started)
    finally:
        sock.close()
    return _parse_answer(bytes(received), sent_error, time.monotonic() - started)


def _parse_answer(raw: bytes, error: str | None, seconds: float) -> Answer:
    if not raw.startswith(b"HTTP/"):
        return Answer(None, False, error or "no answer", seconds)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return Answer(None, False, "unparseable status line", seconds)
    content_type = b""
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-type":
            content_type = value.strip().lower()
    return Answer(status, content_type.startswith(b"application/json"), None, seconds, body[:4096])


# -- generated cases ------------------------------------------------------------------------

CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "text/plain",
    "text/html",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=chaos",
    "application/xml",
    "application/octet-stream",
    "",
    "json",
    "*/*",
]


def case_strategy(template: dict[str, Any]) -> Any:
    """A hypothesis strategy of :class:`Case` covering bodies, headers, methods and framing."""
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=64),
    )
    json_values = st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=6), st.dictionaries(st.text(max_size=16), children, max_size=6)
        ),
        max_leaves=30,
    )
    signature = st.sampled_from(["valid", "valid", "valid", "sha1=", "missing", "garbage", "upper", "padded"])
    content_type = st.one_of(st.sampled_from(CONTENT_TYPES), st.text(max_size=40))

    def signed(body: bytes, how: str) -> list[tuple[str, str]]:
        digest = sign(body, SECRET)
        value = {
            "valid": digest,
            "sha1=": "sha1=" + digest,
            "upper": digest.upper(),
            "padded": f"  {digest} ",
            "garbage": "sha256=" + digest,
        }.get(how)
        return [] if value is None else [("X-Hub-Signature", value)]

    @st.composite
    def random_bytes(draw: Any) -> Case:
        body = draw(st.binary(max_size=4096))
        return Case("random bytes", headers=[("Content-Type", draw(content_type)), *signed(body, draw(signature))], body=body)

    @st.composite
    def json_body(draw: Any) -> Case:
        body = json.dumps(draw(json_values), allow_nan=True).encode()
        return Case("JSON value", headers=[("Content-Type", "application/json"), *signed(body, draw(signature))], body=body)

    @st.composite
    def mutated_payload(draw: Any) -> Case:
        payload = dict(template)
        keys = draw(st.lists(st.sampled_from(sorted(payload)), max_size=6, unique=True))
        for key in keys:
            payload[key] = draw(json_values)
        payload.update(draw(st.dictionaries(st.text(max_size=16), json_values, max_size=3)))
        payload["s3_root"] = draw(st.one_of(st.text(max_size=80), json_values))
        if "tenant" not in keys:
            payload["tenant"] = payload["started_by"] = f"odd-{draw(st.integers(0, 40))}"
        body = json.dumps(payload, allow_nan=True).encode()
        return Case("mutated payload", headers=[("Content-Type", "application/json"), *signed(body, "valid")], body=body)

    @st.composite
    def text_body(draw: Any) -> Case:
        text = draw(st.text(max_size=512))
        body = text.encode("utf-8", "surrogatepass")
        if draw(st.booleans()):
            cut = draw(st.integers(0, len(body)))
            body = body[:cut] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xfe\xff"])) + body[cut:]
        return Case("text / invalid UTF-8", headers=[("Content-Type", draw(content_type)), *signed(body, "valid")], body=body)

    header_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-ABCXYZ0123456789_", min_size=1, max_size=30)
    header_value = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=200)

    def fresh(draw: Any) -> bytes:
        tenant = f"odd-{draw(st.integers(0, 40))}"
        return json.dumps(dict(template, s3_root=f"chaos/{draw(st.uuids())}", tenant=tenant, started_by=tenant)).encode()

    @st.composite
    def odd_headers(draw: Any) -> Case:
        body = fresh(draw)
        headers = [("Content-Type", draw(content_type)), *signed(body, draw(signature))]
        headers += draw(st.lists(st.tuples(header_name, header_value), max_size=8))
        if draw(st.booleans()):
            headers.append(("X-Hub-Signature", draw(header_value)))  # a second, conflicting one
        return Case("odd headers", headers=headers, body=body)

    @st.composite
    def framing(draw: Any) -> Case:
        body = fresh(draw)
        headers = [("Content-Type", "application/json"), *signed(body, "valid")]
        how = draw(
            st.sampled_from(
                ["no length", "shorter", "longer", "words", "negative", "two lengths", "chunked", "bad chunks",
                 "gzip", "chunked and length", "http/1.0", "empty", "zero with body", "huge length"]
            )
        )
        case = Case(f"framing: {how}", headers=headers, body=body)
        if how == "no length":
            case.content_length = None
        elif how == "shorter":
            case.content_length = draw(st.integers(0, max(0, len(body) - 1)))
        elif how == "longer":
            case.content_length, case.half_close = len(body) + draw(st.integers(1, 5000)), True
        elif how == "words":
            case.content_length = draw(st.sampled_from(["abc", "1e3", "+5", " 5", "0x10", "5;", "١٢"]))
        elif how == "negative":
            case.content_length = -draw(st.integers(1, 10**6))
        elif how == "two lengths":
            case.headers.append(("Content-Length", str(len(body) + 1)))
        elif how == "chunked":
            case.content_length = None
            case.headers.append(("Transfer-Encoding", "chunked"))
            case.body = _chunked(body, draw(st.integers(1, 64)))
        elif how == "bad chunks":
            case.content_length, case.half_close = None, True
            case.headers.append(("Transfer-Encoding", "chunked"))
            case.body = draw(st.sampled_from([b"zz\r\n", b"5\r\nab", b"ffffffffffffffff\r\n", b"3\r\nabc\r\nX"]))
        elif how == "gzip":
            case.content_length = None
            case.headers.append(("Transfer-Encoding", draw(st.sampled_from(["gzip", "gzip, chunked", "identity"]))))
        elif how == "chunked and length":
            case.headers.append(("Transfer-Encoding", "chunked"))
            case.body = _chunked(body, 16)
        elif how == "http/1.0":
            case.version = "HTTP/1.0"
        elif how == "empty":
            case.body = b""
        elif how == "zero with body":
            case.content_length = 0
        elif how == "huge length":
            case.content_length, case.half_close = draw(st.sampled_from([10**9, 2**63, 10**30])), True
        return case

    @st.composite
    def method_and_path(draw: Any) -> Case:
        method = draw(st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "POST", "TRACE", "FOO"]))
        path = draw(
            st.one_of(
                st.just(PATH),
                st.sampled_from([PATH + "/", PATH + "?x=1", "/webhooks/hotglue%00", "/webhooks/%2e%2e/hotglue", "//webhooks/hotglue"]),
                st.text(alphabet="/abc%.?=&x-_~0123456789", min_size=1, max_size=200).map(lambda p: "/" + p),
            )
        )
        body = draw(st.binary(max_size=256))
        return Case("method / path", method=method, path=path, headers=[("Content-Type", "application/json")], body=body)

    return st.one_of(random_bytes(), json_body(), mutated_payload(), text_body(), odd_headers(), framing(), method_and_path())


def _chunked(body: bytes, size: int) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts) + b"0\r\n\r\n"


def generated_cases(template: dict[str, Any], count: int, seed: int) -> Iterator[Case]:
    """Yield at least ``count`` hypothesis-generated cases (generation runs in a thread)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed

    out: queue.Queue[Case | None] = queue.Queue(maxsize=512)
    strategy = case_strategy(template)

    def produce() -> None:
        made = 0
        round_number = 0
        try:
            while made < count:
                round_number += 1

                @fixed_seed(seed * 1000 + round_number)
                @settings(
                    max_examples=count - made, database=None, deadline=None, phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                @given(strategy)
                def feed(case: Case) -> None:
                    nonlocal made
                    made += 1
                    out.put(case)

                feed()
        finally:
            out.put(None)

    thread = threading.Thread(target=produce, name="hypothesis", daemon=True)
    thread.start()
    while (case := out.get()) is not None:
        yield case
    thread.join()


def extreme_cases(template: dict[str, Any]) -> list[Case]:
    """Deterministic extremes: nesting, huge strings and numbers, odd dates and text."""

    def signed_case(kind: str, body: bytes) -> Case:
        return Case(kind, headers=[("Content-Type", "application/json"), ("X-Hub-Signature", sign(body, SECRET))], body=body)

    def payload(**changes: Any) -> dict[str, Any]:
        return {**template, "s3_root": f"chaos/extreme/{random.random()}", **changes}

    cases = [
        signed_case("100,000 × [", b"[" * 100_000),
        signed_case("100,000 × [ ]", b"[" * 100_000 + b"]" * 100_000),
        signed_case('100,000 × {"a":', b'{"a":' * 100_000),
        signed_case("huge number (1,000,000 digits)", b'{"n": ' + b"9" * 1_000_000 + b"}"),
        signed_case("number of 4,301 digits", b'{"n": ' + b"9" * 4301 + b"}"),
        signed_case("1e999999 in a payload", json.dumps(payload()).replace('"scheduled_job": true', '"scheduled_job": 1e999999').replace('"scheduled_job": false', '"scheduled_job": 1e999999').encode()),
        signed_case("NaN and -Infinity in a payload", json.dumps(payload(metrics={"a": float("nan"), "b": float("-inf")})).encode()),
        signed_case("huge string (1,000,000 chars)", json.dumps(payload(message="x" * 1_000_000)).encode()),
        signed_case("huge failure message", json.dumps(payload(status="SYNC_FAILED", message="Traceback\n" + "y" * 900_000)).encode()),
        signed_case("100,000 keys", json.dumps({f"k{i}": i for i in range(100_000)}).encode()),
        signed_case("BOM then JSON", b"\xef\xbb\xbf" + json.dumps(payload()).encode()),
        signed_case("lone surrogates", json.dumps(payload(tenant="\ud800", job_name="a\udfffb")).encode()),
        signed_case("NUL everywhere", json.dumps(payload(**{"tenant": "a\x00b", "k\x00ey": "v\x00", "message": "\x00"})).encode()),
        signed_case("invalid UTF-8", b'{"tenant": "\xff\xfe"}'),
        signed_case("last_updated year 1 east of UTC", json.dumps(payload(last_updated="0001-01-01T00:30:00+01:00")).encode()),
        signed_case("last_updated year 9999 west of UTC", json.dumps(payload(last_updated="9999-12-31T23:30:00-01:00")).encode()),
        signed_case("last_updated garbage", json.dumps(payload(last_updated="yesterday-ish")).encode()),
        signed_case("key fields of the wrong type", json.dumps(payload(tenant={"a": 1}, status=["SYNC_FAILED"], flow_id=7, env_id=None)).encode()),
        signed_case("status 10 KB", json.dumps(payload(status="S" * 10_000 + "_FAILED")).encode()),
        Case("headers without body", headers=[("Content-Type", "application/json")], content_length=500, half_close=True),
        Case("no Content-Length, no body", headers=[("Content-Type", "application/json")], content_length=None),
        Case("Content-Length 0", headers=[("Content-Type", "application/json"), ("X-Hub-Signature", sign(b"", SECRET))]),
        Case("request line of 20,000 bytes", path=PATH + "?" + "a" * 20_000),
        Case("header of 20,000 bytes", headers=[("X-Long", "b" * 20_000)]),
        Case("200 headers", headers=[(f"X-H{i}", "v") for i in range(200)]),
        Case("obsolete line folding", headers=[("X-Folded", "a\r\n continued")]),
        Case("not HTTP", raw_head=b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256))),
        Case("garbage request line", raw_head=b"POST /webhooks/hotglue HTTP/9.9\r\n\r\n"),
    ]
    return cases


# -- the scenario -----------------------------------------------------------------------------


@dataclass
class Sent:
    chaos_id: int
    case: Case
    answer: Answer


def send_cases(port: int, cases: Iterable[Case], threads: int, first_id: int) -> list[Sent]:
    """Send cases with ``threads`` connections at once; return every answer."""
    source = iter(cases)
    lock = threading.Lock()
    results: list[Sent] = []
    next_id = first_id

    def work() -> None:
        nonlocal next_id
        while True:
            with lock:
                case = next(source, None)
                chaos_id = next_id
                next_id += 1
            if case is None:
                return
            answer = exchange(port, case.encode(chaos_id, f"127.0.0.1:{port}"), half_close=case.half_close)
            with lock:
                results.append(Sent(chaos_id, case, answer))

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def hundred_mb(port: int, chunked: bool) -> Answer:
    """POST 100 MB (declared up front, or chunked without a length), streaming until refused."""
    head = [f"POST {PATH} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"{CHAOS_HEADER}: 100mb-{'chunked' if chunked else 'length'}"]
    head += ["Content-Type: application/json", "X-Hub-Signature: 00"]
    head += ["Transfer-Encoding: chunked"] if chunked else [f"Content-Length: {HUNDRED_MB}"]
    block = b"[" * (1024 * 1024)

    def stream() -> Iterator[bytes]:
        yield ("\r\n".join(head) + "\r\n\r\n").encode()
        for _ in range(HUNDRED_MB // len(block)):
            yield (f"{len(block):x}\r\n".encode() + block + b"\r\n") if chunked else block
        if chunked:
            yield b"0\r\n\r\n"

    return exchange(port, stream(), timeout=60)


@dataclass
class SlowReport:
    clients: int
    probes: int
    probes_ok: int
    slowest_probe_s: float


def slow_loris(port: int, clients: int, seconds: float, secret: str, template: dict[str, Any]) -> SlowReport:
    """Hold ``clients`` connections that trickle their headers (and some a lying body) for
    ``seconds``, while a prober posts one valid webhook every 0.5 s."""
    stop = threading.Event()

    def trickle(n: int) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=seconds + 10)
        except OSError:
            return
        try:
            if n % 3 == 0:  # whole headers, a Content-Length that lies, then silence
                sock.sendall(
                    f"POST {PATH} HTTP/1.1\r\nHost: x\r\n{CHAOS_HEADER}: slow-{n}\r\nContent-Length: 1000\r\n\r\n{{".encode()
                )
                stop.wait(seconds)
                return
            data = f"POST {PATH} HTTP/1.1\r\nHost: x\r\n{CHAOS_HEADER}: slow-{n}\r\nX-Slow: ".encode()
            for byte in data:
                sock.sendall(bytes([byte]))
                if stop.wait(0.2):
                    return
            while not stop.wait(1.0):
                sock.sendall(b"a")
        except OSError:
            pass
        finally:
            sock.close()

    holders = [threading.Thread(target=trickle, args=(n,), daemon=True) for n in range(clients)]
    for holder in holders:
        holder.start()
    time.sleep(1.0)
    probes = ok = 0
    slowest = 0.0
    deadline = time.monotonic() + seconds - 1.0
    while time.monotonic() < deadline:
        probes += 1
        body = json.dumps(dict(template, s3_root=f"chaos/probe/{probes}/{random.random()}")).encode()
        case = Case("probe", headers=[("Content-Type", "application/json"), ("X-Hub-Signature", sign(body, secret))], body=body)
        answer = exchange(port, case.encode(-probes, f"127.0.0.1:{port}"), timeout=5)
        slowest = max(slowest, answer.seconds)
        ok += answer.status == 202
        time.sleep(max(0.0, 0.5 - answer.seconds))
    stop.set()
    for holder in holders:
        holder.join(timeout=15)
    return SlowReport(clients, probes, ok, slowest)


def bad_input(options: Options) -> Result:
    """≥ 10,000 generated bad requests: no 5xx, no crash, bounded memory, each rejection
    logged and stored once with its reason."""
    sizes = options.sizes
    started = time.monotonic()
    figures = Figures()
    templates = load_templates(options.payloads)
    # A stage no rule acts on: odd events should test ingest and the worker, not queue
    # hundreds of Slack messages of one tenant behind the per-channel pacing.
    template = templates["job_created__scheduled"]
    topology = Topology(database=options.database, settings=settings_for(sizes))
    with Cluster(f"s5-bad-input-{options.database}", options.workdir, topology, postgres_url=options.postgres_url) as cluster:
        cluster.start()
        web = cluster.webs[0]
        port = int(web.env["HGW_BIND"].rpartition(":")[2])
        watchdog = Watchdog(cluster, figures)
        with RssSampler(cluster.services, interval=0.1) as sampler:
            time.sleep(0.5)
            sampler.sample()
            baseline = web.max_process_rss_bytes()
            sent = send_cases(port, extreme_cases(template), threads=2, first_id=1)
            options.log(f"  {len(sent)} extreme cases sent")
            generated = send_cases(port, generated_cases(template, sizes.bad_requests, options.seed), threads=8, first_id=100_000)
            sent += generated
            options.log(f"  {len(generated)} generated cases sent")
            big = [hundred_mb(port, chunked=False), hundred_mb(port, chunked=True)]
            figures.extra["100MB"] = [f"{a.status} in {a.seconds:.1f} s" for a in big]
            for answer in big:
                if answer.status is None or not 400 <= answer.status < 500:
                    figures.problem(f"100 MB: answered {answer.status} ({answer.error}) instead of a 4xx")
                if answer.seconds > 10:
                    figures.problem(f"100 MB: took {answer.seconds:.1f} s to refuse (read rather than refused?)")
            slow = slow_loris(port, sizes.slow_clients, sizes.slow_seconds, SECRET, template)
            figures.extra["slow_loris"] = slow.__dict__
            if slow.probes_ok < slow.probes:
                figures.problem(
                    f"slow-loris: {slow.probes - slow.probes_ok} of {slow.probes} webhooks were not accepted while "
                    f"{slow.clients} slow clients were connected (slowest {slow.slowest_probe_s:.1f} s)"
                )
            watchdog.check()
            sampler.sample()
            total, _, _ = counts(cluster)
            drained = wait_drained(cluster, total, 900, watchdog)
            if not drained:
                figures.problem("not drained: accepted odd events still open (900 s, or no progress for 150 s)")
        judge_bad_input(figures, cluster, sent, baseline, sampler)
        finish_figures(figures, cluster, sampler)
        figures.acknowledged = sum(1 for s in sent if s.answer.status in (200, 202))
        figures.extra["requests"] = len(sent) + 2 + slow.probes
        ok = not figures.problems and figures.answers_5xx == 0
        return Result(
            5, f"bad input ({len(sent) + 2} requests + slow-loris)", options.database, ok, figures,
            time.monotonic() - started,
        )


def judge_bad_input(figures: Figures, cluster: Cluster, sent: list[Sent], baseline: int, sampler: RssSampler) -> None:
    by_status: dict[str, int] = {}
    by_kind: dict[str, dict[str, int]] = {}
    for item in sent:
        status = item.answer.status
        label = str(status) if status is not None else "no answer"
        by_status[label] = by_status.get(label, 0) + 1
        kind = item.case.kind.split(":")[0]
        by_kind.setdefault(kind, {})[label] = by_kind.setdefault(kind, {}).get(label, 0) + 1
        if status is not None and status >= 500:
            figures.answers_5xx += 1
            figures.problem(f"5xx: {status} for {item.case.kind} (id {item.chaos_id}): {_show(item.case)}")
    figures.extra["answers"] = dict(sorted(by_status.items()))
    figures.extra["answers_by_kind"] = by_kind

    # Each rejection the app answered: one log line with its reason, one stored row.
    rejected = {
        item.chaos_id: item
        for item in sent
        if item.answer.from_app and item.answer.status is not None and 400 <= item.answer.status < 500
        and item.case.method == "POST" and item.case.path.split("?")[0] == PATH
    }
    logged: dict[int, int] = {}
    reasons_missing = 0
    garbled: list[str] = []
    for line in cluster.logs("web").splitlines():
        if '"webhook_rejected"' not in line:
            continue
        try:
            entries = [json.loads(line)]
        except ValueError:
            # Two processes' lines run together: count what is in it, and report the line.
            garbled.append(line)
            entries = [json.loads(part) for part in _split_objects(line)]
        for entry in entries:
            chaos_id = _chaos_id(entry.get("headers"))
            if chaos_id is None:
                continue
            logged[chaos_id] = logged.get(chaos_id, 0) + 1
            reasons_missing += not entry.get("reason")
    if garbled:
        figures.problem(
            f"log lines run together: {len(garbled)} web log line(s) hold two JSON objects "
            f"(e.g. {garbled[0][:60]!r}…): concurrent gunicorn workers interleave their writes"
        )
    stored: dict[int, int] = {}
    with cluster.sessions()() as session:
        for headers in session.scalars(select(Rejection.headers)):
            chaos_id = _chaos_id(headers)
            if chaos_id is not None:
                stored[chaos_id] = stored.get(chaos_id, 0) + 1
    not_logged = [i for i in rejected if logged.get(i, 0) == 0]
    twice = [i for i in rejected if logged.get(i, 0) > 1]
    not_stored = [i for i in rejected if stored.get(i, 0) == 0]
    for chaos_id in not_logged[:5]:
        figures.problem(f"rejection not logged: {rejected[chaos_id].answer.status} for {rejected[chaos_id].case.kind}")
    if twice:
        figures.problem(f"rejection logged twice: {len(twice)} requests")
    for chaos_id in not_stored[:5]:
        figures.problem(f"rejection not stored: {rejected[chaos_id].answer.status} for {rejected[chaos_id].case.kind}")
    stored_twice = [i for i in rejected if stored.get(i, 0) > 1]
    if stored_twice:
        figures.problem(f"rejection stored twice: {len(stored_twice)} requests")
    if reasons_missing:
        figures.problem(f"rejection without reason: {reasons_missing} log lines")
    figures.extra["rejections"] = {
        "answered_by_app": len(rejected),
        "logged_once": sum(1 for i in rejected if logged.get(i) == 1),
        "stored_once": sum(1 for i in rejected if stored.get(i) == 1),
        "not_stored": len(not_stored),
        "by_status": _tally(str(item.answer.status) for item in rejected.values()),
    }
    gunicorn_400 = sum(1 for item in sent if item.answer.status is not None and not item.answer.from_app and item.answer.status >= 400)
    web_log = cluster.logs("web")
    figures.extra["gunicorn"] = {
        "own_4xx_answers": gunicorn_400,
        "invalid_request_log_lines": web_log.count("Invalid request from ip="),
        "worker_timeouts": web_log.count("WORKER TIMEOUT"),
        "worker_boots": web_log.count("Booting worker with pid"),
        "errors_handling_request": web_log.count("Error handling request"),
    }
    boots_expected = int(cluster.env()["HGW_WEB_WORKERS"]) * sum(w.starts for w in cluster.webs)
    if web_log.count("WORKER TIMEOUT"):
        figures.problem(f"crash: gunicorn killed {web_log.count('WORKER TIMEOUT')} web worker(s) on timeout")
    if web_log.count("Booting worker with pid") > boots_expected:
        figures.problem(f"crash: {web_log.count('Booting worker with pid') - boots_expected} web worker restart(s)")
    if web_log.count("Error handling request"):
        figures.problem(f"crash: {web_log.count('Error handling request')} unhandled error(s) in gunicorn")

    # Memory: the largest web process may not grow much beyond its baseline.
    peak = sampler.peak_process.get(cluster.webs[0].name, 0)
    figures.extra["web_rss_baseline_mib"] = round(baseline / MIB, 1)
    if peak - baseline > 96 * MIB:
        figures.problem(f"memory: a web process grew from {baseline / MIB:.0f} to {peak / MIB:.0f} MiB")

    # The worker processed whatever odd event was accepted, without crashing.
    events, actions = load_rows(cluster.sessions())
    figures.stored = len(events)
    figures.processed = sum(1 for e in events if e.state == "done")
    figures.actions = len(actions)
    figures.extra["action_states"] = _tally(a.state for a in actions)
    for event in events:
        if event.state != "done":
            figures.problem(f"unprocessed: odd event {event.id} is {event.state}")
    crashed = cluster.logs("worker").count('"action_crashed"')
    if crashed:
        figures.problem(f"worker: {crashed} action(s) crashed with an exception (see {cluster.workdir})")


def _split_objects(line: str) -> list[str]:
    """Split ``{...}{...}`` into its JSON objects (best effort; unparseable parts dropped)."""
    decoder = json.JSONDecoder()
    parts, index = [], 0
    while index < len(line):
        try:
            _, end = decoder.raw_decode(line, index)
        except ValueError:
            break
        parts.append(line[index:end])
        index = end
    return parts


def _tally(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return out


def _chaos_id(headers: Any) -> int | None:
    if not isinstance(headers, dict):
        return None
    for name, value in headers.items():
        if str(name).lower() == CHAOS_HEADER.lower():
            try:
                return int(str(value))
            except ValueError:
                return None
    return None


def _show(case: Case) -> str:
    body = case.body[:160]
    return f"{case.method} {case.path[:80]} headers={case.headers[:4]!r} content_length={case.content_length!r} body={body!r}"
