"""Opening the DuckDB file: bounded retry on another process's lock, then migrations."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from frugalbench.errors import StoreError
from frugalbench.store.migrations import MIGRATIONS

LOCK_MARKERS = ('Could not set lock', 'Conflicting lock')


@contextlib.contextmanager
def connect(path: Path, *, read_only: bool = False, retry_seconds: float = 10.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database for one operation, migrated to the latest schema; always closed after."""
    path = Path(path)
    if read_only and not path.exists():
        raise StoreError(f'no results database at {path}: run `frugalbench evaluate` first '
                         f'(or pass --db / set FRUGALBENCH_DB)')
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = _open_with_retry(path, read_only, retry_seconds)
    try:
        if not read_only:
            migrate(connection)
        yield connection
    finally:
        connection.close()


def _open_with_retry(path: Path, read_only: bool, retry_seconds: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + retry_seconds
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not any(marker in str(exc) for marker in LOCK_MARKERS):
                raise StoreError(f'cannot open results database {path}: {exc}') from None
            if time.monotonic() >= deadline:
                raise StoreError(
                    f'results database {path} is locked by another process (still after '
                    f'{retry_seconds:.0f} s): wait for the other frugalbench command to finish, '
                    'or use another --db') from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
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
