"""Engine and sessions for SQLite (WAL, one writer at a time) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, ContextManager

from sqlalchemy import Connection, Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

try:
    import fcntl
except ImportError:  # not on POSIX: SQLite's busy handler alone queues the writers
    fcntl = None  # type: ignore[assignment]

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


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
        database = engine.url.database
        if fcntl is not None and database and database != ":memory:" and not database.startswith("file:"):
            _write_locks[engine] = _WriteLock(database + ".writelock")
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


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
            return  # each statement is its own transaction (see autocommit())
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get("sqlite_immediate", False) else "BEGIN")


class _WriteLock:
    """Queue this service's SQLite writers (all threads, all processes) on a kernel lock.

    SQLite makes a writer that finds the database locked poll: it sleeps 1, 2, 5, 10,
    … 100 ms between tries, so with four gunicorn workers and a worker writing at once
    most of the waiting is sleeping past the moment the lock came free (measured: four
    web workers ingested less than one). ``flock`` wakes the next writer when the lock
    is released. SQLite's own locking still guards the data; this only orders waiters.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int | None:
        if self._fd is None or self._pid != os.getpid():
            # A forked child (a gunicorn worker) opens its own: a flock on an inherited
            # descriptor would be shared with the parent.
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                return None  # e.g. a read-only folder: fall back to SQLite's busy handler
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._threads:
            fd = self._file() if self._depth == 0 else None
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)


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


@contextmanager
def autocommit(factory: sessionmaker[Session]) -> Iterator[Connection]:
    """Open a connection on which every statement commits by itself, with no BEGIN/COMMIT.

    For a write that is one statement: SQLite holds its write lock only while that
    statement runs (no Python code inside the lock), and PostgreSQL answers in one round
    trip instead of three (BEGIN, statement, COMMIT). Durability is the same as a commit.
    """
    engine = factory.kw["bind"]
    options: dict[str, Any] = (
        {"sqlite_autocommit": True} if engine.dialect.name == "sqlite" else {"isolation_level": "AUTOCOMMIT"}
    )
    with _writer(engine), engine.connect().execution_options(**options) as connection:
        yield connection


def insert_unless_present(dialect: str, table: Table, column: str) -> Insert:
    """Return ``INSERT INTO table ... ON CONFLICT (column) DO NOTHING`` for ``dialect``
    (``sqlite`` or ``postgresql``); with ``.returning(...)`` a conflict returns no row."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=[column])
