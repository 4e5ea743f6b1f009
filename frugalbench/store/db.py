"""Opening the DuckDB file: bounded retry on another process's lock, then migrations, then the spool.

A connection opened for writing first stores what waits in the spool for this database
(``frugalbench.store.spool``: finished runs and trainings that found it held by another process).
"""
from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from frugalbench.errors import StoreError, StoreLockedError
from frugalbench.store.migrations import MIGRATIONS

LOCK_MARKERS = ('Could not set lock', 'Conflicting lock')
WAIT_NOTICE_FIRST_S = 2.0    # a wait this long is reported (shorter ones are ordinary contention) ...
WAIT_NOTICE_EVERY_S = 30.0   # ... and again at this interval

# on_wait(holder, seconds waited): called while another process holds the file; holder is
# ' (PID n)' when DuckDB names it, else ''.
OnWait = Callable[[str, float], None]


@contextlib.contextmanager
def connect(path: Path, *, read_only: bool = False, retry_seconds: float = 10.0,
            on_wait: OnWait | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database for one operation, migrated to the latest schema, with the spool stored
    (writers only); always closed after. Waits up to ``retry_seconds`` for another process's lock."""
    path = Path(path)
    if read_only and not path.exists():
        raise StoreError(f'no results database at {path}: run `frugalbench evaluate` first '
                         f'(or pass --db / set FRUGALBENCH_DB)')
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = _open_with_retry(path, read_only, retry_seconds, on_wait)
    try:
        if not read_only:
            migrate(connection)
            from frugalbench.store.spool import ingest
            ingest(connection, path)
        yield connection
    finally:
        connection.close()


def _holder(message: str) -> str:
    match = re.search(r'\(PID (\d+)\)', message)
    return f' (PID {match.group(1)})' if match else ''


def _open_with_retry(path: Path, read_only: bool, retry_seconds: float,
                     on_wait: OnWait | None = None) -> duckdb.DuckDBPyConnection:
    """Connect, retrying with exponential backoff (up to 0.5 s between tries, 2 s on waits of
    more than a minute) while another process holds the file."""
    start = time.monotonic()
    deadline = start + retry_seconds
    delay, longest = 0.05, (2.0 if retry_seconds > 60 else 0.5)
    next_notice = start + WAIT_NOTICE_FIRST_S
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not any(marker in str(exc) for marker in LOCK_MARKERS):
                raise StoreError(f'cannot open results database {path}: {exc}') from None
            now = time.monotonic()
            if now >= deadline:
                raise StoreLockedError(
                    f'results database {path} is locked by another process{_holder(str(exc))} (still after '
                    f'{retry_seconds:.0f} s): wait for the other frugalbench command to finish, '
                    'or use another --db') from None
            if on_wait is not None and now >= next_notice:
                on_wait(_holder(str(exc)), now - start)
                next_notice = now + WAIT_NOTICE_EVERY_S
            time.sleep(min(delay, max(0.0, deadline - now)))
            delay = min(delay * 2, longest)
        except duckdb.Error as exc:
            raise StoreError(f'cannot open results database {path}: {exc}') from None


def schema_version(connection: duckdb.DuckDBPyConnection) -> int:
    exists = connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'").fetchone()
    if not exists or not exists[0]:
        return 0
    row = connection.execute('SELECT max(version) FROM schema_migrations').fetchone()
    return int(row[0] or 0) if row else 0


def migrate(connection: duckdb.DuckDBPyConnection) -> int:
    """Apply pending migrations, each in its own transaction; return the schema version."""
    connection.execute('CREATE TABLE IF NOT EXISTS schema_migrations '
                       '(version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMP)')
    current = schema_version(connection)
    for version, description, sql in MIGRATIONS:
        if version <= current:
            continue
        connection.execute('BEGIN TRANSACTION')
        try:
            connection.execute(sql)
            connection.execute('INSERT INTO schema_migrations VALUES (?, ?, now())', [version, description])
            connection.execute('COMMIT')
        except duckdb.Error:
            connection.execute('ROLLBACK')
            raise
        current = version
    return current
