"""Send signed webhooks the way HotGlue would, many at once, resending what got no answer.

A delivery is resent (to the next web process, as a load balancer would) after a
connection error, a timeout or a 5xx, until it is answered 2xx; every attempt is kept,
so the harness can tell what was acknowledged, what was resent and what answered 5xx.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chaos.workload import Delivery
from hotglue_webhooks.signature import HEADER, sign

PATH = "/webhooks/hotglue"


@dataclass(frozen=True)
class Attempt:
    """One POST: the status answered (None: no answer) or the error, and when.

    ``started`` and ``finished`` are wall-clock seconds (``time.time()``): the request was
    sent after ``started`` and its answer (or error) read before ``finished``.
    """

    target: str
    started: float
    status: int | None
    error: str | None = None
    body: bytes = b""
    finished: float = 0.0


@dataclass
class Outcome:
    """Every attempt of one delivery; ``acked`` once a 2xx came back."""

    delivery: Delivery
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def acked(self) -> Attempt | None:
        return next((a for a in self.attempts if a.status is not None and 200 <= a.status < 300), None)

    @property
    def first_ack_status(self) -> int | None:
        ack = self.acked
        return ack.status if ack else None


@dataclass
class LoadResult:
    outcomes: list[Outcome]
    seconds: float

    @property
    def acknowledged(self) -> int:
        return sum(1 for o in self.outcomes if o.acked is not None)

    @property
    def unanswered_attempts(self) -> int:
        return sum(1 for o in self.outcomes for a in o.attempts if a.status is None)

    @property
    def resent(self) -> int:
        return sum(1 for o in self.outcomes if len(o.attempts) > 1)

    @property
    def answers_5xx(self) -> int:
        return sum(1 for o in self.outcomes for a in o.attempts if a.status is not None and a.status >= 500)

    def status_counts(self) -> dict[int | None, int]:
        counts: dict[int | None, int] = {}
        for outcome in self.outcomes:
            for attempt in outcome.attempts:
                counts[attempt.status] = counts.get(attempt.status, 0) + 1
        return counts


class Sender:
    """POST deliveries with ``concurrency`` connections at once to ``targets`` (host:port).

    ``spread_seconds`` paces the load: delivery n of N is not sent before n/N of it.
    A delivery is given up after ``max_attempts`` attempts (then it stays unacknowledged).
    """

    def __init__(
        self,
        targets: Sequence[str],
        secret: str,
        *,
        concurrency: int = 32,
        timeout: float = 15.0,
        max_attempts: int = 60,
        spread_seconds: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.targets = list(targets)
        self.secret = secret
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.spread_seconds = spread_seconds
        self.rng = random.Random(seed)
        self._lock = threading.Lock()
        self.sent = 0
        self.acked = 0

    def send_all(self, deliveries: Sequence[Delivery], on_done: Callable[[Outcome], None] | None = None) -> LoadResult:
        """Send every delivery; return when each is acknowledged or given up."""
        outcomes = [Outcome(d) for d in deliveries]
        cursor = iter(range(len(outcomes)))
        started = time.monotonic()
        total = max(1, len(outcomes))

        def work(worker: int) -> None:
            rng = random.Random(self.rng.random())
            while True:
                with self._lock:
                    index = next(cursor, None)
                if index is None:
                    return
                if self.spread_seconds:
                    wait = started + self.spread_seconds * index / total - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                outcome = outcomes[index]
                self._deliver(outcome, worker + index, rng)
                with self._lock:
                    self.sent += 1
                    self.acked += outcome.acked is not None
                if on_done is not None:
                    on_done(outcome)

        threads = [threading.Thread(target=work, args=(n,), name=f"sender-{n}", daemon=True) for n in range(self.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return LoadResult(outcomes, time.monotonic() - started)

    def _deliver(self, outcome: Outcome, start_target: int, rng: random.Random) -> None:
        body = outcome.delivery.body
        headers = {"Content-Type": "application/json", HEADER: sign(body, self.secret), "User-Agent": "chaos/1"}
        for attempt_number in range(self.max_attempts):
            target = self.targets[(start_target + attempt_number) % len(self.targets)]
            attempt = post(target, body, headers, self.timeout)
            outcome.attempts.append(attempt)
            if attempt.status is not None and attempt.status < 500:
                return  # answered: 2xx acknowledged, 4xx final (a bug for a valid webhook)
            # No answer or 5xx: the sender does not know whether it was stored; resend.
            time.sleep(min(2.0, 0.1 * 2 ** min(attempt_number, 5)) * (0.5 + rng.random()))


def post(target: str, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
    """POST ``body`` to ``http://target/webhooks/hotglue``; never raises."""
    host, _, port = target.rpartition(":")
    started = time.time()
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request("POST", PATH, body=body, headers=headers)
        response = connection.getresponse()
        body = response.read(4096)
        return Attempt(target, started, response.status, body=body, finished=time.time())
    except (OSError, http.client.HTTPException) as error:
        return Attempt(target, started, None, f"{type(error).__name__}: {error}", finished=time.time())
    finally:
        connection.close()
