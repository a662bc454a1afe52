"""Engine and sessions for SQLite (WAL, one writer at a time) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, ContextManager, Generic, TypeVar

from sqlalchemy import Connection, Engine, Insert, Table, create_engine, event, exc, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

try:
    import fcntl
except ImportError:  # not on POSIX: SQLite's busy handler alone queues the writers
    fcntl = None  # type: ignore[assignment]

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
# A write transaction holding SQLite's lock longer than this makes its process rest as
# long before its next write (see _WriteLock); an ingest INSERT takes well under 1 ms.
LONG_HOLD_SECONDS = 0.005
# A pooled PostgreSQL connection idle longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 5.0


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with this service's connection settings.

    SQLite: WAL journal, ``synchronous=NORMAL`` (durable across process crashes in WAL
    mode), a 30 s busy timeout, and transactions that start with ``BEGIN IMMEDIATE``
    when opened with :func:`write_session`, so writers queue instead of deadlocking.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False}, **kwargs
        )
        _configure_sqlite(engine)
        database = sqlite_file(url)
        if fcntl is not None and database is not None:
            _write_locks[engine] = _WriteLock(str(database) + ".writelock")
        return engine
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine, PING_AFTER_IDLE_SECONDS)
    return engine


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite database URL names; None for any other URL, an in-memory database
    or a ``file:`` URI filename."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Test a pooled connection before use when it sat idle more than ``idle_seconds``.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip per webhook and
    several per processed event. A connection returned moments ago is trusted instead.
    After a database restart, a connection idle for longer is replaced before use; one
    used within the window fails once, and SQLAlchemy then replaces every pooled
    connection ("Dealing with Disconnects", docs.sqlalchemy.org/en/20/core/pooling.html):
    that webhook gets 503 and is resent, that worker step is retried.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since <= idle_seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # the driver's own error for a dead connection
            raise exc.DisconnectionError(str(error)) from error
        if not alive:
            raise exc.DisconnectionError("the connection did not answer a ping")


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot do BEGIN IMMEDIATE;
    # take it over as SQLAlchemy's docs recommend ("Serializable isolation / Savepoints").
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get("sqlite_autocommit", False):
            return  # each statement is its own transaction (see _autocommit_connection())
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get("sqlite_immediate", False) else "BEGIN")


class _WriteLock:
    """Queue this service's SQLite writers (all threads, all processes) on a kernel lock.

    SQLite makes a writer that finds the database locked poll: it sleeps 1, 2, 5, 10,
    … 100 ms between tries, so with four gunicorn workers and a worker writing at once
    most of the waiting is sleeping past the moment the lock came free (measured: four
    web workers ingested less than one). A kernel lock wakes the next writer when the
    lock is released. SQLite's own locking still guards the data; this only orders waiters.

    A writer that loops (a purge deleting batch after batch) must not starve the others
    (measured with a plain lock: ingest at 200 req/s waited 41 s at p99 while 1,000,000
    events were purged). Two byte locks on one file make a turnstile: a writer takes
    byte 0, then byte 1 (the write lock), then lets byte 0 go, so a looping writer finds
    byte 0 held by whoever waits and cannot take the lock straight back. A turn is not
    time, though: one 50 ms batch per 0.3 ms insert still starves ingest, so a process
    that held the lock longer than LONG_HOLD_SECONDS *while another process waited for
    it* rests as long before its next write. With nobody waiting there is nobody to give
    the time to: a worker whose transaction ran long on a busy machine used to sleep
    anyway (measured: 3 % of a worker's time in-process, more with two threads).
    """

    def __init__(self, path: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = path
        self._sleep = sleep
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid = 0
        self._rest_until = 0.0

    def _file(self) -> int | None:
        if self._fd is None or self._pid != os.getpid():
            # A forked child (a gunicorn worker) opens its own: it does not inherit the
            # parent's locks, and must not share its descriptor. Nothing else may open this
            # file in the process: closing any descriptor of it drops POSIX locks.
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                return None  # e.g. a read-only folder: fall back to SQLite's busy handler
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def __call__(self) -> Iterator[None]:
        # A writer that held the lock long (a purge batch) rests as long before taking it
        # again, so the short writers (ingest) get the time in between, not just a turn.
        rest = self._rest_until - time.monotonic()
        if rest > 0 and self._depth == 0:
            self._sleep(rest)
        with self._threads:
            fd = self._file() if self._depth == 0 else None
            if fd is not None:
                fcntl.lockf(fd, fcntl.LOCK_EX, 1, 0)
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX, 1, 1)
                finally:
                    fcntl.lockf(fd, fcntl.LOCK_UN, 1, 0)
            self._depth += 1
            taken = time.monotonic()
            try:
                yield
            finally:
                self._depth -= 1
                if fd is not None:
                    held = time.monotonic() - taken
                    long_hold = held > LONG_HOLD_SECONDS and self.waited_for(fd)
                    fcntl.lockf(fd, fcntl.LOCK_UN, 1, 1)
                    self._rest_until = time.monotonic() + held if long_hold else 0.0

    @staticmethod
    def waited_for(fd: int) -> bool:
        """Whether another process waits for the write lock (call it while holding it).

        A waiter holds the way in (byte 0) until it gets the lock (byte 1), so the way in
        being taken means somebody waits. POSIX locks never conflict within one process:
        this process's own threads queue on ``_threads`` and are not counted.
        """
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
        except OSError:
            return True
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, 0)
        return False


_write_locks: weakref.WeakKeyDictionary[Engine, _WriteLock] = weakref.WeakKeyDictionary()


def _writer(engine: Engine | None) -> ContextManager[None]:
    lock = _write_locks.get(engine) if engine is not None else None
    return lock() if lock is not None else nullcontext()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory; objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def write_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session whose transaction takes the write lock up front on SQLite.

    Commits on success, rolls back on error. On PostgreSQL it is an ordinary session.
    """
    with _writer(factory.kw.get("bind")), factory() as session:
        session.connection(execution_options={"sqlite_immediate": True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def connect(factory: sessionmaker[Session]) -> Connection:
    """A Core connection of the factory's engine, without a Session; use it as a context
    manager and run each transaction on it with :func:`transaction`."""
    engine: Engine = factory.kw["bind"]
    return engine.connect()


@contextmanager
def transaction(connection: Connection, write: bool = True) -> Iterator[Connection]:
    """Run one transaction on a connection the caller holds (the worker keeps one per
    event: a checkout per step cost as much as some of the steps).

    ``write``: on SQLite, take the write lock and ``BEGIN IMMEDIATE`` as
    :func:`write_session` does; a read is a plain ``BEGIN``. Commits on success, rolls
    back on error; the connection stays open for the next one.
    """
    with _writer(connection.engine) if write else nullcontext():
        connection.execution_options(sqlite_immediate=write)  # in place, for this begin
        with connection.begin():
            yield connection


@contextmanager
def _autocommit_connection(engine: Engine) -> Iterator[Connection]:
    """Open a connection on which every statement commits by itself, with no BEGIN/COMMIT
    (after taking the SQLite write lock).

    For a write of one statement: SQLite holds its write lock only while that statement
    runs, and PostgreSQL answers in one round trip instead of three (BEGIN, statement,
    COMMIT). Durability is the same as a commit.
    """
    options: dict[str, Any] = (
        {"sqlite_autocommit": True} if engine.dialect.name == "sqlite" else {"isolation_level": "AUTOCOMMIT"}
    )
    with _writer(engine), engine.connect().execution_options(**options) as connection:
        yield connection


T = TypeVar("T")
# Runs the works of several callers at once (one multi-row statement instead of one each)
# and returns their results in the same order.
Batch = Callable[[Connection, list[Callable[[Connection], T]]], list[T]]


class _Job(Generic[T]):
    """One thread's write, waiting for a turn in a group commit."""

    __slots__ = ("work", "batch", "result", "error", "finished")

    def __init__(self, work: Callable[[Connection], T], batch: Batch[T] | None) -> None:
        self.work = work
        self.batch = batch
        self.result: T | None = None
        self.error: BaseException | None = None
        self.finished = False


class _GroupCommit:
    """Store the short writes of concurrent threads of one process with one commit.

    Every commit pays a fixed price whatever it holds. SQLite: the write lock (which
    queues every writer of every process), a page cache reloaded after another process
    wrote, ~14 WAL frames for a 1 KB event (the row and ten b-trees), a checkpoint every
    ~70 commits. PostgreSQL: a round trip and a WAL flush. Under gunicorn that price,
    paid once per webhook, is what held ingest to ~30 % of the bare endpoint (SQLite's
    lock was held 2.5-3 ms per webhook, back to back).

    Here a thread that finds another thread of its process writing queues its write. The
    next one to get the turn takes the write lock and a connection, then everything
    queued by then (also what queued while it waited for the lock), and runs the writes
    that share a ``batch`` function through it at once (one multi-row statement, which
    commits by itself). Nobody's call returns before the statement holding its write
    committed. A write alone runs as before. If a batch fails, each of its writes is run
    again alone, so one bad write fails only its own caller.
    """

    def __init__(self) -> None:
        self._queue: list[_Job[Any]] = []
        self._queue_lock = threading.Lock()
        self._turn = threading.Lock()

    def run(self, engine: Engine, work: Callable[[Connection], T], batch: Batch[T] | None = None) -> T:
        job: _Job[T] = _Job(work, batch)
        with self._queue_lock:
            self._queue.append(job)
        with self._turn:
            if not job.finished:
                self._drain(engine)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def _drain(self, engine: Engine) -> None:
        jobs: list[_Job[Any]] = []
        try:
            with _autocommit_connection(engine) as connection:
                with self._queue_lock:
                    jobs, self._queue = self._queue, []
                together: dict[Any, list[_Job[Any]]] = {}
                for job in jobs:
                    if job.batch is None:
                        self._run_one(job, connection)
                    else:
                        together.setdefault(job.batch, []).append(job)
                for run_many, group in together.items():
                    if len(group) > 1:
                        try:
                            answers = run_many(connection, [job.work for job in group])
                        except Exception:
                            pass  # each alone below: only a bad one fails
                        else:
                            for job, answer in zip(group, answers, strict=True):
                                job.result, job.finished = answer, True
                            continue
                    for job in group:
                        self._run_one(job, connection)
        finally:
            for job in jobs:  # e.g. interrupted (a gunicorn timeout) before its write ran
                if not job.finished:
                    job.error = job.error or RuntimeError("the write was interrupted before it was committed")
                    job.finished = True

    @staticmethod
    def _run_one(job: _Job[Any], connection: Connection) -> None:
        try:
            job.result = job.work(connection)
        except Exception as error:
            job.error = error
        job.finished = True


_group_commits: weakref.WeakKeyDictionary[Engine, _GroupCommit] = weakref.WeakKeyDictionary()


def write_alone_or_grouped(
    factory: sessionmaker[Session], work: Callable[[Connection], T], batch: Batch[T] | None = None
) -> T:
    """Run ``work`` (a few statements of one write) and commit it before returning its result.

    ``work`` runs on an :func:`_autocommit_connection` (each statement commits by itself),
    possibly on another thread of this process, and must only use the connection it
    gets. ``batch``, when given, runs the works of the callers of this process waiting
    at the same moment that share it at once (e.g. one multi-row INSERT), returning
    their results in order: see :class:`_GroupCommit`.
    """
    engine: Engine = factory.kw["bind"]
    group = _group_commits.get(engine)
    if group is None:
        group = _group_commits.setdefault(engine, _GroupCommit())
    return group.run(engine, work, batch)


def insert_unless_present(dialect: str, table: Table, column: str) -> Insert:
    """Return ``INSERT INTO table ... ON CONFLICT (column) DO NOTHING`` for ``dialect``
    (``sqlite`` or ``postgresql``); with ``.returning(...)`` a conflict returns no row."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=[column])
